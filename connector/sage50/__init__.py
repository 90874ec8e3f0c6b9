"""Sage 50 mapping: pure functions from the neutral commerce model to ledger documents.

    from connector.sage50 import map_order, map_refund, Sage50Mappings
    posting = map_order(store_order, mappings=mappings)   # a connector.commerce.StoreOrder
    posting.invoice, posting.receipts          # SalesInvoice, [Receipt]
    refund_posting = map_refund(store_order, store_refund, posting.invoice.reference, mappings)

Raises ``NeedsMapping`` / ``NotPostable`` / ``TotalsMismatch`` (see ``errors.py``).
"""

from .errors import MissingMapping, NeedsMapping, NotPostable, Sage50MappingError, TotalsMismatch
from .mapper import OrderPosting, RefundPosting, map_order, map_refund, not_postable_reason
from .mappings import (
    MATCH_OR_CREATE,
    WEB_SALES_ACCOUNT,
    CustomerStrategy,
    ItemMap,
    NominalCodes,
    PaymentMap,
    Sage50Mappings,
    TaxMap,
)

__all__ = [
    "MATCH_OR_CREATE",
    "WEB_SALES_ACCOUNT",
    "CustomerStrategy",
    "ItemMap",
    "MissingMapping",
    "NeedsMapping",
    "NominalCodes",
    "NotPostable",
    "OrderPosting",
    "PaymentMap",
    "RefundPosting",
    "Sage50Mappings",
    "Sage50MappingError",
    "TaxMap",
    "TotalsMismatch",
    "map_order",
    "map_refund",
    "not_postable_reason",
]
