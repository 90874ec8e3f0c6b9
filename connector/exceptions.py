"""Outcomes a flow can raise about a record. The pipeline turns each into a record state and
an accountant-readable message; none of them is a crash."""

from __future__ import annotations


class RecordOutcome(Exception):
    state: str = "failed"

    def __init__(self, message: str, *, keys: list[str] | None = None, data=None):
        super().__init__(message)
        self.message = message
        self.keys = keys or []
        self.data = data


class NeedsMapping(RecordOutcome):
    """Something must be mapped first. ``keys`` name what (e.g. 'sku:ABC-1'); the record waits
    and resumes by itself when a mapping is saved."""

    state = "waiting_mapping"


class TotalsMismatch(RecordOutcome):
    """The document would not equal the store's total to the cent: held, difference shown."""

    state = "held"


class NotPostable(RecordOutcome):
    """Nothing to post (order not paid, cancelled, flow off): skipped with the reason."""

    state = "skipped"


def order_key(order_id) -> str:
    """The ``waiting_for`` key of a refund waiting for its order (records.py wakes it by this key)."""
    return f"order:{order_id}"


class WaitingForOrder(RecordOutcome):
    """A refund whose order is not in the ledger yet (its record is held, waiting for a mapping,
    still pending or failed). It waits without retrying and resumes by itself when its order's
    record is posted or skipped (connector.services.records wakes it)."""

    state = "waiting_order"

    def __init__(self, message: str, *, order_id, data=None):
        super().__init__(message, keys=[order_key(order_id)], data=data)


class OrderNotPosted(RecordOutcome):
    """A refund whose order was skipped (not paid, cancelled, partly invoiced): nothing to credit.
    It keeps its order's key, so it comes back by itself if the order is re-evaluated and posts."""

    state = "skipped"

    def __init__(self, message: str, *, order_id, data=None):
        super().__init__(message, keys=[order_key(order_id)], data=data)
