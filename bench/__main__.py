"""`make bench` (QUICK=1 for a quick run, LONG_ROWS from their last full run): measure the real
pieces and print a table.

What it measures (each against the real code, over real HTTP, on the configured database and
broker — PostgreSQL + Redis when DATABASE_URL / CELERY_BROKER_URL are set):
- store → posted (the backfill): N sandbox orders with 1–5 lines each, backfilled and posted by the
  whole stack (uvicorn web, Celery worker and beat, the agent with the simulated Sage 50 company):
  wall time, orders per second, BigCommerce calls and agent round trips per order, peak memory of
  each process, time per stage;
- backfill read: the poller alone reading N orders from the store: orders read and queued per
  second, BigCommerce calls per order;
- latency: single paid orders placed at a steady rate with an idle agent: webhook received →
  leased → posted, p50/p95/p99;
- webhook ingest: a real uvicorn web process; signed deliveries per second with dedup on and
  30 % duplicates, and the p95 answer time;
- stock push: N SKUs of which 1 % changed → API calls and wall time;
- idle agents: long-polling agents held by one server process, and a job's handover time;
- chaos: `make chaos` (quick: the last result);
- into a realistic Sage: paid orders through one agent when each Sage call costs what it does on a
  desktop Sage (bench/sage_cost.py), Sage calls per order by kind, and the writes-only limit
  (quick: the last full run's).
- Black Friday hour: 50 stores and 50 agents on 2 web + 2 worker nodes, 20 paid orders/s by webhook
  for 5 minutes (quick: the last full run's; `--quick --only black_friday`: 5 stores, 30 s), see
  bench/blackfriday.py.
- Adobe Commerce (bench/adobe.py): the Adobe poller's backfill read (calls per order) and Adobe
  webhook → posted p95.
Results go to bench/results/<timestamp>.json with the machine they ran on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from bench import blackfriday
from bench import sage100 as sage100_bench
from bench.adobe import rows as adobe_rows
from bench.environment import BASE_DIR, machine, prepare_database


def _setup_django():
    import django

    django.setup()


def _integration(api_base_url: str, store_hash: str, token: str, secret: str):
    from accounts.models import Integration, SageConnection, StoreConnection, Tenant

    tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    store = StoreConnection.objects.create(tenant=tenant, name=f"bench {store_hash}", store_hash=store_hash,
                                           api_base_url=api_base_url, access_token=token, client_secret=secret)
    sage = SageConnection.objects.create(tenant=tenant, name="bench sage", edition="sage50uk")
    return Integration.objects.create(tenant=tenant, name=f"bench {store_hash}", store=store, sage=sage)


def bench_backfill_read(orders: int) -> dict:
    from connector.bigcommerce.poller import backfill
    from connector.models import SyncRecord
    from sandbox.bigcommerce.app import BigCommerceApp
    from sandbox.bigcommerce.store import BigCommerceStore
    from sandbox.httpserver import SandboxServer

    store = BigCommerceStore(seed=7, orders=orders, store_hash="benchbf")
    app = BigCommerceApp(store, token="bench-token", client_secret="bench-secret")
    app.faults.quota = 10**9  # zero added latency and no quota: measure our side
    server = SandboxServer(app).start()
    try:
        integration = _integration(server.url, "benchbf", "bench-token", "bench-secret")
        started = time.perf_counter()
        run = backfill(integration, dt.datetime(2000, 1, 1, tzinfo=dt.UTC), include_refunds=False)
        elapsed = time.perf_counter() - started
    finally:
        server.stop()
    records = SyncRecord.objects.filter(integration=integration).count()
    return {"orders": run.seen, "records": records, "api_calls": run.api_calls,
            "api_calls_per_order": round(run.api_calls / max(run.seen, 1), 4),
            "wall_s": round(elapsed, 2), "orders_per_s": round(run.seen / elapsed, 1)}


# Measured before the ingest rework (commit dfee866: sync Django view, one insert, one DB connection
# and one Celery publish per delivery; uvicorn on h11/asyncio), this 2-core machine. "threads":
# the old bench client (8 Python threads, quick size); "wrk": 64 connections, X-BC-Signature.
WEBHOOK_INGEST_BEFORE = {
    "sqlite+filesystem": {"threads": {"deliveries_per_s": 65.4, "p50_ms": 101.2, "p95_ms": 269.5},
                          "wrk": {"deliveries_per_s": 60.9, "p50_ms": 848.1, "p95_ms": 1342.9, "non_2xx": 0}},
    "postgresql+redis": {"threads": {"deliveries_per_s": 38.2, "p50_ms": 181.9, "p95_ms": 396.3},
                         "wrk": {"deliveries_per_s": 51.7, "p50_ms": 1160.1, "p95_ms": 1723.7,
                                 "non_2xx": "154 of 416 answered 500"}},
}


def webhook_deliveries(secret: str, hook_secret: str, count: int, scheme: str, duplicate_share: float = 0.3,
                       first_id: int = 0) -> tuple[list[tuple[dict, bytes]], list[str]]:
    """``count`` signed deliveries, every tenth three of them a repeat of a recent one (30 %), and
    the dedup identity of each. Signatures are computed here, before any clock starts."""
    from connector.bigcommerce.signatures import SECRET_HEADER, sign_bc, sign_standard

    stamp = int(time.time())
    deliveries, keys = [], []
    fresh = first_id
    for n in range(count):
        if n % 10 >= 10 - round(duplicate_share * 10) and n >= 10:
            order_id = fresh - 1 - (n % 7)  # a retry of an event a few deliveries back
        else:
            order_id, fresh = fresh, fresh + 1
        payload = {"scope": "store/order/updated", "store_id": "1", "data": {"type": "order", "id": order_id},
                   "hash": f"h{order_id:08d}", "created_at": stamp - 86_400 + order_id % 86_400, "producer": "stores/benchwh"}
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if scheme == "standard-webhooks":
            msg_id = f"msg_{order_id}"
            headers.update({"webhook-id": msg_id, "webhook-timestamp": str(stamp),
                            "webhook-signature": sign_standard(secret, msg_id, stamp, body)})
        elif scheme == "x-bc-signature":
            headers["X-BC-Signature"] = sign_bc(secret, body)
        else:
            headers[SECRET_HEADER] = hook_secret
        deliveries.append((headers, body))
        keys.append(payload["hash"])
    return deliveries, keys


def _bench_broker(work_dir) -> tuple[dict, object]:
    """The web process's broker: never the developer's own queue (a bench event id would mean
    another event in the developer's database). Returns env overrides and a message counter."""
    import os

    url = os.environ.get("CELERY_BROKER_URL", "")
    if url.startswith("redis"):
        import redis

        base, _, _ = url.rpartition("/")
        bench_url = f"{base}/{os.environ.get('BENCH_REDIS_DB', '15')}"
        client = redis.Redis.from_url(bench_url)
        client.delete("celery")
        return {"CELERY_BROKER_URL": bench_url, "COORDINATION_REDIS_URL": bench_url}, lambda: client.llen("celery")
    queue = work_dir / "broker" / "queue"
    return {"ML_DATA_DIR": str(work_dir)}, lambda: len(list(queue.glob("*"))) if queue.exists() else 0


WEBHOOK_SCHEMES = ("secret-header", "x-bc-signature", "standard-webhooks")  # the first is the headline


def bench_webhook_ingest(deliveries: int, duplicate_share: float = 0.3, connections: int = 64,
                         web_workers: int = 2, schemes: tuple[str, ...] | None = None) -> dict:
    """Signed deliveries against a real uvicorn web process, replayed by wrk (or, without wrk, an
    asyncio client) for about deliveries / 250 seconds per signature scheme."""
    import os
    import tempfile
    from pathlib import Path

    from bench import loadgen
    from connector.devstack import Stack, free_port
    from connector.models import InboundEvent

    duration = min(20.0, max(4.0, deliveries / 250))
    schemes = schemes or WEBHOOK_SCHEMES
    wrk = None if os.environ.get("BENCH_LOADGEN") == "python" else loadgen.find_wrk()
    results: dict = {"duration_s_per_scheme": duration, "connections": connections, "web_workers": web_workers,
                     "load_generator": "wrk" if wrk else "python-asyncio (wrk unavailable, or BENCH_LOADGEN=python: "
                                                          "the client shares the 2 cores with the server)"}
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        broker_env, broker_messages = _bench_broker(Path(tmp))
        env = {"DATABASE_URL": os.environ["DATABASE_URL"], "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1",
               "SECRET_KEY": _setting("SECRET_KEY"), "FIELD_ENCRYPTION_KEY": _setting("FIELD_ENCRYPTION_KEY"),
               "LOG_LEVEL": "WARNING", **broker_env}
        port = free_port()
        with Stack(env=env, log_dir=Path(tmp) / "logs") as stack:
            stack.web(port, workers=web_workers)  # as the README's production line
            stack.wait_http(f"http://127.0.0.1:{port}/admin/login/", "web")
            # Warm-up (imports, connections, the broker channel in every worker): not measured.
            warm = _integration("http://127.0.0.1:9", "benchwhwarm", "t", "bench-webhook-secret")
            loadgen.send_all(f"http://127.0.0.1:{port}{warm.webhook_path}",
                             webhook_deliveries("bench-webhook-secret", "", 300, "x-bc-signature")[0])
            for number, scheme in enumerate(schemes):
                integration = _integration("http://127.0.0.1:9", f"benchwh{number}", "t", "bench-webhook-secret")
                pool = int(duration * 6000)  # more than the run can send: no wrap-around
                batch, keys = webhook_deliveries("bench-webhook-secret", integration.webhook_secret, pool, scheme,
                                                 duplicate_share)
                url = f"http://127.0.0.1:{port}{integration.webhook_path}"
                messages_before = broker_messages()
                if wrk:
                    run = loadgen.run_wrk(wrk, url, batch, duration=duration, connections=connections)
                else:
                    run = loadgen.run_python(url, batch, duration=duration, connections=connections)
                time.sleep(0.5)  # answers in flight when the client stopped may still commit
                messages = broker_messages() - messages_before
                answered = loadgen.answered_deliveries(len(batch), run.answered_per_worker,
                                                       len(run.answered_per_worker), skipped=run.skipped)
                must_store = {keys[i] for i in answered}
                stored = set(InboundEvent.objects.filter(integration=integration).values_list("dedup_key", flat=True))
                stored_hashes = {key.split(":")[2] for key in stored}
                results[scheme] = {
                    "deliveries": run.requests, "deliveries_per_s": round(run.per_second, 1),
                    "p50_ms": round(run.p50_ms, 2), "p95_ms": round(run.p95_ms, 2), "p99_ms": round(run.p99_ms, 2),
                    "statuses": run.statuses, "socket_errors": run.socket_errors,
                    "duplicates_answered": len(answered) - len(must_store), "stored_events": len(stored),
                    "answered_but_not_stored": len(must_store - stored_hashes),
                    "celery_messages": messages,
                    "events_per_message": round(len(stored) / messages, 1) if messages else None,
                }
                print(f"  {scheme}: {json.dumps(results[scheme])}", flush=True)
    headline = results[schemes[0]]
    results.update({key: headline[key] for key in ("deliveries", "deliveries_per_s", "p50_ms", "p95_ms")})
    results["duplicates"] = headline["duplicates_answered"]
    results["stored_events"] = headline["stored_events"]
    results["headline_scheme"] = schemes[0]
    results["before"] = WEBHOOK_INGEST_BEFORE
    return results


def _setting(name: str) -> str:
    from django.conf import settings

    return getattr(settings, name)


def bench_stock_push(skus: int, changed_share: float = 0.01) -> dict:
    from connector.flows.stock import push_stock
    from connector.models import StockLevel
    from sandbox.bigcommerce.app import BigCommerceApp
    from sandbox.bigcommerce.store import BigCommerceStore
    from sandbox.httpserver import SandboxServer

    store = BigCommerceStore(seed=3, orders=0, store_hash="benchst", n_products=200)
    known = sorted({variant_sku for variant_sku in _store_skus(store)})
    app = BigCommerceApp(store, token="bench-token", client_secret="bench-secret")
    app.faults.quota = 10**9
    server = SandboxServer(app).start()
    try:
        integration = _integration(server.url, "benchst", "bench-token", "bench-secret")
        levels = []
        for n in range(skus):
            sku = known[n] if n < len(known) else f"ZZ-BENCH-{n:06d}"  # sorts after the real SKUs
            levels.append(StockLevel(integration=integration, sku=sku, sage_in_stock=10, sage_allocated=0,
                                     pushed_quantity=10))
        StockLevel.objects.bulk_create(levels, batch_size=2000)
        changed = max(1, int(skus * changed_share))
        # The first SKUs are the store's real ones, so the changed ones match a product or variant.
        ids = list(StockLevel.objects.filter(integration=integration).order_by("sku").values_list("pk", flat=True))
        StockLevel.objects.filter(pk__in=ids[:changed]).update(sage_in_stock=7)
        started = time.perf_counter()
        run = push_stock(integration)
        elapsed = time.perf_counter() - started
    finally:
        server.stop()
    return {"skus": skus, "changed": changed, "pushed": run.succeeded, "unmatched": run.failed,
            "api_calls": run.api_calls, "wall_s": round(elapsed, 3)}


def _store_skus(store) -> list[str]:
    """The SKUs the store keeps inventory under (its variants' SKUs; a product without options has
    one base variant). A multi-variant product's own SKU is not one: stock is per variant."""
    return [variant.sku for variant in store.catalog.variants.values() if variant.sku]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, and the many-merchants, realistic-Sage and Black Friday rows from their "
                             "last full run unless --only names them: about a minute in all")
    parser.add_argument("--orders", type=int, help="orders for the backfill reads (default 10000, quick 1000)")
    parser.add_argument("--deliveries", type=int, help="webhook deliveries (default 5000, quick 1000)")
    parser.add_argument("--skus", type=int, help="SKUs for the stock push (default 10000, quick 2000)")
    parser.add_argument("--pipeline-orders", type=int,
                        help="orders store → posted (default 10000, quick 1000: a smaller run mostly measures "
                             "the second or so the first order takes to get through)")
    parser.add_argument("--pipeline-runs", type=int,
                        help="store → posted runs, each on a fresh stack and database; the median is reported "
                             "and the slowest is held to the target (default 3, quick 1)")
    parser.add_argument("--repeat-runs", type=int,
                        help="runs of the realistic-Sage, many-merchants and Black Friday rows, each on a fresh "
                             "stack and database; the slowest is reported and held to the target (default 2, "
                             "quick 1; a full Black Friday run takes about 8 minutes)")
    parser.add_argument("--latency", type=int, help="single orders timed webhook → posted (default 500, quick 10)")
    parser.add_argument("--latency-interval", type=float, default=0.5,
                        help="seconds between the latency bench's orders (default 0.5)")
    parser.add_argument("--agents", type=int, help="idle long-polling agents (default 1000, quick 300)")
    parser.add_argument("--chaos-orders", type=int,
                        help="orders for the chaos run (default 1000; quick: 0 = show the last `make chaos`)")
    parser.add_argument("--only", help="comma-separated subset: " + ",".join(BENCHES))
    args = parser.parse_args(argv)
    sizes = {
        "backfill_read": args.orders or (1000 if args.quick else 10000),
        "webhook_ingest": args.deliveries or (1000 if args.quick else 5000),
        "stock_push": args.skus or (2000 if args.quick else 10000),
        "pipeline": args.pipeline_orders or (1000 if args.quick else 10000),
        "sage100": args.pipeline_orders or (200 if args.quick else 2000),
        "latency": args.latency or (10 if args.quick else 500),
        "idle_agents": args.agents or (300 if args.quick else 1000),
        "tenants": 200 if args.quick else 2000,
        "chaos": args.chaos_orders if args.chaos_orders is not None else (0 if args.quick else 1000),
        "sage_cost": 20 if args.quick else 100,  # paid orders measured (after a warm-up of half as many)
        "black_friday": dict(blackfriday.QUICK if args.quick else blackfriday.FULL),
        "adobe_backfill_read": args.orders or (1000 if args.quick else 10000),
        "adobe_latency": args.latency or (10 if args.quick else 200),
    }
    named = set(args.only.split(",")) if args.only else set()
    only = named or set(BENCHES)
    pipeline_runs = max(1, args.pipeline_runs or (1 if args.quick else 3))
    repeat_runs = max(1, args.repeat_runs or (1 if args.quick else 2))

    outer_env = dict(os.environ)  # the benches in their own interpreter pick their own database
    db_url = prepare_database()
    _setup_django()
    from django.conf import settings

    results = {"when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "machine": machine(),
               "database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
               "broker": settings.CELERY_BROKER_URL.split(":", 1)[0], "database_url": db_url.split("@")[-1],
               "quick": args.quick, "sizes": sizes}
    print(f"machine: {_machine_line(results)}", flush=True)
    for name in BENCHES:
        if name not in only:
            continue
        if args.quick and name in LONG_ROWS and name not in named:
            results[name] = last_full_result(name)
            print(f"{name}: {results[name].get('source') or results[name].get('missing')}", flush=True)
            continue
        print(f"running {name} ({sizes[name]}) …", flush=True)
        started = time.perf_counter()
        try:
            if name == "pipeline":
                results[name] = _repeated_pipeline(sizes[name], pipeline_runs, outer_env)
            elif name in SLOWNESS:
                results[name] = _repeated_slowest(name, sizes[name], repeat_runs, outer_env)
            else:
                results[name] = _run_one(name, sizes[name], outer_env, latency_interval=args.latency_interval,
                                         quick=args.quick)
        except Exception as error:  # one broken bench must not lose the others' figures
            results[name] = {"error": f"{error.__class__.__name__}: {error}"}
        results[name]["bench_wall_s"] = round(time.perf_counter() - started, 1)
        print(f"  {json.dumps(results[name], default=str)[:1500]}", flush=True)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    out.write_text(json.dumps(results, indent=2, default=str))
    _print_table(results)
    print(f"written: {os.path.relpath(out, BASE_DIR)}")
    return 0


# Rows whose time is set by the clock, not by our code: 2,000 merchants polling every 60 s for
# three minutes, a five-minute Black Friday load, and a desktop Sage's per-call latency (0.55 s of
# simulated writes per order, by design). Cut to a quick size they still took 130 of the quick
# run's 270 s, and proved little. A quick run shows their newest full result instead, dated, as it
# does the last `make chaos`; naming one in --only runs it at its quick size.
LONG_ROWS = ("tenants", "sage_cost", "black_friday")
RESULTS_DIR = BASE_DIR / "bench" / "results"

BENCHES = ("pipeline", "sage100", "backfill_read", "latency", "webhook_ingest", "stock_push", "idle_agents", "tenants",
           "sage_cost", "black_friday", "adobe_backfill_read", "adobe_latency", "chaos")
RESULT_MARK = "BENCH-RESULT "


def _run_one(name: str, size: int, outer_env: dict, *, latency_interval: float = 0.5, quick: bool = False) -> dict:
    if name == "backfill_read":
        return bench_backfill_read(size)
    if name == "webhook_ingest":  # quick: the headline scheme only (each scheme is a few seconds of load)
        return bench_webhook_ingest(size, schemes=WEBHOOK_SCHEMES[:1] if quick else WEBHOOK_SCHEMES)
    if name == "stock_push":
        return bench_stock_push(size)
    if name == "idle_agents":
        from bench.idle_agents import run_idle_agents

        return run_idle_agents(agents=size)
    if name in ("pipeline", "latency"):
        import importlib.util

        if importlib.util.find_spec("bench.pipeline") is None:
            print("  bench/pipeline.py is missing: skipped", flush=True)
            return {"missing": "bench/pipeline.py"}
        # bench.pipeline sets Django up on a database of its own: a fresh interpreter each.
        call = f"run_pipeline_bench({size}, timeout_s=3600)" if name == "pipeline" else \
            f"run_latency_bench({size}, interval_s={latency_interval})"
        return _in_child(f"from bench.pipeline import run_pipeline_bench, run_latency_bench\nresult = {call}",
                         outer_env)
    if name == "sage100":
        # Orders → Sage 100 sales orders through the sage100sim agent, in a fresh interpreter.
        return _in_child(f"from bench.pipeline import run_pipeline_bench\n"
                         f"result = run_pipeline_bench({size}, timeout_s=3600, sage='sage100')", outer_env)
    if name == "tenants":  # many merchants polling (issue 22): own database and processes, fresh interpreter
        return _in_child(f"from bench.tenants import run_tenants\nresult = run_tenants({size}, interval="
                         f"{10 if size <= 300 else 60}, intervals={2 if size <= 300 else 3})", outer_env)
    if name == "chaos":
        return _chaos(size, outer_env)
    if name == "sage_cost":  # paid orders into a realistic Sage (bench/sage_cost.py), its own interpreter
        return _in_child(f"from bench.sage_cost import run_sage_cost_bench\nresult = run_sage_cost_bench({size})",
                         outer_env)
    if name == "black_friday":  # its own database and processes: a fresh interpreter
        return _in_child(f"from bench.blackfriday import run_black_friday\nresult = run_black_friday(**{size!r})", outer_env)
    if name == "adobe_backfill_read":
        from bench.adobe import run_backfill_read

        return run_backfill_read(size)
    if name == "adobe_latency":  # the whole system on a database of its own: a fresh interpreter
        return _in_child(f"from bench.adobe import run_latency\nresult = run_latency({size}, "
                         f"interval_s={latency_interval})", outer_env)
    raise ValueError(name)


def _repeated_pipeline(size: int, runs: int, outer_env: dict) -> dict:
    """The store → posted bench ``runs`` times. On two shared cores one run moves by 10-15 % with
    whatever else the machine does, so one run proves little either way: the result is the median
    run's figures, with every run's throughput beside them (``runs``) and the slowest
    (``orders_per_s_min``), which is the one held to the target."""
    results = []
    for number in range(runs):
        if runs > 1:
            print(f"  run {number + 1} of {runs}", flush=True)
        results.append(_run_one("pipeline", size, outer_env))
    measured = [result for result in results if "orders_per_s" in result]
    if len(measured) < len(results):  # a run that broke is the headline: it must not hide behind a median
        return next(result for result in results if "orders_per_s" not in result)
    median = sorted(measured, key=lambda result: result["orders_per_s"])[len(measured) // 2]
    return {**median, "runs": [result["orders_per_s"] for result in measured],
            "orders_per_s_min": min(result["orders_per_s"] for result in measured),
            "all_settled": all(result.get("settled") for result in measured)}


def _black_friday_slowness(result: dict) -> tuple:
    minutes = [m["p95"] or 0 for m in result["per_minute"]] or [float("inf")]
    return max(minutes), result["webhook_to_posted_s"].get("p99") or float("inf")


# Rows run ``--repeat-runs`` times and held to their target on the slowest run: (the key only a
# measured result has, how slow a result is: larger is slower, compared as a tuple).
SLOWNESS: dict[str, tuple[str, Callable[[dict], tuple]]] = {
    "sage_cost": ("paid_orders_per_min", lambda r: (-(r["limit_ratio"] or 0), r["sage_calls_per_order"])),
    "tenants": ("polls", lambda r: (r["late_polls"] + r["gaps_over_10s"], r["api_calls_per_idle_poll"])),
    "black_friday": ("webhook_to_posted_s", _black_friday_slowness),
}


def _repeated_slowest(name: str, size, runs: int, outer_env: dict) -> dict:
    """The bench ``name`` run ``runs`` times; the result is the slowest run (SLOWNESS), the one held
    to the target, with each run's result beside it (``runs``: its slowness) and ``ok`` only if
    every run met its targets. A run that broke is the result instead."""
    measured_key, slowness = SLOWNESS[name]
    results = []
    for number in range(runs):
        if runs > 1:
            print(f"  run {number + 1} of {runs}", flush=True)
        results.append(_run_one(name, size, outer_env))
    broken = [result for result in results if measured_key not in result]
    if broken:
        return broken[0]
    slowest = max(results, key=slowness)
    out = {**slowest, "runs": [{"slowness": list(slowness(r)), "ok": r.get("ok")} for r in results]}
    if "ok" in slowest:
        out["ok"] = all(result.get("ok") for result in results)
    return out


def _slowest_of(result: dict, rows: list[tuple]) -> list[tuple]:
    """A repeated row's first line says its figures are the slowest run's."""
    runs = len(result.get("runs") or [])
    if runs > 1 and rows:
        rows = [(f"{rows[0][0]} (slowest of {runs})", *rows[0][1:]), *rows[1:]]
    return rows


def last_full_result(name: str, results_dir: Path | None = None) -> dict:
    """Row ``name`` of the newest full (not quick) `make bench` result that measured it, with
    ``source`` saying which run; ``missing`` with what to run when there is none."""
    measured_key = SLOWNESS[name][0]
    for path in sorted((results_dir or RESULTS_DIR).glob("[0-9]*.json"), reverse=True):  # <timestamp>.json, newest first
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        row = data.get(name)
        if data.get("quick") or not isinstance(row, dict) or measured_key not in row:
            continue
        when = dt.datetime.strptime(path.stem, "%Y%m%d-%H%M%S")
        return {**row, "source": f"the last full run, {when:%d %b %Y %H:%M} ({path.name})"}
    return {"missing": f"no full run yet: make bench BENCH_ARGS=--only={name}"}


def _in_child(code: str, env: dict, timeout: float = 3600) -> dict:
    """Run ``code`` (which sets ``result``) in a fresh interpreter; its output passes through."""
    import subprocess

    script = f"import json\n{code}\nprint({RESULT_MARK!r} + json.dumps(result, default=str), flush=True)\n"
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=BASE_DIR, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    found, tail = None, []
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        if line.startswith(RESULT_MARK):
            found = json.loads(line[len(RESULT_MARK):])
        else:
            tail = (tail + [line])[-40:]
            print(f"    {line.rstrip()}", flush=True)
        if time.monotonic() > deadline:
            proc.kill()
    proc.wait()
    if found is None:
        return {"error": f"exit {proc.returncode}", "output_tail": "".join(tail)[-3000:]}
    return found


def _chaos(orders: int, outer_env: dict) -> dict:
    """`python -m bench.chaos --orders N` in its own interpreter (own database, data folder and
    Redis); orders 0: the newest bench/results/chaos-*.json instead."""
    import subprocess

    before = set(RESULTS_DIR.glob("chaos-*.json"))
    if orders:
        code = subprocess.run([sys.executable, "-m", "bench.chaos", "--orders", str(orders)], cwd=BASE_DIR,
                              env=outer_env).returncode
        fresh = sorted(set(RESULTS_DIR.glob("chaos-*.json")) - before)
        if not fresh:
            return {"error": f"bench.chaos exited {code} without a result"}
        path, source = fresh[-1], "this run"
    else:
        runs = sorted(RESULTS_DIR.glob("chaos-*.json"))
        if not runs:
            return {"missing": "no chaos result yet: run `make chaos`"}
        path, source = runs[-1], f"last `make chaos` ({runs[-1].name})"
    data = json.loads(path.read_text())
    keep = ("ok", "settled", "orders", "postable_orders", "refunds", "duplicates", "lost", "cent_difference_count",
            "stuck", "faults", "wall_s", "when", "database", "broker")
    return {"source": source, **{k: data.get(k) for k in keep}}


def _machine_line(results: dict) -> str:
    m = results["machine"]
    speed = f", fixed Python workload {m['python_speed_s']} s" if m.get("python_speed_s") else ""
    return (f"{m['cores']} cores, {m['memory']}, {m['cpu']}, Python {m['python']}, {m['platform']}{speed}; "
            f"database {results['database']}, broker {results['broker']}")


def _mark(ok) -> str:
    return "" if ok is None else ("ok" if ok else "MISSED")


def _rows(results: dict) -> list[tuple[str, str, str, str, str]]:
    """(benchmark, size, measured, target, ok/MISSED) for each bench that ran."""
    rows = []
    r = results.get
    if bf := r("backfill_read"):
        if "error" in bf:
            rows.append(("backfill read", "", bf["error"][:60], "≤ 0.01 calls/order", "MISSED"))
        else:
            rows.append(("backfill read", f"{bf['orders']} orders",
                         f"{bf['orders_per_s']} orders/s, {bf['api_calls_per_order']} calls/order",
                         "≤ 0.01 calls/order (reading)", _mark(bf["api_calls_per_order"] <= 0.01)))
    if wh := r("webhook_ingest"):
        if "error" in wh:
            rows.append(("webhook ingest", "", wh["error"][:60], "≥ 1,000 /s", "MISSED"))
        else:
            rows.append(("webhook ingest", f"{wh['deliveries']} ({wh['duplicates']} dup answered)",
                         f"{wh['deliveries_per_s']} /s, p95 {wh['p95_ms']} ms", "≥ 1,000 /s",
                         _mark(wh["deliveries_per_s"] >= 1000)))
    if st := r("stock_push"):
        if "error" in st:
            rows.append(("stock push", "", st["error"][:60], "100 changed SKUs in 1 call", "MISSED"))
        else:
            rows.append(("stock push", f"{st['skus']} SKUs, {st['changed']} changed",
                         f"{st['api_calls']} call(s), {st['wall_s']} s", "100 changed SKUs in 1 call",
                         _mark(st["api_calls"] <= -(-st["changed"] // 100) and not st["unmatched"])))
    if pl := r("pipeline"):
        if "orders_per_s" in pl:
            runs = pl.get("runs") or [pl["orders_per_s"]]
            spread = f" (median of {len(runs)}, slowest {min(runs)})" if len(runs) > 1 else ""
            rows.append(("backfill → posted", f"{pl['orders']} orders, {pl['refunds']} refunds",
                         f"{pl['orders_per_s']} orders/s{spread}, {pl['agent_round_trips_per_order']} trips/order",
                         "≥ 200 orders/s every run, all posted",
                         _mark(pl.get("all_settled", pl.get("settled")) and min(runs) >= 200)))
            if pl.get("agent_throttled"):  # the agent API's limit slowed the agent down: a finding
                rows.append(("", "", f"the agent was throttled {pl['agent_throttled']} time(s)", "never", "MISSED"))
        else:
            rows.append(("backfill → posted", "", str(pl.get("missing") or pl.get("error"))[:60],
                         "≥ 200 orders/s, all posted", "MISSED"))
    if s100 := r("sage100"):
        rows += sage100_bench.rows(s100)
    if lt := r("latency"):
        p95 = (lt.get("webhook_to_posted_s") or {}).get("p95")
        if p95 is not None:
            rows.append(("webhook → posted", f"{lt['count']} orders", f"p95 {p95} s", "p95 ≤ 2 s", _mark(p95 <= 2)))
        else:
            rows.append(("webhook → posted", "", str(lt.get("missing") or lt.get("error"))[:60], "p95 ≤ 2 s", ""))
    if ia := r("idle_agents"):
        if ia.get("handover_ms") is not None:
            rows.append(("idle agents", f"{ia['agents']} long polls, 1 uvicorn",
                         f"{ia['held']} held, handover {ia['handover_ms']} ms", "all held, handover ≤ 1 s",
                         _mark(ia["held"] >= ia["agents"] and ia["job_delivered"] and ia["handover_ms"] <= 1000)))
        else:
            rows.append(("idle agents", f"{ia.get('agents')}", str(ia.get("skipped") or ia.get("error"))[:60],
                         "all held, handover ≤ 1 s", "MISSED" if "error" in ia else ""))
    if sc := r("sage_cost"):
        from bench.sage_cost import TARGET_CALLS_PER_ORDER, TARGET_LIMIT_RATIO
        from bench.sage_cost import rows as sage_cost_rows

        target = f"≤ {TARGET_CALLS_PER_ORDER} calls/order, ≥ {TARGET_LIMIT_RATIO:.0%} of limit"
        rows += _not_yet_run("into a realistic Sage", sc, target) or _slowest_of(sc, sage_cost_rows(sc))
    if bf := r("black_friday"):
        rows += _not_yet_run("Black Friday hour", bf, "p95 ≤ 2 s, p99 ≤ 5 s every minute") or blackfriday.rows(bf)
    if tn := r("tenants"):
        from bench.tenants import rows as tenant_rows

        rows += _not_yet_run("many merchants", tn, "0 polls > 10 s late") or _slowest_of(tn, tenant_rows(tn))
    if ch := r("chaos"):
        if "duplicates" in ch:
            stuck = len(ch.get("stuck") or [])
            refunds = f", {ch['refunds']} refunds" if ch.get("refunds") is not None else ""  # Sage 100: none
            rows.append(("chaos", f"{ch['orders']} orders{refunds}",
                         f"{ch['duplicates']} dup / {ch['lost']} lost / {ch['cent_difference_count']} ¢ / "
                         f"{stuck} stuck", "0 / 0 / 0 / 0", _mark(ch.get("ok"))))
        else:
            rows.append(("chaos", "", str(ch.get("missing") or ch.get("error"))[:60], "0 dup / 0 lost / 0 ¢", ""))
    rows += adobe_rows(results)
    return rows


def _not_yet_run(label: str, result: dict, target: str) -> list[tuple]:
    """A quick run's row for a long bench that has no full result yet: what to run, no mark."""
    return [(label, "", result["missing"][:68], target, "")] if "missing" in result else []


def _print_table(results: dict) -> None:
    print(f"\nmachine: {_machine_line(results)}")
    print(f"{'benchmark':17} {'size':32} {'measured':68} {'target':38} ")
    for name, size, measured, target, mark in _rows(results):
        print(f"{name:17} {size:32} {measured:68} {target:38} {mark}")
    for name in (*LONG_ROWS, "chaos"):  # rows not measured by this run say where their figures are from
        if (result := results.get(name)) and result.get("source") and result["source"] != "this run":
            print(f"({name}: from {result['source']})")


if __name__ == "__main__":
    sys.exit(main())
