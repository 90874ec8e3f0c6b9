"""Adobe Commerce beside BigCommerce in what the accountant and the developer use: the legacy stock
push sends the whole stock item, the I/O Events key host is a checked setting, the paid-state picker
and the channel picker come from the store adapter, the backfill form is store-neutral, and
per-store-view / per-website accounts reach the Sage 50 and Sage X3 documents of Adobe orders."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connector.adobe.adapter import AdobeCommerceAdapter
from connector.adobe.client import OAUTH1, AdobeCommerceClient, OAuth1Credentials
from connector.commerce import StockLevel
from sandbox.adobe.testkit import Adobe


@pytest.fixture
def sandbox():
    store = Adobe(orders=5, validate=True)
    yield store
    store.close()


def sandbox_adapter(sandbox: Adobe) -> AdobeCommerceAdapter:
    i = sandbox.integration
    client = AdobeCommerceClient(sandbox.root, auth=OAUTH1, store_code="default",
                                 oauth1=OAuth1Credentials(i.consumer_key, i.consumer_secret, i.access_token,
                                                          i.access_token_secret))
    client.sleep = lambda seconds: None
    return AdobeCommerceAdapter(client)


def test_legacy_stock_push_sends_the_whole_stock_item_and_validates_against_the_spec(sandbox):
    assert sandbox.control("POST", "/settings", {"msi_enabled": False}).status_code == 200
    product = next(p for p in sandbox.app.store.products.values() if p.id in sandbox.app.store.stock_items)
    before = sandbox.get(f"stockItems/{product.sku}").json()
    adapter = sandbox_adapter(sandbox)
    assert adapter.push_stock([StockLevel(product.sku, Decimal(7)), StockLevel("NO-SUCH-SKU", Decimal(1))]) \
        == {"NO-SUCH-SKU"}
    after = sandbox.get(f"stockItems/{product.sku}").json()
    assert after["qty"] == 7 and after["is_in_stock"] is True
    # Settings the push does not own come back as they were (a partial body would reset them).
    assert {k: v for k, v in after.items() if k not in ("qty", "is_in_stock", "low_stock_date")} == \
        {k: v for k, v in before.items() if k not in ("qty", "is_in_stock", "low_stock_date")}
    puts = [r for r in sandbox.app.counters if r.startswith("PUT")]
    assert puts, sandbox.app.counters  # the legacy route was the one used
    assert sandbox.control("GET", "/violations").json()["count"] == 0
