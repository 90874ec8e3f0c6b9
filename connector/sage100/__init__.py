"""Sage 100 ledger: the neutral store order → a Sage 100 sales order (``mlcommon.ledger.SalesOrder``
with its Sage 100 fields), posted by the agent over BOI or directly over eBusiness Web Services.

    from connector.sage100 import map_sales_order, Sage100Mappings
    document = map_sales_order(store_order, mappings=mappings, customer_ref="01-ABF")

Raises ``NeedsMapping`` / ``NotPostable`` / ``TotalsMismatch`` (see ``errors.py``).
"""

from .errors import MissingMapping, NeedsMapping, NotPostable, Sage100MappingError, TotalsMismatch
from .mapper import map_sales_order, not_postable_reason, sales_order_no, split_customer_ref
from .mappings import MATCH_OR_CREATE, WEB_CUSTOMER, Customers, ItemCodes, Sage100Mappings

__all__ = [
    "MATCH_OR_CREATE",
    "WEB_CUSTOMER",
    "Customers",
    "ItemCodes",
    "MissingMapping",
    "NeedsMapping",
    "NotPostable",
    "Sage100Mappings",
    "Sage100MappingError",
    "TotalsMismatch",
    "map_sales_order",
    "not_postable_reason",
    "sales_order_no",
    "split_customer_ref",
]
