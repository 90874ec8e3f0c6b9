"""The run loop's change poll on a Sage 100 backend: the integration's price level comes from the
server's heartbeat config and wins over the agent's own option; a change of level reads every price
again; a kind Sage refuses does not stop the others."""

from __future__ import annotations

import io

from agent.backends.sage100sim import Sage100SimulatorBackend
from agent.client import AgentClient
from agent.config import AgentConfig
from agent.errors import SageValidationError
from agent.journal import Journal
from agent.runner import Runner
from agent.simulator.sage100 import Sage100Company

AGENT_KEY = "test-agent-key-0123456789abcdef"  # the key conftest.FakeAgentApi accepts


def make(fake_api, tmp_path, backend, kinds):
    config = AgentConfig(server=fake_api.url, key=AGENT_KEY, backend="sage100sim", company=str(backend.company_path),
                         journal=str(tmp_path / "journal.sqlite3"), once=True, lease_wait_seconds=0,
                         change_kinds=kinds)
    return Runner(config, backend, AgentClient(config.server, config.key), Journal(config.journal), out=io.StringIO())


def run_round(runner) -> None:
    runner._next_heartbeat = runner._next_changes = 0.0
    assert runner.run() == 0


def company(tmp_path) -> str:
    sage = Sage100Company.create(tmp_path / "abc.sqlite3")
    sage.set_item("MUG", price="10.00", levels={"1": "9.00", "2": "8.00"}, warehouses={"000": 4})
    sage.close()
    return str(tmp_path / "abc.sqlite3")


def prices(fake_api) -> list[tuple[str, str]]:
    return [(i["stock_code"], i["price"]) for c in fake_api.changes if c["kind"] == "price" for i in c["items"]]


def test_the_server_s_price_level_wins_and_a_new_level_reads_every_price_again(fake_api, tmp_path):
    backend = Sage100SimulatorBackend(company(tmp_path), price_level="1")  # the agent's own option
    fake_api.config["poll_changes_seconds"] = 0
    fake_api.config["price_level"] = "2"
    runner = make(fake_api, tmp_path, backend, ["price"])
    try:
        run_round(runner)
        assert prices(fake_api) == [("MUG", "8.00")]
        run_round(runner)
        assert prices(fake_api) == [("MUG", "8.00")]  # nothing changed, nothing pushed again
        fake_api.config["price_level"] = ""  # the accountant clears it: the standard price
        run_round(runner)
        assert prices(fake_api) == [("MUG", "8.00"), ("MUG", "10.00")]
    finally:
        runner.journal.close()
        backend.close()


def test_an_older_server_without_a_level_leaves_the_agent_s_own(fake_api, tmp_path):
    backend = Sage100SimulatorBackend(company(tmp_path), price_level="1")
    fake_api.config["poll_changes_seconds"] = 0
    runner = make(fake_api, tmp_path, backend, ["price"])
    try:
        run_round(runner)
        assert prices(fake_api) == [("MUG", "9.00")]
    finally:
        runner.journal.close()
        backend.close()


def test_a_kind_sage_refuses_does_not_stop_the_others(fake_api, tmp_path):
    class NoPrices(Sage100SimulatorBackend):
        def read_changes(self, kind, since, options=None):
            if kind == "price":
                raise SageValidationError("the boi backend reads the standard price only")
            return super().read_changes(kind, since, options)

    backend = NoPrices(company(tmp_path))
    fake_api.config["poll_changes_seconds"] = 0
    runner = make(fake_api, tmp_path, backend, ["price", "stock"])
    try:
        run_round(runner)
        assert [c["kind"] for c in fake_api.changes] == ["stock"]
        assert fake_api.changes[0]["items"][0]["stock_code"] == "MUG"
    finally:
        runner.journal.close()
        backend.close()
