"""The sandbox store's records: websites and store views, products and stock, orders with their
items, invoices, credit memos and status history.

Money is ``Decimal`` throughout and every monetary figure exists twice, in the order currency and
in the website's base currency (Magento's unprefixed and ``base_`` fields). Figures are computed
the way Magento's total collectors add them up, so that for every record:

    grand_total = subtotal + shipping_amount + tax_amount + discount_amount
                  (- gift cards - store credit on orders and invoices)
                  (+ adjustment_positive - adjustment_negative on credit memos)

with ``discount_amount`` negative on headers and positive on items (the sign convention in
reference/adobe-commerce.md §4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

ZERO = Decimal("0")
CENT = Decimal("0.01")


def money(value) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def stamp(moment: datetime) -> str:
    """Magento's REST date format: UTC, no offset (reference/adobe-commerce.md §9.2)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Website:
    id: int
    code: str
    name: str
    default_group_id: int
    base_currency: str


@dataclass
class StoreGroup:
    id: int
    website_id: int
    name: str
    code: str
    default_store_id: int
    root_category_id: int = 2


@dataclass
class StoreView:
    id: int
    code: str
    name: str
    website_id: int
    group_id: int
    locale: str
    display_currency: str
    timezone: str
    tax_rate: Decimal  # percent on items
    shipping_tax_rate: Decimal  # percent on shipping
    country: str
    increment_prefix: str  # Magento's per-store sequence prefix ("" for store 1, "2" for store 2...)
    is_active: int = 1


@dataclass
class Product:
    id: int
    sku: str
    name: str
    type_id: str  # simple | configurable | bundle | virtual
    base_price: Decimal
    cost: Decimal
    children: list[int] = field(default_factory=list)  # configurable variants / bundle selections
    parent_id: int | None = None
    bundle_price_type: str = "dynamic"  # bundles only: dynamic | fixed
    option_value: int | None = None  # the configurable attribute value a variant stands for
    updated_at: datetime | None = None


@dataclass
class SourceItem:
    sku: str
    source_code: str
    quantity: Decimal
    status: int  # 1 in stock, 0 out of stock


@dataclass
class LegacyStockItem:
    item_id: int
    product_id: int
    qty: Decimal
    is_in_stock: bool
    stock_id: int = 1


@dataclass
class Pair:
    """One figure in both currencies."""

    order: Decimal = ZERO
    base: Decimal = ZERO

    def __add__(self, other: Pair) -> Pair:
        return Pair(self.order + other.order, self.base + other.base)

    def __sub__(self, other: Pair) -> Pair:
        return Pair(self.order - other.order, self.base - other.base)

    def __neg__(self) -> Pair:
        return Pair(-self.order, -self.base)

    def share(self, numerator: Decimal, denominator: Decimal) -> Pair:
        if not denominator:
            return Pair()
        return Pair(money(self.order * numerator / denominator), money(self.base * numerator / denominator))


def psum(pairs) -> Pair:
    total = Pair()
    for p in pairs:
        total = total + p
    return total


@dataclass
class LineAmounts:
    """The money of one item line (order, invoice or credit memo item)."""

    price: Pair = field(default_factory=Pair)
    row_total: Pair = field(default_factory=Pair)
    tax: Pair = field(default_factory=Pair)
    discount: Pair = field(default_factory=Pair)  # positive on lines

    def __add__(self, other: LineAmounts) -> LineAmounts:
        return LineAmounts(self.price, self.row_total + other.row_total, self.tax + other.tax,
                           self.discount + other.discount)

    def __sub__(self, other: LineAmounts) -> LineAmounts:
        return LineAmounts(self.price, self.row_total - other.row_total, self.tax - other.tax,
                           self.discount - other.discount)

    @property
    def row_incl_tax(self) -> Pair:
        return self.row_total + self.tax


@dataclass
class OrderItem:
    item_id: int
    order_id: int
    product: Product
    sku: str
    name: str
    product_type: str
    qty_ordered: Decimal
    tax_percent: Decimal
    discount_percent: Decimal
    amounts: LineAmounts
    parent_item_id: int | None = None
    carries_money: bool = True  # False for configurable children and fixed-bundle children
    qty_invoiced: Decimal = ZERO
    qty_refunded: Decimal = ZERO
    qty_canceled: Decimal = ZERO
    qty_shipped: Decimal = ZERO
    invoiced: LineAmounts = field(default_factory=LineAmounts)
    refunded: LineAmounts = field(default_factory=LineAmounts)
    created_at: datetime | None = None
    product_option: dict | None = None  # configurable choices, as the order item's product_option
    bundle_price_type: str | None = None  # bundle parents: dynamic | fixed


@dataclass
class Address:
    entity_id: int
    address_type: str  # billing | shipping
    firstname: str
    lastname: str
    street: list[str]
    city: str
    region: str
    region_code: str
    postcode: str
    country_id: str
    telephone: str
    email: str
    customer_id: int | None = None
    company: str | None = None


@dataclass
class Comment:
    entity_id: int
    parent_id: int
    comment: str
    created_at: datetime
    status: str | None = None
    is_customer_notified: int = 0
    is_visible_on_front: int = 0
    entity_name: str = "order"


@dataclass
class DocItem:
    """An invoice or credit memo item."""

    entity_id: int
    parent_id: int
    order_item: OrderItem
    qty: Decimal
    amounts: LineAmounts


@dataclass
class Totals:
    """Header figures of an order, invoice or credit memo (discount negative, as Magento shows it)."""

    subtotal: Pair = field(default_factory=Pair)
    subtotal_incl_tax: Pair = field(default_factory=Pair)
    tax: Pair = field(default_factory=Pair)
    shipping: Pair = field(default_factory=Pair)
    shipping_tax: Pair = field(default_factory=Pair)
    discount: Pair = field(default_factory=Pair)  # negative
    gift_cards: Pair = field(default_factory=Pair)
    customer_balance: Pair = field(default_factory=Pair)
    adjustment_positive: Pair = field(default_factory=Pair)
    adjustment_negative: Pair = field(default_factory=Pair)

    @property
    def shipping_incl_tax(self) -> Pair:
        return self.shipping + self.shipping_tax

    @property
    def grand_total(self) -> Pair:
        return (self.subtotal + self.shipping + self.tax + self.discount - self.gift_cards
                - self.customer_balance + self.adjustment_positive - self.adjustment_negative)


def totals_from_items(items: list[LineAmounts], shipping: Pair, shipping_tax: Pair) -> Totals:
    return Totals(
        subtotal=psum(a.row_total for a in items),
        subtotal_incl_tax=psum(a.row_incl_tax for a in items),
        tax=psum(a.tax for a in items) + shipping_tax,
        shipping=shipping,
        shipping_tax=shipping_tax,
        discount=-psum(a.discount for a in items),
    )


@dataclass
class Invoice:
    entity_id: int
    increment_id: str
    order_id: int
    store_id: int
    state: int  # 1 open, 2 paid, 3 canceled
    created_at: datetime
    updated_at: datetime
    items: list[DocItem]
    totals: Totals
    transaction_id: str | None = None
    comments: list[Comment] = field(default_factory=list)


@dataclass
class CreditMemo:
    entity_id: int
    increment_id: str
    order_id: int
    store_id: int
    invoice_id: int | None  # None for offline credit memos made against the order
    state: int  # 1 open, 2 refunded, 3 canceled
    created_at: datetime
    updated_at: datetime
    items: list[DocItem]
    totals: Totals
    transaction_id: str | None = None
    comments: list[Comment] = field(default_factory=list)


@dataclass
class GiftCard:
    id: int
    code: str
    amount: Pair


@dataclass
class Order:
    entity_id: int
    increment_id: str
    store: StoreView
    base_currency: str
    order_currency: str
    base_to_order_rate: Decimal
    state: str
    status: str
    created_at: datetime
    updated_at: datetime
    customer_id: int | None
    customer_email: str
    customer_firstname: str
    customer_lastname: str
    customer_group_id: int
    billing: Address
    shipping_address: Address | None
    shipping_method: str
    shipping_description: str
    payment_method: str
    payment_title: str
    items: list[OrderItem]
    totals: Totals
    coupon_code: str | None = None
    discount_description: str | None = None
    gift_cards: list[GiftCard] = field(default_factory=list)
    invoices: list[Invoice] = field(default_factory=list)
    creditmemos: list[CreditMemo] = field(default_factory=list)
    histories: list[Comment] = field(default_factory=list)
    remote_ip: str = "203.0.113.10"
    quote_id: int = 0
    shipped: bool = False
    captured_online: bool = False  # paid through a gateway (online refunds possible)

    @property
    def is_guest(self) -> bool:
        return self.customer_id is None

    @property
    def is_virtual(self) -> bool:
        return self.shipping_address is None

    def paid(self) -> Pair:
        return psum(i.totals.grand_total for i in self.invoices if i.state == 2)

    def invoiced(self) -> Pair:
        return psum(i.totals.grand_total for i in self.invoices if i.state != 3)

    def refunded(self) -> Pair:
        return psum(c.totals.grand_total for c in self.creditmemos if c.state == 2)

    def refunded_offline(self) -> Pair:
        return psum(c.totals.grand_total for c in self.creditmemos if c.state == 2 and c.transaction_id is None)

    def shipping_invoiced(self) -> Pair:
        return psum(i.totals.shipping for i in self.invoices if i.state != 3)

    def shipping_refunded(self) -> Pair:
        return psum(c.totals.shipping for c in self.creditmemos if c.state == 2)

    def money_items(self) -> list[OrderItem]:
        return [i for i in self.items if i.carries_money]
