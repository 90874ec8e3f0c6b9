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
