"""Adobe Commerce rows of `make bench` (issue 19).

- ``adobe_backfill_read`` (``run_backfill_read``): the Adobe poller alone (connector.adobe.poller's
  backfill) reading N orders and their credit memos from the sandbox Adobe Commerce, served in this
  process with no added latency: orders read per second, and API calls per order. List reads of
  ``pageSize`` 300 (the cap), stopping on ``total_count``: about 1/300 call per order for the
  orders, plus the credit memo pages; nothing fetched per order. Target ≤ 0.01 calls per order.
- ``adobe_latency`` (``run_latency``): the whole system (demo/system.py: uvicorn web, Celery worker
  and beat, the agent with the simulated Sage 50 company) with the sandbox Adobe Commerce as its own
  process sending RSA-signed Commerce Webhooks; single orders placed and invoiced in full (paid) one
  at a time with an otherwise idle agent. Per order: the invoice's webhook received → posted, and
  the stricter "store saved the invoice → posted" (the webhook's own trip included). Target p95 ≤ 2 s.
  Runs in a fresh interpreter on a database of its own (bench/pipeline.py's environment).

    .venv/bin/python -m bench --only adobe_backfill_read,adobe_latency --quick
"""

from __future__ import annotations

import datetime as dt
import time

EVER = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
CALLS_PER_ORDER_TARGET = 0.01
P95_TARGET_S = 2.0


# -- backfill read ---------------------------------------------------------------------------------------
def _adobe_integration(base_url: str, keys, name: str):
    from accounts.models import Integration, SageConnection, StoreConnection, Tenant

    tenant, _ = Tenant.objects.get_or_create(slug="bench", defaults={"name": "Bench"})
    store = StoreConnection.objects.create(
        tenant=tenant, name=name, platform=StoreConnection.Platform.ADOBE_COMMERCE, base_url=base_url,
        store_code="default", adobe_auth="oauth1", consumer_key=keys.consumer_key,
        consumer_secret=keys.consumer_secret, access_token=keys.access_token,
        access_token_secret=keys.access_token_secret)
    sage = SageConnection.objects.create(tenant=tenant, name=f"{name} sage", edition="sage50uk")
    return Integration.objects.create(tenant=tenant, name=name, store=store, sage=sage)


def run_backfill_read(orders: int) -> dict:
    """Needs Django set up on a bench database (bench/__main__.py does it)."""
    from connector.adobe.poller import adapter_for, backfill
    from connector.models import SyncRecord
    from sandbox.adobe.app import build_app
    from sandbox.httpserver import SandboxServer

    app = build_app(orders=orders, seed=7)
    server = SandboxServer(app).start()
    try:
        integration = _adobe_integration(server.url, app.integrations[0], f"bench adobe {time.time_ns()}")
        adapter = adapter_for(integration)
        started = time.perf_counter()
        run = backfill(integration, EVER, adapter=adapter)
        elapsed = time.perf_counter() - started
    finally:
        app.dispatcher.stop()
        server.stop()
    memos = len(app.store.creditmemos)
    by_path = {path.rsplit("/V1/", 1)[-1]: n for path, n in adapter.client.calls_by_path.items()}
    return {"orders": orders, "creditmemos": memos, "records_read": run.seen,
            "records_queued": SyncRecord.objects.filter(integration=integration).count(),
            "api_calls": run.api_calls, "api_calls_by_path": by_path,
            "api_calls_per_order": round(run.api_calls / max(orders, 1), 4),
            "wall_s": round(elapsed, 2), "orders_per_s": round(orders / elapsed, 1)}


# -- webhook → posted ---------------------------------------------------------------------------------------
def _paid_order(adobe) -> tuple[str, str, float]:
    """A new order invoiced in full at once (paid): (order id, invoice id, wall clock when the store
    saved the invoice). No gift card or store credit: a plain card order, as BigCommerce's bench."""
    order = adobe.control("POST", "orders", {"gift_card": 0, "store_credit": 0}).json()
    invoice = adobe.control("POST", f"orders/{order['entity_id']}/invoice", {}).json()
    return str(order["entity_id"]), str(invoice["entity_id"]), time.time()


def run_latency(count: int = 10, *, interval_s: float = 0.5, timeout_s: float = 90, warmup: int = 2,
                keep_logs: bool = False) -> dict:
    """Call once per fresh interpreter (it sets Django up on a database of its own)."""
    from bench import pipeline
    from bench.chaos_adobe import attach_adobe, kick_adobe_sync

    env = pipeline._prepare()
    pipeline._purge_redis_queue()
    from connector.models import AuditEntry, InboundEvent, SyncRecord

    log_dir = pipeline.DATA_DIR / "run"
    log_dir.mkdir(parents=True, exist_ok=True)
    system = pipeline._start(env, orders=0, workers=1, concurrency=2, log_dir=log_dir)
    memory = pipeline.MemoryWatch(system.stack)
    try:
        adobe = attach_adobe(system, poll_seconds=60, webhook_kinds=("commerce",))
        kick_adobe_sync(system.integration, dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))

        def posted(order_ids) -> int:
            return SyncRecord.objects.filter(kind="order", external_id__in=order_ids, state="posted").count()

        # Warm-up orders, not measured: imports, the mapping snapshot, the agent's first Sage login.
        for _ in range(warmup):
            warm = _paid_order(adobe)[0]
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and not posted([warm]):
                time.sleep(0.1)
        placed: list[tuple[str, str, float]] = []
        next_at = time.monotonic()
        for _ in range(count):
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += interval_s
            placed.append(_paid_order(adobe))
            memory.sample()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and posted([p[0] for p in placed]) < len(placed):
            time.sleep(0.2)
        memory.sample()
        timings = []
        for order_id, invoice_id, invoiced_at in placed:
            # The invoice's webhook is the one that makes the order postable (invoice_saved names
            # the invoice; its order is fetched).
            received = (InboundEvent.objects.filter(source="webhook", resource_id=invoice_id,
                                                    scope__icontains="invoice")
                        .order_by("received_at").values_list("received_at", flat=True).first())
            record = SyncRecord.objects.filter(kind="order", external_id=order_id).first()
            leased = (AuditEntry.objects.filter(record=record, step="leased").order_by("-id")
                      .values_list("created_at", flat=True).first()) if record else None
            done = record.posted_at if record and record.state == "posted" else None
            timings.append({
                "order": order_id, "invoice": invoice_id,
                "webhook_to_leased_s": (leased - received).total_seconds() if received and leased else None,
                "webhook_to_posted_s": (done - received).total_seconds() if received and done else None,
                "invoice_saved_to_posted_s": done.timestamp() - invoiced_at if done else None})
        database, broker = pipeline._backends()

        def column(name):
            return [t[name] for t in timings if t[name] is not None]
        counters = adobe.control("GET", "counters").json()["endpoints"]
        return {"count": count, "interval_s": interval_s, "warmup": warmup,
                "posted": posted([p[0] for p in placed]),
                "webhook_to_leased_s": pipeline._summary(column("webhook_to_leased_s")),
                "webhook_to_posted_s": pipeline._summary(column("webhook_to_posted_s")),
                "invoice_saved_to_posted_s": pipeline._summary(column("invoice_saved_to_posted_s")),
                "adobe_api_calls": counters, "timings": timings, "peak_rss_mb": memory.result(),
                "database": database, "broker": broker}
    finally:
        system.stop(pipeline.STOP_GRACE_S)
        pipeline._cleanup(keep_logs)


# -- the table ----------------------------------------------------------------------------------------------
def rows(results: dict) -> list[tuple[str, str, str, str, str]]:
    """(benchmark, size, measured, target, ok/MISSED) for the Adobe benches that ran."""
    out = []
    if bf := results.get("adobe_backfill_read"):
        target = f"≤ {CALLS_PER_ORDER_TARGET} calls/order (reading)"
        if "api_calls_per_order" in bf:
            out.append(("Adobe backfill", f"{bf['orders']} orders, {bf['creditmemos']} memos",
                        f"{bf['orders_per_s']} orders/s, {bf['api_calls_per_order']} calls/order",
                        target, "ok" if bf["api_calls_per_order"] <= CALLS_PER_ORDER_TARGET else "MISSED"))
        else:
            out.append(("Adobe backfill", "", str(bf.get("error"))[:60], target, "MISSED"))
    if lt := results.get("adobe_latency"):
        p95 = (lt.get("webhook_to_posted_s") or {}).get("p95")
        target = f"p95 ≤ {P95_TARGET_S:g} s"
        if p95 is not None:
            strict = (lt.get("invoice_saved_to_posted_s") or {}).get("p95")
            out.append(("Adobe webhook", f"{lt['count']} orders ({lt['posted']} posted)",
                        f"p95 {p95} s (invoice saved → posted p95 {strict} s)", target,
                        "ok" if p95 <= P95_TARGET_S and lt["posted"] >= lt["count"] else "MISSED"))
        else:
            out.append(("Adobe webhook", "", str(lt.get("error") or lt.get("output_tail"))[:60], target,
                        "MISSED"))
    return out
