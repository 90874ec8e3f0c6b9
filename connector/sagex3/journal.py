"""BigCommerce order / refund -> Sage X3 GL journal entry (pure functions, no I/O).

Shape of a sale (one entry per order, reference ``BC-<order id>``)::

    debit  receivable/clearing   total_inc_tax
    debit  discounts             discounts ex tax        (only when the channel maps a discounts account)
    credit revenue               subtotal_ex_tax         (net of discounts when no discounts account)
    credit tax payable           total_tax
    credit shipping revenue      shipping + handling + wrapping, ex tax
    debit  cost of goods / credit stock   sum(unit cost x qty)   (only with cost posting)

Discounts: BigCommerce reports ``discount_amount`` / ``coupon_discount`` inclusive or exclusive of
tax depending on the store's tax display settings, so the ex-tax discount is derived from the
store's own ex-tax figures: ``subtotal_ex_tax + shipping/handling/wrapping ex tax - total_ex_tax``.
That keeps one formula for tax-inclusive and tax-exclusive stores. The entry then balances exactly
when the store's ``total_inc_tax == total_ex_tax + total_tax``; anything else (order fees that are
not mapped, a hand-edited order) is an ``Unbalanced`` error showing the difference.

Gift certificates and store credit are tenders: they stay in the receivable/clearing debit.

A refund (reference ``BC-<order id>-R<refund id>``) mirrors the sale: receivable for the refunded
total, tax payable for its tax, shipping revenue for refunded SHIPPING/HANDLING/GIFT_WRAPPING items,
and revenue for the rest. ``refund_style`` decides how X3 sees it: ``negative`` keeps the sale's
senses with negative amounts (a "red" reversal, so account turnover is not inflated), ``swap``
swaps debit and credit with positive amounts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

from mlcommon.ledger import CENT, ZERO, JournalEntry, JournalLine, money

DEBIT = 1
CREDIT = -1

# "Paid" statuses from BigCommerce's orders overview, plus 14 Partially Refunded (paid, then partly
# refunded: the sale still happened and the refund is posted on its own).
DEFAULT_POSTABLE_STATUS_IDS = frozenset({2, 3, 8, 9, 10, 11, 14})

ACCOUNT_PURPOSES = {
    "receivable": "receivable / clearing",
    "revenue": "revenue",
    "tax_payable": "tax payable",
    "shipping_revenue": "shipping revenue",
    "discounts": "discounts",
    "cost_of_goods": "cost of goods sold",
    "stock": "stock",
}


class JournalError(Exception):
    """Base of everything the mapper refuses; the pipeline parks the record with ``str(error)``."""


class NeedsMapping(JournalError):
    def __init__(self, channel_id, channel_name: str | None, purposes: list[str]):
        self.channel_id = channel_id
        self.channel_name = channel_name or ""
        self.purposes = purposes
        label = f"sales channel {channel_id}" + (f" ({channel_name})" if channel_name else "")
        super().__init__(f"Map GL accounts for {label}: {', '.join(purposes)}")


class Unbalanced(JournalError):
    def __init__(self, reference: str, debits: Decimal, credits: Decimal, detail: str = ""):
        self.reference = reference
        self.debits = debits
        self.credits = credits
        self.difference = debits - credits
        message = (f"{reference} does not balance: debits {debits}, credits {credits}, "
                   f"difference {self.difference}")
        super().__init__(f"{message} ({detail})" if detail else message)


class NotPostable(JournalError):
    """The order is not in a posting status (the pipeline skips it with this reason)."""


class CurrencyMismatch(JournalError):
    pass


@dataclass(frozen=True)
class ChannelAccounts:
    """GL accounts of one BigCommerce sales channel. Blank means "not mapped"."""

    channel_id: int
    channel_name: str = ""
    receivable: str = ""  # receivable or payment clearing account
    revenue: str = ""
    tax_payable: str = ""
    shipping_revenue: str = ""
    discounts: str = ""  # optional: blank posts revenue net of discounts
    cost_of_goods: str = ""
    stock: str = ""
    cost_posting: bool = False
    business_partner: str = ""  # X3 BPR on the receivable line (collective customer accounts need one)


@dataclass(frozen=True)
class PostingSettings:
    entry_type: str = "ODIV"  # X3 TYP; site-specific, configure it
    journal: str = "ODIV"  # X3 JOU; site-specific, configure it
    site: str = ""  # X3 FCY
    company: str = ""  # X3 CPY
    currency_source: str = "transactional"  # "transactional" (order's paid currency) or "fixed"
    currency: str = ""  # with "fixed": the only currency accepted; orders in another one are refused
    refund_style: str = "negative"  # "negative" or "swap"
    postable_status_ids: frozenset[int] = field(default=DEFAULT_POSTABLE_STATUS_IDS)
    gl_date: str = "created"  # "created" or "status_reached"
    timezone: str = "UTC"  # the GL date is the calendar date in this zone
    refund_reverses_cost: bool = False  # BigCommerce refunds do not restock, so off by default

    def __post_init__(self):
        if self.refund_style not in ("negative", "swap"):
            raise ValueError(f"refund_style must be 'negative' or 'swap', not {self.refund_style!r}")
        if self.gl_date not in ("created", "status_reached"):
            raise ValueError(f"gl_date must be 'created' or 'status_reached', not {self.gl_date!r}")
        if self.currency_source not in ("transactional", "fixed"):
            raise ValueError(f"currency_source must be 'transactional' or 'fixed', not {self.currency_source!r}")


def order_reference(order_id) -> str:
    return f"BC-{order_id}"


def refund_reference(order_id, refund_id) -> str:
    return f"BC-{order_id}-R{refund_id}"


# -- public entry points -------------------------------------------------------------------------


def build_order_entry(order: Mapping, products_costs: Mapping | None,
                      channel_accounts: Mapping[int, ChannelAccounts] | ChannelAccounts,
                      settings: PostingSettings, *, status_reached_at: dt.datetime | None = None,
                      channel_name: str | None = None) -> JournalEntry:
    """Journal entry for one BigCommerce v2 order.

    ``products_costs`` maps SKU (or str(product_id)) -> unit cost; it wins over the cost on the order
    line (``cost_price_ex_tax`` / ``base_cost_price``). ``status_reached_at`` is when the order entered
    a posting status (used with ``gl_date="status_reached"``; falls back to ``date_modified``).
    """
    order_id = order["id"]
    reference = order_reference(order_id)
    status_id = int(order.get("status_id") or 0)
    if status_id not in settings.postable_status_ids:
        raise NotPostable(f"order {order_id} has status {status_id} ({order.get('status', '')}), "
                          f"which is not a posting status")
    accounts = _accounts_for(order, channel_accounts, channel_name)
    lines_in = _order_lines(order)
    cost = _cost_total(lines_in, products_costs) if accounts.cost_posting else ZERO
    _require(accounts, _order_purposes(order, cost), channel_name)

    total_inc = money(order.get("total_inc_tax"))
    total_ex = money(order.get("total_ex_tax"))
    tax = money(order.get("total_tax"))
    subtotal_ex = money(order.get("subtotal_ex_tax"))
    shipping_ex = _shipping_ex_tax(order)
    discount_ex = subtotal_ex + shipping_ex - total_ex
    if discount_ex < ZERO:
        # Tax-inclusive stores derive each ex-tax figure by rounding, so the parts may exceed
        # total_ex_tax by a cent per line or charge. That is rounding, absorbed by revenue below;
        # anything larger is money the order has that we don't map (fees).
        allowance = CENT * (len(_order_lines(order)) + 3)
        if -discount_ex > allowance:
            raise Unbalanced(reference, subtotal_ex + shipping_ex, total_ex,
                             "total_ex_tax exceeds subtotal + shipping/handling/wrapping: unmapped fees?")
        subtotal_ex, discount_ex = subtotal_ex + discount_ex, ZERO

    label = f"Order {order_id}"
    bpr = accounts.business_partner
    lines = [JournalLine(accounts.receivable, DEBIT, total_inc, f"{label} receivable", bpr)]
    if accounts.discounts:
        lines.append(JournalLine(accounts.discounts, DEBIT, discount_ex, f"{label} discounts"))
        lines.append(JournalLine(accounts.revenue, CREDIT, subtotal_ex, f"{label} revenue"))
    else:
        lines.append(JournalLine(accounts.revenue, CREDIT, subtotal_ex - discount_ex, f"{label} revenue"))
    lines.append(JournalLine(accounts.tax_payable, CREDIT, tax, f"{label} tax"))
    lines.append(JournalLine(accounts.shipping_revenue, CREDIT, shipping_ex, f"{label} shipping"))
    if cost:
        lines.append(JournalLine(accounts.cost_of_goods, DEBIT, cost, f"{label} cost of goods"))
        lines.append(JournalLine(accounts.stock, CREDIT, cost, f"{label} stock"))

    entry = JournalEntry(
        reference=reference,
        date=_gl_date(order, settings, status_reached_at),
        description=f"BigCommerce order {order_id}",
        currency=_currency(order, settings),
        lines=[line for line in lines if line.amount != ZERO],
        entry_type=settings.entry_type,
        journal=settings.journal,
        site=settings.site,
        company=settings.company,
    )
    _check_balanced(entry)
    return entry


def build_refund_entry(order: Mapping, refund: Mapping,
                       channel_accounts: Mapping[int, ChannelAccounts] | ChannelAccounts,
                       settings: PostingSettings, *, products_costs: Mapping | None = None,
                       channel_name: str | None = None) -> JournalEntry:
    """Journal entry for one v3 refund (``GET /v3/orders/payment_actions/refunds``) of ``order``.

    Refund money must already be Decimal (parse v3 JSON with ``parse_float=Decimal``). The GL date
    is the refund's ``created`` date. The order's status is not checked: a refund is posted whenever
    BigCommerce reports one.
    """
    order_id = order["id"]
    reference = refund_reference(order_id, refund["id"])
    accounts = _accounts_for(order, channel_accounts, channel_name)
    total = money(refund.get("total_amount"))
    tax = money(refund.get("total_tax"))
    net = total - tax
    shipping_ex = _refund_shipping_ex_tax(order, refund)
    revenue = net - shipping_ex
    if revenue < ZERO:
        raise Unbalanced(reference, net, shipping_ex,
                         "refunded shipping/handling/wrapping exceeds the refund net of tax")
    cost = ZERO
    if accounts.cost_posting and settings.refund_reverses_cost:
        cost = _refund_cost(order, refund, products_costs)
    if total == ZERO and cost == ZERO:
        raise NotPostable(f"refund {refund['id']} of order {order_id} moves no money")
    purposes = ["receivable"] + (["revenue"] if revenue else []) + (["tax_payable"] if tax else [])
    purposes += (["shipping_revenue"] if shipping_ex else []) + (["cost_of_goods", "stock"] if cost else [])
    _require(accounts, purposes, channel_name)

    label = f"Refund {refund['id']} of order {order_id}"
    bpr = accounts.business_partner
    # Written as the sale's senses, then turned into a reversal by ``refund_style``.
    sale_like = [
        JournalLine(accounts.receivable, DEBIT, total, f"{label} receivable", bpr),
        JournalLine(accounts.revenue, CREDIT, revenue, f"{label} revenue"),
        JournalLine(accounts.tax_payable, CREDIT, tax, f"{label} tax"),
        JournalLine(accounts.shipping_revenue, CREDIT, shipping_ex, f"{label} shipping"),
        JournalLine(accounts.cost_of_goods, DEBIT, cost, f"{label} cost of goods"),
        JournalLine(accounts.stock, CREDIT, cost, f"{label} stock"),
    ]
    lines = [_reverse(line, settings.refund_style) for line in sale_like if line.amount != ZERO]
    entry = JournalEntry(
        reference=reference,
        date=_local_date(_parse_date(refund.get("created")) or _parse_date(order.get("date_modified")),
                         settings),
        description=f"BigCommerce refund {refund['id']} of order {order_id}",
        currency=_currency(order, settings),
        lines=lines,
        entry_type=settings.entry_type,
        journal=settings.journal,
        site=settings.site,
        company=settings.company,
    )
    _check_balanced(entry)
    return entry


# -- helpers ---------------------------------------------------------------------------------------


def _accounts_for(order, channel_accounts, channel_name) -> ChannelAccounts:
    channel_id = int(order.get("channel_id") or 1)  # BigCommerce defaults to channel 1
    if isinstance(channel_accounts, ChannelAccounts):
        found = channel_accounts if channel_accounts.channel_id == channel_id else None
    else:
        found = channel_accounts.get(channel_id)
    if found is None:
        required = ("receivable", "revenue", "tax_payable", "shipping_revenue")
        raise NeedsMapping(channel_id, channel_name, [ACCOUNT_PURPOSES[p] for p in required])
    return found


def _order_purposes(order, cost: Decimal) -> list[str]:
    purposes = ["receivable", "revenue", "tax_payable"]
    if _shipping_ex_tax(order):
        purposes.append("shipping_revenue")
    if cost:
        purposes += ["cost_of_goods", "stock"]
    if money(order.get("total_tax")) == ZERO:
        purposes.remove("tax_payable")
    return purposes


def _require(accounts: ChannelAccounts, purposes: Iterable[str], channel_name: str | None) -> None:
    missing = [ACCOUNT_PURPOSES[p] for p in purposes if not getattr(accounts, p)]
    if missing:
        raise NeedsMapping(accounts.channel_id, accounts.channel_name or channel_name, missing)


def _shipping_ex_tax(order) -> Decimal:
    return sum((money(order.get(f"{kind}_cost_ex_tax")) for kind in ("shipping", "handling", "wrapping")), ZERO)


def _refund_shipping_ex_tax(order, refund) -> Decimal:
    """Refunded shipping/handling/wrapping, ex tax.

    A refund item's requested amount is what goes back to the shopper, tax included, whatever
    the store's pricing basis (the refund's total_tax carries the tax of it; the Sage 50 mapper
    reads it the same way); it is brought back to ex-tax with the order's own ex/inc ratio for
    those charges.
    """
    requested = sum((money(item.get("requested_amount")) for item in refund.get("items") or ()
                     if item.get("item_type") in ("SHIPPING", "HANDLING", "GIFT_WRAPPING")), ZERO)
    if not requested:
        return requested
    inc = sum((money(order.get(f"{kind}_cost_inc_tax")) for kind in ("shipping", "handling", "wrapping")), ZERO)
    ex = _shipping_ex_tax(order)
    return money(requested * ex / inc) if inc else requested


def _order_lines(order) -> list[Mapping]:
    """Order products from ``products`` (when fetched and attached as a list) or from consignments
    fetched with ``include=consignments.line_items&consignment_structure=object``."""
    products = order.get("products")
    if isinstance(products, list):
        return products
    consignments = order.get("consignments")
    if isinstance(consignments, dict):
        consignments = [consignments]
    seen: dict = {}
    for consignment in consignments or ():
        groups = [consignment.get(k) or [] for k in ("shipping", "pickups", "downloads")]
        for group in groups:
            for part in group:
                for item in part.get("line_items") or ():
                    if isinstance(item, dict) and "quantity" in item:
                        seen.setdefault(item.get("id"), item)
    return list(seen.values())


def _unit_cost(line: Mapping, products_costs: Mapping | None) -> Decimal:
    for key in (line.get("sku"), str(line.get("product_id", ""))):
        if products_costs and key and key in products_costs:
            return Decimal(str(products_costs[key]))
    for name in ("cost_price_ex_tax", "base_cost_price"):
        if line.get(name) not in (None, ""):
            return Decimal(str(line[name]))
    return ZERO


def _cost_total(lines: Iterable[Mapping], products_costs: Mapping | None) -> Decimal:
    total = sum((_unit_cost(line, products_costs) * Decimal(str(line.get("quantity") or 0)) for line in lines),
                Decimal(0))
    return money(total)


def _refund_cost(order, refund, products_costs) -> Decimal:
    by_id = {line.get("id"): line for line in _order_lines(order)}
    total = Decimal(0)
    for item in refund.get("items") or ():
        line = by_id.get(item.get("item_id"))
        if item.get("item_type") == "PRODUCT" and line is not None and item.get("quantity"):
            total += _unit_cost(line, products_costs) * Decimal(str(item["quantity"]))
    return money(total)


def _reverse(line: JournalLine, style: str) -> JournalLine:
    if style == "swap":
        return JournalLine(line.account, -line.sense, line.amount, line.description, line.business_partner)
    return JournalLine(line.account, line.sense, -line.amount, line.description, line.business_partner)


def _check_balanced(entry: JournalEntry) -> None:
    if not entry.is_balanced:
        raise Unbalanced(entry.reference, entry.debit_total, entry.credit_total)


def _currency(order, settings: PostingSettings) -> str:
    # default_currency_code is the transactional currency the shopper paid in (BigCommerce naming).
    paid = order.get("default_currency_code") or order.get("currency_code") or ""
    if settings.currency_source == "fixed":
        if paid and paid != settings.currency:
            raise CurrencyMismatch(f"order {order['id']} is in {paid}; this integration posts only "
                                   f"{settings.currency}")
        return settings.currency
    return paid


def _gl_date(order, settings: PostingSettings, status_reached_at: dt.datetime | None) -> dt.date:
    if settings.gl_date == "status_reached":
        when = status_reached_at or _parse_date(order.get("date_modified"))
    else:
        when = _parse_date(order.get("date_created"))
    if when is None:
        raise JournalError(f"order {order['id']} has no usable date for the GL date")
    return _local_date(when, settings)


def _local_date(when: dt.datetime | None, settings: PostingSettings) -> dt.date:
    if when is None:
        raise JournalError("no usable date for the GL date")
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(ZoneInfo(settings.timezone)).date()


def _parse_date(value) -> dt.datetime | None:
    """BigCommerce v2 dates are RFC 2822; v3 dates are ISO 8601."""
    if not value:
        return None
    if isinstance(value, dt.datetime):
        return value
    text = str(value)
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None


def _truthy(value) -> bool:
    return value in (True, "true", "True", 1, "1")
