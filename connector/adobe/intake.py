"""Fetched Adobe records become work: one inbound event per order version or credit memo (the
dedup point: order entity_id + its version, memo entity_id), then one sync record per action the
integration's route needs (``connector.routing``). The poll, the backfill and webhooks all come
through here, so what a webhook already brought in is a no-op when the overlapping poll reads it."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from connector import routing
from connector.models import SyncRecord
from connector.services.intake import RecordShape, take

from .adapter import jsonable, with_id

NOT_YET_A_SALE = {"pending_payment"}  # abandoned at the payment step; it returns with a new updated_at if paid


def order_version(order: dict) -> str:
    """Which version of an order this is. Adobe's ``updated_at`` counts whole seconds, and an order
    is often placed and invoiced within one (payment action "authorize and capture"): read between
    the two, the pending version and the paid one have the same ``updated_at``, and the paid one
    was dropped as already seen (found by ``make chaos``'s Adobe run). So the figures that decide
    what posts are part of the version too."""
    money = "|".join(str(order.get(k) or "") for k in ("state", "status", "total_paid", "total_invoiced",
                                                       "total_refunded", "grand_total"))
    return f"{order.get('updated_at', '')}#{hashlib.sha256(money.encode()).hexdigest()[:12]}"


def order_event_key(integration_id: int, order: dict) -> str:
    return f"{integration_id}:adobe:order:{order['entity_id']}:{order_version(order)}"


def memo_event_key(integration_id: int, memo: dict) -> str:
    return f"{integration_id}:adobe:creditmemo:{memo['entity_id']}"


ORDER = RecordShape(kind=SyncRecord.Kind.ORDER, id_field="entity_id", event_key=order_event_key,
                    payload_of=lambda order: jsonable(with_id(order)), version_of=order_version,
                    skip=lambda order: order.get("state") in NOT_YET_A_SALE)
CREDIT_MEMO = RecordShape(kind=SyncRecord.Kind.REFUND, id_field="entity_id", event_key=memo_event_key,
                          payload_of=lambda memo: {"refund": jsonable(memo), "order_id": memo.get("order_id")},
                          version_of=lambda memo: str(memo.get("updated_at") or memo.get("created_at") or ""))


def take_orders(integration, orders: Iterable[dict], *, source: str, reason: str, run=None,
                run_here: bool = False) -> dict:
    return take(integration, orders, ORDER, actions=routing.order_actions(integration), source=source,
                reason=reason, run=run, run_here=run_here)


def take_creditmemos(integration, memos: Iterable[dict], *, source: str, reason: str, run=None,
                     run_here: bool = False) -> dict:
    return take(integration, memos, CREDIT_MEMO, actions=routing.refund_actions(integration), source=source,
                reason=reason, run=run, run_here=run_here)
