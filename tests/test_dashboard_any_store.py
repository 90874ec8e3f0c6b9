"""The dashboard reads a store only through the store-adapter interface (``connector.stores``) and
the neutral model: a second platform, whose JSON looks nothing like BigCommerce's, reconciles,
dates its records in its own time zone and fills the morning check the same way, once its adapter
is registered. The adapter here is a fake (a unit test of the dashboard); the BigCommerce one is
exercised against the sandbox store in test_dashboard_reconcile.py and the browser test."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from connector.commerce import (
    Charge,
    ChargeKind,
    Discount,
    OrderStatus,
    Party,
    RefundPayment,
    StoreOrder,
    StoreRefund,
    StoreTotals,
    Tender,
    TenderKind,
)
from connector.dashboard.facts import record_facts, store_zone
from connector.dashboard.reconcile import reconcile_day, records_of_day
from connector.dashboard.summary import integration_day
from connector.models import SyncRecord
from connector.services.records import upsert_record
from mlcommon.http import RetryableError
from tests.support.factories import IntegrationFactory, MembershipFactory

pytestmark = pytest.mark.django_db

PLATFORM = "fakeshop"
DAY = dt.date(2026, 3, 10)
ZONE = "Europe/Amsterdam"  # UTC+1 in March
PAID_STATES = {"complete", "processing"}
NEVER_SALES = {"pending_payment", "canceled"}


def _money(text) -> Decimal:
    return Decimal(str(text)).quantize(Decimal("0.01"))


class FakeShopAdapter:
    """A store with its own words: ``number``, ``placed`` (ISO 8601 with an offset), ``state``,
    ``grand_total``, ``gift_card``, ``paid_with``, ``channel``; refunds with ``refund_no``."""

    platform = PLATFORM
    store_name = "FakeShop"
    orders: dict[int, dict] = {}
    refunds: list[dict] = []
    down = False
    listed: list[tuple[str, dt.datetime, dt.datetime]] = []

    @classmethod
    def for_store(cls, store):
        return cls()

    def _check(self):
        if self.down:
            raise RetryableError("FakeShop answered 503")

    def orders_created_between(self, start, end):
        self._check()
        self.listed.append(("orders", start, end))
        return iter([o for o in self.orders.values() if start <= dt.datetime.fromisoformat(o["placed"]) <= end])

    def refunds_created_between(self, start, end):
        self._check()
        self.listed.append(("refunds", start, end))
        return iter([r for r in self.refunds if start <= dt.datetime.fromisoformat(r["when"]) <= end])

    def fetch_order(self, order_id):
        self._check()
        return dict(self.orders[int(order_id)])

    def is_full_order(self, raw_order, *, with_lines):
        return isinstance(raw_order, dict) and "grand_total" in raw_order and (not with_lines or "items" in raw_order)

    def normalize_order(self, raw, *, paid_status_ids=None, payments=None) -> StoreOrder:
        gross, tax, gift = _money(raw["grand_total"]), _money(raw["tax"]), _money(raw.get("gift_card") or 0)
        shipping = _money(raw.get("shipping") or 0)
        first, _, last = raw["buyer"]["name"].partition(" ")
        return StoreOrder(
            order_id=str(raw["number"]), reference=f"FS-{raw['number']}", label=f"FakeShop order {raw['number']}",
            store_name=self.store_name,
            status=OrderStatus(code=raw["state"], name=raw["state"], counts_as_paid=raw["state"] in PAID_STATES,
                               never_a_sale=raw["state"] in NEVER_SALES),
            created_at=dt.datetime.fromisoformat(raw["placed"]), modified_at=None, currency=raw["currency"],
            exchange_rate=Decimal(1), channel_id=raw["channel"],
            party=Party(email=raw["buyer"]["email"], first_name=first, last_name=last),
            lines=[], charges=[Charge(ChargeKind.SHIPPING, net=shipping, tax=Decimal("0.00"), ex_tax=shipping)]
            if shipping else [],
            discounts=[Discount("coupon", _money(raw["discount"]))] if raw.get("discount") else [],
            tenders=[Tender(TenderKind.GIFT_CERTIFICATE, "gift card", gift)] if gift else [],
            totals=StoreTotals(subtotal_ex_tax=gross - tax - shipping, total_ex_tax=gross - tax, total_tax=tax,
                               total_inc_tax=gross),
            payment_method=raw["paid_with"])

    def normalize_refund(self, raw, *, order_id=None) -> StoreRefund:
        order_id = str(raw.get("order") or order_id or "")
        return StoreRefund(
            refund_id=str(raw["refund_no"]), order_id=order_id, order_reference=f"FS-{order_id}",
            reference=f"FS-{order_id}-R{raw['refund_no']}", label=f"FakeShop refund {raw['refund_no']}",
            created_at=dt.datetime.fromisoformat(raw["when"]), total=_money(raw["amount"]),
            total_tax=_money(raw["tax"]), items=[], payments=[RefundPayment(raw["via"], _money(raw["amount"]))])


def _order(number, placed, state, currency, total, tax, **more):
    return {"number": number, "placed": placed, "state": state, "currency": currency, "grand_total": total,
            "tax": tax, "paid_with": "ideal", "channel": 3, "items": [{"sku": "MUG"}],
            "buyer": {"name": "Ann Lee", "email": "ann@example.com"}, **more}


@pytest.fixture
def shop(monkeypatch):
    """The fake platform registered as a store package registers its adapter, for this test only."""
    from connector.flows import stores as flow_stores
    from connector.stores import base

    monkeypatch.setitem(base._ADAPTERS, PLATFORM, FakeShopAdapter)
    monkeypatch.setattr(flow_stores, "_platform_of_store", {})  # a store id is reused between tests on SQLite
    orders = {
        99: _order(99, "2026-03-09T11:00:00+01:00", "complete", "EUR", "80.00", "13.88"),  # refunded on the 10th
        100: _order(100, "2026-03-10T10:00:00+01:00", "complete", "EUR", "121.00", "21.00", shipping="5.00",
                    discount="4.00"),
        101: _order(101, "2026-03-10T12:30:00+00:00", "processing", "GBP", "60.00", "10.00", gift_card="10.00"),
        102: _order(102, "2026-03-10T13:00:00+01:00", "pending_payment", "EUR", "30.00", "5.00"),  # not a sale
        # 23:30 UTC on the 9th is half past midnight on the 10th in Amsterdam: the store's day.
        103: _order(103, "2026-03-09T23:30:00+00:00", "complete", "EUR", "42.00", "7.29"),
        104: _order(104, "2026-03-10T18:00:00+01:00", "complete", "EUR", "15.00", "2.60"),  # never picked up
        105: _order(105, "2026-03-11T09:00:00+01:00", "complete", "EUR", "99.00", "17.18"),  # the next day
    }
    monkeypatch.setattr(FakeShopAdapter, "orders", orders)
    monkeypatch.setattr(FakeShopAdapter, "refunds", [
        {"refund_no": 7, "order": 99, "when": "2026-03-10T16:00:00+01:00", "amount": "20.00", "tax": "3.47",
         "via": "ideal"}])
    monkeypatch.setattr(FakeShopAdapter, "down", False)
    monkeypatch.setattr(FakeShopAdapter, "listed", [])
    integration = IntegrationFactory(store__platform=PLATFORM, store__timezone=ZONE, sage__edition="sage50uk",
                                     post_receipts=True)
    posted = {99: ("80.00", "13.88", "80.00"), 100: ("121.00", "21.00", "121.00"), 101: ("60.00", "10.00", "50.00"),
              103: ("42.00", "7.29", "42.00")}
    for number, (gross, tax, paid) in posted.items():
        _posted(integration, "order", str(number), orders[number], {
            "invoice": {"reference": f"FS-{number}", "currency": orders[number]["currency"],
                        "customer": {"name": "Ann Lee"},
                        "lines": [{"net": str(Decimal(gross) - Decimal(tax)), "tax": tax}]},
            "receipts": [{"amount": paid}]})
    # A refund record holds the store's refund and its order's id (the flows' envelope), not the order.
    _posted(integration, "refund", "7", {"refund": FakeShopAdapter.refunds[0], "order_id": "99"}, {
        "credit_note": {"reference": "FS-99-R7", "currency": "EUR", "lines": [{"net": "16.53", "tax": "3.47"}]},
        "refunds": [{"amount": "20.00"}]})
    return integration


def _posted(integration, kind, external_id, payload, document):
    action = "post_invoice" if kind == "order" else "post_credit_note"
    record, _ = upsert_record(integration.pk, kind, external_id, action, reason="test")
    SyncRecord.objects.filter(pk=record.pk).update(state="posted", payload=payload, document=document,
                                                   sage_reference=document.get("invoice", {}).get("reference", ""))


def test_a_second_platform_reconciles_through_its_adapter(shop):
    report = reconcile_day(shop, DAY)
    assert report.source == "asked of the store" and report.zone == ZONE
    # The day asked of the store is Amsterdam's day, in UTC.
    assert FakeShopAdapter.listed[0] == ("orders", dt.datetime(2026, 3, 9, 23, 0, tzinfo=dt.UTC),
                                         dt.datetime(2026, 3, 10, 22, 59, 59, tzinfo=dt.UTC))
    assert sorted(o.order_id for o in report.orders) == ["100", "101", "103", "104"]  # 102 unpaid, 105 tomorrow
    eur, gbp = report.by_currency["EUR"], report.by_currency["GBP"]
    assert set(report.by_currency) == {"EUR", "GBP"}
    assert (eur.orders, eur.sales, eur.tax) == (3, Decimal("178.00"), Decimal("30.89"))
    assert (eur.shipping, eur.discounts) == (Decimal("5.00"), Decimal("4.00"))
    assert (eur.refunds, eur.refunds_count, eur.sage_refunds) == (Decimal("20.00"), 1, Decimal("20.00"))  # order 99's
    assert (gbp.sales, gbp.payments, gbp.sage_payments) == (Decimal("60.00"), Decimal("50.00"), Decimal("50.00"))
    assert eur.sales - eur.sage_sales == Decimal("15.00")
    assert report.by_method == {("EUR", "ideal"): Decimal("178.00"), ("GBP", "ideal"): Decimal("60.00")}
    assert report.by_channel == {("EUR", "3"): Decimal("178.00"), ("GBP", "3"): Decimal("60.00")}
    assert [(d.what, d.store_id, d.currency, d.store_amount, d.state) for d in report.differences] == [
        ("Order not in Sage", "104", "EUR", Decimal("15.00"), "Never reached the connector")]
    assert not report.reconciles

    # Picked up and posted: the day reconciles.
    _posted(shop, "order", "104", FakeShopAdapter.orders[104], {
        "invoice": {"currency": "EUR", "lines": [{"net": "12.40", "tax": "2.60"}]}, "receipts": [{"amount": "15.00"}]})
    report = reconcile_day(shop, DAY)
    assert report.reconciles, report.differences
    assert report.headline == "Everything from Tuesday 10 March 2026 is in Sage and reconciles."


def test_a_posted_amount_that_differs_is_listed(shop):
    SyncRecord.objects.filter(integration=shop, kind="order", external_id="103").update(document={
        "invoice": {"currency": "EUR", "lines": [{"net": "34.70", "tax": "7.29"}]}, "receipts": [{"amount": "42.00"}]})
    report = reconcile_day(shop, DAY)
    record = SyncRecord.objects.get(integration=shop, kind="order", external_id="103")
    assert ("Order amount differs", "103", Decimal("42.00"), Decimal("41.99"), record.pk) in [
        (d.what, d.store_id, d.store_amount, d.sage_amount, d.record_id) for d in report.differences]


def test_stored_payloads_are_read_through_the_adapter(shop):
    """The home page's figures and a store that cannot be reached: the stored records, normalised by
    the platform's own adapter; a refund's currency is its order's (from the order's record)."""
    FakeShopAdapter.down = True
    report = reconcile_day(shop, DAY)
    assert report.source == "the orders the connector stored" and "FakeShop answered 503" in report.source_note
    assert sorted(o.order_id for o in report.orders) == ["100", "101", "103"]  # 104 never reached the connector
    assert report.by_currency["EUR"].refunds == Decimal("20.00")
    assert report.reconciles, report.differences

    day_records = {(r.kind, r.external_id) for r in records_of_day(shop, DAY)}
    assert day_records == {("order", "100"), ("order", "101"), ("order", "103"), ("refund", "7")}
    assert ("order", "103") not in {(r.kind, r.external_id) for r in records_of_day(shop, DAY - dt.timedelta(days=1))}

    record = SyncRecord.objects.select_related("integration__store").get(integration=shop, external_id="103")
    facts = record_facts(record, store_zone(shop))
    assert facts.store_time == dt.datetime(2026, 3, 10, 0, 30, tzinfo=store_zone(shop))
    assert (facts.customer, facts.amount, facts.currency, facts.payment_method, facts.channel) == (
        "Ann Lee", Decimal("42.00"), "EUR", "ideal", "3")
    refund = record_facts(SyncRecord.objects.get(integration=shop, kind="refund"), store_zone(shop))
    assert (refund.amount, refund.currency, refund.payment_method) == (Decimal("20.00"), "EUR", "ideal")

    counts = integration_day(shop, DAY).counts
    assert (counts.orders, counts.refunds, counts.by_words["Posted"]) == (3, 1, 4)


def test_the_pages_and_the_csv_for_a_second_platform(shop, client):
    client.force_login(MembershipFactory(tenant=shop.tenant, role="accountant").user)
    assert client.get("/admin/morning/?day=2026-03-10").status_code == 200
    csv = client.get(f"/admin/morning/reconciliation/{shop.pk}/2026-03-10/?format=csv").content.decode()
    assert "Order not in Sage,104,EUR" in csv
    listing = client.get("/admin/connector/syncrecord/").content.decode()
    assert "EUR 121.00" in listing and "Ann Lee" in listing


def test_a_platform_without_an_adapter_still_reports_from_the_stored_records(shop, monkeypatch):
    from connector.stores import base

    monkeypatch.delitem(base._ADAPTERS, PLATFORM)
    report = reconcile_day(shop, DAY)
    assert report.source == "the orders the connector stored" and "no store adapter" in report.source_note
    assert report.orders == [] and report.reconciles


def test_an_order_stored_with_its_refund_is_a_sale_of_its_own_day_only(shop):
    """A refund record may carry its order (the X3 flow stores both): that order is a sale of the
    day when it was placed that day, and only its currency otherwise."""
    FakeShopAdapter.down = True
    SyncRecord.objects.filter(integration=shop, kind="refund", external_id="7").update(
        payload={"refund": FakeShopAdapter.refunds[0], "order_id": "99", "order": FakeShopAdapter.orders[99]})
    same_day = _order(106, "2026-03-10T09:00:00+01:00", "complete", "EUR", "50.00", "8.68")
    refund = {"refund_no": 8, "order": 106, "when": "2026-03-10T17:00:00+01:00", "amount": "30.00", "tax": "5.21",
              "via": "ideal"}
    _posted(shop, "refund", "8", {"refund": refund, "order_id": "106", "order": same_day}, {
        "credit_note": {"currency": "EUR", "lines": [{"net": "24.79", "tax": "5.21"}]}, "refunds": []})
    report = reconcile_day(shop, DAY)
    assert sorted(o.order_id for o in report.orders) == ["100", "101", "103", "106"]  # not 99, placed the 9th
    eur = report.by_currency["EUR"]
    assert (eur.refunds, eur.refunds_count, eur.sage_refunds) == (Decimal("50.00"), 2, Decimal("50.00"))
    assert [(d.what, d.store_id, d.state) for d in report.differences] == [
        ("Order not in Sage", "106", "Never reached the connector")]


def test_an_adapter_that_cannot_list_a_day_is_read_from_the_stored_records(shop, monkeypatch):
    monkeypatch.delattr(FakeShopAdapter, "orders_created_between")
    report = reconcile_day(shop, DAY)
    assert report.source == "the orders the connector stored" and "cannot list a day" in report.source_note
    assert sorted(o.order_id for o in report.orders) == ["100", "101", "103"] and report.reconciles
    assert FakeShopAdapter.listed == []
