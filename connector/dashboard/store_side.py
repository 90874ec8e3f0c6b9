"""How the dashboard reads a store: only through the integration's store adapter
(``connector.stores``) and the neutral model (``connector.commerce``), like the ledgers do.

A sync record's payload is the store's own JSON (an order; a refund stored as ``{"refund": ...,
"order_id": ..., "order": ...}`` by the flows), so it is normalised by the same adapter that made
it, and nothing here knows any store's field names. No store is named in this package: a new
store shows on the dashboard once its adapter is registered.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from connector.commerce import Party, StoreOrder, StoreRefund
from connector.flows.stores import store_adapter
from connector.models import SyncRecord
from connector.stores import StoreAdapter, UnknownPlatform

log = logging.getLogger(__name__)

# What a normaliser raises on a record it cannot read (a field missing or of the wrong type, money
# that is not a number): one such stored record must not take a page down with it.
UNREADABLE = (KeyError, TypeError, ValueError, ArithmeticError)


def adapter_of(integration) -> StoreAdapter | None:
    """The integration's store adapter, or None for a platform with no adapter in this build."""
    try:
        return store_adapter(integration)
    except UnknownPlatform:
        return None


def with_decimals(value):
    """Stored JSON may hold a number as a float; the normalisers refuse floats for money."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, Mapping):
        return {key: with_decimals(item) for key, item in value.items()}
    if isinstance(value, list):
        return [with_decimals(item) for item in value]
    return value


def order_of(adapter: StoreAdapter | None, integration, raw) -> StoreOrder | None:
    """A stored (or fetched) raw order in the neutral model; None when it is only a stub (a
    webhook's record holds the id alone) or cannot be read."""
    if adapter is None or not isinstance(raw, Mapping) or not adapter.is_full_order(raw, with_lines=False):
        return None
    try:
        return adapter.normalize_order(with_decimals(raw), paid_status_ids=integration.paid_status_ids)
    except UNREADABLE as error:
        log.info("stored order of %s cannot be read: %r", integration, error)
        return None


def refund_of(adapter: StoreAdapter | None, raw, order_id=None) -> StoreRefund | None:
    if adapter is None or not isinstance(raw, Mapping):
        return None
    try:
        return adapter.normalize_refund(with_decimals(raw), order_id=order_id)
    except UNREADABLE as error:
        log.info("stored refund cannot be read: %r", error)
        return None


@dataclass(frozen=True)
class StoredRecord:
    """A sync record's payload, read: the order (for a refund, its order when stored with it)
    and the refund."""

    order: StoreOrder | None = None
    refund: StoreRefund | None = None


def read_record(record: SyncRecord, adapter: StoreAdapter | None, integration) -> StoredRecord:
    payload = record.payload if isinstance(record.payload, Mapping) else {}
    if record.kind == SyncRecord.Kind.REFUND:
        return StoredRecord(order=order_of(adapter, integration, payload.get("order")),
                            refund=refund_of(adapter, payload.get("refund"), payload.get("order_id")))
    if record.kind == SyncRecord.Kind.ORDER:
        return StoredRecord(order=order_of(adapter, integration, payload))
    return StoredRecord()


def customer_name(party: Party) -> str:
    return party.name or party.company or party.email
