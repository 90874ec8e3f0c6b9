"""The posting rules for BigCommerce → Sage 50, one function per rule.

Every rule takes the store's own figures and never recomputes tax from a rate: BigCommerce (or
Avalara) already decided the tax, and the VAT return must show what the shopper was charged.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from mlcommon.ledger import CENT, ZERO, money

from .mappings import NEVER_PAID_STATUS_IDS, STATUS_NAMES, TaxMap

CAPTURED_PAYMENT_STATUSES = {"captured", "paid", "partially refunded", "refunded"}
UNCAPTURED_PAYMENT_STATUSES = {
    "authorized",
    "capture pending",
    "declined",
    "held for review",
    "pending",
    "void",
    "void pending",
}
CAPTURE_EVENTS = {"capture", "purchase"}
# Transactions that spend a tender rather than move money through a bank account.
TENDER_METHODS = {"gift_certificate": "gift_certificate", "store_credit": "store_credit"}
TENDER_GATEWAYS = {"giftcertificate": "gift_certificate", "storecredit": "store_credit"}


def unpaid_reason(order: dict, transactions: list[dict], paid_status_ids, amount_due: Decimal) -> str | None:
    """Rule "paid": an order becomes an invoice only when it is paid.

    1. ``status_id`` must be one of the integration's paid statuses (default BigCommerce's own paid
       group: Awaiting Fulfillment, Awaiting Shipment, Awaiting Pickup, Partially Shipped, Shipped,
       Completed). Incomplete, Pending, Declined and Cancelled are refused even if configured,
       because they never are a sale.
    2. The payment must be captured, because a status can be set by hand: ``payment_status`` is
       captured/paid (or refunded later), or a v3 transaction shows a successful capture or
       purchase, or gift certificates / store credit cover the whole total. An authorisation,
       a pending or held payment is refused. An empty ``payment_status`` (offline and manual
       payments such as bank deposit, which the merchant marks paid through the status) is accepted.

    Returns ``None`` when postable, else the reason in words.
    """
    status_id = int(order.get("status_id", -1))
    status = order.get("status") or STATUS_NAMES.get(status_id, str(status_id))
    if status_id in NEVER_PAID_STATUS_IDS or status_id not in paid_status_ids:
        return f"order status '{status}' (id {status_id}) does not count as paid"
    if amount_due <= ZERO:
        return None
    if any(
        (t.get("event") in CAPTURE_EVENTS and t.get("status") == "ok")
        for t in transactions
        if tender_kind(t) is None
    ):
        return None
    payment_status = (order.get("payment_status") or "").strip().lower()
    if payment_status in CAPTURED_PAYMENT_STATUSES or payment_status == "":
        return None
    return f"the payment is not captured (payment status '{payment_status}')"


def tender_kind(transaction: dict) -> str | None:
    method = (transaction.get("method") or "").lower()
    gateway = (transaction.get("gateway") or "").lower()
    return TENDER_METHODS.get(method) or TENDER_GATEWAYS.get(gateway)


@dataclass
class LineAmounts:
    unit_net: Decimal
    list_net: Decimal  # before discounts
    net: Decimal
    tax: Decimal
    discount: Decimal

    @property
    def gross(self) -> Decimal:
        return self.net + self.tax


def line_amounts(line: dict) -> LineAmounts:
    """Rule "discounts live on the line" and "net is gross minus the store's tax".

    Coupons, automatic promotions and manual discounts are all taken off the line they belong
    to, never posted as a separate discount line: BigCommerce charged tax on the discounted
    price, so only a reduced line net keeps net, VAT and gross right on every line of the VAT
    return (Zynk does the same "so net and gross match exactly"). Manual order discounts are
    already spread over the lines by BigCommerce in proportion to price.

    * gross = ``discounted_total_inc_tax`` (after every discount, with tax: BigCommerce's own
      "shopper paid" figure); without it, ``total_inc_tax`` less the line's ``applied_discounts``.
    * tax = ``total_tax`` (the line's tax after discounts), never recomputed from a rate.
    * net = gross - tax. This works the same for tax-inclusive and tax-exclusive stores:
      we never split a tax-inclusive price ourselves.
    * discount = ``total_ex_tax`` (list net) - net, shown as Sage 50's line discount;
      unit_net is ``price_ex_tax`` to the cent. ``net`` is authoritative. A line whose gross is
      not below its undiscounted ``total_inc_tax`` has no discount.
    """
    tax = money(line.get("total_tax"))
    if line.get("discounted_total_inc_tax") not in (None, ""):
        gross = money(line["discounted_total_inc_tax"])
    else:
        applied = sum((money(d.get("amount")) for d in line.get("applied_discounts") or []), ZERO)
        gross = money(line.get("total_inc_tax")) - applied
    net = gross - tax
    list_net = money(line.get("total_ex_tax"))
    # A line nobody discounted can still show a cent between total_ex_tax and gross - tax
    # (the store rounds each figure on its own); that is not a discount.
    discounted = gross < money(line.get("total_inc_tax"))
    discount = max(list_net - net, ZERO) if discounted else ZERO
    return LineAmounts(money(line.get("price_ex_tax")), list_net, net, tax, discount)


def charge_amounts(order: dict, prefix: str) -> tuple[Decimal, Decimal]:
    """Shipping, handling and gift wrapping: (net, tax) with net = ``*_inc_tax`` - ``*_tax``,
    for the same reason as the lines. A free shipping coupon leaves these at zero and the
    charge simply has no line."""
    gross = money(order.get(f"{prefix}_cost_inc_tax"))
    tax = money(order.get(f"{prefix}_cost_tax"))
    return gross - tax, tax


def resolve_tax_code(
    tax_map: TaxMap,
    net: Decimal,
    tax: Decimal,
    quantity: Decimal,
    rows: list[dict],
    class_id=None,
) -> tuple[str | None, str]:
    """Rule "tax codes": the Sage tax code of one line, and a label naming what to map if none.

    1. The line's rows from ``/taxes?details=true`` name the tax class ("Standard", "Zero Rated",
       "Exempt", ...) and its id: the class map decides. This is the only way to tell zero-rated
       from exempt, which both carry no tax.
    2. A charge's ``*_tax_class_id`` on the order is used the same way, if the charge was taxed.
    3. Otherwise the rate the store applied is matched against the mapped rates: a mapped rate
       fits when net x rate is within a cent per unit of the store's tax (the store rounds per
       unit); the closest fit wins. A line without tax matches the mapped 0 % rate.
    4. Then the default tax code. Otherwise the caller reports a missing mapping.
    """
    if rows:
        name = rows[0].get("class") or rows[0].get("name")
        code = tax_map.lookup_class(name, rows[0].get("tax_class_id"))
        rate = sum((Decimal(str(r.get("rate") or 0)) for r in rows), Decimal(0))
        if code:
            return code, ""
        label = f"tax class '{name}' (rate {rate.normalize():f} %)"
    else:
        rate = None
        label = "tax rate 0 %" if tax == ZERO else ""
    if not rows and class_id not in (None, "", 0) and tax != ZERO:
        code = tax_map.lookup_class(None, class_id)
        if code:
            return code, ""
    if tax == ZERO:
        for mapped_rate, code in tax_map.by_rate.items():
            if Decimal(mapped_rate) == 0:
                return code, ""
    elif net != ZERO:
        tolerance = CENT * max(Decimal(1), quantity)
        fits = []
        for mapped_rate, code in tax_map.by_rate.items():
            error = abs(net * Decimal(mapped_rate) / 100 - tax)
            if Decimal(mapped_rate) != 0 and error <= tolerance:
                fits.append((error, code))
        if fits:
            return min(fits)[1], ""
        if not label:
            label = f"tax rate {(tax / net * 100).quantize(CENT, ROUND_HALF_UP)} %"
    if tax_map.default:
        return tax_map.default, ""
    return None, label or f"tax rate of {tax} on {net}"


def allocate(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Split ``total`` over ``weights`` in proportion, to the cent, summing exactly to ``total``
    (largest remainder, ties to the earliest weight). All-zero weights put it all on the first."""
    if not weights:
        return []
    weights = [abs(w) for w in weights]
    basis = sum(weights, ZERO)
    if basis == ZERO:
        return [total] + [ZERO] * (len(weights) - 1)
    sign = -1 if total < 0 else 1
    amount = abs(total)
    shares = [amount * w / basis for w in weights]
    floors = [s.quantize(CENT, rounding=ROUND_DOWN) for s in shares]
    cents_left = int((amount - sum(floors, ZERO)) / CENT)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-(shares[i] - floors[i]), i))
    for i in by_remainder[:cents_left]:
        floors[i] += CENT
    return [sign * f for f in floors]


def undistributed_discount(order: dict, lines, store_total: Decimal) -> tuple[Decimal, Decimal, str] | None:
    """Rule "order discounts the store did not spread": normally every discount is already on
    the lines (see ``line_amounts``). When no line carries a discount, yet the order has a coupon
    or manual discount (``coupon_discount`` + ``discount_amount``) and the lines exceed the
    order total by exactly that discount (with or without the tax it took off), the discount is
    posted as one discount line on the discount nominal. Its tax is the store's own tax reduction
    (lines' tax - ``total_tax``); when the discount took no tax off, the line carries no tax and
    is outside the scope of VAT. Returns (net, tax, description) or ``None``."""
    order_discount = money(order.get("coupon_discount")) + money(order.get("discount_amount"))
    if order_discount <= ZERO or any(line.discount > ZERO for line in lines):
        return None
    difference = store_total - sum((line.gross for line in lines), ZERO)
    tax_off = sum((line.tax for line in lines), ZERO) - money(order.get("total_tax"))
    if difference >= ZERO or -difference not in (order_discount, order_discount + tax_off):
        return None
    return difference + tax_off, -tax_off, "Order discount"


def rounding_allowed(difference: Decimal, nominal: str | None, tolerance: Decimal) -> bool:
    """Rule "rounding": a document that misses the store's total by at most the configured
    tolerance (default 2p) gets a rounding line (no tax, outside the scope of VAT) on the
    rounding nominal, if one is mapped. Anything larger, or without a rounding nominal, is a
    TotalsMismatch: the record is held and the accountant sees the difference."""
    return bool(nominal) and difference != ZERO and abs(difference) <= tolerance
