"""Orders, refunds and stock levels as every store has them, in no store's words.

The adapter has already applied the store's own rules (which of its figures is authoritative, what
counts as paid, which payments were captured); the ledger mapper applies Sage's. Money is
``Decimal`` rounded to the cent; dates are aware datetimes (ledgers pick their local date).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal("0.00")


class TenderKind:
    PAYMENT = "payment"  # money captured through a payment gateway (card, wallet, bank transfer)
    GIFT_CERTIFICATE = "gift_certificate"
    STORE_CREDIT = "store_credit"


class ChargeKind:
    SHIPPING = "shipping"
    HANDLING = "handling"
    WRAPPING = "wrapping"


class RefundItemKind:
    PRODUCT = "product"
    SHIPPING = ChargeKind.SHIPPING
    HANDLING = ChargeKind.HANDLING
    WRAPPING = ChargeKind.WRAPPING
    ORDER = "order"  # an amount not tied to items
    FEE = "fee"


@dataclass(slots=True)
class Address:
    lines: list[str] = field(default_factory=list)
    city: str = ""
    region: str = ""
    postcode: str = ""
    country: str = ""  # ISO 3166-1 alpha-2, upper case


@dataclass(slots=True)
class Party:
    """Who bought: the billing contact (the customer in Sage) and the store's own customer id."""

    email: str  # trimmed, lower case
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    phone: str = ""
    billing: Address = field(default_factory=Address)
    shipping: Address | None = None
    store_customer_id: str = ""  # "" for a guest checkout
    is_guest: bool = False

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)


@dataclass(slots=True, frozen=True)
class TaxDetail:
    """The store's own account of the tax on one line or charge: its tax class and the rate
    it applied (the sum over every jurisdiction)."""

    class_name: str | None = None
    class_id: str | None = None
    rate: Decimal = Decimal(0)


@dataclass(slots=True)
class OrderLine:
    """One product line. ``net`` and ``tax`` are the store's figures after every discount on the
    line (``gross`` is what the shopper paid for it); ``list_net`` is before discounts."""

    line_id: str
    sku: str
    product_id: str
    description: str  # the name with its chosen options
    quantity: Decimal
    unit_net: Decimal
    list_net: Decimal
    net: Decimal
    tax: Decimal
    discount: Decimal = ZERO
    is_gift_certificate: bool = False  # selling a gift certificate: a liability, not revenue
    tax_detail: TaxDetail | None = None
    unit_cost: Decimal | None = None
    discount_codes: list[str] = field(default_factory=list)

    @property
    def gross(self) -> Decimal:
        return self.net + self.tax


@dataclass(slots=True)
class Charge:
    """Shipping, handling or gift wrapping. ``net`` (= gross - tax) is authoritative; ``ex_tax``
    is the store's own ex-tax figure, which may differ from it by rounding."""

    kind: str  # ChargeKind
    net: Decimal
    tax: Decimal
    ex_tax: Decimal
    methods: list[str] = field(default_factory=list)  # shipping methods chosen
    tax_detail: TaxDetail | None = None
    tax_class_id: str | None = None  # the charge's configured tax class

    @property
    def gross(self) -> Decimal:
        return self.net + self.tax


@dataclass(slots=True, frozen=True)
class Discount:
    """An order-level discount (a coupon or a manual discount), as the store reports it."""

    kind: str  # "coupon" or "manual"
    amount: Decimal


@dataclass(slots=True)
class Tender:
    """How (part of) the order was settled: one captured payment, or the gift certificates or
    store credit spent on it."""

    kind: str  # TenderKind
    method: str  # payment gateway or method name as the store calls it
    amount: Decimal
    reference: str = ""  # the gateway's transaction id, or the gift certificate code(s)
    paid_at: dt.datetime | None = None
    method_detail: str = ""  # a second name for the method (a gateway's own payment method)


@dataclass(slots=True, frozen=True)
class OrderStatus:
    """The store's status and what the integration's settings make of it."""

    code: str
    name: str
    counts_as_paid: bool  # one of the statuses the integration treats as paid
    never_a_sale: bool = False  # abandoned, unpaid, declined, cancelled: never posted, whatever is set


@dataclass(slots=True, frozen=True)
class StoreTotals:
    """The store's own totals, for reconciliation: a document must match them to the cent."""

    subtotal_ex_tax: Decimal
    total_ex_tax: Decimal
    total_tax: Decimal
    total_inc_tax: Decimal


@dataclass(slots=True)
class StoreOrder:
    order_id: str
    reference: str  # the stable reference every Sage document of this order carries (its prefix is the store's)
    label: str  # how a person finds the order in the store: "<Store> order 1001"
    store_name: str  # the store platform's display name, for messages
    status: OrderStatus
    created_at: dt.datetime | None
    modified_at: dt.datetime | None
    currency: str  # the transactional currency the shopper paid in, upper case
    exchange_rate: Decimal  # store default currency → transactional
    channel_id: int
    party: Party
    lines: list[OrderLine]
    charges: list[Charge]
    discounts: list[Discount]
    tenders: list[Tender]
    totals: StoreTotals
    payment_method: str = ""
    coupon_codes: list[str] = field(default_factory=list)
    customer_message: str = ""
    # Why the order cannot be posted yet although its status counts as paid (a payment that is
    # only authorised, say); None when nothing stands in the way.
    payment_pending: str | None = None

    @property
    def discount_total(self) -> Decimal:
        return sum((d.amount for d in self.discounts), ZERO)

    def tendered(self, kind: str) -> Decimal:
        return sum((t.amount for t in self.tenders if t.kind == kind), ZERO)

    @property
    def amount_due(self) -> Decimal:
        """What is left to pay after gift certificates and store credit."""
        return self.totals.total_inc_tax - self.tendered(TenderKind.GIFT_CERTIFICATE) \
            - self.tendered(TenderKind.STORE_CREDIT)


@dataclass(slots=True)
class RefundItem:
    kind: str  # RefundItemKind
    line_id: str = ""  # for PRODUCT: the order line refunded
    quantity: Decimal | None = None  # None: the whole quantity sold
    requested_amount: Decimal | None = None  # gross, as requested
    adjustments: Decimal = ZERO
    reason: str = ""


@dataclass(slots=True)
class RefundPayment:
    method: str  # the provider the money went back through
    amount: Decimal
    tender_kind: str = TenderKind.PAYMENT  # store credit or a gift certificate given back instead of money
    reference: str = ""


@dataclass(slots=True)
class StoreRefund:
    refund_id: str
    order_id: str
    order_reference: str  # the original order's reference (its documents carry it)
    reference: str  # the credit document's stable reference
    label: str  # "<Store> refund 7 of order 1001"
    created_at: dt.datetime | None
    total: Decimal
    total_tax: Decimal
    items: list[RefundItem]
    payments: list[RefundPayment]  # declined ones left out
    reason: str = ""


@dataclass(slots=True, frozen=True)
class StockLevel:
    sku: str
    quantity: Decimal


@dataclass(slots=True, frozen=True)
class StorePrice:
    """A selling price for one SKU (ex tax, the store's default currency)."""

    sku: str
    price: Decimal


@dataclass(slots=True)
class Settlement:
    """What the store's payment records say about one order, for reconciliation beside its Sage
    document (read only, never written back): the money captured, through which gateways, and
    the refunds made since."""

    order_id: str
    captured: Decimal
    gateways: list[str]
    refunds: list[StoreRefund]

    @property
    def refunded(self) -> Decimal:
        return sum((refund.total for refund in self.refunds), ZERO)
