"""Into a realistic Sage: paid orders per minute through one agent when every Sage call costs what
it costs on a real desktop Sage (the cost model in ``agent/simulator/cost.py``), the Sage calls
per paid order by kind, and the physical limit of that cost model.

    .venv/bin/python -m bench.sage_cost --orders 40            # ML_SAGE_COST=realistic
    .venv/bin/python -m bench.sage_cost --orders 40 --cost count

What runs: a real uvicorn web process on a fresh database of its own (bench.pipeline's
``_prepare``), and the real agent process (``python -m agent run --backend simulator``) on a
simulated Sage 50 company with ``ML_SAGE_COST`` set. ``orders`` paid orders from returning
customers (the server knows each buyer's Sage account from its record links and sends it in the
job) are queued at once as the server queues them (``create_sales_invoice`` with its receipt in
the same job); the clock runs from the queueing until the server holds every result.

The physical limit is the time of the writes alone (the invoice and receipt writes the orders
need, at the model's latency, with no look-ups and no idle gaps): ``limit_ratio`` = that time /
the wall time, so 1.0 would be an agent that does nothing but write.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import sys
import time
from decimal import Decimal

# Measured before issue 22's changes (operations of main at 77748a3, the same bench and cost model,
# `python -m bench.sage_cost --orders 20`, steady round; 2-core shared machine): every paid order
# cost a customer look-up, two stock look-ups, five searches (invoice; invoice, receipt, receipt
# again after the allocation, invoice for the reconciliation) and three writes (invoice, receipt,
# allocation).
BEFORE = {"paid_orders_per_min": 27.4, "sage_calls_per_order": 11.1,
          "sage_calls_per_order_by_kind": {"lookup": 3.0, "search": 5.0, "write_document": 1.0, "write_payment": 2.0,
                                           "login": 0.05, "logout": 0.05},
          "limit_orders_per_min": 80.0, "limit_ratio": 0.343}
TARGET_CALLS_PER_ORDER = 2.5
TARGET_LIMIT_RATIO = 0.8
SKUS = [f"SKU-{n:03d}" for n in range(1, 11)]


def _payload(n: int, account_ref: str, email: str) -> dict:
    from mlcommon.ledger import Customer, DocumentLine, Receipt, SalesInvoice, to_payload

    lines = [DocumentLine(kind="item", description=f"Item {sku}", quantity=Decimal(qty), unit_net=Decimal("10.00"),
                          net=Decimal("10.00") * qty, tax=Decimal("2.00") * qty, tax_code="T1", stock_code=sku)
             for qty, sku in ((1 + n % 3, SKUS[n % len(SKUS)]), (1, SKUS[(n * 7 + 3) % len(SKUS)]))]
    gross = sum((line.net + line.tax for line in lines), Decimal("0.00"))
    reference = _reference(n)
    invoice = SalesInvoice(reference=reference, date=dt.date.today(), currency="GBP",
                           customer=Customer(account_ref=account_ref, email=email, name=f"Buyer {account_ref}"),
                           lines=lines, store_total=gross)
    receipt = Receipt(reference=f"{reference}-P1", invoice_reference=reference, date=dt.date.today(),
                      currency="GBP", amount=gross, bank_account="1200", method="card")
    return {**to_payload(invoice), "payments": [to_payload(receipt)]}


def _reference(n: int) -> str:
    return f"BC-{100000 + n}"


def run_sage_cost_bench(orders: int = 20, *, customers: int = 10, cost: str = "realistic", timeout_s: float = 900,
                        keep_logs: bool = False) -> dict:
    """A warm-up round of ``orders // 2`` paid orders on the fresh agent (it has not seen the stock
    codes yet: ``warmup_round``), then ``orders`` through the running agent: the steady state, the
    headline figures."""
    from bench import pipeline

    env = pipeline._prepare()
    from accounts.models import Agent
    from agent.simulator.company import SimCompany
    from agent.simulator.cost import model_from_env
    from connector.devstack import Stack, free_port
    from demo import seed as demo

    model = model_from_env("sage50", cost)
    work = pipeline.DATA_DIR / "run"
    work.mkdir(parents=True, exist_ok=True)
    company_path = work / "sage50-company.sqlite3"
    seed = demo.seed_demo(store_url="http://127.0.0.1:9", company_path=company_path, skus=SKUS)
    demo.init_company(company_path, SKUS, qty="100000")
    company = SimCompany(company_path)
    buyers = [(f"BUYER{n:03d}", f"buyer{n}@example.com") for n in range(customers)]
    for ref, email in buyers:
        company.add_customer(ref, f"Buyer {ref}", email, currency="GBP")
    stack = Stack(env={**env, "ML_SAGE_COST": cost}, log_dir=work / "logs")
    try:
        port = free_port()
        web_url = f"http://127.0.0.1:{port}"
        stack.web(port)
        stack.wait_http(f"{web_url}/admin/login/", "web")
        stack.env["ML_AGENT_KEY"] = seed.agent_key
        stack.start("agent", demo.agent_argv(web_url, company_path, work / "agent-journal.sqlite3",
                                             extra=["--heartbeat-seconds", "5"]))
        stack.env.pop("ML_AGENT_KEY", None)
        deadline = time.monotonic() + 120
        while not Agent.objects.filter(pk=seed.agent.pk, last_heartbeat_at__isnull=False).exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the agent never sent a heartbeat")
            time.sleep(0.1)
        # The agent's start (its first login and change poll) is not the orders' cost.
        _wait_logged_out(company)
        company.reset_call_counts()
        warmup = max(len(SKUS), orders // 2)
        rounds = [_round(company, seed.integration, range(warmup), buyers, timeout_s),
                  _round(company, seed.integration, range(warmup, warmup + orders), buyers, timeout_s)]
        stack.stop()
        invoices = company.invoices()
        receipts = company.payments("SR")
    finally:
        stack.stop()
        company.close()
        pipeline._cleanup(keep_logs)
    references = [row["cust_order_number"] for row in invoices]
    unallocated = sum(1 for row in invoices if Decimal(row["amount_paid"]) != Decimal(row["gross"]))
    first, steady = rounds
    return {**steady, "customers": customers, "cost": cost, "cost_model_s": model.as_dict() if model else None,
            "warmup_round": first, "settled": first["settled"] and steady["settled"], "before": BEFORE,
            "invoices": len(invoices), "duplicates": len(references) - len(set(references)),
            "receipts": len(receipts), "not_fully_allocated": unallocated}


def _round(company, integration, numbers: range, buyers: list[tuple[str, str]], timeout_s: float) -> dict:
    """Queue these paid orders at once and wait for the server to hold every result; the company's
    call counts are read once the agent has logged out after the last batch."""
    from agent.simulator.cost import KINDS, WRITES
    from connector.models import AgentJob
    from connector.services.jobs import JobSpec, queue_jobs

    orders = len(numbers)
    references = [_reference(n) for n in numbers]
    _wait_logged_out(company)
    company.reset_call_counts()
    specs = [JobSpec(op="create_sales_invoice", reference=_reference(n), payload=_payload(n, *buyers[n % len(buyers)]))
             for n in numbers]
    started = time.monotonic()
    queued_at = dt.datetime.now(dt.UTC)
    queue_jobs(integration.pk, specs, audited=False)
    jobs = AgentJob.objects.filter(integration=integration, reference__in=references)
    done = 0
    while time.monotonic() - started < timeout_s:
        done = jobs.filter(state=AgentJob.State.DONE).count()
        if done >= orders:
            break
        time.sleep(0.1)
    last = jobs.order_by("-completed_at").values_list("completed_at", flat=True).first()
    wall = (last - queued_at).total_seconds() if done >= orders and last else time.monotonic() - started
    _wait_logged_out(company)  # its counts reach the company file as it logs out
    counts = company.call_counts()
    calls = {kind: counts[kind]["calls"] for kind in KINDS}
    total = sum(calls.values())
    write_s = sum(counts[kind]["seconds"] for kind in WRITES)
    return {
        "orders": orders, "settled": done >= orders, "jobs_done": done, "wall_s": round(wall, 2),
        "paid_orders_per_min": round(orders / wall * 60, 1) if wall else None,
        "sage_calls": calls, "sage_calls_per_order": round(total / orders, 3),
        "sage_calls_per_order_by_kind": {kind: round(n / orders, 3) for kind, n in calls.items() if n},
        "write_s": round(write_s, 2),
        "limit_orders_per_min": round(orders / write_s * 60, 1) if write_s else None,
        "limit_ratio": round(write_s / wall, 3) if write_s and wall else None,
    }


def _wait_logged_out(company, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while company.logins() and time.monotonic() < deadline:
        time.sleep(0.05)


def rows(result: dict) -> list[tuple[str, str, str, str, str]]:
    """The bench table's rows (bench/__main__.py's _rows)."""
    if "paid_orders_per_min" not in result:
        return [("into a realistic Sage", "", str(result.get("error") or result.get("missing"))[:60],
                 f"≤ {TARGET_CALLS_PER_ORDER} calls/order, ≥ {TARGET_LIMIT_RATIO:.0%} of limit", "MISSED")]
    by_kind = ", ".join(f"{kind.replace('write_', 'w_')} {n}" for kind, n in result["sage_calls_per_order_by_kind"].items())
    ok = (result["settled"] and not result["duplicates"] and not result["not_fully_allocated"]
          and result["sage_calls_per_order"] <= TARGET_CALLS_PER_ORDER
          and (result["limit_ratio"] or 0) >= TARGET_LIMIT_RATIO)
    return [
        ("into a realistic Sage", f"{result['orders']} paid orders, 1 agent",
         f"{result['paid_orders_per_min']} orders/min, {result['sage_calls_per_order']} Sage calls/order",
         f"≤ {TARGET_CALLS_PER_ORDER} calls/order", _mark(result["settled"] and result["sage_calls_per_order"]
                                                            <= TARGET_CALLS_PER_ORDER)),
        ("", "calls/order by kind", by_kind[:68], "", ""),
        ("", "physical limit (writes only)",
         f"{result['limit_orders_per_min']} orders/min: {(result['limit_ratio'] or 0):.0%} of it reached",
         f"≥ {TARGET_LIMIT_RATIO:.0%} of the limit", _mark(ok)),
    ]


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sage_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=20, help="paid orders measured (after a warm-up of half)")
    parser.add_argument("--customers", type=int, default=10)
    parser.add_argument("--cost", default="realistic", help="ML_SAGE_COST for the agent: realistic, count or JSON")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out = run_sage_cost_bench(args.orders, customers=args.customers, cost=args.cost, keep_logs=args.keep_logs)
    print(json.dumps(out, indent=2, default=str))
    for row in rows(out):
        print("  ".join(row))
    return 0 if out.get("settled") else 1


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector.settings")
    raise SystemExit(main())
