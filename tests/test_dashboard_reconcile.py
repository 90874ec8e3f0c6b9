"""The reconciliation of a seeded store day against the sandbox store's own figures: refunds,
three currencies, the store's time zone, an unpaid order left out and a paid order the connector
never picked up shown as a difference; then posted, the day reconciles. Plus CSV, PDF and the
management command."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core.management import call_command

from connector.dashboard.export import to_csv, to_pdf
from connector.dashboard.reconcile import reconcile_day, records_of_day
from connector.models import SyncRecord
from connector.services.records import upsert_record
from demo import seed as demo
from tests import dashboard_seed as seeded
from tests.support.factories import IntegrationFactory


@pytest.fixture
def day(db, tmp_path):
    seeded_day = seeded.start_store()
    skus = demo.sandbox_skus(seed=3)
    seed = demo.seed_demo(store_url=seeded_day.server.url, company_path=tmp_path / "company.sqlite3", skus=skus)
    demo.init_company(seed.company_path, skus, qty="1000")
    seed.integration.store.timezone = seeded.ZONE
    seed.integration.store.save(update_fields=["timezone"])
    seeded.place_orders(seeded_day)
    seeded.sync(seed, seeded_day.server.url, seeded_day.posted_ids + [seeded_day.pending_id], seeded_day.refund_ids)
    seeded.place_unposted(seeded_day)
    seeded_day.seed = seed
    yield seeded_day
    seeded_day.server.stop()


def test_the_report_matches_the_store_and_names_the_unposted_order(day):
    integration = day.seed.integration
    integration.refresh_from_db()
    assert SyncRecord.objects.filter(integration=integration, kind="order", state="posted").count() == 6, [
        (r.external_id, r.state, r.message) for r in SyncRecord.objects.all()]
    report = reconcile_day(integration, seeded.DAY)
    assert report.source == "asked of the store"
    figures = seeded.store_figures(day)
    assert set(report.by_currency) == {"USD", "GBP", "EUR"} == set(figures)
    for currency, expected in figures.items():
        totals = report.by_currency[currency]
        assert totals.orders == expected["orders"]
        assert totals.sales == expected["sales"], currency
        assert totals.tax == expected["tax"], currency
        assert totals.refunds == expected["refunds"], currency
    assert sum(t.refunds_count for t in report.by_currency.values()) == 2
    # Everything posted matches to the cent; the one order nobody picked up is the difference.
    assert [(d.what, d.store_id, d.state) for d in report.differences] == [
        ("Order not in Sage", str(day.unposted_id), "Never reached the connector")]
    unposted = day.store.orders[day.unposted_id]
    eur = report.by_currency["EUR"]
    assert eur.sales - eur.sage_sales == unposted.figures.total_inc
    for currency in ("USD", "GBP"):
        t = report.by_currency[currency]
        assert (t.sales, t.refunds, t.payments) == (t.sage_sales, t.sage_refunds, t.sage_payments)
    # The New York evening order belongs to the 10th, though it is the 11th in UTC.
    late = str(day.posted_ids[-1])
    assert late in {o.order_id for o in report.orders}
    assert late in {r.external_id for r in records_of_day(integration, seeded.DAY)}
    assert late not in {r.external_id for r in records_of_day(integration, seeded.DAY + dt.timedelta(days=1))}

    seeded.sync(day.seed, day.server.url, [day.unposted_id])
    report = reconcile_day(integration, seeded.DAY)
    assert report.reconciles, report.differences
    assert report.headline == "Everything from Tuesday 10 March 2026 is in Sage and reconciles."


def test_csv_pdf_and_the_management_command(day, tmp_path):
    integration = day.seed.integration
    report = reconcile_day(integration, seeded.DAY)
    text = to_csv(report, lambda pk: f"http://x/{pk}")
    assert f"Order not in Sage,{day.unposted_id},EUR" in text
    assert "Sales (3 orders)" in text or "Sales (" in text
    pdf = to_pdf(report)
    assert pdf.startswith(b"%PDF-") and len(pdf) > 1000
    out = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("reconcile_day", "--integration", str(integration.pk), "--date", "2026-03-10", stdout=out)
    assert exit_info.value.code == 1  # a day with differences is not a success
    assert "1 difference(s)" in out.getvalue() and str(day.unposted_id) in out.getvalue()
    target = tmp_path / "day.pdf"
    with pytest.raises(SystemExit):
        call_command("reconcile_day", "--integration", integration.name, "--date", "2026-03-10", "--format", "pdf",
                     "--output", str(target), stdout=io.StringIO())
    assert target.read_bytes().startswith(b"%PDF-")
    seeded.sync(day.seed, day.server.url, [day.unposted_id])
    out = io.StringIO()
    call_command("reconcile_day", "--integration", str(integration.pk), "--date", "2026-03-10", "--format", "csv",
                 stdout=out)
    assert "is in Sage and reconciles" in out.getvalue()


def _x3_order(order_id, total, tax, hour):
    return {"id": order_id, "date_created": f"Tue, 10 Mar 2026 {hour:02d}:00:00 +0000", "status_id": 11,
            "total_inc_tax": total, "total_tax": tax, "currency_code": "USD", "payment_method": "Credit Card",
            "channel_id": 1, "billing_address": {"first_name": "Ann", "last_name": "Lee"}}


def _journal(order_id, revenue, tax):
    label = f"Order {order_id}"
    gross = str(Decimal(revenue) + Decimal(tax))
    return {"reference": f"BC-{order_id}", "date": "2026-03-10", "currency": "USD", "description": label,
            "lines": [{"account": "411100", "sense": 1, "amount": gross, "description": f"{label} receivable"},
                      {"account": "701000", "sense": -1, "amount": revenue, "description": f"{label} revenue"},
                      {"account": "445710", "sense": -1, "amount": tax, "description": f"{label} tax"}]}


def test_sage_x3_day_totals_by_account_against_the_store(db):
    integration = IntegrationFactory(sage__edition="sagex3", post_gl_entries=True)
    for order_id, total, tax, journal in ((1, "110.00", "10.00", _journal(1, "100.00", "10.00")),
                                          (2, "55.00", "5.00", _journal(2, "45.00", "5.00"))):
        record, _ = upsert_record(integration.pk, "order", str(order_id), "post_journal", reason="test")
        SyncRecord.objects.filter(pk=record.pk).update(state="posted", payload=_x3_order(order_id, total, tax, 12),
                                                       document=journal)
    report = reconcile_day(integration, dt.date(2026, 3, 10), use_store=False)
    assert report.source == "the orders the connector stored"
    assert report.journal_by_account == {("USD", "411100"): Decimal("160.00"), ("USD", "701000"): Decimal("-145.00"),
                                         ("USD", "445710"): Decimal("-15.00")}
    assert report.by_currency["USD"].sales == Decimal("165.00")
    assert report.by_currency["USD"].sage_sales == Decimal("160.00")
    assert [(d.what, d.store_id, d.store_amount, d.sage_amount) for d in report.differences] == [
        ("Order amount differs", "2", Decimal("55.00"), Decimal("50.00"))]
    assert "411100" in to_csv(report)
