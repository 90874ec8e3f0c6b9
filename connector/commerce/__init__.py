"""The store-neutral commerce model: what every store adapter produces and every ledger mapper reads.

Pure dataclasses (no Django, no I/O, no store or ledger imports), money as ``Decimal``. A store
adapter (``connector/bigcommerce/normalize.py``) turns its API's records into these; a ledger
mapper (``connector/sage50``, ``connector/sagex3``) turns these into ledger documents. Neither side
knows the other, so a new store or a new Sage is one package, not one per pair.
"""

from .codec import from_dict, to_dict
from .model import (
    Address,
    Charge,
    ChargeKind,
    Discount,
    OrderLine,
    OrderStatus,
    Party,
    RefundItem,
    RefundItemKind,
    RefundPayment,
    Settlement,
    StockLevel,
    StoreOrder,
    StorePrice,
    StoreRefund,
    StoreTotals,
    TaxDetail,
    Tender,
    TenderKind,
)

__all__ = [
    "Address",
    "Charge",
    "ChargeKind",
    "Discount",
    "OrderLine",
    "OrderStatus",
    "Party",
    "RefundItem",
    "RefundItemKind",
    "RefundPayment",
    "Settlement",
    "StockLevel",
    "StorePrice",
    "StoreOrder",
    "StoreRefund",
    "StoreTotals",
    "TaxDetail",
    "Tender",
    "TenderKind",
    "from_dict",
    "to_dict",
]
