"""BigCommerce → Sage 50 end to end with real processes (demo/system.py): uvicorn web, Celery
worker and beat, the sandbox store, and the agent with the simulated Sage 50 company."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections import defaultdict
from decimal import Decimal

import pytest
import requests
from django.utils import timezone

from connector.bigcommerce import normalize as rules
from connector.bigcommerce.normalize import DEFAULT_PAID_STATUS_IDS, NEVER_PAID_STATUS_IDS
from connector.devstack import wait_for
from connector.models import AgentJob, SyncRecord
from demo.system import logs_of
from tests.support import stack

pytestmark = pytest.mark.e2e
system_factory = stack.system_factory

# 500 orders in all, as the issue asks: 400 already in the store when the stack starts (the
# first poll finds them) and 100 placed while it runs (each arrives by webhook, delivered twice,
# and again by the poll). Measured on this 2-core machine: the whole run settles in ~17 s on
# PostgreSQL + Redis and ~11 s on the embedded default (~30 s with the tender-refund orders of
# issue 17, which wait for their invoices before being refunded). E2E_ORDERS overrides the first figure.
ORDERS = int(os.environ.get("E2E_ORDERS", "400"))
LIVE_ORDERS = 100
POSTABLE = DEFAULT_PAID_STATUS_IDS - NEVER_PAID_STATUS_IDS
SETTLED = (SyncRecord.State.POSTED, SyncRecord.State.SKIPPED)


def money(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def unsettled() -> dict:
    return {r.external_id: (r.kind, r.state, r.message[:200])
            for r in SyncRecord.objects.exclude(state__in=SETTLED)[:10]}


def captured(transactions: list[dict]) -> Decimal:
    return sum((money(t["amount"]) for t in transactions
                if t.get("event") in rules.CAPTURE_EVENTS and t.get("status") == "ok" and rules.tender_kind(t) is None),
               Decimal("0.00"))


def refunded_in_money(refund: dict) -> Decimal:
    return sum((money(p["amount"]) for p in refund.get("payments") or []
                if not p.get("is_declined") and not rules.TENDER_GATEWAYS.get((p.get("provider_id") or "").lower())),
               Decimal("0.00"))


def refunded_to_tenders(refund: dict) -> Decimal:
    """What a refund gave back as store credit (or to a gift certificate), not as money."""
    return sum((money(p["amount"]) for p in refund.get("payments") or []
                if not p.get("is_declined") and rules.TENDER_GATEWAYS.get((p.get("provider_id") or "").lower())),
               Decimal("0.00"))


# Issue 17: a refund of every tender shape, on orders paid by every tender, partial and full. Each
# order is placed live and refunded once its invoice is in Sage (as a shop refunds a paid order).
CARD_ONLY = {"status_id": 11, "gift_certificate": False, "store_credit": False}
MIXED = {"status_id": 11, "gift_certificate": True, "store_credit": True, "customer": "member"}
TENDER_REFUNDS = {
    "card, partial, back to the card": (CARD_ONLY, {"kind": "item"}),
    "card, full, back to the card": (CARD_ONLY, {"kind": "full"}),
    "card, full, all as store credit": (CARD_ONLY, {"kind": "full", "to": "storecredit"}),
    "mixed tender, full (card part to the card, the rest store credit)": (MIXED, {"kind": "full"}),
    "mixed tender, partial": (MIXED, {"kind": "item"}),
    "mixed tender, full, split card and store credit by hand": (MIXED, {"kind": "full", "to": "split"}),
    "gift certificate only, partial (as store credit)": (
        {"status_id": 11, "gift_certificate": "all", "store_credit": False}, {"kind": "item"}),
    "store credit only, full": (
        {"status_id": 11, "gift_certificate": False, "store_credit": "all", "customer": "member"}, {"kind": "full"}),
}


def refund_of_every_tender_shape(system) -> set[int]:
    """Place the TENDER_REFUNDS orders, wait for their invoices, refund them; the fully refunded ids."""
    placed = {name: system.place_order(shape) for name, (shape, _) in TENDER_REFUNDS.items()}
    for order in placed.values():
        wait_for(lambda o=order: system.invoice_count(f"BC-{o['id']}") == 1, timeout=240, interval=0.5,
                 what=f"BC-{order['id']} in Sage before its refund")
    full = set()
    for name, order in placed.items():
        body = dict(TENDER_REFUNDS[name][1])
        to = body.pop("to", None)
        total = money(order["total_inc_tax"])
        card = total - money(order["gift_certificate_amount"]) - money(order["store_credit_amount"])
        if to == "storecredit":
            body["payments"] = [{"provider_id": "storecredit", "amount": str(total)}]
        elif to == "split":  # the card gets back less than it paid; store credit the rest
            gateway = next(t["gateway"] for t in system.store_transactions(order["id"])
                           if t["event"] in rules.CAPTURE_EVENTS and rules.tender_kind(t) is None)
            less = min(Decimal("1.00"), money(card / 2))
            body["payments"] = [{"provider_id": gateway, "amount": str(card - less)},
                                {"provider_id": "storecredit", "amount": str(total - card + less)}]
        response = requests.post(f"{system.sandbox_url}/__sandbox__/orders/{order['id']}/refunds", json=body,
                                 timeout=10)
        assert response.status_code == 201, (name, response.text)
        if body["kind"] == "full":
            full.add(order["id"])
    return full


def test_orders_and_refunds_reconcile_to_the_cent_and_post_once(system_factory):
    started = time.monotonic()
    system = system_factory(orders=ORDERS, concurrency=3)
    created = requests.post(f"{system.sandbox_url}/__sandbox__/orders/generate", json={"count": LIVE_ORDERS},
                            timeout=30).json()["created"]
    orders = {o["id"]: o for o in system.store_orders()}
    assert len(orders) == ORDERS + LIVE_ORDERS
    # A refund placed while running arrives by webhook (twice) and by the poll's refunds feed.
    refundable = [i for i in created if orders[i]["status_id"] in POSTABLE]
    requests.post(f"{system.sandbox_url}/__sandbox__/orders/{refundable[0]}/refunds", json={"kind": "item"},
                  timeout=10).raise_for_status()
    fully_refunded = refund_of_every_tender_shape(system)
    orders = {o["id"]: o for o in system.store_orders()}
    refunds = system.store_refunds()
    # A live order refunded in full after its invoice posted is "Refunded" in the store now, and
    # its invoice (then credit note) stays in Sage.
    postable = {i for i, o in orders.items() if o["status_id"] in POSTABLE} | fully_refunded
    expected_records = len(postable) + len(refunds)

    def done():
        posted = SyncRecord.objects.filter(state=SyncRecord.State.POSTED).count()
        return posted >= expected_records and not SyncRecord.objects.exclude(state__in=SETTLED).exists()

    try:
        wait_for(done, timeout=420, interval=1, what=f"{expected_records} postings")
    except TimeoutError:
        pytest.fail(f"not settled: {unsettled()}\n{logs_of(system)}")
    elapsed = time.monotonic() - started
    print(f"\n{len(postable)} invoices + {len(refunds)} credit notes posted in {elapsed:.1f} s "
          f"({len(orders) / elapsed * 60:.0f} orders/min, including start-up)")

    docs = system.sage_documents()
    # Exactly the postable orders became invoices, each once, each equal to the store total.
    assert set(docs["invoice"]) == {f"BC-{i}" for i in postable}
    for order_id in postable:
        rows = docs["invoice"][f"BC-{order_id}"]
        assert len(rows) == 1, f"BC-{order_id} posted {len(rows)} times"
        assert money(rows[0]["gross"]) == money(orders[order_id]["total_inc_tax"]), order_id
    # Receipts: per order, the captured card/wallet money (gift certificates and store credit are tenders).
    receipts = defaultdict(list)
    for reference, rows in docs["SR"].items():
        receipts[reference.rsplit("-P", 1)[0]].extend(rows)
    for order_id in postable:
        rows = receipts.get(f"BC-{order_id}", [])
        assert len({r["inv_ref"] for r in rows}) == len(rows), f"duplicate receipt for BC-{order_id}"
        assert sum((money(r["amount"]) for r in rows), Decimal("0.00")) == captured(
            system.store_transactions(order_id)), order_id
    # Credit notes: one per refund, equal to the refund total; refund payments equal the money sent back.
    assert set(docs["credit"]) == {f"BC-{r['order_id']}-R{r['id']}" for r in refunds}
    for refund in refunds:
        reference = f"BC-{refund['order_id']}-R{refund['id']}"
        rows = docs["credit"][reference]
        assert len(rows) == 1, f"{reference} posted {len(rows)} times"
        assert money(rows[0]["gross"]) == money(refund["total_amount"]), reference
        assert rows[0]["against_invoice"] == docs["invoice"][f"BC-{refund['order_id']}"][0]["number"]
        paid = [r for ref, rs in docs["SP"].items() if ref.startswith(reference + "-P") for r in rs]
        assert sum((money(r["amount"]) for r in paid), Decimal("0.00")) == refunded_in_money(refund), reference
        # Store credit given back is paid from its liability account (-SC), the rest as money (-P);
        # together they are the whole refund, and all of it settles the credit note.
        tenders = [r for ref, rs in docs["SP"].items() if ref.startswith(reference + "-")
                   and not ref.startswith(reference + "-P") for r in rs]
        assert sum((money(r["amount"]) for r in tenders), Decimal("0.00")) == refunded_to_tenders(refund), reference
        for row in paid + tenders:
            assert money(row["amount_paid"]) == money(row["amount"]), f"{row['inv_ref']} not allocated"
        assert money(rows[0]["amount_paid"]) == money(rows[0]["gross"]), f"{reference} not fully allocated"
    # Issue 17: every paid invoice is fully allocated in the Sage company (card, gift certificate,
    # store credit and mixed tenders alike) and, refunds included, no customer owes or is owed
    # anything: the store has nothing outstanding for a paid order. The product's own check agrees.
    for order_id in postable:
        row = docs["invoice"][f"BC-{order_id}"][0]
        assert money(row["amount_paid"]) == money(row["gross"]), f"BC-{order_id} not fully allocated"
    tender_orders = [i for i in postable if money(orders[i].get("gift_certificate_amount") or 0)
                     or money(orders[i].get("store_credit_amount") or 0)]
    assert tender_orders, "the run should hold gift-certificate and store-credit orders"
    balances = {row["account_ref"]: money(row["balance"]) for row in system.query("SELECT * FROM customers")}
    assert {ref: b for ref, b in balances.items() if b} == {}
    # Every refund shape really was in the run: to the card, as store credit, split, partial and full,
    # on orders paid by card, gift certificate, store credit and a mix.
    by_order = defaultdict(list)
    for refund in refunds:
        by_order[refund["order_id"]].append(refund)
    shapes = {("card" if refunded_in_money(r) else "") + ("+credit" if refunded_to_tenders(r) else "")
              for r in refunds}
    assert {"card", "+credit", "card+credit"} <= shapes, shapes
    assert fully_refunded and any(i not in fully_refunded for i in by_order)
    paid_by = {("gc" if money(orders[i]["gift_certificate_amount"]) else "")
               + ("sc" if money(orders[i]["store_credit_amount"]) else "") for i in by_order}
    assert {"", "gc", "sc", "gcsc"} <= paid_by, paid_by
    flagged = SyncRecord.objects.filter(kind=SyncRecord.Kind.ORDER, reconciliation__ok=False)
    assert not flagged.exists(), list(flagged.values_list("external_id", "reconciliation")[:5])
    assert SyncRecord.objects.filter(kind=SyncRecord.Kind.ORDER, reconciliation__ok=True).exists()
    # Every live order's webhooks really were delivered twice, and still one document each.
    deliveries = system.sandbox("webhooks")["deliveries"]
    assert len(deliveries) >= 2 * LIVE_ORDERS
    assert not AgentJob.objects.exclude(state=AgentJob.State.DONE).exists()


def test_webhook_to_invoice_within_five_seconds(system_factory):
    system = system_factory(orders=5)
    wait_for(lambda: not SyncRecord.objects.exclude(state__in=SETTLED).exists()
             and SyncRecord.objects.exists(), timeout=60, what="the seeded orders")
    time.sleep(2)  # idle
    t0 = time.monotonic()
    order = system.place_order({"status_id": 11})
    wait_for(lambda: system.invoice_count(f"BC-{order['id']}") == 1, timeout=5, interval=0.05,
             what=f"BC-{order['id']} in the simulated Sage company")
    latency = time.monotonic() - t0
    print(f"\nwebhook-to-invoice latency: {latency:.2f} s")
    assert latency < 5


# Crash the agent right after the Sage write, before its journal notes it and before `complete`:
# the hardest case (no local record of the write); only the look-up by reference saves it.
CRASH_AFTER_WRITE = """
import os, signal
from agent.journal import Journal
def _crash(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
Journal.written = _crash
"""


def test_agent_killed_between_sage_write_and_complete_leaves_one_document(system_factory):
    system = system_factory(orders=0, agent=False)
    order = system.place_order({"status_id": 11, "gift_certificate": False, "store_credit": False})
    reference = f"BC-{order['id']}"
    job = wait_for(lambda: AgentJob.objects.filter(reference=reference, op="create_sales_invoice").first(),
                   timeout=30, what="the invoice job")
    system.start_agent("agent-crashing", wrapper=CRASH_AFTER_WRITE)
    wait_for(lambda: not system.stack.alive("agent-crashing"), timeout=30, what="the agent to die")
    assert system.stack.processes["agent-crashing"].popen.returncode == -9
    job.refresh_from_db()
    assert job.state == AgentJob.State.LEASED  # the server never heard of the write
    assert system.invoice_count(reference) == 1  # but Sage has it
    # The lease (120 s) would run out on its own; move time forward instead of waiting.
    AgentJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    system.start_agent("agent")
    record = wait_for(lambda: SyncRecord.objects.filter(external_id=str(order["id"]),
                                                        state=SyncRecord.State.POSTED).first(),
                      timeout=60, what="the record to post after the restart")
    job.refresh_from_db()
    assert job.state == AgentJob.State.DONE and job.result.get("existed") is True
    assert system.invoice_count(reference) == 1
    assert record.sage_id == str(job.result["invoice_number"])
