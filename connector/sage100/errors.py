"""What the Sage 100 mapper refuses, with messages an accountant can act on."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


class Sage100MappingError(Exception):
    """Base of everything the mapper refuses; the pipeline parks the record with ``str(error)``."""


@dataclass(frozen=True)
class MissingMapping:
    kind: str  # item | ship_via | warehouse | customer
    key: str
    message: str


class NeedsMapping(Sage100MappingError):
    def __init__(self, reference: str, missing: list[MissingMapping]):
        self.reference = reference
        self.missing = missing
        super().__init__(f"{reference} cannot become a Sage 100 sales order yet: "
                         + "; ".join(m.message for m in missing))

    @property
    def keys(self) -> list[tuple[str, str]]:
        return [(m.kind, m.key) for m in self.missing]


class NotPostable(Sage100MappingError):
    def __init__(self, reference: str, reason: str):
        self.reference = reference
        self.reason = reason
        super().__init__(f"{reference} is not posted: {reason}")


class TotalsMismatch(Sage100MappingError):
    """The sales order would not come to the store's total: the record is held, the difference shown."""

    def __init__(self, reference: str, store_total: Decimal, document_total: Decimal, detail: str = ""):
        self.reference = reference
        self.store_total = store_total
        self.document_total = document_total
        self.difference = store_total - document_total
        message = (f"{reference}: the Sage 100 sales order comes to {document_total} but the store total is "
                   f"{store_total} (difference {self.difference})")
        super().__init__(f"{message}. {detail}" if detail else message)
