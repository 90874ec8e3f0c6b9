"""The Sage 100 price level is the integration's, chosen in admin: the server sends it to the agent in
the heartbeat's config, the agent reads prices at that level, and what reaches each store is its
own integration's level. Two integrations on one simulated Sage 100 company, each with its agent
(a real agent Runner over HTTP to the live Django server), push different prices for the same item
to their two sandbox BigCommerce stores; changing one integration's level re-reads every price."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest

from agent.backends.sage100sim import Sage100SimulatorBackend
from agent.client import AgentClient
from agent.config import AgentConfig
from agent.journal import Journal
from agent.runner import Runner
from agent.simulator.sage100 import Sage100Company
from connector.flows.stock import push_prices
from connector.models import PriceLevel, SyncCursor
from sandbox.bigcommerce.app import BigCommerceApp
from sandbox.bigcommerce.store import BigCommerceStore
from sandbox.httpserver import SandboxServer
from tests.support.factories import AgentFactory, IntegrationFactory, SageConnectionFactory, TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stores():
    servers = []
    for n in (1, 2):
        bc = BigCommerceStore(seed=3, orders=0, store_hash=f"lvl{n}", n_products=10)
        app = BigCommerceApp(bc, token="t", client_secret="s")
        app.faults.quota = 10**9
        servers.append((bc, SandboxServer(app).start()))
    yield servers
    for _, server in servers:
        server.stop()


def skus(bc) -> list[str]:
    return sorted(v.sku for v in bc.catalog.variants.values()
                  if bc.catalog.products[v.product_id].tracking == "variant" or not v.sku_id)


class AgentProcess:
    """One agent as `agent run --once` runs it: heartbeat, change poll, push, over real HTTP."""

    def __init__(self, server_url: str, agent, company_path, tmp_path):
        config = AgentConfig(server=server_url, key=agent.plain_key, backend="sage100sim", company=str(company_path),
                             journal=str(tmp_path / f"journal-{agent.pk}.sqlite3"), once=True, lease_wait_seconds=0,
                             change_kinds=["price"], poll_changes_seconds=0)
        self.runner = Runner(config, Sage100SimulatorBackend(str(company_path)), AgentClient(server_url, agent.plain_key),
                             Journal(config.journal), out=io.StringIO())

    def run_once(self) -> None:
        # A heartbeat (it carries the integration's settings) and a change poll in this round, as
        # a running agent does on its heartbeat and change intervals.
        self.runner._next_heartbeat = self.runner._next_changes = 0.0
        assert self.runner.run() == 0

    def close(self) -> None:
        self.runner.journal.close()
        self.runner.backend.close()


def store_price(bc, sku: str) -> Decimal:
    return bc.catalog.unit_price(bc.catalog.variant_by_sku(sku))


def test_two_integrations_on_one_company_push_their_own_price_level(live_server, stores, tmp_path):
    (bc1, server1), (bc2, server2) = stores
    codes = sorted(set(skus(bc1)) & set(skus(bc2)))[:5]
    company = Sage100Company.create(tmp_path / "abc.sqlite3")
    for code in codes:
        company.set_item(code, price="10.00", levels={"1": "9.50", "2": "8.75"}, warehouses={"000": 5})
    company.close()
    tenant = TenantFactory()
    sage = SageConnectionFactory(tenant=tenant, edition="sage100", company_code="ABC")  # one Sage 100 company
    standard = IntegrationFactory(tenant=tenant, sage=sage, name="Retail", store__tenant=tenant,
                                  store__api_base_url=server1.url, store__store_hash="lvl1", store__access_token="t",
                                  sage100_price_level="")
    trade = IntegrationFactory(tenant=tenant, sage=sage, name="Trade", store__tenant=tenant,
                               store__api_base_url=server2.url, store__store_hash="lvl2", store__access_token="t",
                               sage100_price_level="2")
    agents = [AgentProcess(live_server.url, AgentFactory(tenant=tenant, integration=integration),
                           company.path, tmp_path) for integration in (standard, trade)]
    try:
        for agent in agents:
            agent.run_once()
        assert agents[0].runner.server.price_level == "" and agents[1].runner.server.price_level == "2"
        for integration in (standard, trade):
            push_prices(integration)
        assert {store_price(bc1, code) for code in codes} == {Decimal("10.00")}  # the standard price
        assert {store_price(bc2, code) for code in codes} == {Decimal("8.75")}  # price level 2
        assert set(PriceLevel.objects.filter(integration=trade).values_list("sage_price", flat=True)) == \
            {Decimal("8.75")}

        # The accountant moves Retail to price level 1: the running agent reads every price again at it.
        standard.sage100_price_level = "1"
        standard.save(update_fields=["sage100_price_level"])
        agents[0].run_once()
        assert agents[0].runner.server.price_level == "1"
        push_prices(standard)
        assert {store_price(bc1, code) for code in codes} == {Decimal("9.50")}
        assert {store_price(bc2, code) for code in codes} == {Decimal("8.75")}  # Trade's untouched
        streams = set(SyncCursor.objects.filter(integration=standard).values_list("stream", flat=True))
        assert "agent:price@1" in streams  # each level keeps its own cursor

        # A later change at level 2 reaches Trade only; Retail (level 1) has nothing new to push.
        company = Sage100Company(tmp_path / "abc.sqlite3")
        company.set_item(codes[0], levels={"2": "7.00"})
        company.close()
        for agent in agents:
            agent.run_once()
        assert push_prices(trade).succeeded == 1
        assert push_prices(standard).api_calls == 0
        assert store_price(bc2, codes[0]) == Decimal("7.00") and store_price(bc1, codes[0]) == Decimal("9.50")
    finally:
        for agent in agents:
            agent.close()
