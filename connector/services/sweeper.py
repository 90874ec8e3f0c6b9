"""Re-queue work whose Celery message was lost.

Messages can be lost: a worker killed with SIGKILL loses what it had taken (the filesystem broker
hands a message over at receipt; Redis gives an unacknowledged one back only after its visibility
timeout), and a retry scheduled with a countdown lives in the worker's memory until it is due.
The database is the source of truth, so a beat tick looks there for records still pending well
after they were due, and webhook events never processed, and sends them again.

To avoid doubling a healthy backlog (a 10,000-order backfill waits in the queue for minutes), it
only sweeps when the broker queue is empty: then nothing pending can still be on its way.
Processing is idempotent, so the rare double message is harmless anyway.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from connector.models import InboundEvent, SyncRecord

logger = logging.getLogger(__name__)

def grace() -> timedelta:
    from django.conf import settings

    return timedelta(seconds=settings.SWEEP_GRACE_SECONDS)

MAX_PER_SWEEP = 1000


def broker_queue_depth(queue: str = "celery") -> int | None:
    """Messages waiting in the broker's queue; None when the broker cannot say."""
    from connector.celery import app

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
        return {"queue_depth": depth, "records": 0, "events": 0}
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
        .order_by("received_at").values_list("pk", flat=True)[:MAX_PER_SWEEP]
    )
    if records:
        from connector.tasks import process_record

        # Touch them so the next tick waits another grace period for these messages.
        SyncRecord.objects.filter(pk__in=records).update(updated_at=now, next_attempt_at=None)
        for record_id in records:
            process_record.delay(record_id)
        logger.warning("re-queued %s pending record(s) whose message was lost", len(records))
    if events:
        from connector.bigcommerce.tasks import process_webhook_event

        for event_id in events:
            process_webhook_event.delay(event_id)
        logger.warning("re-queued %s unprocessed webhook event(s)", len(events))
    return {"queue_depth": depth, "records": len(records), "events": len(events)}
