"""Why a store record cannot be posted yet, in words an accountant can act on.

The pipeline parks a record on ``NeedsMapping`` (it resumes when the mapping is saved), skips it
on ``NotPostable`` and holds it with the difference shown on ``TotalsMismatch``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


class Sage50MappingError(Exception):
    """Base class: the mapper refused to build a document."""


@dataclass(frozen=True)
class MissingMapping:
    kind: str  # item | tax | payment_method | nominal | customer_account
    key: str  # what to map: the SKU, tax class, payment method, nominal slot or currency
    message: str


class NeedsMapping(Sage50MappingError):
    """One or more mappings are missing; ``missing`` lists every one, not only the first."""

    def __init__(self, reference: str, missing: list[MissingMapping]):
        self.reference = reference
        self.missing = list(missing)
        super().__init__(
            f"{reference} needs {len(self.missing)} mapping(s):\n"
            + "\n".join(f"- {m.message}" for m in self.missing)
        )

    @property
    def keys(self) -> list[tuple[str, str]]:
        return [(m.kind, m.key) for m in self.missing]


class NotPostable(Sage50MappingError):
    """The record is not a posting (yet): unpaid status, payment not captured, nothing refunded."""

    def __init__(self, reference: str, reason: str):
        self.reference = reference
        self.reason = reason
        super().__init__(f"{reference} is not posted: {reason}")


class TotalsMismatch(Sage50MappingError):
    """The document does not add up to the store's own total, to the cent."""

    def __init__(self, reference: str, store_total: Decimal, document_total: Decimal, hint: str = ""):
        self.reference = reference
        self.store_total = store_total
        self.document_total = document_total
        self.difference = store_total - document_total
        text = (
            f"{reference}: the Sage document totals {document_total} but the store says {store_total} "
            f"(difference {self.difference})."
        )
        super().__init__(f"{text} {hint}".strip())
