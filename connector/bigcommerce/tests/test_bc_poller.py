"""Polling (watermark, overlap, keyset paging, dedup) and backfill (progress, call count)."""

from __future__ import annotations

import datetime as dt
import io
import time

import pytest
from django.core.management import call_command

from connector.bigcommerce import poller
from connector.bigcommerce.formats import parse_rfc2822
from connector.bigcommerce.management.commands.bc_backfill import Command as BackfillCommand
from connector.models import InboundEvent, SyncCursor, SyncRecord, SyncRun
from tests.support.bigcommerce import Sandbox
from tests.support.factories import make_integration, make_store

pytestmark = pytest.mark.django_db
LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def box():
    sandbox = Sandbox(orders=60, validate=False)
    yield sandbox
    sandbox.stop()


def integration_for(box, **kw):
    return make_integration(make_store(api_base_url=box.url), **kw)


def set_cursor(integration, moment):
    SyncCursor.objects.update_or_create(integration=integration, stream="orders",
                                        defaults={"value": moment.isoformat()})


def cursor(integration):
    return dt.datetime.fromisoformat(SyncCursor.objects.get(integration=integration, stream="orders").value)


def postable(box):
    return {o.id for o in box.store.orders.values() if o.status_id != 0}


def test_poll_reads_everything_once_then_only_changes(box):
    integration = integration_for(box)
    set_cursor(integration, LONG_AGO)
    first = poller.poll_orders(integration, box.client())
    assert first["seen"] == 60 and first["new"] == 60
    assert {int(r) for r in SyncRecord.objects.values_list("external_id", flat=True)} == postable(box)
    newest = max(o.date_modified for o in box.store.orders.values())
    assert cursor(integration) == newest.replace(microsecond=0)
    again = poller.poll_orders(integration, box.client())
    assert again["new"] == 0 and again["queued"] == 0
    changed = next(o for o in box.store.orders.values() if o.status_id not in (0, 10))
    box.store.set_status(changed.id, 10)
    third = poller.poll_orders(integration, box.client())
    assert third["new"] == 1
    record = SyncRecord.objects.get(external_id=str(changed.id))
    assert record.payload["status_id"] == 10 and record.source_version == record.payload["date_modified"]


def test_overlap_window_catches_late_writes_behind_the_watermark(box):
    integration = integration_for(box, poll_overlap_seconds=300)
    set_cursor(integration, LONG_AGO)
    poller.poll_orders(integration, box.client())
    mark = cursor(integration)
    inside, outside = [o for o in box.store.orders.values() if o.status_id != 0][:2]
    inside.date_modified = mark - dt.timedelta(seconds=120)  # committed late, stamped earlier
    outside.date_modified = mark - dt.timedelta(seconds=900)
    result = poller.poll_orders(integration, box.client())
    assert result["new"] == 1
    assert InboundEvent.objects.filter(dedup_key__endswith=f":order:{inside.id}:"
                                       f"{inside.date_modified:%a, %d %b %Y %H:%M:%S +0000}").exists()
    assert cursor(integration) == mark, "the watermark never moves back"


def test_keyset_paging_survives_a_crowded_second_and_changes_during_the_poll(box):
    integration = integration_for(box)
    set_cursor(integration, LONG_AGO)
    crowded = dt.datetime(2026, 1, 5, 12, 0, 0, tzinfo=dt.UTC)
    for order in list(box.store.orders.values())[:25]:
        order.date_modified = crowded  # 25 orders in one second, pages of 7
    result = poller.poll_orders(integration, box.client(), limit=7)
    assert result["new"] == 60
    assert InboundEvent.objects.filter(source="poll", scope="order").count() == 60


def test_first_poll_starts_at_the_integration_creation(box):
    integration = integration_for(box)
    poller.poll_orders(integration, box.client())
    assert SyncRecord.objects.count() == 0  # the seeded history is older: that is the backfill's job
    box.store.create_order({"status_id": 11})
    assert poller.poll_orders(integration, box.client())["new"] == 1


def test_refund_stream(box):
    integration = integration_for(box)
    SyncCursor.objects.create(integration=integration, stream="refunds", value=LONG_AGO.isoformat())
    result = poller.poll_refunds(integration, box.client())
    assert result["new"] == len(box.store.refunds) > 0
    assert SyncRecord.objects.filter(kind="refund", action="post_credit_note").count() == len(box.store.refunds)
    assert poller.poll_refunds(integration, box.client())["new"] == 0


def test_poll_integration_records_a_run(box):
    integration = integration_for(box)
    set_cursor(integration, LONG_AGO)
    client = box.client()
    run = poller.poll_integration(integration, client)
    assert run.state == "done" and run.api_calls == client.request_count and run.seen >= 60
    assert "order versions read" in run.message


def test_backfill_via_the_command_prints_progress_and_fills_the_run(box):
    integration = integration_for(box)
    since = min(o.date_created for o in box.store.orders.values())
    out = io.StringIO()
    call_command(BackfillCommand(), integration=integration.pk, since=since.strftime("%Y-%m-%dT%H:%M:%S"),
                 stdout=out)
    run = SyncRun.objects.get(kind="backfill")
    assert run.state == "done" and run.total == 60 and run.seen == 60
    assert run.api_calls >= 2 and run.params["last_id"] == max(box.store.orders)
    assert "60 / 60 (100 %)" in out.getvalue()
    assert SyncRecord.objects.filter(kind="order").count() == len(postable(box))


def test_backfill_honours_the_end_date_and_resumes(box):
    integration = integration_for(box)
    dates = sorted(o.date_created for o in box.store.orders.values())
    until = dates[29]
    run = poller.backfill(integration, LONG_AGO, until, client=box.client(), limit=10)
    assert run.total == 30 and run.seen == 30
    again = poller.backfill(integration, LONG_AGO, until, client=box.client(), limit=10)
    assert again.seen == 30 and SyncRecord.objects.filter(kind="order").count() == len(
        {o.id for o in box.store.orders.values() if o.status_id != 0 and o.date_created <= until})


def test_a_backfill_handed_to_another_worker_stops_and_the_other_resumes_it(box):
    """The sweeper hands a stalled run on by moving its progress_at: the worker it was taken from
    stops at its next page; the one it was given to carries on from the last order id saved."""
    from django.utils import timezone

    integration = integration_for(box)
    run = poller.start_backfill(integration, LONG_AGO)
    pages = []

    def taken_over_after_the_first_page(current):
        pages.append(current.seen)
        if len(pages) == 1:
            SyncRun.objects.filter(pk=current.pk).update(progress_at=timezone.now())  # as the sweeper does

    poller.backfill(integration, LONG_AGO, run=run, client=box.client(), limit=10,
                    progress=taken_over_after_the_first_page)
    run.refresh_from_db()
    # Page two was read but its progress not saved: the new owner reads it again (idempotent).
    assert pages == [10] and run.seen == 10 and run.params["last_id"] and run.state == SyncRun.State.RUNNING
    resumed = poller.backfill(integration, LONG_AGO, run=SyncRun.objects.get(pk=run.pk), client=box.client(),
                              limit=10)
    assert resumed.state == SyncRun.State.DONE and resumed.seen == 60
    assert SyncRecord.objects.filter(kind="order").count() == len(postable(box))


@pytest.mark.e2e
def test_backfill_of_10000_orders_reads_them_in_at_most_50_calls():
    big = Sandbox(orders=10_000, validate=False)
    try:
        # Sage X3 without GL posting: no actions, so this measures reading, not record writing.
        integration = integration_for(big, edition="sagex3")
        started = time.monotonic()
        run = poller.backfill(integration, LONG_AGO, client=big.client(), include_refunds=False)
        reads = big.calls("GET /v2/orders")
        print(f"\nbackfill of {run.seen} orders: {reads} order-reading calls, {run.api_calls} API calls in all, "
              f"{time.monotonic() - started:.1f} s")
        assert run.seen == run.total == 10_000
        assert reads <= 50 and reads <= run.seen / 200
        assert InboundEvent.objects.filter(source="backfill").count() == 10_000
    finally:
        big.stop()


def test_backfill_call_count_scales_at_250_per_call(box):
    """The fast version of the 10,000-order test: 60 orders in pages of 250 = 1 read + count."""
    integration = integration_for(box)
    poller.backfill(integration, LONG_AGO, client=box.client(), include_refunds=False)
    assert box.calls("GET /v2/orders") == 1 and box.calls("GET /v2/orders/count") == 1


def test_backfill_refreshes_the_planners_statistics_as_it_grows_the_tables(box, monkeypatch):
    """A backfill is a bulk load: it ANALYZEs the tables it grows at 500 orders, then at each
    doubling (here 10, 20, 40 with pages of 10), instead of waiting for autovacuum's next look."""
    from connector.services import bulk

    analyzed = []
    monkeypatch.setattr(poller, "analyze", lambda *models: analyzed.append([m._meta.db_table for m in models]))
    monkeypatch.setattr(poller, "analyze_due", lambda before, after: bulk.analyze_due(before, after, first=10))
    poller.backfill(integration_for(box), LONG_AGO, client=box.client(), limit=10, include_refunds=False)
    assert len(analyzed) == 3  # 60 orders: past 10, 20 and 40
    assert analyzed[0] == ["connector_syncrecord", "connector_inboundevent", "connector_agentjob",
                           "mappings_recordlink"]


@pytest.mark.parametrize(("before", "after", "due"), [
    (0, 250, False), (250, 500, True), (500, 750, False), (750, 1000, True), (1000, 1250, False),
    (3750, 4000, True), (0, 100_000, True), (100_000, 100_250, False), (127_750, 128_000, True)])
def test_analyze_is_due_at_500_and_each_doubling(before, after, due):
    from connector.services.bulk import analyze_due

    assert analyze_due(before, after) is due


def test_analyze_runs_on_postgresql_and_is_skipped_elsewhere():
    from django.db import connection

    from connector.services.bulk import analyze

    integration = make_integration(make_store())
    SyncRecord.objects.bulk_create([SyncRecord(integration=integration, kind="order", external_id=str(n),
                                               action="post_invoice") for n in range(20)])
    analyze(SyncRecord, InboundEvent)  # SQLite: nothing to do, and no error
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:  # statistics written by this test's ANALYZE (rolled back after it)
        cursor.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'connector_syncrecord' AND attname = 'kind'")
        assert cursor.fetchone()[0] == 1


def test_parse_of_sandbox_dates():
    assert parse_rfc2822("Mon, 12 Oct 2026 22:52:50 +0000").year == 2026
