"""Sage stock → store inventory against the sandbox store over HTTP: only changed SKUs, in one
call per 2,000, unknown SKUs listed for the accountant, Sage codes mapped back to store SKUs."""

from decimal import Decimal

import pytest

from connector.flows.stock import push_stock
from connector.models import StockLevel
from sandbox.bigcommerce.app import BigCommerceApp
from sandbox.bigcommerce.store import BigCommerceStore
from sandbox.httpserver import SandboxServer
from tests.support.factories import IntegrationFactory, ItemMappingFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def store():
    bc = BigCommerceStore(seed=3, orders=0, store_hash="stockpush", n_products=60)
    app = BigCommerceApp(bc, token="t", client_secret="s")
    app.faults.quota = 10**9
    server = SandboxServer(app).start()
    yield bc, server
    server.stop()


def skus(bc) -> list[str]:
    return sorted(v.sku for v in bc.catalog.variants.values()
                  if bc.catalog.products[v.product_id].tracking == "variant" or not v.sku_id)


def on_hand(bc, sku: str) -> int:
    variant = bc.catalog.variant_by_sku(sku)
    return bc.catalog.stock.get((variant.id, 1))


def test_only_changed_skus_are_pushed_in_one_call_and_unknown_ones_are_listed(store):
    bc, server = store
    integration = IntegrationFactory(store__api_base_url=server.url, store__store_hash="stockpush",
                                     store__access_token="t", stock_quantity="available")
    known = skus(bc)[:120]
    StockLevel.objects.bulk_create(
        [StockLevel(integration=integration, sku=sku, sage_in_stock=10, pushed_quantity=10) for sku in known])
    changed = known[:100]
    StockLevel.objects.filter(integration=integration, sku__in=changed).update(sage_in_stock=Decimal("7"),
                                                                               sage_allocated=Decimal("2"))
    run = push_stock(integration)
    assert run.api_calls == 1 and run.succeeded == 100 and run.failed == 0
    assert {on_hand(bc, sku) for sku in changed} == {5}  # available = in stock − allocated
    assert push_stock(integration).api_calls == 0  # nothing changed since

    StockLevel.objects.create(integration=integration, sku="NOT-IN-STORE", sage_in_stock=3)
    StockLevel.objects.filter(integration=integration, sku=changed[0]).update(sage_in_stock=9)
    run = push_stock(integration)
    assert run.failed == 1 and run.succeeded == 1
    assert on_hand(bc, changed[0]) == 7
    unknown = StockLevel.objects.get(integration=integration, sku="NOT-IN-STORE")
    assert unknown.matched is False and "NOT-IN-STORE" in unknown.message and "Item mappings" in unknown.message


def test_sage_codes_are_pushed_under_the_mapped_store_sku(store):
    bc, server = store
    integration = IntegrationFactory(store__api_base_url=server.url, store__store_hash="stockpush",
                                     store__access_token="t", stock_quantity="in_stock")
    sku = skus(bc)[0]
    ItemMappingFactory(integration=integration, store_sku=sku, sage_code="SAGE-CODE-1")
    StockLevel.objects.create(integration=integration, sku="SAGE-CODE-1", sage_in_stock=42, sage_allocated=5)
    run = push_stock(integration)
    assert run.succeeded == 1 and on_hand(bc, sku) == 42


def test_many_unknown_skus_cost_a_lookup_not_a_call_each(store):
    """An absolute adjustment is refused whole for one unknown SKU; the unknown ones are found by
    looking the batch's SKUs up, not by sending halves until each is isolated."""
    bc, server = store
    integration = IntegrationFactory(store__api_base_url=server.url, store__store_hash="stockpush",
                                     store__access_token="t", stock_quantity="in_stock")
    known = skus(bc)[:80]
    unknown = [f"GONE-{n:03d}" for n in range(20)]
    StockLevel.objects.bulk_create([StockLevel(integration=integration, sku=sku, sage_in_stock=4)
                                    for sku in known + unknown])
    run = push_stock(integration)
    assert run.succeeded == 80 and run.failed == 20
    # refused batch + 2 look-ups of 50 SKUs + the batch again without the unknown ones
    assert run.api_calls == 4, run.api_calls
    assert {on_hand(bc, sku) for sku in known} == {4}
    assert set(StockLevel.objects.filter(integration=integration, matched=False).values_list("sku", flat=True)) \
        == set(unknown)
