"""The Adobe Commerce adapter lists a day's orders and credit memos (orders_created_between,
refunds_created_between) against the sandbox Adobe Commerce over HTTP: searchCriteria on
created_at, pageSize 300, an explicit sort, stopping on total_count, fields= trimmed to what the
normaliser reads; the day is the store's, in its time zone. The dashboard's reconciliation of an
Adobe integration's day asks the store, not the stored records."""

from __future__ import annotations

import collections
import datetime as dt
import zoneinfo

import pytest

from connector.adobe.adapter import AdobeCommerceAdapter
from connector.adobe.client import AdobeCommerceClient, OAuth1Credentials
from connector.dashboard.reconcile import day_bounds, reconcile_day
from connector.flows import stores as flow_stores
from sandbox.adobe.testkit import Adobe
from tests.support.adobe import adobe_integration

EVER = (dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
ZONE = zoneinfo.ZoneInfo("America/Los_Angeles")  # a day there straddles two UTC dates


@pytest.fixture(scope="module")
def sandbox():
    store = Adobe(orders=420, seed=3)  # more than one page of 300
    yield store
    store.close()


def adapter_for(sandbox) -> AdobeCommerceAdapter:
    i = sandbox.integration
    return AdobeCommerceAdapter(AdobeCommerceClient(sandbox.root, auth="oauth1", oauth1=OAuth1Credentials(
        i.consumer_key, i.consumer_secret, i.access_token, i.access_token_secret)))


@pytest.fixture
def requests_sent(monkeypatch):
    """The query of every GET the client sends (still sent, over HTTP)."""
    sent = []
    original = AdobeCommerceClient.get

    def spy(self, path, params=None, **kwargs):
        sent.append((path, dict(params or [])))
        return original(self, path, params=params, **kwargs)

    monkeypatch.setattr(AdobeCommerceClient, "get", spy)
    return sent


def busiest_day(orders: list[dict]) -> dt.date:
    days = collections.Counter(created(o).astimezone(ZONE).date() for o in orders)
    return days.most_common(1)[0][0]


def created(record: dict) -> dt.datetime:
    return dt.datetime.fromisoformat(str(record["created_at"])).replace(tzinfo=dt.UTC)


def test_the_trimmed_day_listing_normalises_exactly_as_the_full_records(sandbox, requests_sent):
    adapter = adapter_for(sandbox)
    full_orders = {str(o["entity_id"]): o for o in adapter.changed_orders(*EVER)}
    full_memos = {str(m["entity_id"]): m for m in adapter.changed_refunds(*EVER)}
    requests_sent.clear()
    listed_orders = {str(o["entity_id"]): o for o in adapter.orders_created_between(*EVER)}
    listed_memos = {str(m["entity_id"]): m for m in adapter.refunds_created_between(*EVER)}
    assert listed_orders.keys() == full_orders.keys() and len(listed_orders) == 420
    assert listed_memos.keys() == full_memos.keys() and listed_memos
    # Trimmed: fewer fields than the full order, and the neutral model is the same to the cent.
    some = next(iter(listed_orders))
    assert len(listed_orders[some]) < len(full_orders[some])
    for entity_id, raw in listed_orders.items():
        assert adapter.normalize_order(raw) == adapter.normalize_order(full_orders[entity_id]), entity_id
    for entity_id, raw in listed_memos.items():
        assert adapter.normalize_refund(raw) == adapter.normalize_refund(full_memos[entity_id]), entity_id
    # Every page asked for at most 300, sorted explicitly, trimmed; two pages of orders for 420.
    pages = [params for path, params in requests_sent if path == "/V1/orders"]
    assert len(pages) == 2
    for _path, params in requests_sent:
        assert int(params["searchCriteria[pageSize]"]) == 300
        assert params["searchCriteria[sortOrders][0][field]"] == "entity_id"
        assert params["searchCriteria[sortOrders][0][direction]"] == "ASC"
        assert params["fields"].startswith("items[") and "total_count" in params["fields"]
        assert "status_histories" not in params["fields"]


def test_a_day_in_the_store_s_time_zone_lists_that_day_s_orders_and_memos_only(sandbox):
    adapter = adapter_for(sandbox)
    orders = list(adapter.changed_orders(*EVER))
    memos = list(adapter.changed_refunds(*EVER))
    day = busiest_day(orders)
    start, end = day_bounds(day, ZONE)
    expected = {str(o["entity_id"]) for o in orders if created(o).astimezone(ZONE).date() == day}
    expected_memos = {str(m["entity_id"]) for m in memos if created(m).astimezone(ZONE).date() == day}
    # The local day crosses UTC midnight: a UTC-date filter would be wrong for some of them.
    assert {created(o).date() for o in orders if str(o["entity_id"]) in expected} != {day} or len(expected) < 2
    assert {str(o["entity_id"]) for o in adapter.orders_created_between(start, end)} == expected
    assert {str(m["entity_id"]) for m in adapter.refunds_created_between(start, end)} == expected_memos


def test_the_dashboard_reconciles_an_adobe_day_by_asking_the_store(db, sandbox, tmp_path):
    integration = adobe_integration(sandbox, tmp_path, timezone=str(ZONE))
    adapter = adapter_for(sandbox)
    orders = list(adapter.changed_orders(*EVER))
    day = busiest_day(orders)
    try:
        report = reconcile_day(integration, day)
    finally:
        flow_stores._platform_of_store.clear()
    assert report.source == "asked of the store" and report.source_note == "", report.source_note
    assert "could not" not in report.source_note
    placed = [adapter.normalize_order(o) for o in orders if created(o).astimezone(ZONE).date() == day]
    sales = [o for o in placed if o.status.counts_as_paid and not o.status.never_a_sale]
    assert sales, "the busiest day has paid orders"
    assert sorted(o.order_id for o in report.orders) == sorted(o.order_id for o in sales)
    # Nothing was posted: every sale of the day is a difference the accountant sees.
    assert report.differences and not report.reconciles
    by_currency = collections.defaultdict(lambda: 0)
    for order in sales:
        by_currency[order.currency] += order.totals.total_inc_tax
    assert {c: t.sales for c, t in report.by_currency.items() if t.sales} == dict(by_currency)
