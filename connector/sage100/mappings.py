"""The integration's Sage 100 settings and mappings as plain data (built by the flow from the
``mappings`` tables and the integration; the pure mapper never touches the database)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from mlcommon.ledger import TaxMode

MATCH_OR_CREATE = "match_or_create"
WEB_CUSTOMER = "web_customer"

SALES_ORDER_NO_LENGTH = 7  # SO_SalesOrderHeader.SalesOrderNo$
ITEM_CODE_LENGTH = 30  # CI_Item.ItemCode$
CUSTOMER_PO_LENGTH = 15  # SO_SalesOrderHeader.CustomerPONo$


def norm(key) -> str:
    return str(key).strip().upper()


@dataclass
class ItemCodes:
    """Store SKU → Sage 100 item code. Sage 100 item codes are upper case, at most 30 characters."""

    by_sku: dict[str, str] = field(default_factory=dict)
    same_code_fallback: bool = False
    gift_certificate: str = "/GIFTCERT"  # a miscellaneous charge item for gift certificates sold

    def lookup(self, sku: str) -> str | None:
        wanted = norm(sku)
        return next((code for key, code in self.by_sku.items() if norm(key) == wanted), None)


@dataclass
class Customers:
    """``match_or_create``: the customer number kept in record links, else the agent matches by
    email, else it creates one (Sage's next number, or ``numbering`` + a counter).
    ``web_customer``: every order goes to one customer (``web_customer_no``)."""

    mode: str = MATCH_OR_CREATE
    division: str = "01"
    web_customer_no: str = ""  # e.g. "WEBSALE" (in ``division``)
    numbering: str = ""  # prefix of new customer numbers, e.g. "W"; blank: Sage's next number


@dataclass
class Sage100Mappings:
    items: ItemCodes = field(default_factory=ItemCodes)
    customers: Customers = field(default_factory=Customers)
    # Store shipping method (as the store names it) → Sage 100 ShipVia code; ``default_ship_via``
    # when a method is not listed (blank: the order is parked until it is mapped).
    ship_via: dict[str, str] = field(default_factory=dict)
    default_ship_via: str = ""
    # Store sales channel id → warehouse code; ``default_warehouse`` for the others.
    warehouses: dict[str, str] = field(default_factory=dict)
    default_warehouse: str = "000"
    tax_mode: str = TaxMode.STORE_TAX_LINE
    tax_item_code: str = "/TAX"  # the misc-charge item that carries the store's tax
    tax_schedule: str = "NONTAX"  # with the store's tax as a line, the order itself is not taxable
    # A cent or two the store's own rounding leaves between its lines and its total goes on this
    # misc-charge line; a larger difference (or no rounding item) holds the order with it shown.
    rounding_item_code: str = "/ROUND"
    rounding_tolerance: Decimal = Decimal("0.02")
    sales_order_prefix: str = "W"  # 0-3 characters before the store order id
    options_in_comment: bool = True  # chosen product options into the line's comment text
    timezone: str = "UTC"

    def __post_init__(self):
        if self.tax_mode not in (TaxMode.STORE_TAX_LINE, TaxMode.SAGE_TAX_SCHEDULE):
            raise ValueError(f"tax_mode must be {TaxMode.STORE_TAX_LINE!r} or {TaxMode.SAGE_TAX_SCHEDULE!r}, "
                             f"not {self.tax_mode!r}")
        if len(self.sales_order_prefix) > 3:
            raise ValueError("the sales order number prefix is at most 3 characters (the number has 7)")
        if self.customers.mode not in (MATCH_OR_CREATE, WEB_CUSTOMER):
            raise ValueError(f"customer mode must be {MATCH_OR_CREATE!r} or {WEB_CUSTOMER!r}")
