"""BigCommerce → Sage 100 end to end with real processes (demo/system.py with sage="sage100"):
uvicorn web, Celery worker and beat, the sandbox store (every webhook delivered twice), and the
agent with its sage100sim backend on the simulated Sage 100 company."""

from __future__ import annotations

import os
import threading
import time
from decimal import Decimal

import pytest
import requests

from connector.bigcommerce.normalize import DEFAULT_PAID_STATUS_IDS, NEVER_PAID_STATUS_IDS
from connector.devstack import wait_for
from connector.models import AgentJob, SyncRecord
from demo.system import logs_of
from tests.support import stack

pytestmark = pytest.mark.e2e
system_factory = stack.system_factory

# 300 orders in all: 240 in the store when the stack starts (the first poll finds them) and 60
# placed while it runs (each by webhook, delivered twice, and again by the overlapping poll), 12 of
# them at once from one new e-mail address. E2E_SAGE100_ORDERS overrides the first figure.
ORDERS = int(os.environ.get("E2E_SAGE100_ORDERS", "240"))
LIVE_ORDERS = 48
SAME_BUYER = 12
POSTABLE = DEFAULT_PAID_STATUS_IDS - NEVER_PAID_STATUS_IDS
SETTLED = (SyncRecord.State.POSTED, SyncRecord.State.SKIPPED)


def money(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def unsettled() -> dict:
    return {r.external_id: (r.kind, r.state, r.message[:200])
            for r in SyncRecord.objects.exclude(state__in=SETTLED)[:10]}


def test_300_orders_become_sales_orders_once_to_the_cent(system_factory):
    started = time.monotonic()
    system = system_factory(orders=ORDERS, concurrency=3, sage="sage100", poll_interval_seconds=20)
    # A shopper who signs up now: no order of theirs, no Sage 100 customer yet.
    _, body = system.store_client().request("POST", "/v3/customers", json_body=[
        {"email": "Newcomer.Buyer@example.com", "first_name": "Nia", "last_name": "Newcomer"}])
    newcomer = body["data"][0]

    # The same new buyer places a dozen orders at once, while other orders arrive.
    def place(shape):
        requests.post(f"{system.sandbox_url}/__sandbox__/orders", json=shape, timeout=30).raise_for_status()

    threads = [threading.Thread(target=place, args=({"status_id": 11, "customer": newcomer["id"]},))
               for _ in range(SAME_BUYER)]
    for thread in threads:
        thread.start()
    requests.post(f"{system.sandbox_url}/__sandbox__/orders/generate", json={"count": LIVE_ORDERS},
                  timeout=60).raise_for_status()
    for thread in threads:
        thread.join()
    orders = {o["id"]: o for o in system.store_orders()}
    assert len(orders) == ORDERS + LIVE_ORDERS + SAME_BUYER == 300
    postable = {i for i, o in orders.items() if o["status_id"] in POSTABLE}

    def done():
        posted = SyncRecord.objects.filter(state=SyncRecord.State.POSTED,
                                           action=SyncRecord.Action.POST_SALES_ORDER).count()
        return posted >= len(postable) and not SyncRecord.objects.exclude(state__in=SETTLED).exists()

    try:
        wait_for(done, timeout=420, interval=1, what=f"{len(postable)} sales orders")
    except TimeoutError:
        pytest.fail(f"not settled: {unsettled()}\n{logs_of(system)}")
    elapsed = time.monotonic() - started
    print(f"\n{len(postable)} Sage 100 sales orders posted in {elapsed:.1f} s (including start-up)")

    sales_orders = system.sales_orders_100()
    # Exactly the postable orders became sales orders, each once, each equal to the store total.
    assert set(sales_orders) == {str(i) for i in postable}
    for order_id in postable:
        rows = sales_orders[str(order_id)]
        assert len(rows) == 1, f"order {order_id} posted {len(rows)} times"
        assert money(rows[0]["OrderTotal"]) == money(orders[order_id]["total_inc_tax"]), order_id
        assert rows[0]["SalesOrderNo"] == f"W{order_id:06d}"
    # One Sage 100 customer per buyer e-mail, also for the dozen orders placed at once.
    emails = [row["EmailAddress"].lower() for row in system.query("SELECT EmailAddress FROM ar_customer")]
    assert len(emails) == len(set(emails))
    newcomer_orders = [r[0] for r in sales_orders.values()
                       if orders[int(r[0]["CustomerPONo"])]["billing_address"]["email"].lower()
                       == newcomer["email"].lower()]
    assert len(newcomer_orders) >= SAME_BUYER  # the generated orders may pick the new shopper too
    assert len({(r["ARDivisionNo"], r["CustomerNo"]) for r in newcomer_orders}) == 1
    # Every live order's webhooks really were delivered twice, and still one sales order each.
    assert len(system.sandbox("webhooks")["deliveries"]) >= 2 * (LIVE_ORDERS + SAME_BUYER)
    assert not AgentJob.objects.exclude(state=AgentJob.State.DONE).exists()
    # Licence seats: the agent holds at most its one session.
    assert len(system.query("SELECT * FROM seats")) <= 1
