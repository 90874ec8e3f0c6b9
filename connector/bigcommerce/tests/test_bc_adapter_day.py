"""The BigCommerce adapter's account of a span of time (what the reconciliation asks a store):
the orders created in it, without deleted ones, and its refunds, with spec-valid calls only."""

from __future__ import annotations

import datetime as dt

from connector.bigcommerce.adapter import BigCommerceAdapter
from tests.support.bigcommerce import Sandbox, sandbox  # noqa: F401 - fixture


def test_orders_and_refunds_created_between(sandbox):  # noqa: F811
    store = sandbox.store
    ordered = sorted(store.orders.values(), key=lambda o: o.date_created)
    start, end = ordered[10].date_created, ordered[40].date_created
    deleted = next(o for o in ordered[11:40] if o.date_created not in (start, end))
    deleted.is_deleted = True
    adapter = BigCommerceAdapter(sandbox.client())

    orders = list(adapter.orders_created_between(start, end))
    expected = {o.id for o in store.orders.values() if start <= o.date_created <= end and not o.is_deleted}
    assert {o["id"] for o in orders} == expected and deleted.id not in expected and len(expected) >= 20
    assert all("total_inc_tax" in o for o in orders)  # whole orders: the normaliser reads them as they are
    refunds = list(adapter.refunds_created_between(start, end))
    assert {r["id"] for r in refunds} == {r.id for r in store.refunds.values() if start <= r.created <= end}
    normalized = [adapter.normalize_refund(r) for r in refunds]
    assert all(refund.order_id for refund in normalized)
    assert sandbox.request_violations() == []


def test_an_empty_span_is_empty(sandbox):  # noqa: F811
    adapter = BigCommerceAdapter(sandbox.client())
    long_ago = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
    assert list(adapter.orders_created_between(long_ago, long_ago + dt.timedelta(days=1))) == []
    assert list(adapter.refunds_created_between(long_ago, long_ago + dt.timedelta(days=1))) == []
