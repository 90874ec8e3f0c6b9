"""bench/chaos.py's plan actions resolve through one named table: every action the quick and the
full plan use names a ChaosRun method, its argument reaches that method, and a typo fails at once."""

from __future__ import annotations

import pytest

from bench import chaos


@pytest.mark.parametrize("plan", [chaos.quick_plan(), chaos.full_plan(), chaos.sage100_plan(chaos.quick_plan()),
                                  chaos.sage100_plan(chaos.full_plan()), chaos.sage100_soap_plan(chaos.quick_plan()),
                                  chaos.sage100_soap_plan(chaos.full_plan())],
                         ids=["quick", "full", "quick-sage100", "full-sage100", "quick-soap", "full-soap"])
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
    ("licence 4", "licence_exhaustion", "4"),
    ("soap-errors 0.2", "soap_errors", "0.2"),
    ("soap-lost 0.05", "soap_lost_answers", "0.05"),
    ("soap-drop 0.05", "soap_dropped_answers", "0.05"),
    ("soap-slow 0.03", "soap_late_answers", "0.03"),
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


def test_the_soap_plan_trades_agent_faults_for_soap_ones():
    base = chaos.quick_plan()
    plan = chaos.sage100_soap_plan(base)
    assert (plan.sage, plan.transport) == ("sage100", "soap")
    actions = [action for _, action in plan.events]
    assert not [a for a in actions if a.startswith(("agent", "licence"))]  # no agent in this run
    agent_faults = sum(1 for _, a in base.events if a.startswith("agent"))
    assert actions.count("soap-errors 0.2") == actions.count("soap-errors 0") == agent_faults
    # Answers lost after Sage applied the create, from the start: the exactly-once case.
    assert {a.split()[0] for at, a in plan.events if at == 0.0} >= {"soap-lost", "soap-drop", "soap-slow"}
    assert chaos.SOAP_LATE_S > chaos.SOAP_TIMEOUT_S  # a late answer comes after the client gave up
    # The store's and the workers' faults are all still there.
    kept = [a for _, a in base.events if not a.startswith("agent")]
    assert sorted(a for a in actions if not a.startswith("soap")) == sorted(kept)


def test_soap_actions_set_the_emulator_s_knobs():
    knobs = []
    run = object.__new__(chaos.ChaosRun)
    run.system = type("System", (), {"soap_faults": lambda self, **k: knobs.append(k)})()
    run.timeline = chaos.Timeline(echo=False)
    run.counts = chaos.Counter()
    for action in ("soap-errors 0.2", "soap-lost 0.05", "soap-drop 0.1", "soap-slow 0.03", "soap-errors 0"):
        run.act(action)
    assert knobs == [{"error_rate": 0.2}, {"lost_reply_rate": 0.05}, {"drop_reply_rate": 0.1},
                     {"slow_reply_rate": 0.03, "slow_reply_s": float(chaos.SOAP_LATE_S)}, {"error_rate": 0.0}]
    assert run.counts["soap_5xx_windows"] == 1


def test_a_soap_run_has_no_agent_to_kill_or_crash(tmp_path):
    run = object.__new__(chaos.ChaosRun)
    run.plan = chaos.sage100_soap_plan(chaos.quick_plan())
    run.timeline = chaos.Timeline(echo=False)
    run.trigger = tmp_path / "trigger"
    run.arm_agent_crash()
    run.kill_agent()
    run.start_agent()  # would need a System: returns before touching one
    assert not run.trigger.exists()
    assert [e["event"] for e in run.timeline.entries] == ["agent crash skipped: no agent in a SOAP run",
                                                         "agent kill skipped: no agent in a SOAP run"]


def test_sage100_reconciliation_counts_duplicate_customers():
    orders = {1: {"status_id": 11, "total_inc_tax": "10.00"}}
    result = chaos.reconcile_sage100(orders, {"1": [{"OrderTotal": "10.00"}]}, [], frozenset({11}),
                                     ["Ann@example.com", "ann@example.com ", "bob@example.com", ""])
    assert result["customer_duplicates"] == ["ann@example.com"]
    assert (result["duplicates"], result["ok"]) == (1, False)


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


def test_a_worker_that_exited_by_itself_is_started_again_and_counted():
    """As systemd's Restart=always does; a worker the plan killed waits for the plan's own start."""
    from collections import Counter
    from types import SimpleNamespace

    class Stack:
        def __init__(self):
            self.processes = {name: SimpleNamespace(popen=SimpleNamespace(returncode=code))
                              for name, code in (("worker1", 1), ("worker2", -9), ("web", None))}
            self.running = {"web"}

        def alive(self, name):
            return name in self.running

    run = object.__new__(chaos.ChaosRun)
    run.system = SimpleNamespace(stack=Stack())
    run.counts, run.workers_down_by_us = Counter(), {"worker2"}
    run.timeline = chaos.Timeline(echo=False)
    started = []
    run.start_worker = lambda name: (started.append(name), run.system.stack.running.add(name))
    run.supervise_workers()
    run.supervise_workers()  # started once: it is alive now
    assert started == ["worker1"] and run.counts["worker_crashes"] == 1
    assert "worker1 exited by itself (exit 1)" in run.timeline.entries[0]["event"]
