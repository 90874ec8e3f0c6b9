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
from decimal import Decimal
from pathlib import Path

import requests

from connector.devstack import PYTHON, Stack, free_port, wait_for
from demo import seed as demo

# The worker must know the BigCommerce package's tasks even while that package is not an
# installed app (Celery's autodiscovery only looks at INSTALLED_APPS).
WORKER_INCLUDE = ["-I", "connector.bigcommerce.tasks"]
SOAP_SERVICE_PATH = "/eBusinessWebServices/eBusinessWebServices.svc"  # the emulator's (and IIS's) endpoint


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
    soap_url: str = ""  # Sage 100 over eBusiness Web Services: the emulator's base URL (no agent posts)
    soap_cert: str = ""  # and its self-signed certificate, the only one trusted

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

    def stop(self, grace: float = 15) -> None:
        self.stack.stop(grace)

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
        posted twice shows as two rows. Over SOAP, read from the emulator, each with its
        ``OrderTotal`` as Sage 100 computes it (line extensions + freight − discount + tax)."""
        out: dict[str, list[dict]] = defaultdict(list)
        if self.soap_url:
            for row in self.soap("companies/" + demo.SOAP_COMPANY + "/sales-orders"):
                out[row["CustomerPONo"]].append({**row, "OrderTotal": str(soap_order_total(row))})
            return out
        for row in self.query("SELECT * FROM so_header"):
            out[row["CustomerPONo"]].append(row)
        return out

    def soap(self, path: str):
        """The eBusiness emulator's control view (``/__sandbox__/sage100/<path>``) over HTTPS."""
        response = requests.get(f"{self.soap_url}/__sandbox__/sage100/{path}", verify=self.soap_cert, timeout=30)
        response.raise_for_status()
        return response.json()

    def soap_faults(self, **knobs) -> dict:
        response = requests.post(f"{self.soap_url}/__sandbox__/faults", json=knobs, verify=self.soap_cert,
                                 timeout=10)
        response.raise_for_status()
        return response.json()

    def invoice_count(self, reference: str) -> int:
        return len(self.query("SELECT number FROM invoices WHERE cust_order_number = ?", (reference,)))


def soap_order_total(order: dict) -> Decimal:
    """Sage 100's order total of a sales order as the eBusiness emulator lists it."""
    lines = (order.get("Lines") or {}).get("SalesOrderLine") or []
    extensions = sum((Decimal(str(line.get("ExtensionAmt") or 0)) for line in lines
                      if line.get("ItemCode") != "/C"), Decimal("0.00"))
    return (extensions + Decimal(str(order.get("FreightAmt") or 0)) - Decimal(str(order.get("DiscountAmt") or 0))
            + Decimal(str(order.get("SalesTaxAmt") or 0))).quantize(Decimal("0.01"))


def _start_soap_emulator(stack: Stack, work_dir: Path, extra: list[str] | None) -> tuple[str, str]:
    """The eBusiness emulator over HTTPS; returns its base URL and certificate path once it answers."""
    port, cert_dir = free_port(), work_dir / "sage100-tls"
    stack.start("sage100-soap", demo.sage100_soap_argv(port, cert_dir, extra=extra))
    url, cert = f"https://127.0.0.1:{port}", cert_dir / "cert.pem"

    def up() -> bool:
        if not stack.alive("sage100-soap"):
            raise RuntimeError(f"the eBusiness emulator exited early:\n{stack.log('sage100-soap')}")
        try:
            return cert.exists() and requests.get(f"{url}/__sandbox__/faults", verify=str(cert), timeout=2).ok
        except (requests.RequestException, OSError):
            return False

    wait_for(up, timeout=60, what="the Sage 100 eBusiness emulator over HTTPS")
    return url, str(cert)


def start_system(process_env: dict, work_dir: Path, *, orders: int = 50, workers: int = 1, concurrency: int = 2,
                 beat: bool = True, agent: bool = True, kick: bool = True, webhook_repeat: int = 2,
                 poll_interval_seconds: int = 60, sandbox_extra: list[str] | None = None,
                 sage: str = "sage50", transport: str = "agent", soap_extra: list[str] | None = None) -> System:
    """Seed the (test or benchmark) database and start everything; ``process_env`` points the child
    processes at that database (tests: the ``process_env`` fixture). ``sage="sage100"``: the
    integration posts Sage 100 sales orders through an agent on the simulated Sage 100 company, or
    with ``transport="soap"`` from the workers over eBusiness Web Services to the emulator over
    HTTPS (``soap_extra``: its fault flags); no agent is started then."""
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
        soap_url = soap_cert = ""
        if sage == "sage100" and transport == "soap":
            soap_url, soap_cert = _start_soap_emulator(stack, work_dir, soap_extra)
            seed = demo.seed_sage100_soap(seed, soap_url + SOAP_SERVICE_PATH, Path(soap_cert).read_text())
            agent = False  # nothing for an agent to do: the workers post over SOAP
        elif sage == "sage100":
            seed = demo.seed_sage100(seed, work_dir / "sage100-company.sqlite3", skus)
        demo.ensure_poll_schedule()
        report = demo.register_hooks(seed.integration, web_url)
        stack.wait_http(f"{web_url}/admin/login/", "web")
        system = System(stack, web_url, sandbox_url, seed, work_dir / "agent-journal.sqlite3",
                        extra={"hooks": report}, backend="sage100sim" if sage == "sage100" else "simulator",
                        soap_url=soap_url, soap_cert=soap_cert)
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
                concurrency: int = 2, pool: str | None = None, orders: int = 0, poll_interval_seconds: int = 60,
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
            stack.worker(name=f"worker{n + 1}", concurrency=concurrency, extra=WORKER_INCLUDE, pool=pool)
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
                     shape={"web_nodes": web_nodes, "workers": workers, "concurrency": concurrency,
                            "pool": pool or "prefork"})
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


def start_adobe_demo(stack: Stack, web_port: int, adobe_port: int, *, orders: int = demo.ADOBE_DEMO_ORDERS,
                     company_path: Path | None = None, journal_path: Path | None = None,
                     poll_interval_seconds: int = 60) -> str:
    """`make run ADOBE=1`: beside the BigCommerce demo, the sandbox Adobe Commerce process on
    ``adobe_port`` (the web process was started with ADOBE_IO_KEY_HOST pointing at it, so the I/O
    Events keys it signs with are fetched from it), its own integration → its own simulated Sage 50
    company, and its own agent. Returns what to print."""
    server = f"http://127.0.0.1:{web_port}"
    adobe_url = f"http://127.0.0.1:{adobe_port}"
    stack.start("adobe", demo.adobe_sandbox_argv(adobe_port, orders=orders))
    stack.wait_http(f"{adobe_url}/__sandbox__/info", "adobe")
    info = requests.get(f"{adobe_url}/__sandbox__/info", timeout=10).json()
    skus = demo.adobe_sandbox_skus(adobe_url)
    seed = demo.seed_adobe_demo(store_url=adobe_url, webhook_public_key=info["webhooks"]["public_key_pem"],
                                company_path=company_path, skus=skus, poll_interval_seconds=poll_interval_seconds)
    demo.init_company(seed.company_path, [sku.upper() for sku in skus])
    demo.ensure_poll_schedule()
    stack.wait_http(f"{server}/admin/login/", "web")  # I/O Events checks the endpoint when subscribing
    hooks = demo.subscribe_adobe_webhooks(adobe_url, seed.integration, server)
    stack.env["ML_AGENT_KEY"] = seed.agent_key
    try:
        stack.start("adobe-agent", demo.agent_argv(
            server, seed.company_path, journal_path or demo.data_dir() / "demo-adobe-agent-journal.sqlite3"))
    finally:
        stack.env.pop("ML_AGENT_KEY", None)
    demo.kick_first_adobe_sync(seed.integration)
    company = os.path.relpath(seed.company_path, Path.cwd())
    return "\n".join([
        f"Adobe demo: sandbox Adobe Commerce at {adobe_url}/rest/default/V1/ ({orders} seeded orders: partial "
        f"invoices, credit memos, three store views in USD, EUR, GBP; every webhook delivered {demo.WEBHOOK_REPEAT}x).",
        f"  Webhooks: {hooks}.",
        f"  Its integration: '{seed.integration}' → {company}",
        "  Place a new paid Adobe order: make demo-order STORE=adobe",
    ])
