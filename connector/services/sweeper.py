"""Re-queue work whose Celery message was lost.

Messages can be lost: a worker killed with SIGKILL loses what it had taken (the filesystem broker
hands a message over at receipt; Redis gives an unacknowledged one back only after its visibility
timeout), and a retry scheduled with a countdown lives in the worker's memory until it is due.
The database is the source of truth, so a beat tick looks there for records still pending well
after they were due, webhook events never processed, and backfills that stopped saving their
progress, and sends them again.

To avoid doubling a healthy backlog (a 10,000-order backfill waits in the queue for minutes), it
only sweeps when the broker queue is empty: then nothing pending can still be on its way.
Processing is idempotent, so the rare double message is harmless anyway.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from connector.celery import app
from connector.models import InboundEvent, SyncRecord, SyncRun
from connector.services.records import wake_stranded_refunds
from connector.services.taskqueue import task_named

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoreWorkTasks:
    """The tasks that redo a store package's own work, by task name: ``webhook_event`` takes an
    InboundEvent id; ``backfill`` takes (integration id, since, until, run_id=)."""

    webhook_event: str
    backfill: str
    # Takes (integration id, due_at=ISO time or None): the scheduled poll (services/scheduling.py).
    poll: str | None = None


# Filled by each store package when the apps are ready (connector/bigcommerce/apps.py), keyed by
# StoreConnection.platform: the services layer imports no store package, so the sweeper learns
# here which task takes a lost webhook event or a stalled backfill of that platform's stores.
_store_work_tasks: dict[str, StoreWorkTasks] = {}


def register_store_work_tasks(platform: str, tasks: StoreWorkTasks) -> None:
    _store_work_tasks[platform] = tasks


def store_work_tasks(platform: str) -> StoreWorkTasks | None:
    """The tasks a store package registered for its platform (None: no package for it)."""
    return _store_work_tasks.get(platform)


def registered_poll_tasks() -> dict[str, str]:
    """Platform → name of the task that polls one of its integrations."""
    return {platform: tasks.poll for platform, tasks in _store_work_tasks.items() if tasks.poll}


def _store_tasks(platform: str) -> StoreWorkTasks | None:
    tasks = _store_work_tasks.get(platform)
    if tasks is None:
        logger.error("no store package registered the tasks for %r stores; their lost work is not re-sent",
                     platform)
    return tasks

def grace() -> timedelta:
    from django.conf import settings

    return timedelta(seconds=settings.SWEEP_GRACE_SECONDS)

MAX_PER_SWEEP = 1000


def broker_queue_depth(queue: str = "celery") -> int | None:
    """Messages waiting in the broker's queue; None when the broker cannot say."""
    try:
        with app.connection_for_write() as connection:
            return connection.default_channel.queue_declare(queue=queue, passive=True).message_count
    except Exception:  # a missing queue (nothing ever sent) or a broker without a count
        logger.debug("could not read the depth of queue %s", queue, exc_info=True)
        return None


def sweep(now=None, *, force: bool = False) -> dict:
    now = now or timezone.now()
    depth = broker_queue_depth()
    if depth and not force:
        return {"queue_depth": depth, "records": 0, "events": 0, "backfills": 0, "refunds": 0}
    stale = now - grace()
    records = list(
        SyncRecord.objects.filter(state=SyncRecord.State.PENDING)
        .annotate(due=Coalesce("next_attempt_at", "updated_at"))
        .filter(due__lt=stale)
        .order_by("due")
        .values_list("pk", flat=True)[:MAX_PER_SWEEP]
    )
    events = list(
        InboundEvent.objects.filter(source=InboundEvent.Source.WEBHOOK, processed_at__isnull=True,
                                    received_at__lt=stale)
        .filter(Q(error="") | Q(received_at__lt=now - 10 * grace()))
        .order_by("received_at").values_list("pk", "integration__store__platform")[:MAX_PER_SWEEP]
    )
    if records:
        process_record = task_named("connector.process_record")
        # Touch them so the next tick waits another grace period for these messages.
        SyncRecord.objects.filter(pk__in=records).update(updated_at=now, next_attempt_at=None)
        for record_id in records:
            process_record.delay(record_id)
        logger.warning("re-queued %s pending record(s) whose message was lost", len(records))
    if events:
        by_platform: dict[str, list[int]] = {}
        for event_id, platform in events:
            by_platform.setdefault(platform, []).append(event_id)
        for platform, event_ids in by_platform.items():
            tasks = _store_tasks(platform)
            if tasks is not None:
                process_webhook_event = task_named(tasks.webhook_event)
                for event_id in event_ids:
                    process_webhook_event.delay(event_id)
        logger.warning("re-queued %s unprocessed webhook event(s)", len(events))
    backfills = resume_stalled_backfills(now)
    refunds = wake_stranded_refunds(stale, MAX_PER_SWEEP)
    if refunds:
        logger.warning("woke %s refund(s) still waiting for an order that has posted or was skipped", refunds)
    return {"queue_depth": depth, "records": len(records), "events": len(events), "backfills": backfills,
            "refunds": refunds}


def resume_stalled_backfills(now) -> int:
    """Backfills whose worker died mid-run (SIGKILL: the backfill task is acknowledged on receipt,
    so its message dies with the worker): a running backfill saves its progress after every page, so one
    that has saved nothing for three grace periods has lost its worker. It is handed to another:
    its progress_at moves (the stalled task, if it was only slow, stops at its next page), and a
    new message resumes it from the last order id it saved."""
    stall = now - 3 * grace()
    stalled = SyncRun.objects.filter(kind=SyncRun.Kind.BACKFILL, state=SyncRun.State.RUNNING).filter(
        Q(progress_at__lt=stall) | Q(progress_at__isnull=True, started_at__lt=stall))
    resumed = 0
    for run in stalled.annotate(platform=F("integration__store__platform"))[:MAX_PER_SWEEP]:
        tasks = _store_tasks(run.platform)
        if tasks is None:
            continue
        # Conditional on the progress_at read: of two sweepers, one hands the run over.
        if not SyncRun.objects.filter(pk=run.pk, progress_at=run.progress_at).update(progress_at=now):
            continue
        params = run.params or {}
        task_named(tasks.backfill).delay(run.integration_id, params.get("since"), params.get("until"),
                                         run_id=run.pk)
        resumed += 1
        logger.warning("backfill run #%s made no progress since %s; resuming it on another worker", run.pk,
                       run.progress_at or run.started_at)
    return resumed
