"""Sage 100 → store catalog: prices (at the integration's price level) and quantities changed in
the simulated Sage 100 company are read by the agent's change poll (DateUpdated/TimeUpdated),
pushed through the agent API's service, and reach the sandbox BigCommerce catalog batched as the
store allows: 100 changed quantities in one inventory call, prices 50 variants a call."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from agent.backends.sage100sim import Sage100SimulatorBackend
from agent.sage100_operations import read_changes
from agent.simulator.sage100 import Sage100Company
from agentapi.services import store_changes
from connector.flows.stock import push_prices, push_stock
from connector.models import PriceLevel
from sandbox.bigcommerce.app import BigCommerceApp
from sandbox.bigcommerce.store import BigCommerceStore
from sandbox.httpserver import SandboxServer
from tests.support.factories import AgentFactory, IntegrationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def store():
    bc = BigCommerceStore(seed=3, orders=0, store_hash="s100", n_products=60)
    app = BigCommerceApp(bc, token="t", client_secret="s")
    app.faults.quota = 10**9
    server = SandboxServer(app).start()
    yield bc, app, server
    server.stop()


def skus(bc) -> list[str]:
    return sorted(v.sku for v in bc.catalog.variants.values()
                  if bc.catalog.products[v.product_id].tracking == "variant" or not v.sku_id)


def poll(backend, kind: str, since, options) -> dict:
    """The agent's change poll, and the push as the API receives it (JSON: Decimals as strings)."""
    with backend.session():
        return json.loads(json.dumps(read_changes(backend, {"kind": kind, "since": since, "options": options})))


def test_price_and_stock_changes_reach_the_catalog_batched(store, tmp_path):
    bc, app, server = store
    codes = skus(bc)[:120]
    company = Sage100Company.create(tmp_path / "abc.sqlite3")
    for code in codes:
        company.set_item(code, price="10.00", levels={"2": "9.00"}, warehouses={"000": 20, "EST": 5})
    integration = IntegrationFactory(store__api_base_url=server.url, store__store_hash="s100",
                                     store__access_token="t", stock_quantity="available",
                                     sage__edition="sage100")
    agent = AgentFactory(tenant=integration.tenant, integration=integration)
    backend = Sage100SimulatorBackend(str(company.path))
    options = {"price_level": "2", "warehouses": ["000"]}

    # First poll: everything is new.
    stock = poll(backend, "stock", None, options)
    prices = poll(backend, "price", None, options)
    for kind, answer in (("stock", stock), ("price", prices)):
        store_changes(agent, kind, answer["items"], answer["cursor"])
    before = dict(app.counters)
    assert push_stock(integration).api_calls == 1
    run = push_prices(integration)
    assert run.succeeded == 120 and run.failed == 0
    assert app.counters["PUT /v3/catalog/variants"] - before.get("PUT /v3/catalog/variants", 0) == 3  # 50+50+20
    assert {bc.catalog.unit_price(bc.catalog.variant_by_sku(code)) for code in codes} == {Decimal("9.00")}

    # Then a person changes 100 quantities and 60 prices in Sage 100: only those travel.
    for code in codes[:100]:
        company.set_item(code, warehouses={"000": 7}, on_sales_order={"000": 2})
    for code in codes[:60]:
        company.set_item(code, levels={"2": "11.50"})
    stock = poll(backend, "stock", stock["cursor"], options)
    prices = poll(backend, "price", prices["cursor"], options)
    assert len(stock["items"]) == 100 and len(prices["items"]) == 60
    store_changes(agent, "stock", stock["items"], stock["cursor"])
    store_changes(agent, "price", prices["items"], prices["cursor"])
    before = dict(app.counters)
    run = push_stock(integration)
    assert run.api_calls == 1 and run.succeeded == 100
    assert app.counters["PUT /v3/inventory/adjustments/absolute"] - before["PUT /v3/inventory/adjustments/absolute"] == 1
    assert bc.catalog.stock.get((bc.catalog.variant_by_sku(codes[0]).id, 1)) == 5  # 7 on hand − 2 on sales orders
    push_prices(integration)
    assert app.counters["PUT /v3/catalog/variants"] - before["PUT /v3/catalog/variants"] == 2  # 50 + 10
    assert bc.catalog.unit_price(bc.catalog.variant_by_sku(codes[0])) == Decimal("11.50")
    assert bc.catalog.unit_price(bc.catalog.variant_by_sku(codes[100])) == Decimal("9.00")
    assert push_prices(integration).api_calls == 0  # nothing changed since
    company.close()


def test_a_price_for_a_sku_the_store_lacks_is_listed(store, tmp_path):
    bc, app, server = store
    integration = IntegrationFactory(store__api_base_url=server.url, store__store_hash="s100",
                                     store__access_token="t", sage__edition="sage100")
    PriceLevel.objects.create(integration=integration, sku="NOT-IN-STORE", sage_price=Decimal("5"))
    PriceLevel.objects.create(integration=integration, sku=skus(bc)[0], sage_price=Decimal("5"))
    run = push_prices(integration)
    assert run.failed == 1 and run.succeeded == 1
    missing = PriceLevel.objects.get(integration=integration, sku="NOT-IN-STORE")
    assert missing.matched is False and "Item mappings" in missing.message
