"""A Black Friday hour, compressed: many merchants at once on one scaled-out deployment.

    .venv/bin/python -m bench.blackfriday                 # 50 stores, 50 agents, 20 paid orders/s, 5 minutes
    .venv/bin/python -m bench.blackfriday --quick         # 5 stores, 5 agents, 30 s

What runs (demo.system.start_fleet): one sandbox process hosting every BigCommerce store
(sandbox.bigcommerce.fleet), two uvicorn web processes and two Celery worker processes started as
separate nodes (own process, own port or node name; they share only PostgreSQL and Redis, as on
separate machines), beat once, and one agent process per store, each with its own simulated
Sage 50 company. Store n's webhooks and agent go to web node n mod 2, as a load balancer would.

Agents are separate processes, not agent loops in one process: in production every merchant's
agent runs on that merchant's own Windows machine, next to its Sage, with its own HTTP
connections and long poll; one process running fifty loops would share one interpreter lock and
one connection pool and measure something no deployment has. Fifty idle agent processes cost
memory (about 40 MB each), not CPU: they wait in a long poll.

The load: paid orders placed at a steady ``rate`` (spread over the stores at random), each firing
its webhooks; the store sends ``duplicate_share`` of its deliveries a second time (a retry of a
delivery already acknowledged); ``refund_share`` of the orders get a refund (item, shipping or
full) a few seconds after they were placed. Before the clock starts every store posts one
warm-up order (imports, the first Sage login of each agent), not measured.

Measured:
- webhook → posted for every order and refund: from the first webhook the web received for it to
  the record posted (audit trail times, same machine clock), p50/p95/p99 overall and p95 per
  minute of the load (by the minute the webhook arrived);
- queue depth after the load stops: seconds until the broker queue is empty, and until the whole
  backlog is (broker queue, unprocessed events and records not yet posted);
- exactly-once, in the simulated Sage companies: each store reconciled as `make chaos` does
  (bench.chaos.reconcile: every paid order invoiced once, every refund credited once, to the cent).

Result keys (stable): stores, agents, rate_per_s, duration_s, web_nodes, workers, orders_placed,
refunds_placed, webhook_deliveries, duplicate_deliveries, webhook_to_posted_s {p50, p95, p99, max},
per_minute [{minute, count, p95, p99}], refund_webhook_to_posted_s, queue_empty_after_s,
backlog_empty_after_s, duplicates, lost, cent_differences, stuck, ok, peak_rss_mb, database, broker.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import requests

from bench import dbactivity, pipeline
from bench.environment import machine

TARGETS = {"p95_s": 2.0, "p99_s": 5.0, "drain_s": 30.0}
FULL = {"stores": 50, "rate_per_s": 20.0, "duration_s": 300}
QUICK = {"stores": 5, "rate_per_s": 20.0, "duration_s": 30}
REFUND_KINDS = ("item", "item", "shipping", "full")
# Each worker node as README's Production section runs it: a thread pool, since a task mostly
# waits on the store, PostgreSQL or Redis (two forked children per node left the cores idle
# while every slot waited, and the backlog grew).
POOL, CONCURRENCY = "threads", 8


@dataclass
class Placed:
    store: int  # index into the fleet's systems
    order_id: int
    at: float  # time.time() when the store answered


@dataclass
class Load:
    """What the driver placed, from its threads."""

    orders: list[Placed] = field(default_factory=list)
    refunds: list[dict] = field(default_factory=list)  # {"store", "order_id", "refund_id", "at"}
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Sampler(threading.Thread):
    """Queue depth and backlog every half second, peak memory every few seconds."""

    def __init__(self, fleet, depth):
        super().__init__(daemon=True, name="bench-sampler")
        self.fleet, self.depth = fleet, depth
        self.memory = pipeline.MemoryWatch(fleet.stack)
        self.samples: list[tuple[float, int, int]] = []  # (time.time(), broker messages, backlog)
        self.backends: list[tuple[float, int, int]] = []  # (time.time(), busy, waiting on a lock): PostgreSQL only
        self.stop_event = threading.Event()

    def run(self) -> None:
        n = 0
        on_postgresql = dbactivity.available()
        while not self.stop_event.wait(0.5):
            messages = self.depth()
            now = time.time()
            self.samples.append((now, messages, messages + open_work()))
            if on_postgresql:
                self.backends.append((now, *dbactivity.busy_backends()))
            if n % 6 == 0:
                self.memory.sample()
            n += 1


def cpu_seconds(stack) -> dict[str, float]:
    """CPU time (user + system) each named process and its children have used so far: where the
    machine's cores went, which on a shared machine says more than wall-clock latencies."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for name, proc in stack.processes.items():
        if proc.popen is None or proc.popen.poll() is not None:
            continue
        total = 0
        for pid in pipeline._tree(proc.popen.pid):
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])  # utime stime cutime cstime
        out[name] = total / tick
    # The rest of the machine's load: the database and Redis servers (every process of theirs that
    # is alive at both readings: backends come and go) and this process, the load driver.
    for comm, name in (("postgres", "postgresql"), ("redis-server", "redis")):
        out[name] = sum(_proc_cpu(pid, tick) for pid in _pids_named(comm))
    usage = os.times()
    out["bench driver"] = usage.user + usage.system
    return out


def _pids_named(comm: str) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as handle:
                    if handle.read().strip() == comm:
                        pids.append(int(entry))
            except OSError:
                continue
    return pids


def _proc_cpu(pid: int, tick: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / tick


NOT_STACK = ("postgresql", "redis", "bench driver")


def cpu_used(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """CPU seconds per process during the load, agents summed into one entry."""
    used: dict[str, float] = {}
    for name, value in after.items():
        key = "agents (all)" if name.startswith("agent-") else name
        used[key] = round(used.get(key, 0.0) + value - before.get(name, 0.0), 1)
    return dict(sorted(used.items(), key=lambda item: -item[1]))


def start_profilers(stack, duration_s: float) -> list:
    """With BENCH_PROFILE_DIR set: py-spy (if installed) samples each web, worker and sandbox
    process for the load's duration, one collapsed-stack file per process in that folder. For
    finding where the load's CPU goes; the figures of a profiled run are not the bench's."""
    import shutil
    import subprocess

    folder, py_spy = os.environ.get("BENCH_PROFILE_DIR"), shutil.which("py-spy", path=os.path.dirname(sys.executable))
    if not folder or not py_spy:
        return []
    os.makedirs(folder, exist_ok=True)
    started = []
    for name, proc in stack.processes.items():
        if name.startswith(("web", "worker", "sandbox")) and proc.popen and proc.popen.poll() is None:
            started.append(subprocess.Popen(
                [py_spy, "record", "--pid", str(proc.popen.pid), "--subprocesses", "--nonblocking", "--gil", "--rate", "20",
                 "--duration", str(int(duration_s)), "--format", "raw", "--output", f"{folder}/{name}.txt"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return started


def database_activity(tables_before: dict, statements: bool, sampler: Sampler, started_at: float) -> dict:
    """What PostgreSQL did during the load (bench.dbactivity); empty on the embedded database."""
    if not tables_before:
        return {}
    return {"tables": dbactivity.table_activity(tables_before, dbactivity.table_snapshot()),
            "statements": dbactivity.top_statements() if statements else "pg_stat_statements is not loaded",
            "backends_by_10s": dbactivity.busy_by_10s(sampler.backends, started_at)}


def periodic_work(started_at: float) -> list[dict]:
    """Polls, stock and price pushes per minute of the load (their SyncRun rows): what the scheduled
    work read and called while the webhooks were coming, to set beside latency bumps. A poll that
    found nothing is rolled up into a daily row and not counted here."""
    import datetime as dt

    from connector.models import SyncRun

    since = dt.datetime.fromtimestamp(started_at, dt.UTC)
    minutes: dict[tuple[int, str], dict] = {}
    for kind, at, seen, calls in SyncRun.objects.filter(started_at__gte=since).exclude(kind=SyncRun.Kind.BACKFILL) \
            .values_list("kind", "started_at", "seen", "api_calls"):
        entry = minutes.setdefault((int((at.timestamp() - started_at) // 60) + 1, kind), {"runs": 0, "seen": 0, "api_calls": 0})
        entry["runs"] += 1
        entry["seen"] += seen
        entry["api_calls"] += calls
    return [{"minute": minute, "kind": kind, **entry} for (minute, kind), entry in sorted(minutes.items())]


def open_work() -> int:
    """Events not yet processed and records not yet posted (or skipped): the backlog a merchant would see."""
    from connector.models import InboundEvent, SyncRecord

    # Both by index (the states still open; the events not processed yet): counted twice a second,
    # a scan of the whole tables was PostgreSQL time that grew through the run.
    open_states = [state for state in SyncRecord.State.values if state not in (SyncRecord.State.POSTED,
                                                                                SyncRecord.State.SKIPPED)]
    records = SyncRecord.objects.filter(state__in=open_states).count()
    return records + InboundEvent.objects.filter(source=InboundEvent.Source.WEBHOOK, processed_at__isnull=True).count()


def broker_depth():
    """A function counting the messages waiting in the broker (Redis list, or the embedded
    broker's queue folder)."""
    from django.conf import settings

    if settings.CELERY_BROKER_URL.startswith("redis"):
        import redis

        client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        return lambda: int(client.llen("celery"))
    folder = settings.BROKER_DIR / "queue"
    return lambda: sum(1 for _ in folder.iterdir()) if folder.exists() else 0


# -- the load --------------------------------------------------------------------------------------
def drive(fleet, *, rate_per_s: float, duration_s: float, refund_share: float, seed: int = 1124) -> Load:
    """Paid orders at a steady rate for ``duration_s``; ``refund_share`` of them refunded 1-8 s
    after they were scheduled (a quarter of the run at most; none after the load ends)."""
    rng = random.Random(seed)
    load = Load()
    local = threading.local()
    systems = fleet.systems
    by_number: dict[int, Placed] = {}

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session

    def place(number: int, store: int) -> None:
        try:
            response = session().post(f"{systems[store].control}/__sandbox__/orders", json={"status_id": 11},
                                      timeout=30)
            response.raise_for_status()
            placed = Placed(store, int(response.json()["id"]), time.time())
            with load.lock:
                load.orders.append(placed)
                by_number[number] = placed
        except requests.RequestException as error:
            with load.lock:
                load.errors.append(f"order in store {store}: {error}")

    def refund(placed: Placed, kind: str) -> None:
        try:
            response = session().post(f"{systems[placed.store].control}/__sandbox__/orders/{placed.order_id}/refunds",
                                      json={"kind": kind}, timeout=30)
            if response.status_code == 201:
                with load.lock:
                    load.refunds.append({"store": placed.store, "order_id": placed.order_id,
                                         "refund_id": int(response.json()["id"]), "at": time.time()})
        except requests.RequestException as error:
            with load.lock:
                load.errors.append(f"refund in store {placed.store}: {error}")

    total = round(rate_per_s * duration_s)
    due: list[tuple[float, int]] = []  # (monotonic time, order number): a heap
    started = time.monotonic()
    # Threads, so a slow answer from the store never delays the schedule.
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="bench-load") as pool:
        for number in range(total):
            at = started + number / rate_per_s
            time.sleep(max(0.0, at - time.monotonic()))
            pool.submit(place, number, rng.randrange(len(systems)))
            delay = rng.uniform(1, min(8.0, duration_s / 4))
            if rng.random() < refund_share and at + delay < started + duration_s:
                heapq.heappush(due, (at + delay, number))
            while due and due[0][0] <= time.monotonic():
                _, which = heapq.heappop(due)
                with load.lock:
                    placed = by_number.get(which)
                if placed is not None:
                    pool.submit(refund, placed, rng.choice(REFUND_KINDS))
    return load


# -- measuring -------------------------------------------------------------------------------------
def latencies(fleet, load: Load, started_at: float) -> dict:
    """Webhook received → posted for every placed order and refund, by the fleet's audit trail."""
    from connector.models import InboundEvent, SyncRecord

    orders, refunds = [], []
    for index, system in enumerate(fleet.systems):
        integration = system.integration
        first_webhook: dict[str, float] = {}  # order id → first webhook about it
        refund_webhooks: dict[str, list[float]] = {}  # order id → every refund webhook about it
        events = InboundEvent.objects.filter(integration=integration, source="webhook") \
            .values_list("scope", "resource_id", "received_at").order_by("received_at")
        for scope, resource_id, received in events.iterator(chunk_size=2000):
            if not scope.startswith("store/order/"):
                continue  # inventory deliveries name a product or variant id, not an order
            first_webhook.setdefault(resource_id, received.timestamp())
            if "/refund/" in scope:
                refund_webhooks.setdefault(resource_id, []).append(received.timestamp())
        posted = {(kind, external_id): at for kind, external_id, at in SyncRecord.objects.filter(
            integration=integration, state=SyncRecord.State.POSTED).values_list("kind", "external_id", "posted_at")}
        for placed in (p for p in load.orders if p.store == index):
            at = posted.get(("order", str(placed.order_id)))
            orders.append({"received": first_webhook.get(str(placed.order_id)),
                           "posted": at.timestamp() if at else None})
        for refund in (r for r in load.refunds if r["store"] == index):
            # A refund's webhook names its order: the refund's own first delivery is the first refund
            # webhook of that order from the moment the store answered (less a second: the webhook
            # thread may deliver before the answer reaches us).
            received = min((at for at in refund_webhooks.get(str(refund["order_id"]), []) if at >= refund["at"] - 1),
                           default=None)
            at = posted.get(("refund", str(refund["refund_id"])))
            refunds.append({"received": received, "posted": at.timestamp() if at else None})
    spans = [o["posted"] - o["received"] for o in orders if o["received"] and o["posted"]]
    per_minute: dict[int, list[float]] = {}
    for o in orders:
        if o["received"] and o["posted"]:
            per_minute.setdefault(int((o["received"] - started_at) // 60), []).append(o["posted"] - o["received"])
    per_10s: dict[int, list[float]] = {}  # where in the load the slow ones were (a stall shows as one bucket)
    for o in orders:
        if o["received"] and o["posted"]:
            per_10s.setdefault(int((o["received"] - started_at) // 10), []).append(o["posted"] - o["received"])
    refund_spans = [r["posted"] - r["received"] for r in refunds if r["received"] and r["posted"]]
    return {
        "webhook_to_posted_s": pipeline._summary(spans),
        "per_minute": [{"minute": minute + 1, "count": len(values), "p95": pipeline._pct(values, 95),
                        "p99": pipeline._pct(values, 99)} for minute, values in sorted(per_minute.items())],
        "p95_by_10s": [pipeline._pct(values, 95) for _, values in sorted(per_10s.items())],
        "refund_webhook_to_posted_s": pipeline._summary(refund_spans),
        "orders_measured": len(spans), "orders_without_webhook": sum(1 for o in orders if not o["received"]),
        "refunds_measured": len(refund_spans),
    }


def drained_after(samples: list[tuple[float, int, int]], end: float, column: int) -> float | None:
    """Seconds from ``end`` to the first sample at which ``column`` was back to zero (None: never).
    The first zero, not "zero from then on": beat keeps queueing each integration's poll, so an
    idle queue still blips for a moment now and then."""
    return next((round(max(0.0, s[0] - end), 1) for s in samples if s[0] >= end and not s[column]), None)


def reconcile_fleet(fleet) -> dict:
    """Every store against its own simulated Sage company, as `make chaos` reconciles one."""
    from bench.chaos import reconcile_system

    totals = {"duplicates": 0, "lost": 0, "cent_differences": 0, "stuck": 0, "unexpected": 0}
    problems = []
    for system in fleet.systems:
        got = reconcile_system(system)
        totals["duplicates"] += got["duplicates"]
        totals["lost"] += got["lost"]
        totals["cent_differences"] += got["cent_difference_count"]
        totals["stuck"] += len(got["stuck"])
        totals["unexpected"] += len(got["invoices_unexpected"]) + len(got["credits_unexpected"]) \
            + len(got["skipped_but_postable"])
        if not got["ok"]:
            problems.append({"store": system.store_hash, **{k: got[k] for k in (
                "invoice_duplicates", "receipt_duplicates", "credit_duplicates", "invoices_lost", "credits_lost",
                "cent_differences", "stuck", "invoices_unexpected", "credits_unexpected", "skipped_but_postable")
                if got.get(k)}})
    totals["ok"] = not problems
    totals["problems"] = problems[:10]
    return totals


def wait_posted(count: int, timeout_s: float) -> bool:
    from connector.models import SyncRecord

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if SyncRecord.objects.filter(state=SyncRecord.State.POSTED).count() >= count:
            return True
        time.sleep(0.25)
    return False


# -- the run ---------------------------------------------------------------------------------------
def start_black_friday(process_env: dict, work_dir, *, stores: int, duplicate_share: float = 0.3, web_nodes: int = 2,
                       workers: int = 2, concurrency: int = CONCURRENCY, pool: str = POOL):
    """The fleet (demo.system.start_fleet), the store sending ``duplicate_share`` of its
    deliveries twice, and an agent per store, each on the production heartbeat (60 s, not the
    demo's 5 s: fifty agents at 5 s would be load no deployment sees)."""
    from demo.system import start_fleet

    fleet = start_fleet(process_env, work_dir, stores=stores, web_nodes=web_nodes, workers=workers,
                        concurrency=concurrency, pool=pool, sandbox_extra=["--webhook-duplicate-rate", str(duplicate_share)])
    try:
        fleet.start_agents(extra=["--heartbeat-seconds", "60"])
    except BaseException:
        fleet.stop()
        raise
    return fleet


def run_load(fleet, *, rate_per_s: float = 20.0, duration_s: float = 300, refund_share: float = 0.05,
             drain_timeout_s: float = 300) -> dict:
    """Warm up, drive the load, wait for it to drain, measure and reconcile (see the module doc)."""
    for system in fleet.systems:
        system.kick_sync()  # the watermark poll each integration has in production (no history)
    for system in fleet.systems:
        system.place_order({"status_id": 11})  # warm-up: imports, each agent's first Sage login
    warmed = wait_posted(len(fleet.systems), timeout_s=180)
    warm_count = _posted_count()
    sampler = Sampler(fleet, broker_depth())
    sampler.start()
    try:
        deliveries_before = len(_deliveries(fleet))
        cpu_before = cpu_seconds(fleet.stack)
        tables_before = dbactivity.table_snapshot() if dbactivity.available() else {}
        statements = dbactivity.available() and dbactivity.statements_available()
        if statements:
            dbactivity.reset_statements()
        profilers = start_profilers(fleet.stack, duration_s)
        started_at = time.time()
        load = drive(fleet, rate_per_s=rate_per_s, duration_s=duration_s, refund_share=refund_share)
        ended_at = time.time()
        expected = warm_count + len(load.orders) + len(load.refunds)
        settled = wait_posted(expected, timeout_s=drain_timeout_s)
        cpu = cpu_used(cpu_before, cpu_seconds(fleet.stack))
        activity = database_activity(tables_before, statements, sampler, started_at)
        # Until the queue and the backlog have each been seen at zero: posting the last order
        # is not the end of the work (the store echoes our status update with two webhooks).
        deadline = time.monotonic() + (drain_timeout_s if settled else 10)
        while time.monotonic() < deadline and (drained_after(sampler.samples, ended_at, 1) is None
                                                or drained_after(sampler.samples, ended_at, 2) is None):
            time.sleep(0.5)
    finally:
        sampler.stop_event.set()
        sampler.join()
        for profiler in profilers:
            profiler.wait(timeout=60)
    deliveries = _deliveries(fleet)[deliveries_before:]
    result = {
        "stores": len(fleet.systems), "agents": len(fleet.systems), "rate_per_s": rate_per_s,
        "duration_s": duration_s, **fleet.shape, "warmed": warmed,
        "orders_placed": len(load.orders), "refunds_placed": len(load.refunds), "load_errors": load.errors[:5],
        "achieved_rate_per_s": round(len(load.orders) / max(ended_at - started_at, 1e-9), 2),
        "webhook_deliveries": len(deliveries), "duplicate_deliveries": sum(1 for copy in deliveries if copy),
        **latencies(fleet, load, started_at),
        "queue_empty_after_s": drained_after(sampler.samples, ended_at, 1),
        "backlog_empty_after_s": drained_after(sampler.samples, ended_at, 2),
        "max_queue_depth": max((s[1] for s in sampler.samples), default=0),
        "max_backlog": max((s[2] for s in sampler.samples), default=0),
        "settled": settled, "peak_rss_mb": sampler.memory.result(), "cpu_s": cpu,
        # The stack's processes (web, workers, beat, sandbox, agents), comparable with earlier runs;
        # and everything measured, the database, Redis and the load driver included.
        "cpu_s_per_order": round(sum(v for k, v in cpu.items() if k not in NOT_STACK) / max(len(load.orders), 1), 4),
        "all_cpu_s_per_order": round(sum(cpu.values()) / max(len(load.orders), 1), 4),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "database_activity": activity, "periodic_work": periodic_work(started_at),
    }
    check = reconcile_fleet(fleet)
    result.update(check)
    database, broker = pipeline._backends()
    result.update({"database": database, "broker": broker})
    result["ok"] = bool(check["ok"] and settled and meets_targets(result))
    return result


def run_black_friday(stores: int = 50, *, rate_per_s: float = 20.0, duration_s: float = 300,
                     duplicate_share: float = 0.3, refund_share: float = 0.05, web_nodes: int = 2, workers: int = 2,
                     concurrency: int = CONCURRENCY, pool: str = POOL, drain_timeout_s: float = 300, keep_logs: bool = False) -> dict:
    """The whole run on a fresh database and data folder of its own (bench.pipeline's), removed
    afterwards unless ``keep_logs``. Call once per process (Django is set up on that database)."""
    env = pipeline._prepare()
    pipeline._purge_redis_queue()
    log_dir = pipeline.DATA_DIR / "run"
    log_dir.mkdir(parents=True, exist_ok=True)
    fleet = start_black_friday(env, log_dir, stores=stores, duplicate_share=duplicate_share, web_nodes=web_nodes,
                               workers=workers, concurrency=concurrency, pool=pool)
    try:
        return run_load(fleet, rate_per_s=rate_per_s, duration_s=duration_s, refund_share=refund_share,
                        drain_timeout_s=drain_timeout_s)
    finally:
        fleet.stop()
        pipeline._cleanup(keep_logs)


def _posted_count() -> int:
    from connector.models import SyncRecord

    return SyncRecord.objects.filter(state=SyncRecord.State.POSTED).count()


def _deliveries(fleet) -> list[int]:
    """Each store's webhook deliveries so far, as their copy numbers (0: first, 1+: a duplicate)."""
    copies = []
    for system in fleet.systems:
        copies += [d.get("copy", 0) for d in system.sandbox("webhooks")["deliveries"] if d["outcome"] == "delivered"]
    return copies


def meets_targets(result: dict) -> bool:
    overall = result.get("webhook_to_posted_s") or {}
    minutes_ok = all((m["p95"] or 0) <= TARGETS["p95_s"] for m in result.get("per_minute", []))
    drained = result.get("backlog_empty_after_s")
    return (overall.get("p95") is not None and overall["p95"] <= TARGETS["p95_s"]
            and (overall.get("p99") or 0) <= TARGETS["p99_s"] and minutes_ok
            and drained is not None and drained <= TARGETS["drain_s"])


def rows(result: dict) -> list[tuple[str, str, str, str, str]]:
    """bench/__main__.py's table rows for this bench."""
    name = "Black Friday hour"
    if "webhook_to_posted_s" not in result:
        return [(name, "", str(result.get("error") or result)[:60], "p95 ≤ 2 s, p99 ≤ 5 s, 0 dup / 0 lost", "MISSED")]
    lat = result["webhook_to_posted_s"]
    minutes = ", ".join(str(m["p95"]) for m in result["per_minute"])
    if len(result.get("runs") or []) > 1:  # bench/__main__.py's repeated runs: this is the slowest
        name += f" (slowest of {len(result['runs'])}: worst minutes " + \
            ", ".join(str(run["slowness"][0]) for run in result["runs"]) + ")"
    size = (f"{result['stores']} stores/agents, {result['rate_per_s']:g}/s × {result['duration_s']:g} s, "
            f"{result['web_nodes']} web + {result['workers']} workers")
    return [
        (name, size, f"p95 {lat['p95']} s, p99 {lat['p99']} s (p95 per minute: {minutes})",
         "p95 ≤ 2 s, p99 ≤ 5 s every minute",
         "ok" if lat["p95"] is not None and lat["p95"] <= TARGETS["p95_s"] and (lat["p99"] or 0) <= TARGETS["p99_s"]
         and all((m["p95"] or 0) <= TARGETS["p95_s"] for m in result["per_minute"]) else "MISSED"),
        ("", f"{result['orders_placed']} orders, {result['refunds_placed']} refunds, "
             f"{result['duplicate_deliveries']} dup webhooks",
         f"backlog empty {result['backlog_empty_after_s']} s after the load (queue {result['queue_empty_after_s']} s);"
         f" {result['duplicates']} dup / {result['lost']} lost / {result['cent_differences']} ¢ in Sage",
         "≤ 30 s; 0 / 0 / 0", "ok" if result.get("ok") else "MISSED"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.blackfriday", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 stores, 5 agents, 30 s")
    parser.add_argument("--stores", type=int)
    parser.add_argument("--rate", type=float, help="paid orders per second, all stores together (default 20)")
    parser.add_argument("--duration", type=float, help="seconds of load (default 300, quick 30)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help=f"per worker (default {CONCURRENCY})")
    parser.add_argument("--pool", default=POOL, choices=("threads", "prefork"),
                        help=f"Celery execution pool of each worker (default {POOL}, as README's Production)")
    parser.add_argument("--drain-timeout", type=float, default=300,
                        help="seconds to wait after the load for everything to post (default 300)")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    size = dict(QUICK if args.quick else FULL)
    size.update({k: v for k, v in (("stores", args.stores), ("rate_per_s", args.rate),
                                   ("duration_s", args.duration)) if v})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    result = run_black_friday(**size, workers=args.workers, concurrency=args.concurrency, pool=args.pool,
                              drain_timeout_s=args.drain_timeout, keep_logs=args.keep_logs)
    print(json.dumps(result, indent=2, default=str))
    out = pipeline.BASE_DIR / "bench" / "results" / f"blackfriday-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": machine(), **result}, indent=2, default=str))
    print(f"written: {out.relative_to(pipeline.BASE_DIR)}")
    for row in rows(result):
        print(" | ".join(row))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
