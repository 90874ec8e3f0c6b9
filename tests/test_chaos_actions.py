"""bench/chaos.py's plan actions resolve through one named table: every action the quick and the
full plan use names a ChaosRun method, its argument reaches that method, and a typo fails at once."""

from __future__ import annotations

import pytest

from bench import chaos


@pytest.mark.parametrize("plan", [chaos.quick_plan(), chaos.full_plan(), chaos.sage100_plan(chaos.quick_plan()),
                                  chaos.sage100_plan(chaos.full_plan())],
                         ids=["quick", "full", "quick-sage100", "full-sage100"])
def test_every_planned_action_names_a_method(plan):
    for _, action in plan.events:
        method, argument = chaos.resolve_action(action)
        assert getattr(chaos.ChaosRun, method.__name__) is method
        assert (argument == "") == (action in chaos.FIXED_ACTIONS)


@pytest.mark.parametrize(("action", "method", "argument"), [
    ("kill worker1", "kill_process", "worker1"),
    ("kill workers mid-backfill", "kill_workers_mid_backfill", ""),
    ("start worker2", "start_worker", "worker2"),
    ("agent crash after write", "arm_agent_crash", ""),
    ("agent kill", "kill_agent", ""),
    ("storm 6", "rate_limit_storm", "6"),
    ("errors 0.15", "store_errors", "0.15"),
    ("repeat 3", "repeat_webhooks", "3"),
    ("drop 0.2", "drop_webhooks", "0.2"),
    ("redis restart", "restart_redis", ""),
])
def test_each_action_resolves_to_its_method_and_argument(action, method, argument):
    assert chaos.resolve_action(action) == (getattr(chaos.ChaosRun, method), argument)


def test_act_runs_the_resolved_method_with_its_argument(monkeypatch):
    calls = []
    monkeypatch.setitem(chaos.ACTIONS_WITH_ARGUMENT, "storm", lambda run, arg: calls.append((run, arg)))
    run = object.__new__(chaos.ChaosRun)
    run.act("storm 12")
    assert calls == [(run, "12")]


@pytest.mark.parametrize("action", ["kil worker1", "storm", "agent crash", "", "redis"])
def test_unknown_or_incomplete_actions_are_refused(action):
    with pytest.raises(ValueError, match="unknown chaos action"):
        chaos.resolve_action(action)


def test_the_sage100_plan_adds_licence_exhaustion():
    plan = chaos.sage100_plan(chaos.quick_plan())
    assert plan.sage == "sage100"
    assert [action for _, action in plan.events if action.startswith("licence")] == ["licence 4"] * 3
    assert chaos.resolve_action("licence 4") == (chaos.ChaosRun.licence_exhaustion, "4")


def test_sage100_reconciliation_counts_duplicates_losses_and_cents():
    orders = {1: {"status_id": 11, "total_inc_tax": "10.00"}, 2: {"status_id": 11, "total_inc_tax": "5.00"},
              3: {"status_id": 11, "total_inc_tax": "7.00"}}
    sales_orders = {"1": [{"OrderTotal": "10.00"}, {"OrderTotal": "10.00"}], "2": [{"OrderTotal": "5.01"}]}
    result = chaos.reconcile_sage100(orders, sales_orders, [], frozenset({11}))
    assert (result["duplicates"], result["lost"], result["cent_difference_count"], result["ok"]) == (1, 1, 1, False)
    clean = chaos.reconcile_sage100(orders, {"1": [{"OrderTotal": "10"}], "2": [{"OrderTotal": "5"}],
                                             "3": [{"OrderTotal": "7.00"}]}, [], frozenset({11}))
    assert clean["ok"]


def test_the_summary_prints_a_sage100_run(capsys):
    # A Sage 100 run reconciles sales orders and has no refunds or invoice keys: the summary printed
    # after it raised KeyError, so `make chaos` failed after a run that had settled.
    from bench.chaos import print_summary, reconcile_sage100

    orders = {1: {"status_id": 11, "total_inc_tax": "10.00"}, 2: {"status_id": 11, "total_inc_tax": "5.00"}}
    result = reconcile_sage100(orders, {"1": [{"OrderTotal": "10.00"}], "2": [{"OrderTotal": "5.00"}]},
                               records=[], postable_ids=frozenset({11}))
    result.update({"settled": True, "faults": {}, "webhook_deliveries": 4, "wall_s": 1.0})
    print_summary(result)
    out = capsys.readouterr().out
    assert "PASS: settled" in out
    assert "duplicates (invoices, receipts, credit notes, refund payments)" in out
