"""`make chaos --quick` as a test: real processes under worker/agent kills, a 429 storm, 503s,
webhooks repeated and dropped; afterwards every paid order and refund is in the simulated Sage
company exactly once and reconciles to the cent (bench/chaos.py does the work)."""

from __future__ import annotations

import pytest

from bench import chaos
from demo.system import logs_of

pytestmark = pytest.mark.e2e


def test_reconciliation_catches_duplicates_losses_and_cents():
    """The checker itself: a clean company passes, each kind of difference fails it."""
    from decimal import Decimal

    orders = {1: {"status_id": 11, "total_inc_tax": "10.00"}, 2: {"status_id": 7, "total_inc_tax": "5.00"}}
    refunds = [{"id": 9, "order_id": 1, "total_amount": "4.00", "payments": [{"provider_id": "card", "amount": "4.00"}]}]
    docs = {"invoice": {"BC-1": [{"gross": "10.00"}]}, "SR": {"BC-1-P1": [{"amount": "10.00"}]},
            "credit": {"BC-1-R9": [{"gross": "4.00"}]}, "SP": {"BC-1-R9-P1": [{"amount": "4.00"}]}}
    records = [{"kind": "order", "external_id": "1", "action": "post_invoice", "state": "posted", "message": ""},
               {"kind": "order", "external_id": "2", "action": "post_invoice", "state": "skipped",
                "message": "Not paid (status 7). Waiting."}]
    paid = frozenset({11})
    clean = chaos.reconcile(orders, refunds, {1: Decimal("10.00")}, docs, records, paid)
    assert clean["ok"] and clean["skipped"] == {"Not paid (status 7)": 1}

    twice = {**docs, "invoice": {"BC-1": [{"gross": "10.00"}, {"gross": "10.00"}]}}
    assert chaos.reconcile(orders, refunds, {1: Decimal("10.00")}, twice, records, paid)["duplicates"] == 1
    lost = {**docs, "credit": {}}
    assert chaos.reconcile(orders, refunds, {1: Decimal("10.00")}, lost, records, paid)["credits_lost"] == ["BC-1-R9"]
    off = {**docs, "invoice": {"BC-1": [{"gross": "10.01"}]}}
    assert not chaos.reconcile(orders, refunds, {1: Decimal("10.00")}, off, records, paid)["ok"]
    stuck = [{**records[0], "state": "pending"}]
    assert chaos.reconcile(orders, refunds, {1: Decimal("10.00")}, docs, stuck, paid)["stuck"][0]["state"] == "pending"


def test_short_chaos_run_posts_everything_once_to_the_cent(process_env, tmp_path):
    plan = chaos.quick_plan(orders=80)
    system = chaos.start_chaos_system(process_env, tmp_path, plan)
    try:
        result = chaos.run_chaos(system, plan, tmp_path)
        chaos.print_summary(result)
        details = {k: result[k] for k in ("stuck", "cent_differences", "invoice_duplicates", "credit_duplicates",
                                          "invoices_lost", "credits_lost", "skipped_but_postable")}
        assert result["settled"], f"{details}\n{logs_of(system)}"
        assert result["duplicates"] == 0, details
        assert result["lost"] == 0, details
        assert result["cent_difference_count"] == 0, details
        assert result["stuck"] == [], details
        assert result["ok"], details
        # The faults really happened.
        assert result["faults"].get("worker_kills", 0) >= 2
        assert result["faults"].get("agent_kills", 0) + result["faults"].get("agent_crashes", 0) >= 1
        assert result["faults"].get("storms", 0) >= 1
        assert result["refunds"] >= 1 and result["postable_orders"] >= 40
    finally:
        system.stop()
