"""The posting rules for Sage 50, one function per rule, over the neutral commerce model.

Every rule takes the store's own figures and never recomputes tax from a rate: the store (or its
tax service) already decided the tax, and the VAT return must show what the shopper was charged.
The store's own rules (which figure is authoritative, what counts as paid) are its adapter's.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from connector.commerce import StoreOrder, TaxDetail
from mlcommon.ledger import CENT, ZERO

from .mappings import TaxMap


def resolve_tax_code(
    tax_map: TaxMap,
    net: Decimal,
    tax: Decimal,
    quantity: Decimal,
    detail: TaxDetail | None,
    class_id=None,
) -> tuple[str | None, str]:
    """Rule "tax codes": the Sage tax code of one line, and a label naming what to map if none.

    1. The store's tax detail of the line names the tax class ("Standard", "Zero Rated",
       "Exempt", ...) and its id: the class map decides. This is the only way to tell zero-rated
       from exempt, which both carry no tax.
    2. A charge's configured tax class is used the same way, if the charge was taxed.
    3. Otherwise the rate the store applied is matched against the mapped rates: a mapped rate
       fits when net x rate is within a cent per unit of the store's tax (the store rounds per
       unit); the closest fit wins. A line without tax matches the mapped 0 % rate.
    4. Then the default tax code. Otherwise the caller reports a missing mapping.
    """
    if detail:
        code = tax_map.lookup_class(detail.class_name, detail.class_id)
        if code:
            return code, ""
        label = f"tax class '{detail.class_name}' (rate {detail.rate.normalize():f} %)"
    else:
        label = "tax rate 0 %" if tax == ZERO else ""
    if not detail and class_id not in (None, "", 0) and tax != ZERO:
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


@dataclass(frozen=True)
class OrderDiscountLine:
    net: Decimal
    tax: Decimal
    description: str


def undistributed_discount(order: StoreOrder, lines, store_total: Decimal) -> OrderDiscountLine | None:
    """Rule "order discounts the store did not spread": normally every discount is already on
    the lines. When no line carries a discount, yet the order has order-level discounts (coupon
    and manual) and the lines exceed the order total by exactly that discount (with or without
    the tax it took off), the discount is posted as one discount line on the discount nominal.
    Its tax is the store's own tax reduction (lines' tax - the order's total tax); when the
    discount took no tax off, the line carries no tax and is outside the scope of VAT."""
    order_discount = order.discount_total
    if order_discount <= ZERO or any(line.discount > ZERO for line in lines):
        return None
    difference = store_total - sum((line.gross for line in lines), ZERO)
    tax_off = sum((line.tax for line in lines), ZERO) - order.totals.total_tax
    if difference >= ZERO or -difference not in (order_discount, order_discount + tax_off):
        return None
    return OrderDiscountLine(net=difference + tax_off, tax=-tax_off, description="Order discount")


def rounding_allowed(difference: Decimal, nominal: str | None, tolerance: Decimal) -> bool:
    """Rule "rounding": a document that misses the store's total by at most the configured
    tolerance (default 2p) gets a rounding line (no tax, outside the scope of VAT) on the
    rounding nominal, if one is mapped. Anything larger, or without a rounding nominal, is a
    TotalsMismatch: the record is held and the accountant sees the difference."""
    return bool(nominal) and difference != ZERO and abs(difference) <= tolerance
