"""Order arithmetic: every figure of a sandbox order derived from its lines, charges and discounts.

These are the identities the accounting mapper reconciles against, so they hold to the cent:

* per line: ``price_x * quantity == total_x``, ``total_inc == total_ex + total_tax`` and
  ``discounted_total_inc_tax == line amount after its share of the discounts, with tax``;
* ``subtotal_x`` is the sum of the lines' ``total_x`` (before discounts, as BigCommerce reports it);
* discounts (``coupon_discount`` + ``discount_amount``) are in the pricing basis: ex-tax amounts for
  tax-exclusive orders, tax-inclusive amounts for tax-inclusive ones, and are spread over the lines
  (``applied_discounts``); tax is computed after discounts;
* ``total_inc_tax == sum(discounted_total_inc_tax) + shipping_inc + handling_inc + wrapping_inc``,
  ``total_ex_tax == total_inc_tax - total_tax``, and the order's tax rows add up to ``total_tax``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from .formats import CENT, cents


@dataclass
class Charge:
    """One taxed amount (a unit price, a shipping cost...) split into ex, tax and inc."""

    ex: Decimal
    tax: Decimal
    inc: Decimal


def split(amount: Decimal, rate: Decimal, inclusive: bool) -> Charge:
    """Split a price given in the store's pricing basis into ex/tax/inc, rounding the tax to cents."""
    amount = cents(amount)
    if inclusive:
        ex = (amount / (1 + rate)).quantize(CENT, rounding=ROUND_HALF_UP)
        return Charge(ex, amount - ex, amount)
    tax = (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)
    return Charge(amount, tax, amount + tax)


def allocate(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Split ``total`` over ``weights`` in cents so the parts add up exactly (largest remainder)."""
    if not weights:
        return []
    total_cents = int(cents(total) / CENT)
    weight_sum = sum(weights)
    if weight_sum == 0:
        raw = [Decimal(total_cents) / len(weights)] * len(weights)
    else:
        raw = [Decimal(total_cents) * w / weight_sum for w in weights]
    floors = [int(r) for r in raw]
    leftover = total_cents - sum(floors)
    order = sorted(range(len(raw)), key=lambda i: (raw[i] - floors[i], -i), reverse=True)
    for i in order[:leftover]:
        floors[i] += 1
    return [Decimal(c) * CENT for c in floors]


@dataclass
class LineInput:
    base_price: Decimal  # unit price in the pricing basis, modifier adjustments included
    quantity: int
    wrapping: Decimal = Decimal("0")  # gift wrapping for the whole line, in the pricing basis


@dataclass
class LineFigures:
    unit: Charge
    base_total: Decimal
    total_ex: Decimal
    total_tax: Decimal
    total_inc: Decimal
    wrapping: Charge
    discounts: dict[str, Decimal] = field(default_factory=dict)  # discount name -> amount (basis)
    discounted_tax: Decimal = Decimal("0")
    discounted_total_inc: Decimal = Decimal("0")

    @property
    def discount(self) -> Decimal:
        return sum(self.discounts.values(), Decimal("0"))


@dataclass
class OrderFigures:
    rate: Decimal
    inclusive: bool
    lines: list[LineFigures]
    shipping: Charge
    handling: Charge
    wrapping: Charge
    coupon_discount: Decimal
    discount_amount: Decimal
    subtotal_ex: Decimal
    subtotal_tax: Decimal
    subtotal_inc: Decimal
    total_ex: Decimal
    total_tax: Decimal
    total_inc: Decimal


ZERO = Decimal("0")


def compute(lines: list[LineInput], rate: Decimal, inclusive: bool, shipping: Decimal = ZERO,
            handling: Decimal = ZERO, coupon: Decimal = ZERO, manual: Decimal = ZERO) -> OrderFigures:
    """All figures of one order. ``coupon`` and ``manual`` are discount amounts in the pricing basis."""
    out_lines = []
    for line in lines:
        unit = split(line.base_price, rate, inclusive)
        q = line.quantity
        out_lines.append(LineFigures(
            unit=unit,
            base_total=cents(line.base_price) * q,
            total_ex=unit.ex * q,
            total_tax=unit.tax * q,
            total_inc=unit.inc * q,
            wrapping=split(line.wrapping, rate, inclusive),
        ))
    basis = [(lf.total_inc if inclusive else lf.total_ex) for lf in out_lines]
    if coupon + manual > sum(basis, ZERO):
        raise ValueError("discounts exceed the goods total")
    for name, amount in (("coupon", cents(coupon)), ("manual", cents(manual))):
        if amount:
            for lf, part in zip(out_lines, allocate(amount, basis), strict=True):
                if part:
                    lf.discounts[name] = part
    for lf in out_lines:
        if inclusive:
            after = split(lf.total_inc - lf.discount, rate, True)
        else:
            after = split(lf.total_ex - lf.discount, rate, False)
        lf.discounted_tax = after.tax
        lf.discounted_total_inc = after.inc
    ship = split(shipping, rate, inclusive)
    hand = split(handling, rate, inclusive)
    wrap = Charge(
        sum((lf.wrapping.ex for lf in out_lines), ZERO),
        sum((lf.wrapping.tax for lf in out_lines), ZERO),
        sum((lf.wrapping.inc for lf in out_lines), ZERO),
    )
    total_tax = sum((lf.discounted_tax for lf in out_lines), ZERO) + ship.tax + hand.tax + wrap.tax
    total_inc = sum((lf.discounted_total_inc for lf in out_lines), ZERO) + ship.inc + hand.inc + wrap.inc
    return OrderFigures(
        rate=rate,
        inclusive=inclusive,
        lines=out_lines,
        shipping=ship,
        handling=hand,
        wrapping=wrap,
        coupon_discount=cents(coupon),
        discount_amount=cents(manual),
        subtotal_ex=sum((lf.total_ex for lf in out_lines), ZERO),
        subtotal_tax=sum((lf.total_tax for lf in out_lines), ZERO),
        subtotal_inc=sum((lf.total_inc for lf in out_lines), ZERO),
        total_ex=total_inc - total_tax,
        total_tax=total_tax,
        total_inc=total_inc,
    )
