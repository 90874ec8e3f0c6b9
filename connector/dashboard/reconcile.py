"""Store ↔ Sage reconciliation of one integration and one day.

The day is the order's own date in the store's time zone (not the day the connector saw it).
The store side is asked of the store itself (orders created that day in a paid status, refunds
created that day), so an order the connector never picked up shows as a difference; if the store
cannot be reached, the orders the connector stored are used and the report says so. The Sage side
is what was posted for those orders: the documents of posted records (invoice or sales order and
its receipts, credit notes and refund payments, or the X3 journal entries).

Money is Decimal and grouped by currency: amounts in different currencies are never added.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Q

from connector.bigcommerce.normalize import DEFAULT_PAID_STATUS_IDS, NEVER_PAID_STATUS_IDS
from connector.dashboard.facts import parse_store_time, record_facts, store_zone, to_money
from connector.models import SyncRecord
from mlcommon.http import ApiError

log = logging.getLogger(__name__)
ZERO = Decimal("0.00")
State = SyncRecord.State


@dataclass
class StoreOrder:
    order_id: str
    created: dt.datetime
    customer: str
    currency: str
    total: Decimal
    tax: Decimal
    shipping: Decimal
    discounts: Decimal
    paid_by_payment: Decimal  # the total less gift certificates and store credit
    payment_method: str
    channel: str


@dataclass
class StoreRefund:
    refund_id: str
    order_id: str
    created: dt.datetime
    currency: str
    amount: Decimal


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
    orders: list[StoreOrder] = field(default_factory=list)
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


def paid_status_ids(integration) -> frozenset[int]:
    chosen = frozenset(int(s) for s in integration.paid_status_ids or [])
    return (chosen or DEFAULT_PAID_STATUS_IDS) - NEVER_PAID_STATUS_IDS


def _store_order(order: dict, zone) -> StoreOrder:
    m = to_money
    total = m(order.get("total_inc_tax")) or ZERO
    billing = order.get("billing_address") or {}
    customer = " ".join(p for p in (billing.get("first_name"), billing.get("last_name")) if p) or billing.get(
        "email", "")
    return StoreOrder(
        order_id=str(order["id"]), created=parse_store_time(order.get("date_created")).astimezone(zone),
        customer=customer, currency=order.get("currency_code") or "", total=total,
        tax=m(order.get("total_tax")) or ZERO, shipping=m(order.get("shipping_cost_inc_tax")) or ZERO,
        discounts=(m(order.get("coupon_discount")) or ZERO) + (m(order.get("discount_amount")) or ZERO),
        paid_by_payment=total - (m(order.get("gift_certificate_amount")) or ZERO)
        - (m(order.get("store_credit_amount")) or ZERO),
        payment_method=str(order.get("payment_method") or ""), channel=str(order.get("channel_id", "")))


def fetch_store_day(integration, day: dt.date) -> tuple[list[dict], list[dict]]:
    """The store's own orders and refunds of the day (raises the client's errors)."""
    from connector.bigcommerce.client import BigCommerceClient

    start, end = day_bounds(day, store_zone(integration))
    client = BigCommerceClient.for_store(integration.store)
    orders = list(client.iter_orders(client.order_filters(created_since=start, created_until=end),
                                     with_lines=False))
    refunds = list(client.iter_refunds(created_since=start, created_until=end))
    missing = {str(r["order_id"]) for r in refunds} - {str(o["id"]) for o in orders}
    for order_id in sorted(missing):
        orders_of_refunds = client.get_order(int(order_id), with_lines=False)
        orders_of_refunds["_refund_only"] = True
        orders.append(orders_of_refunds)
    return orders, refunds


def stored_day(integration, day: dt.date) -> tuple[list[dict], list[dict]]:
    """The same from what the connector stored, for when the store cannot be asked."""
    zone = store_zone(integration)
    orders, refunds = [], []
    for record in records_of_day(integration, day):
        payload = record.payload if isinstance(record.payload, dict) else {}
        if record.kind == SyncRecord.Kind.ORDER and payload.get("id"):
            orders.append(payload)
        elif record.kind == SyncRecord.Kind.REFUND and isinstance(payload.get("refund"), dict):
            refunds.append(payload["refund"])
            if isinstance(payload.get("order"), dict):
                order = dict(payload["order"])
                created = parse_store_time(order.get("date_created"))
                if not created or created.astimezone(zone).date() != day:
                    order["_refund_only"] = True
                orders.append(order)
    return orders, refunds


def records_of_day(integration, day: dt.date, kinds=(SyncRecord.Kind.ORDER, SyncRecord.Kind.REFUND)):
    """Records whose order (or refund) date, in the store's zone, is ``day``. A store date is
    never after the record was created, so anything created since the day before is a candidate;
    older records qualify only when their stored date names a day around it (a backfill)."""
    zone = store_zone(integration)
    around = [day + dt.timedelta(days=d) for d in (-1, 0, 1)]
    stored_date = Q()
    for d in around:
        stored_date |= Q(payload__date_created__icontains=d.strftime("%d %b %Y"))
        stored_date |= Q(payload__refund__created__icontains=d.isoformat())
    since = dt.datetime.combine(day - dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    candidates = (SyncRecord.objects.filter(integration=integration, kind__in=kinds)
                  .filter(Q(created_at__gte=since) | stored_date))
    out = []
    for record in candidates:
        facts = record_facts(record, zone)
        when = facts.store_date or record.created_at.astimezone(zone).date()
        if when == day:
            out.append(record)
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
    zone = store_zone(integration)
    source, note = "asked of the store", ""
    orders = refunds = None
    if use_store and integration.store.platform == "bigcommerce":
        try:
            orders, refunds = fetch_store_day(integration, day)
        except (ApiError, OSError) as error:  # the report still says what it can, from stored records
            log.warning("reconciliation of %s on %s: store unreachable: %s", integration, day, error)
            note = f"The store could not be asked ({error}); these figures are the orders the connector stored."
    if orders is None:
        orders, refunds = stored_day(integration, day)
        source = "the orders the connector stored"
    paid = paid_status_ids(integration)
    report = Reconciliation(
        integration_id=integration.pk, integration_name=integration.name, tenant_id=integration.tenant_id,
        edition=integration.sage.edition, day=day, zone=str(zone), source=source, source_note=note,
        compare_payments=bool(integration.post_receipts and integration.sage.edition != "sagex3"))
    is_x3 = integration.sage.edition == "sagex3"
    records = {(r.kind, r.external_id): r for r in SyncRecord.objects.filter(
        integration=integration,
        external_id__in=[str(o["id"]) for o in orders] + [str(r["id"]) for r in refunds])}
    currency_of_order = {}
    for raw in orders:
        currency_of_order[str(raw["id"])] = raw.get("currency_code") or ""
        if raw.get("_refund_only") or raw.get("is_deleted"):
            continue
        if int(raw.get("status_id") or 0) not in paid:
            continue  # not a sale yet (pending, cancelled, declined, awaiting payment)
        order = _store_order(raw, zone)
        report.orders.append(order)
        totals = report.by_currency[order.currency]
        totals.orders += 1
        totals.sales += order.total
        totals.tax += order.tax
        totals.shipping += order.shipping
        totals.discounts += order.discounts
        totals.payments += order.paid_by_payment
        report.by_method[(order.currency, order.payment_method or "—")] += order.total
        report.by_channel[(order.currency, order.channel or "—")] += order.total
        record = records.get((SyncRecord.Kind.ORDER, order.order_id))
        _compare(report, totals, "Order", order.order_id, order.currency, order.total, order.paid_by_payment,
                 record, is_x3)
    for raw in refunds:
        order_id = str(raw.get("order_id"))
        currency = currency_of_order.get(order_id, "")
        amount = to_money(raw.get("total_amount")) or ZERO
        refund = StoreRefund(refund_id=str(raw["id"]), order_id=order_id,
                             created=(parse_store_time(raw.get("created")) or dt.datetime.now(dt.UTC)).astimezone(zone),
                             currency=currency, amount=amount)
        report.refunds.append(refund)
        totals = report.by_currency[currency]
        totals.refunds += amount
        totals.refunds_count += 1
        record = records.get((SyncRecord.Kind.REFUND, refund.refund_id))
        _compare(report, totals, "Refund", refund.refund_id, currency, amount, None, record, is_x3, refund=True)
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
