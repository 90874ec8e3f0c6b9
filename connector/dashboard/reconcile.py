"""Store ↔ Sage reconciliation of one integration and one day.

The day is the order's own date in the store's time zone (not the day the connector saw it).
The store side is asked of the store itself (orders created that day in a paid status, refunds
created that day), so an order the connector never picked up shows as a difference; if the store
cannot be reached, the orders the connector stored are used and the report says so. The Sage side
is what was posted for those orders: the documents of posted records (invoice or sales order and
its receipts, credit notes and refund payments, or the X3 journal entries).

The store is read only through its adapter (``connector.stores``: the orders and refunds created
between two moments, and the normaliser for them and for stored payloads) and the neutral model
(``connector.commerce``), so every store whose adapter implements the interface reconciles alike.

Money is Decimal and grouped by currency: amounts in different currencies are never added.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from connector.commerce import ChargeKind, StoreOrder, StoreRefund
from connector.dashboard.facts import record_facts, store_zone, to_money
from connector.dashboard.store_side import StoredRecord, adapter_of, order_of, read_record
from connector.models import SyncRecord
from mlcommon.http import ApiError

log = logging.getLogger(__name__)
ZERO = Decimal("0.00")
State = SyncRecord.State


@dataclass
class Difference:
    what: str
    store_id: str
    currency: str
    store_amount: Decimal | None
    sage_amount: Decimal | None
    record_id: int | None
    state: str

    @property
    def gap(self) -> Decimal | None:
        if self.store_amount is None or self.sage_amount is None:
            return None
        return self.store_amount - self.sage_amount


@dataclass
class CurrencyTotals:
    orders: int = 0
    sales: Decimal = ZERO
    tax: Decimal = ZERO
    shipping: Decimal = ZERO
    discounts: Decimal = ZERO
    refunds: Decimal = ZERO
    refunds_count: int = 0
    payments: Decimal = ZERO
    sage_documents: int = 0
    sage_sales: Decimal = ZERO
    sage_tax: Decimal = ZERO
    sage_refunds: Decimal = ZERO
    sage_payments: Decimal = ZERO

    @property
    def sales_match(self) -> bool:
        return self.sales == self.sage_sales

    @property
    def refunds_match(self) -> bool:
        return self.refunds == self.sage_refunds


@dataclass
class Reconciliation:
    integration_id: int
    integration_name: str
    tenant_id: int
    edition: str
    day: dt.date
    zone: str
    source: str  # "asked of the store" or "the orders the connector stored"
    source_note: str
    compare_payments: bool
    orders: list[StoreOrder] = field(default_factory=list)  # the day's sales, in the neutral model
    refunds: list[StoreRefund] = field(default_factory=list)
    by_currency: dict[str, CurrencyTotals] = field(default_factory=lambda: defaultdict(CurrencyTotals))
    by_method: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))
    by_channel: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))
    journal_by_account: dict[tuple[str, str], Decimal] = field(default_factory=lambda: defaultdict(lambda: ZERO))
    differences: list[Difference] = field(default_factory=list)

    @property
    def reconciles(self) -> bool:
        return not self.differences

    @property
    def headline(self) -> str:
        if self.reconciles and not (self.orders or self.refunds):
            return f"Nothing sold on {self.day:%A %d %B %Y}: nothing to post."
        if self.reconciles:
            return f"Everything from {self.day:%A %d %B %Y} is in Sage and reconciles."
        return f"{len(self.differences)} difference(s) on {self.day:%A %d %B %Y}."


def day_bounds(day: dt.date, zone) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=zone) - dt.timedelta(seconds=1)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def lists_days(adapter) -> bool:
    """Whether the adapter implements the interface's day listing (an adapter written before it
    had one is read from the stored records rather than failing the page)."""
    return all(callable(getattr(adapter, name, None))
               for name in ("orders_created_between", "refunds_created_between"))


def is_sale(order: StoreOrder) -> bool:
    """In a status the integration counts as paid, and never one that is not a sale (pending,
    cancelled, declined, awaiting payment)."""
    return order.status.counts_as_paid and not order.status.never_a_sale


def shipping_of(order: StoreOrder) -> Decimal:
    return sum((c.gross for c in order.charges if c.kind == ChargeKind.SHIPPING), ZERO)


@dataclass
class StoreDay:
    """A store's day in the neutral model: the paid orders placed that day, the refunds made that
    day, and every order read (a refund's currency is its order's)."""

    sales: list[StoreOrder]
    refunds: list[StoreRefund]
    orders: dict[str, StoreOrder]


def fetch_store_day(adapter, integration, day: dt.date) -> StoreDay:
    """The store's own orders and refunds of the day, through its adapter (raises the store's
    errors). The order of a refund placed on another day is fetched for its currency."""
    start, end = day_bounds(day, store_zone(integration))
    paid = integration.paid_status_ids
    placed = [adapter.normalize_order(raw, paid_status_ids=paid) for raw in adapter.orders_created_between(start, end)]
    refunds = [adapter.normalize_refund(raw) for raw in adapter.refunds_created_between(start, end)]
    orders = {order.order_id: order for order in placed}
    for order_id in sorted({refund.order_id for refund in refunds} - orders.keys() - {""}):
        orders[order_id] = adapter.normalize_order(adapter.fetch_order(order_id), paid_status_ids=paid)
    return StoreDay(sales=[order for order in placed if is_sale(order)], refunds=refunds, orders=orders)


def stored_day(integration, day: dt.date, adapter=None) -> StoreDay:
    """The same from what the connector stored, for when the store cannot be asked."""
    zone = store_zone(integration)
    sales: dict[str, StoreOrder] = {}
    orders: dict[str, StoreOrder] = {}
    refunds: list[StoreRefund] = []
    for record, stored in _read_records_of_day(integration, day, adapter=adapter):
        order = stored.order
        if record.kind == SyncRecord.Kind.REFUND:
            if stored.refund:
                refunds.append(stored.refund)
            if order is None:
                continue
            orders.setdefault(order.order_id, order)
            if not (order.created_at and order.created_at.astimezone(zone).date() == day):
                continue  # an order stored with its refund is a sale of the day only if placed that day
        if order:
            orders[order.order_id] = order
            if is_sale(order):
                sales[order.order_id] = order
    missing = {refund.order_id for refund in refunds} - orders.keys() - {""}
    for record in SyncRecord.objects.filter(integration=integration, kind=SyncRecord.Kind.ORDER,
                                            external_id__in=missing):  # a refund's order, for its currency
        order = order_of(adapter, integration, record.payload)
        if order:
            orders[order.order_id] = order
    return StoreDay(sales=list(sales.values()), refunds=refunds, orders=orders)


def records_of_day(integration, day: dt.date, kinds=(SyncRecord.Kind.ORDER, SyncRecord.Kind.REFUND)):
    """Records whose order (or refund) date, in the store's zone, is ``day``."""
    return [record for record, _stored in _read_records_of_day(integration, day, kinds)]


def _read_records_of_day(integration, day: dt.date, kinds=(SyncRecord.Kind.ORDER, SyncRecord.Kind.REFUND),
                         adapter=None) -> list[tuple[SyncRecord, StoredRecord]]:
    """The records of ``day`` with their payloads read through the store's adapter. A store date
    is never after the record was created (the connector cannot see an order before it is
    placed), so only records created since the day before are candidates; a backfill's are too,
    being created later. A record whose payload gives no date counts on the day it was created."""
    zone = store_zone(integration)
    adapter = adapter or adapter_of(integration)
    since = dt.datetime.combine(day - dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    out = []
    for record in SyncRecord.objects.filter(integration=integration, kind__in=kinds, created_at__gte=since):
        stored = read_record(record, adapter, integration)
        facts = record_facts(record, zone, stored)
        when = facts.store_date or record.created_at.astimezone(zone).date()
        if when == day:
            out.append((record, stored))
    return out


def _gross(document_part: dict) -> tuple[Decimal, Decimal]:
    lines = document_part.get("lines") or []
    net = sum((to_money(line.get("net")) or ZERO for line in lines), ZERO)
    tax = sum((to_money(line.get("tax")) or ZERO for line in lines), ZERO)
    return net + tax, tax


@dataclass
class PostedAmounts:
    amount: Decimal | None
    tax: Decimal
    payments: Decimal


def posted_amounts(record: SyncRecord) -> PostedAmounts:
    """What the posted document of a record put into Sage, as one amount (gross)."""
    document = record.document if isinstance(record.document, dict) else {}
    for name, payments_key in (("invoice", "receipts"), ("sales_order", None), ("credit_note", "refunds")):
        part = document.get(name)
        if isinstance(part, dict):
            gross, tax = _gross(part)
            payments = sum((to_money(p.get("amount")) or ZERO for p in document.get(payments_key) or []), ZERO) \
                if payments_key else ZERO
            return PostedAmounts(gross, tax, payments)
    if isinstance(document.get("lines"), list):  # a Sage X3 journal entry: its receivable line
        receivable = sum((to_money(line.get("amount")) or ZERO) * int(line.get("sense", 1))
                         for line in document["lines"] if str(line.get("description", "")).endswith("receivable"))
        return PostedAmounts(abs(receivable), ZERO, ZERO)
    return PostedAmounts(None, ZERO, ZERO)


def reconcile_day(integration, day: dt.date, *, use_store: bool = True) -> Reconciliation:
    source, note = "asked of the store", ""
    adapter = adapter_of(integration)
    store_day = None
    if adapter is None:
        note = (f"This build has no store adapter for {integration.store.get_platform_display()}; "
                "these figures are the orders the connector stored.")
    elif use_store and not lists_days(adapter):
        note = ("This store's adapter cannot list a day's orders yet; these figures are the orders the "
                "connector stored.")
    elif use_store:
        try:
            store_day = fetch_store_day(adapter, integration, day)
        except (ApiError, OSError) as error:  # the report still says what it can, from stored records
            log.warning("reconciliation of %s on %s: store unreachable: %s", integration, day, error)
            note = f"The store could not be asked ({error}); these figures are the orders the connector stored."
    if store_day is None:
        store_day = stored_day(integration, day, adapter)
        source = "the orders the connector stored"
    is_x3 = integration.sage.edition == "sagex3"
    report = Reconciliation(
        integration_id=integration.pk, integration_name=integration.name, tenant_id=integration.tenant_id,
        edition=integration.sage.edition, day=day, zone=str(store_zone(integration)), source=source,
        source_note=note, compare_payments=bool(integration.post_receipts and not is_x3))
    records = {(r.kind, r.external_id): r for r in SyncRecord.objects.filter(
        integration=integration,
        external_id__in=[o.order_id for o in store_day.sales] + [r.refund_id for r in store_day.refunds])}
    for order in store_day.sales:
        report.orders.append(order)
        totals = report.by_currency[order.currency]
        total = order.totals.total_inc_tax
        totals.orders += 1
        totals.sales += total
        totals.tax += order.totals.total_tax
        totals.shipping += shipping_of(order)
        totals.discounts += order.discount_total
        totals.payments += order.amount_due  # the total less gift certificates and store credit
        report.by_method[(order.currency, order.payment_method or "—")] += total
        report.by_channel[(order.currency, str(order.channel_id))] += total
        record = records.get((SyncRecord.Kind.ORDER, order.order_id))
        _compare(report, totals, "Order", order.order_id, order.currency, total, order.amount_due, record, is_x3)
    for refund in store_day.refunds:
        order = store_day.orders.get(refund.order_id)
        currency = order.currency if order else ""
        report.refunds.append(refund)
        totals = report.by_currency[currency]
        totals.refunds += refund.total
        totals.refunds_count += 1
        record = records.get((SyncRecord.Kind.REFUND, refund.refund_id))
        _compare(report, totals, "Refund", refund.refund_id, currency, refund.total, None, record, is_x3, refund=True)
    # Plain, sorted dicts: a template's ``x.items`` would otherwise create an "items" key in a defaultdict.
    report.by_currency = dict(sorted(report.by_currency.items()))
    report.by_method = dict(sorted(report.by_method.items()))
    report.by_channel = dict(sorted(report.by_channel.items()))
    report.journal_by_account = dict(sorted(report.journal_by_account.items()))
    return report


def _compare(report, totals, what, store_id, currency, amount, payments, record, is_x3, refund=False):
    if record is None or record.state != State.POSTED:
        state = "Never reached the connector" if record is None else record.get_state_display()
        report.differences.append(Difference(f"{what} not in Sage", store_id, currency, amount, None,
                                             record.pk if record else None, state))
        return
    posted = posted_amounts(record)
    totals.sage_documents += 1
    if refund:
        totals.sage_refunds += posted.amount or ZERO
    else:
        totals.sage_sales += posted.amount or ZERO
        totals.sage_tax += posted.tax
        totals.sage_payments += posted.payments
    if is_x3 and isinstance(record.document, dict):
        for line in record.document.get("lines") or []:
            report.journal_by_account[(currency, str(line.get("account", "")))] += (
                (to_money(line.get("amount")) or ZERO) * int(line.get("sense", 1)))
    if posted.amount != amount:
        report.differences.append(Difference(f"{what} amount differs", store_id, currency, amount, posted.amount,
                                             record.pk, "Posted"))
    elif payments is not None and report.compare_payments and posted.payments != payments:
        report.differences.append(Difference("Payment differs", store_id, currency, payments, posted.payments,
                                             record.pk, "Posted"))
