"""Order → posted, measured on the whole real system (demo/system.py: uvicorn web, Celery worker(s)
and beat, the sandbox BigCommerce store, the agent with the simulated Sage 50 company).

Both functions run on a fresh database of their own (bench.environment.prepare_database,
named per process, ``mlconnector_bench_pipeline_<pid>`` / ``data/bench-pipeline/run-<pid>/bench.sqlite3``,
so a concurrent ``make bench`` cannot drop it mid-run; never the developer's) and a data folder of
their own (``data/bench-pipeline/run-<pid>/``: broker, logs, company file), removed afterwards
unless ``keep_logs``. Call one of them once per process (Django is set up on that database).
They set up Django in the calling process; call them from a fresh interpreter, e.g.

    .venv/bin/python -m bench.pipeline --orders 500          # throughput (backfill)
    .venv/bin/python -m bench.pipeline --latency 30          # webhook → posted latency

``run_pipeline_bench(orders, *, workers=1, concurrency=2, timeout_s=900, keep_logs=False) -> dict``
seeds ``orders`` sandbox orders (1–5 item lines, plus shipping; the sandbox's own mix, refunds and
unpaid orders included), backfills them and waits until every postable order and every refund is
posted in the simulated company. Result keys (stable):
    orders (seeded), postable_orders, refunds, records_posted, wall_s (backfill kick → all posted),
    orders_per_s (postable orders / wall_s), records_per_s,
    bc_api_calls, bc_api_calls_per_order (sandbox request log, during the run),
    agent_round_trips, agent_round_trips_per_order (heartbeat excluded; leases + completes + fails, by
    endpoint in agent_requests), agent_throttled (calls the server answered 429: a working agent
    should never see one), agent_jobs,
    peak_rss_mb ({process name: VmHWM of the process and its children, largest one}),
    stages ({stage: {p50_s, p95_s}} from the audit trail: received → mapped → leased → posted),
    database, broker.
``run_latency_bench(count=20, *, interval_s=1.0, timeout_s=60, warmup=2) -> dict`` places ``warmup``
unmeasured orders (each waited for), then ``count`` single paid orders one at a time at a steady
rate with an otherwise idle agent. Result keys (stable):
    count, interval_s, warmup, posted, webhook_to_leased_s / leased_to_posted_s / webhook_to_posted_s, each
    {p50, p95, p99, max}, timings (per order), peak_rss_mb, database, broker.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from bench import sage100 as sage100_bench
from bench.environment import BASE_DIR, drop_database, prepare_database

# One folder (and SQLite file / PostgreSQL database) per bench process: two runs at once (make bench
# while a developer measures) must not delete each other's database or broker.
DATA_DIR = BASE_DIR / "data" / "bench-pipeline" / f"run-{os.getpid()}"
PG_DATABASE = f"mlconnector_bench_pipeline_{os.getpid()}"
REQUEST_LOG_NAME = "agent-requests.log"
# Seconds the processes get to exit on SIGTERM once a run is measured, before SIGKILL. Nothing
# is left to finish then (the database is dropped next), and a Celery prefork worker's warm
# shutdown alone takes about 2 s, on every row of `make bench` that starts a stack.
STOP_GRACE_S = 0.5

# Run inside the agent process before its main: one line per agent API call, so round trips can
# be counted without touching the web process (which runs without an access log).
AGENT_COUNTER = """
import os
from agent.client import AgentClient
_log = open(os.environ["ML_BENCH_AGENT_LOG"], "a", buffering=1)
_post = AgentClient._post
def _counted(self, path, body, **kwargs):
    _log.write(path + "\\n")
    try:
        return _post(self, path, body, **kwargs)
    except Exception as error:
        if getattr(error, "status", None) == 429:
            _log.write("throttled:" + path + "\\n")
        raise
AgentClient._post = _counted
"""


# -- environment ----------------------------------------------------------------------------------
def _prepare() -> dict:
    """Fresh data folder and database; Django set up on them. Returns the children's environment."""
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    DATA_DIR.mkdir(parents=True)
    os.environ["ML_DATA_DIR"] = str(DATA_DIR)
    # As in production: DEBUG on wraps every query in Django's debug cursor and keeps its SQL in
    # memory for the life of each worker process (a few % of throughput here, and memory that
    # grows with every record of a 10,000-order run).
    os.environ["DEBUG"] = "0"
    os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
    prepare_database(PG_DATABASE, DATA_DIR / "bench.sqlite3")
    import django

    django.setup()
    from django.conf import settings

    return {"DATABASE_URL": os.environ["DATABASE_URL"], "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "COORDINATION_REDIS_URL": settings.COORDINATION_REDIS_URL or "", "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY, "DEBUG": "0",
            "ALLOWED_HOSTS": os.environ["ALLOWED_HOSTS"], "ML_DATA_DIR": str(DATA_DIR)}


def _cleanup(keep: bool) -> None:
    """Remove this run's folder and database (kept with ``keep_logs`` for a look at the logs)."""
    if keep:
        return
    drop_database(PG_DATABASE)
    shutil.rmtree(DATA_DIR, ignore_errors=True)


def _backends() -> tuple[str, str]:
    from django.conf import settings

    database = "postgresql" if settings.IS_POSTGRES else "sqlite"
    return database, settings.CELERY_BROKER_URL.split(":", 1)[0]


def _purge_redis_queue() -> None:
    from django.conf import settings

    if settings.CELERY_BROKER_URL.startswith("redis"):
        from connector.celery import app

        with app.connection_for_write() as conn:
            conn.default_channel.queue_purge("celery")


# -- processes ------------------------------------------------------------------------------------
def _tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    todo.extend(int(p) for p in handle.read().split())
        except OSError:
            continue
    return pids


def _hwm_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemoryWatch:
    """Largest VmHWM per named process (the process or any child, e.g. Celery's pool)."""

    def __init__(self, stack):
        self.stack = stack
        self.peak_kb: dict[str, int] = {}

    def sample(self) -> None:
        for name, proc in self.stack.processes.items():
            if proc.popen is None or proc.popen.poll() is not None:
                continue
            peak = max((_hwm_kb(pid) for pid in _tree(proc.popen.pid)), default=0)
            self.peak_kb[name] = max(peak, self.peak_kb.get(name, 0))

    def result(self) -> dict[str, float]:
        return {name: round(kb / 1024, 1) for name, kb in sorted(self.peak_kb.items())}


def _start(env: dict, *, orders: int, workers: int, concurrency: int, log_dir: Path, sage: str = "sage50"):
    from demo.system import start_system

    env = {**env, "ML_BENCH_AGENT_LOG": str(log_dir / REQUEST_LOG_NAME),
           "ML_BENCH_SAGE100_LOG": str(sage100_bench.call_log(log_dir))}
    system = start_system(env, log_dir, orders=orders, workers=workers, concurrency=concurrency, agent=False,
                          kick=False, webhook_repeat=1, sage=sage)
    system.start_agent(wrapper=AGENT_COUNTER + (sage100_bench.AGENT_SAGE100_COUNTER if sage == "sage100" else ""))
    return system


def _agent_requests(log_dir: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    path = log_dir / REQUEST_LOG_NAME
    if path.exists():
        for line in path.read_text().split():
            mark, _, call = line.rpartition(":")  # "throttled:/jobs/lease" or "/jobs/lease"
            key = "/jobs/{id}/" + call.rsplit("/", 1)[-1] if call.startswith("/jobs/") and call[6:7].isdigit() \
                else call
            key = f"{mark}:{key}" if mark else key
            counts[key] = counts.get(key, 0) + 1
    return counts


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return round(ordered[index], 3)


def _summary(values: list[float]) -> dict:
    return {"p50": _pct(values, 50), "p95": _pct(values, 95), "p99": _pct(values, 99),
            "max": round(max(values), 3) if values else None}


def _stages(integration_id: int) -> dict:
    """Per record, seconds from the record's creation to the first mapped / leased / posted entry."""
    from connector.models import AuditEntry, SyncRecord

    firsts: dict[int, dict[str, float]] = {}
    rows = AuditEntry.objects.filter(record__integration_id=integration_id,
                                     step__in=("received", "mapped", "leased", "posted")) \
        .values_list("record_id", "step", "created_at").order_by("id")
    for record_id, step, at in rows.iterator(chunk_size=5000):
        firsts.setdefault(record_id, {}).setdefault(step, at.timestamp())
    posted = set(SyncRecord.objects.filter(integration_id=integration_id, state=SyncRecord.State.POSTED)
                 .values_list("pk", flat=True))
    out = {}
    for a, b in (("received", "mapped"), ("mapped", "leased"), ("leased", "posted"), ("received", "posted")):
        spans = [s[b] - s[a] for rid, s in firsts.items() if rid in posted and a in s and b in s]
        out[f"{a}_to_{b}"] = {"p50_s": _pct(spans, 50), "p95_s": _pct(spans, 95)}
    return out


def _wait_until_up(system, workers: int, log_dir: Path) -> None:
    """Until every worker consumes (Celery logs "ready.") and the agent has sent its first
    heartbeat and its first idle lease poll: a process still starting is not the orders' time.
    (A fixed second stood here before; starting the clock at the heartbeat alone cost the quick
    1,000-order run 5-8 % of its throughput, the agent's first poll landing inside it.)"""
    from accounts.models import Agent
    from connector.devstack import wait_for

    def up() -> bool:
        return (all("ready." in system.stack.log(f"worker{n + 1}") for n in range(workers))
                and Agent.objects.filter(pk=system.seed.agent.pk, last_heartbeat_at__isnull=False).exists()
                and _agent_requests(log_dir).get("/jobs/lease", 0) >= 1)

    wait_for(up, timeout=120, what="the workers and the agent to be up")


# -- throughput -----------------------------------------------------------------------------------
def run_pipeline_bench(orders: int, *, workers: int = 1, concurrency: int = 2, timeout_s: float = 900,
                       keep_logs: bool = False, sage: str = "sage50") -> dict:
    """Store → posted. ``sage="sage100"``: orders become Sage 100 sales orders through the
    sage100sim agent; a refund there is a note on its order (skipped), not a posting."""
    env = _prepare()
    _purge_redis_queue()
    from connector.bigcommerce.normalize import DEFAULT_PAID_STATUS_IDS, NEVER_PAID_STATUS_IDS
    from connector.models import AgentJob, SyncRecord

    log_dir = DATA_DIR / "run"
    log_dir.mkdir(parents=True, exist_ok=True)
    system = _start(env, orders=orders, workers=workers, concurrency=concurrency, log_dir=log_dir, sage=sage)
    memory = MemoryWatch(system.stack)
    try:
        store_orders = system.store_orders()
        postable_statuses = DEFAULT_PAID_STATUS_IDS - NEVER_PAID_STATUS_IDS
        postable = sum(1 for o in store_orders if o["status_id"] in postable_statuses)
        refunds = len(system.store_refunds())
        expected = postable + (refunds if sage == "sage50" else 0)
        _wait_until_up(system, workers, log_dir)
        calls_before = system.sandbox("requests")["count"]
        agent_before = _agent_requests(log_dir)
        sage_before = sage100_bench.sage_calls(log_dir)
        started = time.monotonic()
        system.kick_sync()
        settled = False
        while time.monotonic() - started < timeout_s:
            memory.sample()
            posted = SyncRecord.objects.filter(state=SyncRecord.State.POSTED).count()
            open_records = SyncRecord.objects.exclude(
                state__in=(SyncRecord.State.POSTED, SyncRecord.State.SKIPPED)).exists()
            if posted >= expected and not open_records:
                settled = True
                break
            time.sleep(0.25)
        wall = time.monotonic() - started
        memory.sample()
        calls = system.sandbox("requests")["count"] - calls_before
        agent_after = _agent_requests(log_dir)
        by_endpoint = {k: v - agent_before.get(k, 0) for k, v in agent_after.items()}
        throttled = sum(v for k, v in by_endpoint.items() if k.startswith("throttled:"))
        round_trips = sum(v for k, v in by_endpoint.items()
                          if k not in ("/heartbeat", "/changes") and not k.startswith("throttled:"))
        posted = SyncRecord.objects.filter(state=SyncRecord.State.POSTED).count()
        database, broker = _backends()
        result = {
            "orders": orders, "postable_orders": postable, "refunds": refunds, "records_posted": posted,
            "settled": settled, "wall_s": round(wall, 2), "orders_per_s": round(postable / wall, 2),
            "records_per_s": round(posted / wall, 2), "bc_api_calls": calls,
            "bc_api_calls_per_order": round(calls / max(postable, 1), 3),
            "agent_round_trips": round_trips,
            "agent_round_trips_per_order": round(round_trips / max(postable, 1), 3),
            "agent_requests": by_endpoint, "agent_throttled": throttled, "agent_jobs": AgentJob.objects.count(),
            "peak_rss_mb": memory.result(), "stages": _stages(system.integration.pk),
            "workers": workers, "concurrency": concurrency, "database": database, "broker": broker, "sage": sage,
        }
        if sage == "sage100":
            result.update(sage100_bench.measured(sage_before, sage100_bench.sage_calls(log_dir), postable))
        if not settled:
            result["unsettled"] = {r.external_id: (r.state, r.message[:160]) for r in
                                   SyncRecord.objects.exclude(state__in=("posted", "skipped"))[:5]}
        return result
    finally:
        system.stop(STOP_GRACE_S)
        _cleanup(keep_logs)


# -- latency --------------------------------------------------------------------------------------
def run_latency_bench(count: int = 20, *, interval_s: float = 1.0, timeout_s: float = 60,
                      workers: int = 1, concurrency: int = 2, warmup: int = 2, keep_logs: bool = False) -> dict:
    env = _prepare()
    _purge_redis_queue()
    from connector.devstack import wait_for
    from connector.models import AuditEntry, InboundEvent, SyncRecord, SyncRun

    log_dir = DATA_DIR / "run"
    log_dir.mkdir(parents=True, exist_ok=True)
    system = _start(env, orders=0, workers=workers, concurrency=concurrency, log_dir=log_dir)
    memory = MemoryWatch(system.stack)
    try:
        system.kick_sync()  # starts the watermark poll, as in production
        # The first backfill over the (empty) history finishes before any measured order: it would
        # share the worker with them.
        wait_for(lambda: not SyncRun.objects.filter(integration=system.integration, kind=SyncRun.Kind.BACKFILL,
                                                    state=SyncRun.State.RUNNING).exists(),
                 timeout=timeout_s, what="the first backfill")
        # Warm-up orders, not measured: the first order after start pays for imports, the mapping
        # snapshot and the agent's first Sage login (measured: 1.8-2.2 s instead of 0.3-1 s).
        for _ in range(warmup):
            warm = str(system.place_order({"status_id": 11})["id"])
            wait_for_posted = time.monotonic() + timeout_s
            while time.monotonic() < wait_for_posted and not SyncRecord.objects.filter(
                    kind="order", external_id=warm, state="posted").exists():
                time.sleep(0.1)
        placed = []
        next_at = time.monotonic()
        for _ in range(count):
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval_s
            # Paid (status 11, "awaiting fulfillment") card order: invoice + receipt.
            placed.append(str(system.place_order({"status_id": 11})["id"]))
            memory.sample()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = SyncRecord.objects.filter(kind="order", external_id__in=placed, state="posted").count()
            if done >= len(placed):
                break
            time.sleep(0.2)
        memory.sample()
        timings = []
        for order_id in placed:
            received = (InboundEvent.objects.filter(source="webhook", resource_id=order_id, scope__contains="order")
                        .order_by("received_at").values_list("received_at", flat=True).first())
            record = SyncRecord.objects.filter(kind="order", external_id=order_id).first()
            leased = (AuditEntry.objects.filter(record=record, step="leased").order_by("id")
                      .values_list("created_at", flat=True).first()) if record else None
            posted = record.posted_at if record else None
            timings.append({"order": order_id,
                            "webhook_to_leased_s": (leased - received).total_seconds() if received and leased else None,
                            "leased_to_posted_s": (posted - leased).total_seconds() if leased and posted else None,
                            "webhook_to_posted_s": (posted - received).total_seconds() if received and posted
                            else None})
        database, broker = _backends()

        def column(name):
            return [t[name] for t in timings if t[name] is not None]
        return {"count": count, "interval_s": interval_s, "warmup": warmup,
                "posted": len(column("webhook_to_posted_s")),
                "webhook_to_leased_s": _summary(column("webhook_to_leased_s")),
                "leased_to_posted_s": _summary(column("leased_to_posted_s")),
                "webhook_to_posted_s": _summary(column("webhook_to_posted_s")),
                "timings": timings, "peak_rss_mb": memory.result(), "database": database, "broker": broker}
    finally:
        system.stop(STOP_GRACE_S)
        _cleanup(keep_logs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=0, help="throughput run with this many seeded orders")
    parser.add_argument("--latency", type=int, default=0, help="latency run with this many single orders")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    # A SIGTERM (timeout, kill) unwinds through the ``finally`` that stops the started processes.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.orders:
        out = run_pipeline_bench(args.orders, workers=args.workers, concurrency=args.concurrency,
                                 keep_logs=args.keep_logs)
    elif args.latency:
        out = run_latency_bench(args.latency, interval_s=args.interval, workers=args.workers,
                                concurrency=args.concurrency, keep_logs=args.keep_logs)
        out.pop("timings")
    else:
        parser.error("give --orders N or --latency M")
    print(json.dumps(out, indent=2, default=str))
    return 0 if out.get("settled", True) else 1


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["run_pipeline_bench", "run_latency_bench"]
