"""Fetched store records become work: one inbound event per order version or refund (the dedup
point), then a sync record per action the integration's Sage flow needs.

Used by the poller, the backfill and webhook processing alike, so an order version that a webhook
already brought in is a no-op when the next poll reads it again (and the other way round).
"""

from __future__ import annotations

from collections.abc import Iterable

from connector import routing
from connector.models import SyncRecord
from connector.services.intake import RecordShape, take

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


ORDER = RecordShape(kind=SyncRecord.Kind.ORDER, id_field="id", event_key=order_event_key, payload_of=jsonable,
                    version_of=lambda order: order.get("date_modified", ""),
                    skip=lambda order: order.get("status_id") == INCOMPLETE_STATUS_ID)
REFUND = RecordShape(kind=SyncRecord.Kind.REFUND, id_field="id", event_key=refund_event_key,
                     payload_of=lambda refund: {"refund": jsonable(refund), "order_id": refund.get("order_id")},
                     version_of=lambda refund: str(refund.get("created", "")))


def take_orders(integration, orders: Iterable[dict], *, source: str, reason: str, run=None,
                run_here: bool = False) -> dict:
    """Store each order version once and queue the records that need processing.
    Returns counters: seen, new, queued."""
    return take(integration, orders, ORDER, actions=actions_for(integration), source=source, reason=reason,
                run=run, run_here=run_here)


def take_refunds(integration, refunds: Iterable[dict], *, source: str, reason: str, run=None,
                 run_here: bool = False) -> dict:
    return take(integration, refunds, REFUND, actions=refund_actions_for(integration), source=source,
                reason=reason, run=run, run_here=run_here)
