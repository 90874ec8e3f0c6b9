"""The whole system as real processes: `make run`'s demo (``start_demo``), and the same system on
a database of its own for the end-to-end tests and the benchmarks (``start_system``).

    system = start_system(process_env, work_dir, orders=200)   # process_env: the child processes'
    ...                                                        # DATABASE_URL, broker, keys
    system.stop()

(tests use the ``system_factory`` fixture of tests/support/stack.py, which stops what it started).
What runs: uvicorn web, Celery worker(s) and beat (connector.devstack.Stack), the sandbox
BigCommerce store, and the agent with the simulated Sage 50 company. The database is seeded with
demo.seed's ``seed_demo``, the store's webhooks point at the web process.

Here rather than under tests/ because bench/ (shipped tooling) drives the same system.
"""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import requests

from connector.devstack import PYTHON, Stack, free_port
from demo import seed as demo

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
    backend: str = "simulator"  # the agent's backend: "sage100sim" for a Sage 100 system
    store_hash: str = demo.STORE_HASH
    # Where this store's /__sandbox__/ control endpoints are: the sandbox itself, or for one store
    # of a fleet its own /stores/{hash} path (sandbox.bigcommerce.fleet).
    control_url: str = ""

    @property
    def control(self) -> str:
        return self.control_url or self.sandbox_url

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
                               extra=["--heartbeat-seconds", "5", *(extra or [])], backend=self.backend)
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
        return demo.place_order(self.control, shape)

    def store_client(self):
        from connector.bigcommerce.client import BigCommerceClient

        return BigCommerceClient(self.sandbox_url, self.store_hash, demo.STORE_TOKEN)

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
        response = requests.get(f"{self.control}/__sandbox__/{path}", timeout=10)
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

    def sales_orders_100(self) -> dict[str, list[dict]]:
        """Sage 100 sales orders by CustomerPONo (the store order number): lists, so an order
        posted twice shows as two rows."""
        out: dict[str, list[dict]] = defaultdict(list)
        for row in self.query("SELECT * FROM so_header"):
            out[row["CustomerPONo"]].append(row)
        return out

    def invoice_count(self, reference: str) -> int:
        return len(self.query("SELECT number FROM invoices WHERE cust_order_number = ?", (reference,)))


def start_system(process_env: dict, work_dir: Path, *, orders: int = 50, workers: int = 1, concurrency: int = 2,
                 beat: bool = True, agent: bool = True, kick: bool = True, webhook_repeat: int = 2,
                 poll_interval_seconds: int = 60, sandbox_extra: list[str] | None = None,
                 sage: str = "sage50") -> System:
    """Seed the (test or benchmark) database and start everything; ``process_env`` points the child
    processes at that database (tests: the ``process_env`` fixture). ``sage="sage100"``: the
    integration posts Sage 100 sales orders through an agent on the simulated Sage 100 company."""
    stack = Stack(env=dict(process_env), log_dir=work_dir / "logs")
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
        seed = demo.seed_demo(store_url=sandbox_url, company_path=work_dir / "sage50-company.sqlite3", skus=skus,
                              poll_interval_seconds=poll_interval_seconds)
        demo.init_company(seed.company_path, skus, qty="100000")
        if sage == "sage100":
            seed = demo.seed_sage100(seed, work_dir / "sage100-company.sqlite3", skus)
        demo.ensure_poll_schedule()
        report = demo.register_hooks(seed.integration, web_url)
        stack.wait_http(f"{web_url}/admin/login/", "web")
        system = System(stack, web_url, sandbox_url, seed, work_dir / "agent-journal.sqlite3",
                        extra={"hooks": report}, backend="sage100sim" if sage == "sage100" else "simulator")
        if agent:
            system.start_agent()
        if kick:
            system.kick_sync()
        return system
    except BaseException:
        stack.stop()
        raise


@dataclass
class Fleet:
    """Many merchants on one deployment: a System per store, all on one Stack (the web nodes,
    the workers, beat, the sandbox hosting every store, an agent per store)."""

    stack: Stack
    web_urls: list[str]
    sandbox_url: str
    systems: list[System]
    shape: dict = field(default_factory=dict)  # web_nodes, workers, concurrency: how it was started

    def start_agents(self, *, wrapper: str | None = None, extra: list[str] | None = None) -> None:
        for system in self.systems:
            system.start_agent(f"agent-{system.store_hash}", wrapper=wrapper, extra=extra)

    def stop(self) -> None:
        self.stack.stop()


def start_fleet(process_env: dict, work_dir: Path, *, stores: int, web_nodes: int = 2, workers: int = 2,
                concurrency: int = 2, orders: int = 0, poll_interval_seconds: int = 60,
                sandbox_extra: list[str] | None = None, fleet_prefix: str = "bf") -> Fleet:
    """``stores`` merchants, each with its own tenant, integration, simulated Sage 50 company and
    agent key, on ``web_nodes`` web processes and ``workers`` Celery workers started as separate
    nodes, as production scales out over machines (each its own process and port, no shared
    memory; they meet only in PostgreSQL and Redis). Store n's webhooks and agent go to web node
    n mod ``web_nodes``, as a load balancer would spread them. Agents are not started (``start_agents``)."""
    from sandbox.bigcommerce.fleet import fleet_hashes

    stack = Stack(env=dict(process_env), log_dir=work_dir / "logs")
    sandbox_port = free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    try:
        stack.start("sandbox", demo.sandbox_argv(sandbox_port, orders=orders, webhook_repeat=1, store_hash=fleet_prefix,
                                                 extra=["--stores", str(stores), *(sandbox_extra or [])]))
        web_urls = []
        for n in range(web_nodes):
            port = free_port()
            stack.web(port, name=f"web{n + 1}")
            web_urls.append(f"http://127.0.0.1:{port}")
        for n in range(workers):
            stack.worker(name=f"worker{n + 1}", concurrency=concurrency, extra=WORKER_INCLUDE)
        stack.beat()
        stack.wait_http(f"{sandbox_url}/__sandbox__/info", "sandbox")
        skus = demo.sandbox_skus()
        for n, url in enumerate(web_urls):
            stack.wait_http(f"{url}/admin/login/", f"web{n + 1}")
        systems = []
        for n, store_hash in enumerate(fleet_hashes(fleet_prefix, stores)):
            web_url = web_urls[n % web_nodes]
            seed = demo.seed_demo(store_url=sandbox_url, company_path=work_dir / f"sage50-{store_hash}.sqlite3",
                                  skus=skus, poll_interval_seconds=poll_interval_seconds,
                                  names=demo.DemoNames.for_store(store_hash))
            demo.init_company(seed.company_path, skus, qty="100000")
            report = demo.register_hooks(seed.integration, web_url)
            systems.append(System(stack, web_url, sandbox_url, seed, work_dir / f"agent-journal-{store_hash}.sqlite3",
                                  extra={"hooks": report}, store_hash=store_hash,
                                  control_url=f"{sandbox_url}/stores/{store_hash}"))
        demo.ensure_poll_schedule()
        return Fleet(stack, web_urls, sandbox_url, systems,
                     shape={"web_nodes": web_nodes, "workers": workers, "concurrency": concurrency})
    except BaseException:
        stack.stop()
        raise


def logs_of(system: System) -> str:
    return "\n".join(f"--- {name} ---\n{system.stack.log(name)[-4000:]}" for name in system.stack.processes)


def start_demo(stack: Stack, web_port: int) -> str:
    """`make run`'s demo, next to the web, worker and beat ``stack`` already runs, on the
    developer's database: the sandbox store, the seeded demo, the agent. Returns what to print."""
    server = f"http://127.0.0.1:{web_port}"
    sandbox_port = free_port()
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    stack.start("sandbox", demo.sandbox_argv(sandbox_port))
    stack.wait_http(f"{sandbox_url}/__sandbox__/info", "sandbox")
    skus = demo.sandbox_skus()
    seed = demo.seed_demo(store_url=sandbox_url, skus=skus)
    demo.init_company(seed.company_path, skus)
    demo.ensure_poll_schedule()
    hooks = demo.register_hooks(seed.integration, server)
    # The agent starts once the web process answers: otherwise its first calls are refused and
    # a newcomer's first screen is connection-refused retries.
    stack.wait_http(f"{server}/admin/login/", "web")
    stack.env["ML_AGENT_KEY"] = seed.agent_key
    try:
        stack.start("agent", demo.agent_argv(server, seed.company_path, demo.data_dir() / "demo-agent-journal.sqlite3"))
    finally:
        stack.env.pop("ML_AGENT_KEY", None)
    demo.kick_first_sync(seed.integration)
    company = os.path.relpath(seed.company_path, Path.cwd())
    return "\n".join([
        f"Demo: sandbox BigCommerce store at {sandbox_url}/stores/{demo.STORE_HASH}/ "
        f"({demo.DEMO_ORDERS} seeded orders, refunds included; every webhook delivered {demo.WEBHOOK_REPEAT}x).",
        f"  Webhooks: {hooks}.",
        f"  Watch the orders post: {server}/admin/connector/syncrecord/",
        f"  What Sage received: .venv/bin/python -m agent simulator inspect --company {company} invoices",
        "     (also: receipts, credit-notes, refunds, customers, stock)",
        "  Place a new paid order in the store: make demo-order",
    ])
