"""The lease long poll: answer as soon as a job is ready, or after ``wait_seconds`` with none.

Database access from the async view. Django's ORM is synchronous and its connections are
per thread. Run with ``sync_to_async(thread_sensitive=True)`` (the default) under ASGI, every
request gets its own executor thread and keeps that thread's connection for its whole life,
so a thousand waiting agents would hold a thousand threads and, with persistent connections,
a thousand database connections. Instead every database step runs with
``thread_sensitive=False`` on the event loop's small shared pool and releases its connection
when done (``close_old_connections``, which honours CONN_MAX_AGE: with persistent connections
each pool thread keeps one, so connections stay bounded by the pool size, not by the number of
waiting agents). Between steps a waiting request holds no thread and no connection: only an
``asyncio.Event`` in the per-process hub of connector/services/wakeup.py.
"""

from __future__ import annotations

import asyncio
from functools import partial

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.utils import timezone

from connector.models import AgentJob
from connector.services.jobs import leasable, lease_jobs, ready_q
from connector.services.wakeup import waiters_for_loop

IN_CHUNK = 500  # stay under SQLite's bound-parameter limit in the sweep's IN (...)


def _with_released_connection(fn, *args, **kwargs):
    close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        close_old_connections()


async def run_db(fn, *args, **kwargs):
    """Run ORM code off the event loop on the shared pool; see the module docstring for why."""
    return await sync_to_async(partial(_with_released_connection, fn, *args, **kwargs), thread_sensitive=False)()


def ready_integration_ids(integration_ids: list[int]) -> set[int]:
    """Those of ``integration_ids`` that have a job an agent could lease now (as jobs.leasable)."""
    now = timezone.now()
    ready: set[int] = set()
    for start in range(0, len(integration_ids), IN_CHUNK):
        chunk = integration_ids[start:start + IN_CHUNK]
        ready.update(AgentJob.objects.filter(integration_id__in=chunk).filter(ready_q(now))
                     .values_list("integration_id", flat=True).distinct())
    return ready


def lease_if_ready(agent, max_jobs: int) -> list[AgentJob]:
    """lease_jobs, but only after a plain read says there is something to lease. An idle poll then
    takes no write transaction: on SQLite (transaction_mode IMMEDIATE) every lease attempt would
    otherwise queue for the database's single write lock, and a burst of polls would crawl."""
    if not leasable(agent.integration_id).exists():
        return []
    return lease_jobs(agent, max_jobs)


async def _ready_integrations(integration_ids: list[int]) -> set[int]:
    return await run_db(ready_integration_ids, integration_ids)


def job_waiters():
    return waiters_for_loop(_ready_integrations)


async def lease_when_ready(agent, max_jobs: int, wait_seconds: float, *, looked_at: float | None = None
                           ) -> list[AgentJob]:
    """Lease up to ``max_jobs``, waiting up to ``wait_seconds`` for one to be ready.

    ``looked_at``: the loop time at which the caller started a lease attempt that found nothing;
    then the first attempt here is skipped (one database trip fewer per idle poll), and a wake-up
    that arrived since then still counts.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    hub = job_waiters()
    # Registered before the (next) look at the database: a wake-up that comes in between is kept.
    with hub.waiting(agent.integration_id) as ready:
        if looked_at is None or hub.woken_since(agent.integration_id, looked_at):
            ready.set()
        while True:
            if not ready.is_set():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return []
                try:
                    await asyncio.wait_for(ready.wait(), remaining)
                except TimeoutError:
                    return []
            ready.clear()
            jobs = await run_db(lease_if_ready, agent, max_jobs)
            if jobs or deadline - loop.time() <= 0:
                return jobs
