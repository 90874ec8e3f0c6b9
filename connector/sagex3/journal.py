"""Store order / refund (the neutral commerce model) -> Sage X3 GL journal entry (pure, no I/O,
no store).

Shape of a sale (one entry per order, with the order's reference)::

    debit  receivable/clearing   total inc tax
    debit  discounts             discounts ex tax        (only when the channel maps a discounts account)
    credit revenue               subtotal ex tax         (net of discounts when no discounts account)
    credit tax payable           total tax
    credit shipping revenue      shipping + handling + wrapping, ex tax
    debit  cost of goods / credit stock   sum(unit cost x qty)   (only with cost posting)

Discounts: stores report order discounts inclusive or exclusive of tax depending on their tax
display settings, so the ex-tax discount is derived from the store's own ex-tax figures:
``subtotal ex tax + charges ex tax - total ex tax``. That keeps one formula for tax-inclusive and
tax-exclusive stores. The entry then balances exactly when the store's total inc tax equals its
total ex tax plus total tax; anything else (order fees that are not mapped, a hand-edited order)
is an ``Unbalanced`` error showing the difference.

Gift certificates (issue 17): selling one credits the gift-certificate liability, not revenue
(revenue is booked once, when the goods it pays for are sold); redeeming one debits that
liability instead of the receivable, and store credit spent debits the store-credit account
(its liability or clearing account; the gift-certificate liability when not mapped), so each
tender's account nets to zero once the credit is issued and spent. Handling and wrapping go to
their own revenue accounts when mapped, else with shipping. A receivable on an account X3 treats
as collective (``PostingSettings.collective_accounts``) carries the channel's business partner,
and without one the entry is never sent (NeedsMapping).

A refund (with the refund's reference) mirrors the sale: receivable for the refunded total, tax
payable for its tax, shipping revenue for refunded shipping/handling/wrapping items, and revenue
for the rest. ``refund_style`` decides how X3 sees it: ``negative`` keeps the sale's senses with
negative amounts (a "red" reversal, so account turnover is not inflated), ``swap`` swaps debit
and credit with positive amounts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from connector.commerce import ChargeKind, OrderLine, RefundItemKind, StoreOrder, StoreRefund, TenderKind
from mlcommon.ledger import CENT, ZERO, JournalEntry, JournalLine, money

DEBIT = 1
CREDIT = -1

ACCOUNT_PURPOSES = {
    "receivable": "receivable / clearing",
    "revenue": "revenue",
    "tax_payable": "tax payable",
    "shipping_revenue": "shipping revenue",
    "discounts": "discounts",
    "cost_of_goods": "cost of goods sold",
    "stock": "stock",
    "gift_certificate": "gift certificate liability",
    "store_credit": "store credit liability / clearing",
    "business_partner": "business partner (collective receivable account)",
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
    """GL accounts of one store sales channel. Blank means "not mapped"."""

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
    handling_revenue: str = ""  # blank: with shipping
    wrapping_revenue: str = ""  # blank: with shipping
    gift_certificate: str = ""  # liability for gift certificates sold, released when redeemed
    store_credit: str = ""  # store credit liability or clearing; blank: the gift-certificate liability

    @property
    def store_credit_account(self) -> str:
        return self.store_credit or self.gift_certificate


@dataclass(frozen=True)
class PostingSettings:
    entry_type: str = "ODIV"  # X3 TYP; site-specific, configure it
    journal: str = "ODIV"  # X3 JOU; site-specific, configure it
    site: str = ""  # X3 FCY
    company: str = ""  # X3 CPY
    currency_source: str = "transactional"  # "transactional" (order's paid currency) or "fixed"
    currency: str = ""  # with "fixed": the only currency accepted; orders in another one are refused
    refund_style: str = "negative"  # "negative" or "swap"
    gl_date: str = "created"  # "created" or "status_reached"
    timezone: str = "UTC"  # the GL date is the calendar date in this zone
    refund_reverses_cost: bool = False  # store refunds do not restock, so off by default
    # Accounts X3 treats as collective (a business partner is mandatory on their lines).
    collective_accounts: tuple[str, ...] = ()
    # The company's currency (blank: not known, entries carry only their own currency). An entry
    # in another currency carries the rate and every line's company-currency amount.
    ledger_currency: str = ""

    def __post_init__(self):
        if self.refund_style not in ("negative", "swap"):
            raise ValueError(f"refund_style must be 'negative' or 'swap', not {self.refund_style!r}")
        if self.gl_date not in ("created", "status_reached"):
            raise ValueError(f"gl_date must be 'created' or 'status_reached', not {self.gl_date!r}")
        if self.currency_source not in ("transactional", "fixed"):
            raise ValueError(f"currency_source must be 'transactional' or 'fixed', not {self.currency_source!r}")


# -- public entry points -------------------------------------------------------------------------


def build_order_entry(order: StoreOrder, unit_costs: Mapping | None,
                      channel_accounts: Mapping[int, ChannelAccounts] | ChannelAccounts,
                      settings: PostingSettings, *, status_reached_at: dt.datetime | None = None,
                      channel_name: str | None = None) -> JournalEntry:
    """Journal entry for one store order.

    ``unit_costs`` maps SKU (or product id) -> unit cost; it wins over the cost on the order line.
    ``status_reached_at`` is when the order entered a posting status (used with
    ``gl_date="status_reached"``; falls back to the order's modification time). The order must be
    in one of the integration's posting statuses (the adapter decided with its settings).
    """
    order_id = order.order_id
    reference = order.reference
    if not order.status.counts_as_paid:
        raise NotPostable(f"order {order_id} has status {order.status.code} ({order.status.name}), "
                          f"which is not a posting status")
    accounts = _accounts_for(order, channel_accounts, channel_name)
    cost = _cost_total(order.lines, unit_costs) if accounts.cost_posting else ZERO
    _require(accounts, _order_purposes(order, cost), channel_name)

    totals = order.totals
    total_inc, total_ex, tax = totals.total_inc_tax, totals.total_ex_tax, totals.total_tax
    subtotal_ex = totals.subtotal_ex_tax
    shipping_ex = _shipping_ex_tax(order)
    discount_ex = subtotal_ex + shipping_ex - total_ex
    if discount_ex < ZERO:
        # Tax-inclusive stores derive each ex-tax figure by rounding, so the parts may exceed
        # the total ex tax by a cent per line or charge. That is rounding, absorbed by revenue
        # below; anything larger is money the order has that we don't map (fees).
        allowance = CENT * (len(order.lines) + 3)
        if -discount_ex > allowance:
            raise Unbalanced(reference, subtotal_ex + shipping_ex, total_ex,
                             "total_ex_tax exceeds subtotal + shipping/handling/wrapping: unmapped fees?")
        subtotal_ex, discount_ex = subtotal_ex + discount_ex, ZERO

    label = f"Order {order_id}"
    gift_sold = _gift_certificates_sold(order)
    redeemed, credit_spent = order.tendered(TenderKind.GIFT_CERTIFICATE), order.tendered(TenderKind.STORE_CREDIT)
    _require(accounts, (["gift_certificate"] if gift_sold or redeemed else [])
             + (["store_credit"] if credit_spent and not accounts.store_credit_account else []), channel_name)
    _require_partner(accounts, settings, channel_name)
    subtotal_ex -= gift_sold
    lines = [JournalLine(accounts.receivable, DEBIT, total_inc - redeemed - credit_spent, f"{label} receivable",
                         accounts.business_partner),
             JournalLine(accounts.gift_certificate, DEBIT, redeemed, f"{label} gift certificates redeemed"),
             JournalLine(accounts.store_credit_account, DEBIT, credit_spent, f"{label} store credit spent")]
    if accounts.discounts:
        lines.append(JournalLine(accounts.discounts, DEBIT, discount_ex, f"{label} discounts"))
        lines.append(JournalLine(accounts.revenue, CREDIT, subtotal_ex, f"{label} revenue"))
    else:
        lines.append(JournalLine(accounts.revenue, CREDIT, subtotal_ex - discount_ex, f"{label} revenue"))
    lines.append(JournalLine(accounts.gift_certificate, CREDIT, gift_sold, f"{label} gift certificates sold"))
    lines.append(JournalLine(accounts.tax_payable, CREDIT, tax, f"{label} tax"))
    for kind, account in _charge_accounts(accounts).items():
        amount = sum((charge.ex_tax for charge in order.charges if charge.kind in kind), ZERO)
        lines.append(JournalLine(account, CREDIT, amount, f"{label} {kind[0]}"))
    if cost:
        lines.append(JournalLine(accounts.cost_of_goods, DEBIT, cost, f"{label} cost of goods"))
        lines.append(JournalLine(accounts.stock, CREDIT, cost, f"{label} stock"))

    entry = JournalEntry(
        reference=reference,
        date=_gl_date(order, settings, status_reached_at),
        description=order.label,
        currency=_currency(order, settings),
        lines=[line for line in lines if line.amount != ZERO],
        entry_type=settings.entry_type,
        journal=settings.journal,
        site=settings.site,
        company=settings.company,
    )
    _check_balanced(entry)
    return _in_ledger_currency(entry, order, settings)


def build_refund_entry(order: StoreOrder, refund: StoreRefund,
                       channel_accounts: Mapping[int, ChannelAccounts] | ChannelAccounts,
                       settings: PostingSettings, *, unit_costs: Mapping | None = None,
                       channel_name: str | None = None) -> JournalEntry:
    """Journal entry for one refund of ``order``. The GL date is the refund's date. The order's
    status is not checked: a refund is posted whenever the store reports one.
    """
    order_id = order.order_id
    reference = refund.reference
    accounts = _accounts_for(order, channel_accounts, channel_name)
    total = refund.total
    tax = refund.total_tax
    net = total - tax
    shipping_ex = _refund_shipping_ex_tax(order, refund)
    revenue = net - shipping_ex
    if revenue < ZERO:
        raise Unbalanced(reference, net, shipping_ex,
                         "refunded shipping/handling/wrapping exceeds the refund net of tax")
    cost = ZERO
    if accounts.cost_posting and settings.refund_reverses_cost:
        cost = _refund_cost(order, refund, unit_costs)
    if total == ZERO and cost == ZERO:
        raise NotPostable(f"refund {refund.refund_id} of order {order_id} moves no money")
    purposes = ["receivable"] + (["revenue"] if revenue else []) + (["tax_payable"] if tax else [])
    purposes += (["shipping_revenue"] if shipping_ex else []) + (["cost_of_goods", "stock"] if cost else [])
    _require(accounts, purposes, channel_name)

    label = f"Refund {refund.refund_id} of order {order_id}"
    # Store credit given back is owed to the shopper on the store-credit account, not the receivable.
    to_credit = sum((p.amount for p in refund.payments if p.tender_kind != TenderKind.PAYMENT), ZERO)
    if to_credit:
        _require(accounts, [] if accounts.store_credit_account else ["store_credit"], channel_name)
    _require_partner(accounts, settings, channel_name)
    # Written as the sale's senses, then turned into a reversal by ``refund_style``.
    sale_like = [
        JournalLine(accounts.receivable, DEBIT, total - to_credit, f"{label} receivable",
                    accounts.business_partner),
        JournalLine(accounts.store_credit_account, DEBIT, to_credit, f"{label} given as store credit"),
        JournalLine(accounts.revenue, CREDIT, revenue, f"{label} revenue"),
        JournalLine(accounts.tax_payable, CREDIT, tax, f"{label} tax"),
        JournalLine(accounts.shipping_revenue, CREDIT, shipping_ex, f"{label} shipping"),
        JournalLine(accounts.cost_of_goods, DEBIT, cost, f"{label} cost of goods"),
        JournalLine(accounts.stock, CREDIT, cost, f"{label} stock"),
    ]
    lines = [_reverse(line, settings.refund_style) for line in sale_like if line.amount != ZERO]
    entry = JournalEntry(
        reference=reference,
        date=_local_date(refund.created_at or order.modified_at, settings),
        description=refund.label,
        currency=_currency(order, settings),
        lines=lines,
        entry_type=settings.entry_type,
        journal=settings.journal,
        site=settings.site,
        company=settings.company,
    )
    _check_balanced(entry)
    return _in_ledger_currency(entry, order, settings)


# -- helpers ---------------------------------------------------------------------------------------


def _accounts_for(order: StoreOrder, channel_accounts, channel_name) -> ChannelAccounts:
    channel_id = order.channel_id
    if isinstance(channel_accounts, ChannelAccounts):
        found = channel_accounts if channel_accounts.channel_id == channel_id else None
    else:
        found = channel_accounts.get(channel_id)
    if found is None:
        required = ("receivable", "revenue", "tax_payable", "shipping_revenue")
        raise NeedsMapping(channel_id, channel_name, [ACCOUNT_PURPOSES[p] for p in required])
    return found


def _gift_certificates_sold(order: StoreOrder) -> Decimal:
    return sum((line.net for line in order.lines if line.is_gift_certificate), ZERO)


def _charge_accounts(accounts: ChannelAccounts) -> dict[tuple[str, ...], str]:
    """Charge kinds by the account they are credited to: handling and wrapping on their own
    accounts when mapped, else with shipping (the key's first kind names the line)."""
    grouped: dict[str, list[str]] = {}
    for kind, own in ((ChargeKind.SHIPPING, ""), (ChargeKind.HANDLING, accounts.handling_revenue),
                      (ChargeKind.WRAPPING, accounts.wrapping_revenue)):
        grouped.setdefault(own or accounts.shipping_revenue, []).append(kind)
    return {tuple(kinds): account for account, kinds in grouped.items()}


def _require_partner(accounts: ChannelAccounts, settings: PostingSettings, channel_name: str | None) -> None:
    if accounts.receivable in settings.collective_accounts and not accounts.business_partner:
        raise NeedsMapping(accounts.channel_id, accounts.channel_name or channel_name,
                           [ACCOUNT_PURPOSES["business_partner"]])


def _order_purposes(order: StoreOrder, cost: Decimal) -> list[str]:
    purposes = ["receivable", "revenue", "tax_payable"]
    if _shipping_ex_tax(order):
        purposes.append("shipping_revenue")
    if cost:
        purposes += ["cost_of_goods", "stock"]
    if order.totals.total_tax == ZERO:
        purposes.remove("tax_payable")
    return purposes


def _require(accounts: ChannelAccounts, purposes: Iterable[str], channel_name: str | None) -> None:
    missing = [ACCOUNT_PURPOSES[p] for p in purposes if not getattr(accounts, p)]
    if missing:
        raise NeedsMapping(accounts.channel_id, accounts.channel_name or channel_name, missing)


_CHARGE_KINDS = (ChargeKind.SHIPPING, ChargeKind.HANDLING, ChargeKind.WRAPPING)


def _shipping_ex_tax(order: StoreOrder) -> Decimal:
    return sum((charge.ex_tax for charge in order.charges if charge.kind in _CHARGE_KINDS), ZERO)


def _refund_shipping_ex_tax(order: StoreOrder, refund: StoreRefund) -> Decimal:
    """Refunded shipping/handling/wrapping, ex tax.

    A refund item's requested amount is what goes back to the shopper, tax included, whatever
    the store's pricing basis (the refund's total tax carries the tax of it; the Sage 50 mapper
    reads it the same way); it is brought back to ex-tax with the order's own ex/inc ratio for
    those charges.
    """
    requested = sum((item.requested_amount or ZERO for item in refund.items if item.kind in _CHARGE_KINDS), ZERO)
    if not requested:
        return requested
    inc = sum((charge.gross for charge in order.charges if charge.kind in _CHARGE_KINDS), ZERO)
    ex = _shipping_ex_tax(order)
    return money(requested * ex / inc) if inc else requested


def _unit_cost(line: OrderLine, unit_costs: Mapping | None) -> Decimal:
    for key in (line.sku, line.product_id):
        if unit_costs and key and key in unit_costs:
            return Decimal(str(unit_costs[key]))
    return line.unit_cost if line.unit_cost is not None else ZERO


def _cost_total(lines: Iterable[OrderLine], unit_costs: Mapping | None) -> Decimal:
    return money(sum((_unit_cost(line, unit_costs) * line.quantity for line in lines), Decimal(0)))


def _refund_cost(order: StoreOrder, refund: StoreRefund, unit_costs) -> Decimal:
    by_id = {line.line_id: line for line in order.lines}
    total = Decimal(0)
    for item in refund.items:
        line = by_id.get(item.line_id)
        if item.kind == RefundItemKind.PRODUCT and line is not None and item.quantity:
            total += _unit_cost(line, unit_costs) * item.quantity
    return money(total)


def _reverse(line: JournalLine, style: str) -> JournalLine:
    if style == "swap":
        return JournalLine(line.account, -line.sense, line.amount, line.description, line.business_partner)
    return JournalLine(line.account, line.sense, -line.amount, line.description, line.business_partner)


def _check_balanced(entry: JournalEntry) -> None:
    if not entry.is_balanced:
        raise Unbalanced(entry.reference, entry.debit_total, entry.credit_total)


def _in_ledger_currency(entry: JournalEntry, order: StoreOrder, settings: PostingSettings) -> JournalEntry:
    """Rule "foreign currency": with the company's currency known and the entry in another one,
    the order's exchange rate (store default currency → the shopper's; the store's default is the
    company's) converts every line; the cents lost to rounding go to the largest line, so the
    entry balances in both currencies."""
    ledger = settings.ledger_currency
    if not ledger or entry.currency == ledger:
        return entry
    rate = order.exchange_rate
    if not rate or rate == Decimal(1):
        raise CurrencyMismatch(f"order {order.order_id} is in {entry.currency} but carries no exchange rate to "
                               f"the company currency {ledger}; set the rate in the store, or post it by hand")
    for line in entry.lines:
        line.ledger_amount = money(line.amount / rate)
    difference = sum((line.sense * line.ledger_amount for line in entry.lines), ZERO)
    if difference:
        target = max(entry.lines, key=lambda line: abs(line.amount))
        target.ledger_amount -= difference * target.sense
    entry.ledger_currency, entry.exchange_rate = ledger, (Decimal(1) / rate).quantize(Decimal("0.000001"))
    return entry


def _currency(order: StoreOrder, settings: PostingSettings) -> str:
    paid = order.currency
    if settings.currency_source == "fixed":
        if paid and paid != settings.currency:
            raise CurrencyMismatch(f"order {order.order_id} is in {paid}; this integration posts only "
                                   f"{settings.currency} (its PostingSettings currency_source is 'fixed')")
        return settings.currency
    return paid


def _gl_date(order: StoreOrder, settings: PostingSettings, status_reached_at: dt.datetime | None) -> dt.date:
    if settings.gl_date == "status_reached":
        when = status_reached_at or order.modified_at
    else:
        when = order.created_at
    if when is None:
        raise JournalError(f"order {order.order_id} has no usable date for the GL date")
    return _local_date(when, settings)


def _local_date(when: dt.datetime | None, settings: PostingSettings) -> dt.date:
    if when is None:
        raise JournalError("no usable date for the GL date")
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(ZoneInfo(settings.timezone)).date()
