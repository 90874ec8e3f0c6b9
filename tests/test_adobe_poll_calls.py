"""API calls an Adobe Commerce integration costs, against the sandbox Adobe Commerce over HTTP:
an idle poll is one call (the credit memo feed is read only when an order changed, or hourly); a
credit memo made while idle arrives with the next poll because saving it moved its order's
updated_at; and a stock push with SKUs the store does not have costs a small constant number of
calls, naming those SKUs as matching nothing (admin Stock levels)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone

from connector.adobe.poller import MEMOS_STREAM, poll_integration
from connector.flows import stock
from connector.flows import stores as flow_stores
from connector.models import InboundEvent, StockLevel, SyncCursor, SyncRun
from sandbox.adobe.store import StoreError
from sandbox.adobe.testkit import Adobe
from tests.support.adobe import adobe_integration


@pytest.fixture(scope="module")
def sandbox():
    store = Adobe(orders=30, seed=11)
    yield store
    store.close()


@pytest.fixture
def integration(db, sandbox, tmp_path):
    yield adobe_integration(sandbox, tmp_path)
    flow_stores._platform_of_store.clear()


def _refund_an_order(sandbox):
    """A credit memo on the first seeded order the store lets us refund (money paid, not yet refunded)."""
    for order in sorted(sandbox.app.store.orders.values(), key=lambda o: o.entity_id):
        if order.invoices and not order.creditmemos:
            try:
                return sandbox.app.store.refund(order.entity_id)
            except StoreError:
                continue
    raise AssertionError("the seeded store has no refundable order")


def test_an_idle_poll_is_one_call_and_a_credit_memo_arrives_with_its_order(integration, sandbox):
    first = poll_integration(integration)  # no credit memo feed read yet: both feeds
    assert first.api_calls == 2
    idle = poll_integration(integration)
    assert idle.api_calls == 1 and idle.creditmemos["seen"] == 0
    # A credit memo made while nothing else happens: Magento saves its order with it.
    memo = _refund_an_order(sandbox)
    found = poll_integration(integration)
    assert found.orders["new"] == 1 and found.creditmemos["new"] == 1, found.message
    assert found.api_calls == 2
    assert InboundEvent.objects.filter(integration=integration, scope="refund",
                                       resource_id=str(memo.entity_id)).exists()
    # The overlap re-reads that order version; it is not new, so the feed is not read again.
    again = poll_integration(integration)
    assert again.orders["seen"] >= 1 and again.orders["new"] == 0 and again.api_calls == 1


def test_the_credit_memo_feed_is_still_read_hourly(integration):
    poll_integration(integration)
    assert poll_integration(integration).api_calls == 1
    hour_ago = timezone.now() - dt.timedelta(seconds=settings.REFUND_POLL_MAX_SECONDS + 1)
    SyncCursor.objects.filter(integration=integration, stream=MEMOS_STREAM).update(updated_at=hour_ago)
    safety = poll_integration(integration)
    assert safety.api_calls == 2
    # Reading it stamped the cursor: the next idle poll is one call again.
    assert poll_integration(integration).api_calls == 1


def test_a_stock_push_with_unknown_skus_costs_a_few_calls(integration, sandbox):
    products = sorted(sandbox.app.store.products.values(), key=lambda p: p.id)
    known = [p.sku for p in products if p.type_id == "simple"][:10]
    assert len(known) == 10
    unknown = [f"SAGE-ONLY-{n:03d}" for n in range(100)]
    StockLevel.objects.bulk_create([StockLevel(integration=integration, sku=sku, sage_in_stock=Decimal(n + 1))
                                    for n, sku in enumerate(unknown + known)])
    run = stock.push_stock(integration)
    assert run.state == SyncRun.State.DONE
    # The batch is refused once, its SKUs looked up in one search, and sent again without the 100.
    assert run.api_calls <= 4, run.message
    assert (run.seen, run.failed, run.succeeded) == (110, 100, 10)
    levels = {level.sku: level for level in StockLevel.objects.filter(integration=integration)}
    assert all(levels[sku].matched is False and "has no product" in levels[sku].message for sku in unknown)
    assert all(levels[sku].matched is True for sku in known)
    saved = sandbox.app.store.source_items
    for n, sku in enumerate(known, start=len(unknown)):
        assert saved[(sku, "default")].quantity == Decimal(n + 1)
    # Nothing changed since: the next push sends nothing.
    assert stock.push_stock(integration).api_calls == 0
