"""`make bench`'s "backfill → Sage 100" row: store → Sage 100 sales orders through the whole stack
and the sage100sim agent (bench.pipeline.run_pipeline_bench with ``sage="sage100"``), with the Sage
100 business-object calls the agent made per order counted in the agent process.

What the targets mean:
- **orders/s**: the agent writes one Sage 100 company one document at a time (BOI sessions are
  per-company and a sales order's lines are written under its header's lock), so what matters is
  that the connector keeps that queue fed. ``TARGET_ORDERS_PER_S`` = 20 (72,000 orders an hour): a
  2,000-order backfill (a month of a busy store) is in Sage 100 within two minutes, and a
  Black-Friday hour of one store is absorbed many times over. The simulated company answers faster
  than a real BOI write (not measured here): the figure is the connector's side, not Sage's. The
  Sage 50 row holds the same engine to 200 orders/s; this one is lower because it runs smaller and
  one agent's queue is the path, not because Sage 100 may be slow.
- **Sage 100 calls per order**: what a BOI write costs is its object calls. Per new order the
  agent needs ``find_sales_order`` (the look-up that keeps a retried job from making a second
  order), ``missing_item_codes`` (one call for all the lines), the customer (``find_customer`` by
  the linked number, else ``find_customer_by_email``; ``create_customer`` for a new buyer) and
  ``create_sales_order``: 4, plus ``create_customer`` for a new buyer or ``update_customer`` when a
  returning buyer's name or address changed (the sandbox's buyers often move): at most 5.
  ``TARGET_CALLS_PER_ORDER`` = 5, the design's ceiling: a sixth call per order is a regression.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TARGET_ORDERS_PER_S = 20
TARGET_CALLS_PER_ORDER = 5.0
CALL_LOG_NAME = "sage100-calls.log"
BACKEND_CALLS = ("find_customer", "find_customer_by_email", "create_customer", "update_customer",
                 "missing_item_codes", "find_sales_order", "create_sales_order")

# Run inside the agent process before its main (after bench.pipeline's AGENT_COUNTER): one line per
# call of the Sage 100 backend's business-object methods, the BOI calls a real company would serve.
AGENT_SAGE100_COUNTER = f"""
import os
from agent.backends.sage100sim import Sage100SimulatorBackend as _S100
_s100_log = open(os.environ["ML_BENCH_SAGE100_LOG"], "a", buffering=1)
def _s100_counted(name, method):
    def counted(self, *args, **kwargs):
        _s100_log.write(name + "\\n")
        return method(self, *args, **kwargs)
    return counted
for _name in {BACKEND_CALLS!r}:
    setattr(_S100, _name, _s100_counted(_name, getattr(_S100, _name)))
"""


def call_log(log_dir: Path) -> Path:
    return log_dir / CALL_LOG_NAME


def sage_calls(log_dir: Path) -> dict[str, int]:
    """The agent's Sage 100 calls so far, by method."""
    path = call_log(log_dir)
    return dict(Counter(path.read_text().split())) if path.exists() else {}


def measured(before: dict[str, int], after: dict[str, int], postable: int) -> dict:
    """The result keys for the calls made between ``before`` and ``after``."""
    calls = {name: after[name] - before.get(name, 0) for name in sorted(after) if after[name] - before.get(name, 0)}
    total = sum(calls.values())
    return {"sage_calls": calls, "sage_calls_total": total,
            "sage_calls_per_order": round(total / max(postable, 1), 3)}


def rows(result: dict) -> list[tuple[str, str, str, str, str]]:
    """The bench table's rows for the "sage100" result (bench/__main__.py's _rows)."""
    target = f"≥ {TARGET_ORDERS_PER_S} orders/s, ≤ {TARGET_CALLS_PER_ORDER:g} Sage 100 calls/order, all posted"
    if "orders_per_s" not in result:
        return [("backfill → Sage 100", "", str(result.get("missing") or result.get("error"))[:60], target, "MISSED")]
    per_order = result.get("sage_calls_per_order")
    ok = bool(result.get("settled")) and result["orders_per_s"] >= TARGET_ORDERS_PER_S \
        and per_order is not None and per_order <= TARGET_CALLS_PER_ORDER
    return [("backfill → Sage 100", f"{result['postable_orders']} paid of {result['orders']} orders → sales orders",
             f"{result['orders_per_s']} orders/s, {per_order} Sage 100 calls/order, "
             f"{result['agent_round_trips_per_order']} trips/order", target, "ok" if ok else "MISSED")]
