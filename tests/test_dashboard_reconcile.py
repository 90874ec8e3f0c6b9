"""The reconciliation of a seeded store day against the sandbox store's own figures: refunds,
three currencies, the store's time zone, an unpaid order left out and a paid order the connector
never picked up shown as a difference; then posted, the day reconciles. Plus CSV, PDF and the
management command."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command

from connector import demo
from connector.dashboard.export import to_csv, to_pdf
from connector.dashboard.reconcile import reconcile_day, records_of_day
from connector.models import SyncRecord
from tests import dashboard_seed as seeded


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
