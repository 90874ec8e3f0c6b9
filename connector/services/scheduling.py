"""When each integration polls its store: one beat entry hands out due integrations in batches.

Why not one django-celery-beat PeriodicTask per integration (the design until issue 22): beat's
DatabaseScheduler keeps every enabled row in its heap, sends one due entry per pass of its loop
(asking the database each pass whether any periodic task changed, and re-reading all 2,000 rows
when one did), and saves every sent entry's last run back. Measured with bench/tenants.py (2,000
integrations every 60 s, PostgreSQL + Redis, 2 cores): on a quiet machine that beat used 23 % of a
core (7 ms per poll sent) against 0.2 % for this dispatcher; with the machine busy (load 15-30) it
used 16 % and sent only 1,920 polls in 181 s of the 6,028 due while the worker sat 84 % idle:
beat was the bottleneck, and one beat is all a deployment may run. The old "poll due integrations"
tick beside the periodic tasks also aggregated ``Max(started_at)`` over every poll SyncRun each
10 s, a query that grows with history.

Here instead: ``Integration.next_poll_at`` says when each integration is due. A beat entry every
``POLL_TICK_SECONDS`` runs ``dispatch_due``, which claims up to ``POLL_DISPATCH_BATCH`` due
integrations in one transaction (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two beats
or two dispatch tasks never take the same row and never wait on each other; SQLite opens every
transaction with BEGIN IMMEDIATE in this project, so there the claim is serialized instead), moves
each one's ``next_poll_at`` one interval on (with jitter), commits, and only then sends the polls.
A claim is a compare-and-set on ``next_poll_at``, so an integration is sent once per interval
whatever the number of beats or workers running the tick.

The poll itself still goes through ``connector.services.polling.poll_once`` (one poll of an
integration at a time). A dispatcher that dies between its commit and its sends skips those
integrations for one interval: nothing is lost (the next poll reads from the watermark).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Integration
from connector.celery import app
from connector.services.sweeper import broker_queue_depth, registered_poll_tasks
from connector.services.taskqueue import task_named

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claimed:
    integration_id: int
    platform: str
    interval: int
    due_at: dt.datetime


def interval_of(poll_interval_seconds: int | None) -> int:
    return max(settings.POLL_MIN_INTERVAL_SECONDS, int(poll_interval_seconds or 300))


def jitter_bound(interval: int) -> float:
    """Each next poll moves by up to ± this much: at most POLL_JITTER_SECONDS and 10 % of the
    interval, so a 60 s poll stays within 54–66 s of the previous one."""
    return min(float(settings.POLL_JITTER_SECONDS), interval * 0.1)


def next_due(now: dt.datetime, due_at: dt.datetime | None, interval: int, rng: random.Random | None = None
             ) -> dt.datetime:
    """The next time after a poll due at ``due_at`` and handed out at ``now``. On schedule (less
    than one interval behind), the next poll keeps the integration's own phase: due_at + interval,
    plus jitter so that integrations created together drift apart. After an outage (more than an
    interval behind) or for a new integration, the next one is spread over the coming interval, so
    the backlog of a stopped beat does not come due again all on one tick."""
    rng = rng or random
    if due_at is None or (now - due_at).total_seconds() >= interval:
        return now + dt.timedelta(seconds=rng.uniform(0.5, 1.0) * interval)
    bound = jitter_bound(interval)
    return due_at + dt.timedelta(seconds=interval + rng.uniform(-bound, bound))


def _due_rows(now: dt.datetime, platforms: list[str], limit: int):
    rows = (Integration.objects.filter(is_active=True, store__platform__in=platforms)
            .filter(Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now))
            .order_by(F("next_poll_at").asc(nulls_first=True), "pk")
            .values_list("pk", "store__platform", "poll_interval_seconds", "next_poll_at"))
    if connection.features.has_select_for_update_skip_locked:
        rows = rows.select_for_update(skip_locked=True, of=("self",))
    return list(rows[:limit])


def claim_due(now: dt.datetime | None = None, *, limit: int | None = None, platforms: list[str] | None = None,
              rng: random.Random | None = None) -> list[Claimed]:
    """Take up to ``limit`` due integrations and move their next_poll_at on, in one transaction."""
    now = now or timezone.now()
    limit = limit or settings.POLL_DISPATCH_BATCH
    platforms = platforms if platforms is not None else list(registered_poll_tasks())
    if not platforms:
        return []
    with transaction.atomic():
        rows = _due_rows(now, platforms, limit)
        claimed = [Claimed(pk, platform, interval_of(every), due or now) for pk, platform, every, due in rows]
        updates = [Integration(pk=row.integration_id,
                               next_poll_at=next_due(now, due, row.interval, rng))
                   for row, (_, _, _, due) in zip(claimed, rows, strict=True)]
        Integration.objects.bulk_update(updates, ["next_poll_at"], batch_size=500)
    return claimed


def dispatch_due(now: dt.datetime | None = None, *, batch: int | None = None) -> dict:
    """Claim and send every due poll, a batch per transaction (so a big backlog never holds locks
    long). Each poll message expires after its interval: if the workers fall that far behind, the
    stale poll is dropped rather than queued beside the next one."""
    batch = batch or settings.POLL_DISPATCH_BATCH
    tasks = registered_poll_tasks()
    sent = batches = 0
    # Back-pressure: polls wait in the database, oldest first, rather than in the broker. When the
    # workers fall behind, a queue that kept growing by a full round each interval ended with every
    # message older than its expiry, and the workers spent themselves discarding them (measured on a
    # loaded 2-core machine: 12,673 expired against 2,628 run). Only as many as fit under
    # POLL_QUEUE_MAX are claimed; the rest stay due for the next tick.
    depth = broker_queue_depth() or 0
    room = max(0, settings.POLL_QUEUE_MAX - depth)
    for _ in range(max(1, settings.POLL_DISPATCH_MAX_BATCHES)):
        if room <= 0:
            break
        claimed = claim_due(now, limit=min(batch, room), platforms=list(tasks))
        room -= len(claimed)
        batches += 1
        with app.producer_or_acquire() as producer:  # one broker connection for the batch
            for row in claimed:
                task_named(tasks[row.platform]).apply_async(
                    args=[row.integration_id], kwargs={"due_at": row.due_at.isoformat()}, expires=row.interval,
                    producer=producer)
        sent += len(claimed)
        if len(claimed) < batch:
            break
    return {"sent": sent, "batches": batches, "queue_depth": depth}


def poll_soon(integration_ids=None) -> int:
    """Make integrations due at the next tick (a new integration, or the demo's first poll);
    returns how many are due then. One never scheduled (``next_poll_at`` empty) is due already and
    is left so: the tick that claims it spreads its next poll over the coming interval (next_due).
    Stamping "now" on it instead gave every integration created together the same phase, and
    the ± jitter takes many intervals to pull fifty of them apart: their polls came in one burst
    every interval (seen as a latency spike each minute in the Black Friday bench)."""
    rows = Integration.objects.filter(is_active=True)
    if integration_ids is not None:
        rows = rows.filter(pk__in=list(integration_ids))
    now = timezone.now()
    return rows.filter(next_poll_at__isnull=True).count() + rows.filter(next_poll_at__gt=now).update(
        next_poll_at=now)


def clamp_next_poll(integration: Integration, previous_interval: int | None) -> None:
    """Before an integration is saved with a shorter poll interval: bring its next poll forward to
    at most one new interval from now (a longer one takes effect after the next poll)."""
    if previous_interval is None or integration.next_poll_at is None:
        return
    new = interval_of(integration.poll_interval_seconds)
    if new < interval_of(previous_interval):
        integration.next_poll_at = min(integration.next_poll_at, timezone.now() + dt.timedelta(seconds=new))
