"""Start the whole system as real processes for end-to-end tests and benchmarks.

    system = start_system(process_env, tmp_path, orders=200)   # inside a test using `process_env`
    ...
    system.stop()

or use the ``system_factory`` fixture, which stops what it started. What runs: uvicorn web, Celery
worker(s) and beat (connector.devstack.Stack, as `make run`), the sandbox BigCommerce store, and
the agent with the simulated Sage 50 company. The database is seeded with connector.demo's
``seed_demo`` (the same service as `make run`), the store's webhooks point at the web process.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from connector import demo
from connector.devstack import PYTHON, Stack, free_port, wait_for

# The worker must know the BigCommerce package's tasks even while that package is not an
# installed app (Celery's autodiscovery only looks at INSTALLED_APPS).
WORKER_INCLUDE = ["-I", "connector.bigcommerce.tasks"]


@dataclass
class System:
    stack: Stack
    web_url: str
    sandbox_url: str
    seed: demo.DemoSeed
    journal_path: Path
    agent_runs: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def integration(self):
        return self.seed.integration

    @property
    def company_path(self) -> Path:
        return self.seed.company_path

    # -- processes -------------------------------------------------------------------------------
    def start_agent(self, name: str = "agent", *, wrapper: str | None = None, extra: list[str] | None = None):
        """Start the agent. ``wrapper``: Python source run before the agent's main in the same
        process (fault injection); it must not print the key."""
        argv = demo.agent_argv(self.web_url, self.company_path, self.journal_path,
                               extra=["--heartbeat-seconds", "5", *(extra or [])])
        if wrapper is not None:
            argv = [PYTHON, "-c", wrapper + "\nimport sys\nfrom agent.cli import main\nsys.exit(main(sys.argv[1:]))",
                    *argv[3:]]
        self.stack.env["ML_AGENT_KEY"] = self.seed.agent_key
        try:
            self.agent_runs += 1
            return self.stack.start(name, argv)
        finally:
            self.stack.env.pop("ML_AGENT_KEY", None)

    def stop(self) -> None:
        self.stack.stop()

    def kick_sync(self, days: int = demo.BACKFILL_DAYS) -> None:
        demo.kick_first_sync(self.integration, days=days)

    # -- the sandbox store ---------------------------------------------------------------------
    def place_order(self, shape: dict | None = None) -> dict:
        return demo.place_order(self.sandbox_url, shape)

    def store_client(self):
        from connector.bigcommerce.client import BigCommerceClient

        return BigCommerceClient(self.sandbox_url, demo.STORE_HASH, demo.STORE_TOKEN)

    def store_orders(self) -> list[dict]:
        client = self.store_client()
        orders, page = [], 1
        while True:
            batch = client.list_orders({}, page=page, limit=250, sort="id:asc")
            orders.extend(batch)
            if len(batch) < 250:
                return orders
            page += 1

    def store_refunds(self) -> list[dict]:
        since = dt.datetime.now(dt.UTC) - dt.timedelta(days=demo.BACKFILL_DAYS + 30)
        return list(self.store_client().iter_refunds(created_since=since))

    def store_transactions(self, order_id: int) -> list[dict]:
        return self.store_client().order_transactions(order_id)

    def sandbox(self, path: str) -> dict:
        response = requests.get(f"{self.sandbox_url}/__sandbox__/{path}", timeout=10)
        response.raise_for_status()
        return response.json()

    # -- the simulated Sage company (read directly; WAL lets us read while the agent writes) ----
    def query(self, sql: str, params=()) -> list[dict]:
        db = sqlite3.connect(f"file:{self.company_path}?mode=ro", uri=True, timeout=15)
        db.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in db.execute(sql, params)]
        finally:
            db.close()

    def sage_documents(self) -> dict[str, dict[str, list[dict]]]:
        """{"invoice"|"credit": {reference: [rows]}, "SR"|"SP": {reference: [rows]}}: lists, so a
        document posted twice shows as two rows."""
        out: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
        for row in self.query("SELECT * FROM invoices"):
            out[row["type"]][row["cust_order_number"]].append(row)
        for row in self.query("SELECT * FROM transactions WHERE type IN ('SR', 'SP')"):
            out[row["type"]][row["inv_ref"]].append(row)
        return out

    def invoice_count(self, reference: str) -> int:
        return len(self.query("SELECT number FROM invoices WHERE cust_order_number = ?", (reference,)))


def start_system(process_env: dict, tmp_path: Path, *, orders: int = 50, workers: int = 1, concurrency: int = 2,
                 beat: bool = True, agent: bool = True, kick: bool = True, webhook_repeat: int = 2,
                 poll_interval_seconds: int = 60, sandbox_extra: list[str] | None = None) -> System:
    """Seed the (test) database and start everything. Call from a test that uses ``process_env``."""
    stack = Stack(env=dict(process_env), log_dir=tmp_path / "logs")
    web_port, sandbox_port = free_port(), free_port()
    web_url, sandbox_url = f"http://127.0.0.1:{web_port}", f"http://127.0.0.1:{sandbox_port}"
    stack.env["PUBLIC_BASE_URL"] = web_url
    try:
        stack.start("sandbox", demo.sandbox_argv(sandbox_port, orders=orders, webhook_repeat=webhook_repeat,
                                                 extra=sandbox_extra))
        stack.web(web_port)
        for n in range(workers):
            stack.worker(name=f"worker{n + 1}", concurrency=concurrency, extra=WORKER_INCLUDE)
        if beat:
            stack.beat()
        stack.wait_http(f"{sandbox_url}/__sandbox__/info", "sandbox")
        skus = demo.sandbox_skus()
        seed = demo.seed_demo(store_url=sandbox_url, company_path=tmp_path / "sage50-company.sqlite3", skus=skus,
                              poll_interval_seconds=poll_interval_seconds)
        demo.init_company(seed.company_path, skus, qty="100000")
        demo.ensure_poll_schedule()
        report = demo.register_hooks(seed.integration, web_url)
        stack.wait_http(f"{web_url}/admin/login/", "web")
        system = System(stack, web_url, sandbox_url, seed, tmp_path / "agent-journal.sqlite3",
                        extra={"hooks": report})
        if agent:
            system.start_agent()
        if kick:
            system.kick_sync()
        return system
    except BaseException:
        stack.stop()
        raise


@pytest.fixture
def system_factory(process_env, tmp_path):
    started: list[System] = []

    def make(**kwargs) -> System:
        system = start_system(process_env, tmp_path, **kwargs)
        started.append(system)
        return system

    yield make
    for system in started:
        system.stop()


def logs_of(system: System) -> str:
    return "\n".join(f"--- {name} ---\n{system.stack.log(name)[-4000:]}" for name in system.stack.processes)


__all__ = ["System", "start_system", "system_factory", "logs_of", "wait_for", "Decimal"]
