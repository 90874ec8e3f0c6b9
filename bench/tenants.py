"""Thousands of merchants on one deployment (issue 22 item 3): N integrations, each its own tenant
and store, polling every ``interval`` seconds with nothing new, and 1 % of them receiving orders,
on a real Celery beat and worker (PostgreSQL + Redis when DATABASE_URL / CELERY_BROKER_URL say so).

    .venv/bin/python -m bench.tenants                       # 2,000 integrations, 60 s, 3 intervals
    .venv/bin/python -m bench.tenants --quick               # 300 integrations, 10 s, ~40 s
    .venv/bin/python -m bench.tenants --design periodic     # the old design: a PeriodicTask each
    .venv/bin/python -m bench.tenants --pool prefork --concurrency 2   # the default worker instead

One beat and one worker (``-P threads -c 16`` unless told otherwise).

The stores: one sandbox server process-thread serving every BigCommerce store hash
(sandbox/bigcommerce/many.py) and ``adobe`` sandbox Adobe Commerce stores. Every integration's
first poll is due within the first interval (spread like migration accounts 0010 spreads them);
that first round is the warm-up (processes start, each integration's roll-up row of the day is
made), and the measured window is the ``intervals`` intervals after it.

Result keys: integrations, interval_s, window_s, design, polls (in the window, by the stores'
request logs), polls_expected, late_polls (started > 10 s after due: the dispatcher's own record),
gaps_over_10s (consecutive polls of one store more than interval + jitter + 10 s apart, seen by the
store: either design), max_gap_over_interval_s, api_calls_per_idle_poll, worker_cpu_ms_per_poll,
beat_cpu_pct (of
one core), worker_cpu_pct, rows_per_day (SyncRun and AuditEntry rows, extrapolated from the window,
idle and active), syncrun_rows_per_day_idle_before (the old one row per poll), db_bytes_per_day,
peak_rss_mb per process.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import threading
import time

from bench.environment import BASE_DIR, drop_database, prepare_database

DATA_DIR = BASE_DIR / "data" / "bench-tenants" / f"run-{os.getpid()}"
PG_DATABASE = f"mlconnector_bench_tenants_{os.getpid()}"
TOKEN, SECRET = "bench-token", "bench-secret"
GOLDEN = 0.6180339887498949
LATE_SECONDS = 10


def _prepare() -> dict:
    shutil.rmtree(DATA_DIR, ignore_errors=True)
    DATA_DIR.mkdir(parents=True)
    os.environ["ML_DATA_DIR"] = str(DATA_DIR)
    os.environ["DEBUG"] = "0"
    prepare_database(PG_DATABASE, DATA_DIR / "bench.sqlite3")
    import django

    django.setup()
    from django.conf import settings

    return {"DATABASE_URL": os.environ["DATABASE_URL"], "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "COORDINATION_REDIS_URL": settings.COORDINATION_REDIS_URL or "", "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY, "DEBUG": "0", "ML_DATA_DIR": str(DATA_DIR)}


def _make_tenants(count: int, *, bc_url: str, adobe: list[dict], interval: int, first_due: float) -> dict:
    """``count`` tenants, each with one store, one Sage company and one integration (bulk inserts);
    the last ``len(adobe)`` are Adobe Commerce stores. Watermarks start now (an integration that has
    been polling for a while), the refunds feed last read at a random point of its safety interval."""
    import datetime as dt

    from django.conf import settings
    from django.utils import timezone

    from accounts.models import Integration, SageConnection, StoreConnection, Tenant
    from connector.models import SyncCursor

    tag = secrets.token_hex(3)
    n_bc = count - len(adobe)
    tenants = Tenant.objects.bulk_create([Tenant(name=f"Merchant {n}", slug=f"m-{tag}-{n}") for n in range(count)])
    stores = []
    for n, tenant in enumerate(tenants):
        if n < n_bc:
            stores.append(StoreConnection(tenant=tenant, name=f"store {n}", store_hash=f"s{n:05d}",
                                          api_base_url=bc_url, access_token=TOKEN, client_secret=SECRET))
        else:
            keys = adobe[n - n_bc]
            stores.append(StoreConnection(
                tenant=tenant, name=f"adobe store {n}", platform=StoreConnection.Platform.ADOBE_COMMERCE,
                base_url=keys["url"], store_code="default", adobe_auth="oauth1", consumer_key=keys["consumer_key"],
                consumer_secret=keys["consumer_secret"], access_token=keys["access_token"],
                access_token_secret=keys["access_token_secret"]))
    stores = StoreConnection.objects.bulk_create(stores)
    sages = SageConnection.objects.bulk_create([SageConnection(tenant=t, name=f"sage {n}", edition="sage50uk")
                                                for n, t in enumerate(tenants)])
    start = timezone.now() + dt.timedelta(seconds=first_due)
    created = timezone.now() - dt.timedelta(days=1)
    integrations = Integration.objects.bulk_create([
        Integration(tenant=t, name=f"integration {n}", store=s, sage=g, poll_interval_seconds=interval,
                    webhook_token=secrets.token_urlsafe(16), webhook_secret="s", created_at=created, push_stock=False,
                    next_poll_at=start + dt.timedelta(seconds=(n * GOLDEN) % 1.0 * interval))
        for n, (t, s, g) in enumerate(zip(tenants, stores, sages, strict=True))])
    now = timezone.now()
    rng = random.Random(3)
    cursors = []
    for n, integration in enumerate(integrations):
        streams = ("orders", "refunds") if n < n_bc else ("adobe_orders", "adobe_creditmemos")
        for stream in streams:
            cursors.append(SyncCursor(integration=integration, stream=stream, value=now.isoformat()))
    cursors = SyncCursor.objects.bulk_create(cursors)
    for cursor in cursors:  # bulk_update leaves auto_now alone: the safety-net reads are spread out
        cursor.updated_at = now - dt.timedelta(seconds=rng.uniform(0, settings.REFUND_POLL_MAX_SECONDS))
    SyncCursor.objects.bulk_update(cursors, ["updated_at"], batch_size=1000)
    return {"integrations": [i.pk for i in integrations], "hashes": [s.store_hash for s in stores[:n_bc]]}


def _periodic_tasks(integration_ids: list[int], interval: int) -> None:
    """The design before issue 22: one django-celery-beat PeriodicTask per integration (what
    connector/bigcommerce/schedules.ensure_schedules made), and the dispatcher given nothing."""
    import datetime as dt

    from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

    from accounts.models import Integration

    every, _ = IntervalSchedule.objects.get_or_create(every=interval, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.bulk_create([
        PeriodicTask(name=f"BigCommerce poll: integration {pk}", task="connector.bigcommerce.poll_integration",
                     interval=every, args=json.dumps([pk])) for pk in integration_ids])
    PeriodicTasks.update_changed()
    Integration.objects.filter(pk__in=integration_ids).update(
        next_poll_at=dt.datetime(2999, 1, 1, tzinfo=dt.UTC))


def _cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
        except (OSError, IndexError, ValueError):
            continue
    return total


def _sizes() -> dict:
    from django.db import connection

    from connector.models import AuditEntry, InboundEvent, SyncRecord, SyncRun

    out = {"syncrun_rows": SyncRun.objects.count(), "audit_rows": AuditEntry.objects.count(),
           "rollup_rows": SyncRun.objects.filter(params__has_key="idle_polls").count(),
           "event_rows": InboundEvent.objects.count(), "record_rows": SyncRecord.objects.count()}
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_database_size(current_database()), pg_total_relation_size('connector_syncrun'),"
                           " pg_total_relation_size('connector_auditentry')")
            out["db_bytes"], out["syncrun_bytes"], out["audit_bytes"] = cursor.fetchone()
    return out


def _polled_integrations() -> int:
    from connector.models import SyncRun

    return SyncRun.objects.filter(kind="poll").values("integration_id").distinct().count()


def _rollups() -> dict:
    from connector.models import SyncRun

    totals = {"idle_polls": 0, "late_polls": 0, "scheduled_polls": 0, "api_calls": 0, "max_late_seconds": 0.0}
    for params, calls in SyncRun.objects.filter(kind="poll", params__has_key="idle_polls").values_list(
            "params", "api_calls"):
        for key in ("idle_polls", "late_polls", "scheduled_polls"):
            totals[key] += params.get(key, 0)
        totals["api_calls"] += calls
        totals["max_late_seconds"] = max(totals["max_late_seconds"], params.get("max_late_seconds", 0.0))
    from connector.models import SyncRun as Run

    busy = Run.objects.filter(kind="poll").exclude(params__has_key="idle_polls")
    totals["busy_polls"] = busy.count()
    totals["busy_late_polls"] = sum(1 for p in busy.values_list("params", flat=True)
                                    if (p or {}).get("late_seconds", 0) > LATE_SECONDS)
    return totals


class OrderReads:
    """When each store read its orders feed (one GET /v2/orders… per poll), seen by the store."""

    def __init__(self, many):
        self.times: dict[str, list[float]] = {}
        original = many.dispatch

        def dispatch(request):
            if request.method == "GET" and "/v2/orders" in request.path and "/products" not in request.path:
                store_hash = request.path.split("/")[2]
                self.times.setdefault(store_hash, []).append(time.time())
            return original(request)

        many.dispatch = dispatch


def run_tenants(integrations: int = 2000, *, interval: int = 60, intervals: int = 3, active_share: float = 0.01,
                adobe: int = 3, design: str = "dispatcher", concurrency: int = 16, pool: str = "threads",
                keep_logs: bool = False) -> dict:
    from bench.pipeline import MemoryWatch, _purge_redis_queue, _tree
    from connector.devstack import Stack, wait_for
    from sandbox.adobe.app import build_app as build_adobe
    from sandbox.bigcommerce.many import ManyStores
    from sandbox.httpserver import SandboxServer

    env = _prepare()
    from django.conf import settings

    _purge_redis_queue()
    many = ManyStores(token=TOKEN, client_secret=SECRET, quota=10**6)
    reads = OrderReads(many)
    servers = [SandboxServer(many).start()]
    adobe_keys = []
    for n in range(adobe):
        app = build_adobe(orders=0, seed=50 + n)
        server = SandboxServer(app).start()
        servers.append(server)
        keys = app.integrations[0]
        adobe_keys.append({"url": server.url, "consumer_key": keys.consumer_key,
                           "consumer_secret": keys.consumer_secret, "access_token": keys.access_token,
                           "access_token_secret": keys.access_token_secret})
    setup_started = time.monotonic()
    warmup = 20.0 if interval >= 30 else 12.0  # processes start, then the first round of polls is due
    made = _make_tenants(integrations, bc_url=servers[0].url, adobe=adobe_keys, interval=interval,
                         first_due=warmup)
    if design == "periodic":
        _periodic_tasks(made["integrations"][:len(made["hashes"])], interval)
    setup_s = time.monotonic() - setup_started
    child_env = {**env, "POLL_MIN_INTERVAL_SECONDS": str(min(interval, 30)), "SWEEP_TICK_SECONDS": "30"}
    stack = Stack(env=child_env, log_dir=DATA_DIR / "logs")
    memory = MemoryWatch(stack)
    rng = random.Random(11)
    active = rng.sample(made["hashes"], max(1, int(len(made["hashes"]) * active_share)))
    stop_orders = threading.Event()

    def place_orders():  # each active store gets an order about once an interval
        while not stop_orders.wait(interval / max(1, len(active))):
            many.store(rng.choice(active)).generate_orders(1)

    orders_thread = threading.Thread(target=place_orders, daemon=True)
    try:
        stack.worker("worker", concurrency=concurrency, extra=["--pool", pool])
        stack.beat("beat")
        # The warm-up round: every integration has polled once (its roll-up row of the day exists).
        # On an overloaded machine some polls expire unrun: measure anyway after two intervals, and say so.
        try:
            wait_for(lambda: _polled_integrations() >= integrations, timeout=warmup + 2 * interval,
                     what="every integration's first poll")
            warmed = True
        except TimeoutError:
            warmed = False
        orders_thread.start()
        procs = {name: _tree(p.popen.pid) for name, p in stack.processes.items()}
        before = {"cpu": {name: _cpu_ticks(pids) for name, pids in procs.items()}, "sizes": _sizes(),
                  "rollups": _rollups(), "requests": sum(many.requests.values())}
        t0 = time.time()
        window = interval * intervals
        while time.time() - t0 < window:
            memory.sample()
            time.sleep(1.0)
        t1 = time.time()
        procs = {name: _tree(p.popen.pid) for name, p in stack.processes.items()}
        after = {"cpu": {name: _cpu_ticks(pids) for name, pids in procs.items()}, "sizes": _sizes(),
                 "rollups": _rollups(), "requests": sum(many.requests.values())}
        alive = {name: stack.alive(name) for name in stack.processes}
    finally:
        stop_orders.set()
        stack.stop()
        for server in servers:
            server.stop()
    hz = os.sysconf("SC_CLK_TCK")
    elapsed = t1 - t0
    in_window = {h: [t for t in reads.times.get(h, []) if t0 <= t < t1] for h in made["hashes"]}
    polls_bc = sum(len(v) for v in in_window.values())
    jitter = min(settings.POLL_JITTER_SECONDS, interval * 0.1)
    gaps = []
    for store_hash in made["hashes"]:
        times = sorted(reads.times.get(store_hash, []))
        gaps += [b - a for a, b in zip(times, times[1:], strict=False) if t0 <= b < t1]
    over = [g - interval for g in gaps if g > interval + jitter + LATE_SECONDS]
    idle_delta = {k: after["rollups"][k] - before["rollups"][k] for k in ("idle_polls", "late_polls",
                                                                         "scheduled_polls", "api_calls")}
    busy_polls = after["rollups"]["busy_polls"] - before["rollups"]["busy_polls"]
    polls = idle_delta["idle_polls"] + busy_polls
    cpu = {name: (after["cpu"][name] - before["cpu"][name]) / hz for name in after["cpu"]}
    per_day = 86400 / elapsed
    sizes_b, sizes_a = before["sizes"], after["sizes"]
    rows = {key: round((sizes_a[key] - sizes_b[key]) * per_day)
            for key in ("syncrun_rows", "rollup_rows", "audit_rows", "event_rows", "record_rows")}
    # The idle polls' share: one roll-up row per integration and day (the window, inside one day,
    # adds none once each has its row); SyncRun rows of polls that found orders are the active 1 %'s.
    rows["rollup_rows_steady"] = integrations
    result = {
        "integrations": integrations, "adobe": adobe, "active_stores": len(active), "interval_s": interval,
        "window_s": round(elapsed, 1), "warmup_complete": warmed, "design": design, "pool": f"{pool} x{concurrency}", "setup_s": round(setup_s, 1),
        "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
        "broker": settings.CELERY_BROKER_URL.split(":", 1)[0],
        "polls": polls, "polls_bc_seen_by_stores": polls_bc,
        "polls_expected": round(integrations * elapsed / interval),
        "stores_polled_in_window": sum(1 for v in in_window.values() if v),
        "late_polls": idle_delta["late_polls"] + (after["rollups"]["busy_late_polls"]
                                                  - before["rollups"]["busy_late_polls"]),
        "scheduled_polls_timed": idle_delta["scheduled_polls"],
        "max_late_s_whole_run": after["rollups"]["max_late_seconds"],
        "gaps_over_10s": len(over), "max_gap_over_interval_s": round(max((g - interval for g in gaps), default=0), 1),
        "api_calls_per_idle_poll": round(idle_delta["api_calls"] / max(idle_delta["idle_polls"], 1), 3),
        "worker_cpu_ms_per_poll": round(1000 * cpu.get("worker", 0) / max(polls, 1), 2),
        "beat_cpu_pct": round(100 * cpu.get("beat", 0) / elapsed, 2),
        "worker_cpu_pct": round(100 * cpu.get("worker", 0) / elapsed, 1),
        "rows_per_day": rows,
        "syncrun_rows_per_day_idle_before": round(integrations * 86400 / interval),
        # Whole-database bytes: includes the dead row versions of the roll-up updates, which
        # (auto)vacuum makes reusable, so over a day the table stops growing; see README.
        "db_bytes_per_day_raw": (round((sizes_a["db_bytes"] - sizes_b["db_bytes"]) * per_day)
                                 if "db_bytes" in sizes_a else None),
        "syncrun_bytes_before_after": (sizes_b.get("syncrun_bytes"), sizes_a.get("syncrun_bytes")),
        "peak_rss_mb": memory.result(), "processes_alive": alive,
    }
    if not keep_logs:
        drop_database(PG_DATABASE)
        shutil.rmtree(DATA_DIR, ignore_errors=True)
    return result


def rows(result: dict) -> list[tuple[str, str, str, str, str]]:
    """Rows of `make bench`'s table (bench/__main__.py): (benchmark, size, measured, target, mark)."""
    if "polls" not in result:
        return [("many merchants", "", str(result.get("error") or result.get("skipped") or "no result")[:60],
                 "0 polls > 10 s late", "MISSED")]
    size = f"{result['integrations']} integrations, {result['interval_s']} s"
    per_day = result["rows_per_day"]
    late = result["late_polls"] + result["gaps_over_10s"]
    calls = result["api_calls_per_idle_poll"]
    return [
        ("many merchants", size,
         f"{result['polls']}/{result['polls_expected']} polls in {result['window_s']:.0f} s, {result['late_polls']} "
         f"> 10 s late (store-side gaps: {result['gaps_over_10s']})", "0 polls > 10 s late", _mark(late == 0)),
        ("  idle poll", "", f"{calls} API calls, worker {result['worker_cpu_ms_per_poll']} ms CPU",
         "1 API call", _mark(calls <= 1.05)),
        ("  beat", "", f"{result['beat_cpu_pct']} % of a core; worker {result['worker_cpu_pct']} %", "", ""),
        ("  rows a day", "", f"SyncRun {per_day['syncrun_rows']} (idle: {per_day['rollup_rows_steady']} roll-ups; "
                             f"before {result['syncrun_rows_per_day_idle_before']}), audit {per_day['audit_rows']}",
         "idle: bounded", _mark(per_day["rollup_rows"] <= result["integrations"])),
        ("  peak memory", "", ", ".join(f"{k} {v:.0f} MB" for k, v in result["peak_rss_mb"].items()), "", ""),
    ]


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tenants", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 integrations, 10 s interval, 2 intervals")
    parser.add_argument("--integrations", type=int)
    parser.add_argument("--interval", type=int)
    parser.add_argument("--intervals", type=int)
    parser.add_argument("--adobe", type=int, default=3)
    parser.add_argument("--design", choices=("dispatcher", "periodic"), default="dispatcher")
    parser.add_argument("--pool", default="threads", help="the worker's pool: threads (polls wait on the "
                                                          "store: README, Production) or prefork")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    result = run_tenants(args.integrations or (200 if args.quick else 2000),
                         interval=args.interval or (10 if args.quick else 60),
                         intervals=args.intervals or (2 if args.quick else 3), adobe=args.adobe, design=args.design,
                         pool=args.pool, concurrency=args.concurrency, keep_logs=args.keep_logs)
    print(json.dumps(result, indent=1, default=str))
    for row in rows(result):
        print(" | ".join(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
