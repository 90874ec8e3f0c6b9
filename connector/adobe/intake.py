"""Fetched Adobe records become work: one inbound event per order version or credit memo (the
dedup point: order entity_id + its version, memo entity_id), then one sync record per action the
integration's route needs (``connector.routing``). The poll, the backfill and webhooks all come
through here, so what a webhook already brought in is a no-op when the overlapping poll reads it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from django.db import transaction
from django.utils import timezone

from connector import routing
from connector.models import InboundEvent, SyncRecord
from connector.services.bulk import insert_new
from connector.services.records import enqueue, upsert_records

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


def take_orders(integration, orders: Iterable[dict], *, source: str, reason: str, run=None) -> dict:
    return _take(integration, orders, kind=SyncRecord.Kind.ORDER, actions=routing.order_actions(integration),
                 event_key=order_event_key, payload_of=lambda order: jsonable(with_id(order)),
                 version_of=order_version,
                 skip=lambda order: order.get("state") in NOT_YET_A_SALE, source=source, reason=reason, run=run)


def take_creditmemos(integration, memos: Iterable[dict], *, source: str, reason: str, run=None) -> dict:
    return _take(integration, memos, kind=SyncRecord.Kind.REFUND, actions=routing.refund_actions(integration),
                 event_key=memo_event_key,
                 payload_of=lambda memo: {"refund": jsonable(memo), "order_id": memo.get("order_id")},
                 version_of=lambda memo: str(memo.get("updated_at") or memo.get("created_at") or ""),
                 skip=lambda memo: False, source=source, reason=reason, run=run)


def _take(integration, records, *, kind: str, actions: list[str], event_key: Callable, payload_of: Callable,
          version_of: Callable, skip: Callable, source: str, reason: str, run) -> dict:
    records = [r for r in records if isinstance(r, dict) and r.get("entity_id") is not None]
    counts = {"seen": len(records), "new": 0, "queued": 0}
    if not records:
        return counts
    now = timezone.now()
    keys = {id(r): event_key(integration.pk, r) for r in records}
    events = [InboundEvent(integration_id=integration.pk, source=source, dedup_key=keys[id(r)], scope=kind,
                           resource_id=str(r["entity_id"]), run=run, received_at=now, processed_at=now)
              for r in records]
    with transaction.atomic():
        # INSERT … ON CONFLICT DO NOTHING RETURNING: of two readers of one version, one takes it.
        new = {key for (key,) in insert_new(InboundEvent, events, returning=("dedup_key",))}
        fresh = [r for r in records if keys[id(r)] in new]
        counts["new"] = len(fresh)
        postable = [(str(r["entity_id"]), version_of(r), payload_of(r)) for r in fresh if not skip(r)]
        queue: list[int] = []
        for action in actions:
            queue += upsert_records(integration.pk, kind, action, postable, reason=reason)
        counts["queued"] = len(queue)
        if queue:
            enqueue(queue)
    return counts
