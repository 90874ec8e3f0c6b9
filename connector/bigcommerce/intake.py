"""Fetched store records become work: one inbound event per order version or refund (the dedup
point), then a sync record per action the integration's Sage flow needs.

Used by the poller, the backfill and webhook processing alike, so an order version that a webhook
already brought in is a no-op when the next poll reads it again (and the other way round).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone

from connector import routing
from connector.models import InboundEvent, SyncRecord
from connector.services.bulk import insert_new
from connector.services.records import enqueue, upsert_records

from .formats import jsonable

Action = SyncRecord.Action
INCOMPLETE_STATUS_ID = 0  # abandoned at the payment step; it comes back with a new date_modified if paid


def actions_for(integration) -> list[str]:
    """What an order becomes in this integration's Sage (``connector.routing``)."""
    return routing.order_actions(integration)


def refund_actions_for(integration) -> list[str]:
    """What a refund becomes (Sage 100 reads refunds for reconciliation only: no posting)."""
    return routing.refund_actions(integration)


def order_event_key(integration_id: int, order: dict) -> str:
    return f"{integration_id}:poll:order:{order['id']}:{order.get('date_modified', '')}"


def refund_event_key(integration_id: int, refund: dict) -> str:
    return f"{integration_id}:poll:refund:{refund['id']}"


def _new_keys(events: list[InboundEvent]) -> set[str]:
    """Insert the events, ignoring ones already stored; return the keys that are new here. The
    unique dedup key decides (INSERT … ON CONFLICT DO NOTHING RETURNING), so of two processes
    reading the same order version only one takes it."""
    return {key for (key,) in insert_new(InboundEvent, events, returning=("dedup_key",))}


def take_orders(integration, orders: Iterable[dict], *, source: str, reason: str, run=None,
                run_here: bool = False) -> dict:
    """Store each order version once and queue the records that need processing.
    Returns counters: seen, new, queued."""
    return _take(integration, orders, kind=SyncRecord.Kind.ORDER, actions=actions_for(integration),
                 event_key=order_event_key, payload_of=jsonable,
                 version_of=lambda order: order.get("date_modified", ""),
                 skip=lambda order: order.get("status_id") == INCOMPLETE_STATUS_ID,
                 source=source, reason=reason, run=run, run_here=run_here)


def take_refunds(integration, refunds: Iterable[dict], *, source: str, reason: str, run=None,
                 run_here: bool = False) -> dict:
    return _take(integration, refunds, kind=SyncRecord.Kind.REFUND, actions=refund_actions_for(integration),
                 event_key=refund_event_key,
                 payload_of=lambda refund: {"refund": jsonable(refund), "order_id": refund.get("order_id")},
                 version_of=lambda refund: str(refund.get("created", "")), skip=lambda refund: False,
                 source=source, reason=reason, run=run, run_here=run_here)


def _take(integration, items, *, kind, actions, event_key, payload_of, version_of, skip, source, reason,
          run, run_here) -> dict:
    items = [item for item in items if isinstance(item, dict) and "id" in item]
    counts = {"seen": len(items), "new": 0, "queued": 0}
    if not items:
        return counts
    now = timezone.now()
    events = [InboundEvent(integration_id=integration.pk, source=source, dedup_key=event_key(integration.pk, item),
                           scope=kind, resource_id=str(item["id"]), run=run, received_at=now, processed_at=now)
              for item in items]
    with transaction.atomic():
        new = _new_keys(events)
        fresh = [item for item in items if event_key(integration.pk, item) in new]
        counts["new"] = len(fresh)
        postable = [(str(item["id"]), version_of(item), payload_of(item)) for item in fresh if not skip(item)]
        queue = []
        for action in actions:
            queue += upsert_records(integration.pk, kind, action, postable, reason=reason)
        counts["queued"] = len(queue)
        if queue:
            enqueue(queue, here=run_here)
    return counts
