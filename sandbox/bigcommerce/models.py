"""In-memory records of the sandbox store (orders, refunds, customers, hooks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from connector.bigcommerce.statuses import ORDER_STATUS_NAMES

from .catalog import Product, Variant
from .figures import LineFigures, OrderFigures

STATUSES = ORDER_STATUS_NAMES
# BigCommerce's "paid" statuses (orders-overview doc); 13 Disputed and 4/14 were paid before.
PAID_STATUSES = frozenset({2, 3, 8, 9, 10, 11})
CAPTURED_STATUSES = PAID_STATUSES | {4, 13, 14}

PAYMENT_STATUS = {
    0: "", 1: "pending", 2: "captured", 3: "captured", 4: "refunded", 5: "void", 6: "declined",
    7: "authorized", 8: "captured", 9: "captured", 10: "captured", 11: "captured",
    12: "held for review", 13: "captured", 14: "partially refunded",
}

CURRENCIES = {
    # code: (currency_id, store default -> transactional rate)
    "USD": (1, Decimal("1")),
    "GBP": (2, Decimal("0.79")),
    "EUR": (3, Decimal("0.92")),
    "CAD": (4, Decimal("1.36")),
}


@dataclass
class Customer:
    id: int
    email: str
    first_name: str
    last_name: str
    company: str = ""
    phone: str = ""
    customer_group_id: int = 0
    store_credit: Decimal = Decimal("0")
    date_created: datetime | None = None
    date_modified: datetime | None = None
    notes: str = ""


@dataclass
class OrderLine:
    id: int  # the order product id (used by refunds and shipments)
    product: Product
    variant: Variant
    quantity: int
    base_price: Decimal  # unit price with modifier adjustments, pricing basis, order currency
    options: list[dict]  # product_options as v2 shows them
    wrapping: Decimal = Decimal("0")
    figures: LineFigures | None = None
    quantity_shipped: int = 0
    quantity_refunded: int = 0
    refunded_inc: Decimal = Decimal("0")  # amount refunded so far (v3 refunds), tax included
    refunded_tax: Decimal = Decimal("0")


@dataclass
class Order:
    id: int
    customer_id: int
    status_id: int
    date_created: datetime
    date_modified: datetime
    currency: str
    tax_rate: Decimal
    inclusive: bool
    billing: dict
    shipping_address: dict
    address_id: int
    shipping_method: str
    payment_method: str
    gateway: str
    lines: list[OrderLine]
    figures: OrderFigures
    coupon: dict | None = None  # {"id", "coupon_id", "code", "type", "amount"}
    gift_certificate_amount: Decimal = Decimal("0")
    store_credit_amount: Decimal = Decimal("0")
    date_shipped: datetime | None = None
    order_source: str = "www"
    customer_message: str = ""
    staff_notes: str = ""
    ip_address: str = "203.0.113.10"
    is_deleted: bool = False
    payment_status: str = ""
    refunded_total: Decimal = Decimal("0")  # v3 refunds; v2 `refunded_amount` keeps saying 0
    channel_id: int = 1  # the sales channel (storefront 1, marketplaces and POS get their own ids)

    @property
    def card_amount(self) -> Decimal:
        return self.figures.total_inc - self.gift_certificate_amount - self.store_credit_amount


@dataclass
class Refund:
    id: int
    order_id: int
    created: datetime
    reason: str
    items: list[dict]
    total_amount: Decimal
    total_tax: Decimal
    payments: list[dict]


@dataclass
class Hook:
    id: int
    client_id: str
    scope: str
    destination: str
    headers: dict | None
    is_active: bool
    created_at: int
    updated_at: int
    consecutive_failures: int = 0

    def matches(self, scope: str) -> bool:
        if self.scope.endswith("/*"):
            return scope.startswith(self.scope[:-1])
        return self.scope == scope


@dataclass
class Transaction:
    id: int
    order_id: int
    event: str
    method: str
    amount: Decimal
    currency: str
    gateway: str
    status: str
    date_created: datetime
    extra: dict = field(default_factory=dict)
