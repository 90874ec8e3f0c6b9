"""The run loop against a fake server speaking PROTOCOL.md, with the simulator as Sage."""

from __future__ import annotations

import datetime as dt
import io
import os
import random
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal as D
from pathlib import Path

import pytest

from agent.backends.simulator import SimulatorBackend
from agent.backoff import Backoff, backoff_delay
from agent.client import AgentClient
from agent.config import AgentConfig, load_config
from agent.journal import ACKNOWLEDGED, Journal
from agent.runner import Runner, out_of_step_gap
from agent.simulator.company import SimCompany
from mlcommon.ledger import Customer, DocumentLine, SalesInvoice, to_payload

REPO = Path(__file__).resolve().parents[2]
AGENT_KEY = "test-agent-key-0123456789abcdef"  # the key conftest.FakeAgentApi accepts


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing in the agent swallows it."""


def invoice_payload(ref="BC-1001"):
    doc = SalesInvoice(reference=ref, date=dt.date(2025, 1, 2), currency="GBP",
                       customer=Customer(email="ann@example.com", name="Ann Lee"),
                       lines=[DocumentLine(kind="item", description="Widget", quantity=D("1"), unit_net=D("10.00"),
                                           net=D("10.00"), tax=D("2.00"), tax_code="T1", stock_code="SKU-1")])
    return to_payload(doc)


def make_runner(fake_api, company_path, tmp_path, **overrides):
    settings = dict(server=fake_api.url, key=AGENT_KEY, backend="simulator", company=str(company_path),
                    journal=str(tmp_path / "journal.sqlite3"), once=True, lease_wait_seconds=0,
                    local_retry_seconds=0.01, backoff_base_seconds=0.01, backoff_cap_seconds=0.05)
    config = AgentConfig(**{**settings, **overrides})
    backend = SimulatorBackend(str(company_path))
    runner = Runner(config, backend, AgentClient(config.server, config.key), Journal(config.journal),
                    out=io.StringIO())
    return runner


def close(runner):
    runner.journal.close()
    runner.backend.close()


def test_one_cycle_heartbeat_lease_execute_complete(fake_api, company_path, tmp_path, company):
    job = fake_api.add_job("create_sales_invoice", invoice_payload())
    runner = make_runner(fake_api, company_path, tmp_path)
    assert runner.run() == 0
    close(runner)
    assert fake_api.heartbeats[0]["backend"] == "simulator"
    assert fake_api.heartbeats[0]["sage_edition"] == "sage50uk" and fake_api.heartbeats[0]["company"] == "DEMO"
    assert fake_api.state(job) == "done"
    assert fake_api.completions == [(job, {"invoice_number": "1", "existed": False, "gross_total": "12.00",
                                           "account_ref": "LEEA01"})]
    assert f"JOB {job} create_sales_invoice ref=BC-1001 -> done sage_id=1 existed=false" in runner.out.getvalue()
    assert company.logins() == []  # logged out after the batch


def test_results_go_back_in_batches_while_the_rest_of_the_lease_runs(fake_batch_api, company_path, tmp_path,
                                                                     company, monkeypatch):

    jobs = [fake_batch_api.add_job("create_sales_invoice", invoice_payload(f"BC-{2000 + n}")) for n in range(100)]
    runner = make_runner(fake_batch_api, company_path, tmp_path)
    sent_from = []
    send = runner._send_results

    def recording_send(outbox, client):
        sent_from.append((threading.current_thread().name, client is runner.client))
        return send(outbox, client)

    monkeypatch.setattr(runner, "_send_results", recording_send)
    assert runner.run() == 0
    journal = runner.journal
    assert {fake_batch_api.state(job) for job in jobs} == {"done"}
    # One lease of 100, results in batches of at most 50; the first batch finds out the server takes
    # batches (sent from the loop itself), the later ones go from the sender thread on its own
    # HTTP session.
    assert [len(batch) for batch in fake_batch_api.complete_batches] == [50, 50]
    assert sent_from[0] == ("MainThread", True)
    assert all(name.startswith("agent-complete") and not own for name, own in sent_from[1:])
    assert {entry.state for entry in journal.entries()} == {ACKNOWLEDGED}
    out = runner.out.getvalue()
    assert all(out.count(f"JOB {job} create_sales_invoice") == 1 for job in jobs)
    assert runner.jobs_done == 100 and len(company.invoices()) == 100
    close(runner)


def test_same_job_twice_makes_one_document(fake_api, company_path, tmp_path, company):
    first = fake_api.add_job("create_sales_invoice", invoice_payload())
    second = fake_api.add_job("create_sales_invoice", invoice_payload())  # a replay of the same order
    runner = make_runner(fake_api, company_path, tmp_path)
    runner.run()
    close(runner)
    assert len(company.invoices()) == 1
    results = dict(fake_api.completions)
    assert results[first]["existed"] is False and results[second]["existed"] is True
    assert results[first]["invoice_number"] == results[second]["invoice_number"]


def test_crash_after_sage_write_before_journal_then_restart(fake_api, company_path, tmp_path, company):
    job = fake_api.add_job("create_sales_invoice", invoice_payload())
    runner = make_runner(fake_api, company_path, tmp_path)
    runner.journal.written = lambda *a, **k: (_ for _ in ()).throw(Crash())
    with pytest.raises(Crash):
        runner.run()
    close(runner)
    assert len(company.invoices()) == 1 and fake_api.state(job) == "leased"
    fake_api.expire(job)  # the dead agent's lease runs out

    restarted = make_runner(fake_api, company_path, tmp_path)
    restarted.run()
    close(restarted)
    assert len(company.invoices()) == 1
    assert fake_api.state(job) == "done"
    assert fake_api.completions[-1][1]["existed"] is True
    assert fake_api.completions[-1][1]["invoice_number"] == "1"


def test_crash_after_journal_before_complete_completes_from_journal(fake_api, company_path, tmp_path, company):
    job = fake_api.add_job("create_sales_invoice", invoice_payload())
    runner = make_runner(fake_api, company_path, tmp_path)
    runner.client.complete = lambda *a, **k: (_ for _ in ()).throw(Crash())
    with pytest.raises(Crash):
        runner.run()
    close(runner)
    fake_api.expire(job)
    company.set_exclusive("backup")  # proves the rerun does not even need Sage

    restarted = make_runner(fake_api, company_path, tmp_path)
    restarted.run()
    assert "(from journal)" in restarted.out.getvalue()
    assert restarted.journal.get(job).state == ACKNOWLEDGED
    close(restarted)
    assert len(company.invoices()) == 1
    assert fake_api.completions == [(job, {"invoice_number": "1", "existed": False, "gross_total": "12.00",
                                           "account_ref": "LEEA01"})]


def test_unacknowledged_result_is_flushed_when_server_returns(fake_api, company_path, tmp_path, company):
    job = fake_api.add_job("create_sales_invoice", invoice_payload())
    runner = make_runner(fake_api, company_path, tmp_path)
    real_complete = runner.client.complete
    runner.client.complete = lambda *a, **k: (_ for _ in ()).throw(
        __import__("mlcommon.http", fromlist=["RetryableError"]).RetryableError("down"))
    runner.run()
    assert runner.journal.get(job).state == "written"
    runner.client.complete = real_complete
    runner._heartbeat_ok = False
    runner.run()  # the next heartbeat flushes the journal with the still-valid lease token
    assert fake_api.state(job) == "done" and runner.journal.get(job).state == ACKNOWLEDGED
    close(runner)
    assert len(company.invoices()) == 1


def test_busy_is_retried_locally_then_succeeds(fake_api, company_path, tmp_path, company):
    company.set_busy(2)
    job = fake_api.add_job("create_sales_invoice", invoice_payload())
    runner = make_runner(fake_api, company_path, tmp_path)
    runner.run()
    close(runner)
    assert fake_api.state(job) == "done" and fake_api.failures == []


def test_record_locked_beyond_local_retries_fails_retryable(fake_api, company_path, tmp_path, company):
    company.lock_record("stock", "SKU-1", "Anna")
    job = fake_api.add_job("create_sales_invoice", invoice_payload())
    runner = make_runner(fake_api, company_path, tmp_path, local_retries=2)
    runner.run()
    close(runner)
    (failed_id, body), = fake_api.failures
    assert failed_id == job and body["code"] == "record_locked" and body["retryable"] is True
    assert fake_api.state(job) == "queued" and company.invoices() == []


def test_exclusive_mode_fails_jobs_retryable_and_backs_off(fake_api, company_path, tmp_path, company):
    company.set_exclusive("year end")
    job = fake_api.add_job("create_sales_invoice", invoice_payload())
    runner = make_runner(fake_api, company_path, tmp_path)
    runner.run()
    assert fake_api.failures[0][1]["code"] == "sage_locked" and fake_api.failures[0][1]["retryable"] is True
    assert runner.sage_backoff.failures == 1
    # While Sage stays locked the runner probes instead of leasing (the job's attempts are spared).
    runner.run()
    assert fake_api.jobs[job]["attempts"] == 1
    company.set_exclusive(None)
    runner.run()
    runner.run()
    close(runner)
    assert fake_api.state(job) == "done"


def test_same_user_logged_in_elsewhere(fake_api, company_path, tmp_path, company):
    person = company.login("AGENT")
    fake_api.add_job("create_sales_invoice", invoice_payload())
    runner = make_runner(fake_api, company_path, tmp_path)
    runner.run()
    close(runner)
    person.logout()
    assert fake_api.failures[0][1]["code"] == "same_user_logged_in"


def test_validation_failure_is_permanent(fake_api, company_path, tmp_path):
    payload = invoice_payload()
    payload["lines"][0]["stock_code"] = "UNKNOWN"
    job = fake_api.add_job("create_sales_invoice", payload)
    runner = make_runner(fake_api, company_path, tmp_path)
    runner.run()
    close(runner)
    assert fake_api.failures[0][1]["code"] == "validation" and fake_api.failures[0][1]["retryable"] is False
    assert fake_api.state(job) == "failed"
    assert "UNKNOWN" in fake_api.failures[0][1]["message"]


def run_until_done(runner, fake_api, job) -> list[float]:
    """Run the loop in a thread until the job is done (or 10 s); returns the pauses it took."""
    sleeps = []
    runner._sleep = sleeps.append
    thread = threading.Thread(target=runner.run)
    thread.start()
    deadline = time.monotonic() + 10
    while fake_api.state(job) != "done" and time.monotonic() < deadline:
        time.sleep(0.02)
    runner.stop()
    thread.join(10)
    close(runner)
    return sleeps


def test_server_errors_back_off_then_recover(fake_api, company_path, tmp_path):
    fake_api.fail_next_leases = 3
    job = fake_api.add_job("create_sales_invoice", invoice_payload())
    runner = make_runner(fake_api, company_path, tmp_path, once=False)
    sleeps = run_until_done(runner, fake_api, job)
    assert fake_api.state(job) == "done"
    backoffs = sleeps[:3]  # then idle 1 s pauses between the zero-wait leases
    assert len(backoffs) == 3
    assert backoffs[0] <= backoffs[1] * 2 + 0.01  # growing (with jitter) and capped
    assert max(backoffs) <= 0.05
    assert runner.server_backoff.failures == 0


def test_a_throttled_lease_waits_the_servers_retry_after_not_a_growing_backoff(fake_api, company_path, tmp_path):
    fake_api.throttle_next_leases = 3
    job = fake_api.add_job("create_sales_invoice", invoice_payload())
    runner = make_runner(fake_api, company_path, tmp_path, once=False, backoff_cap_seconds=30)
    sleeps = run_until_done(runner, fake_api, job)
    assert fake_api.state(job) == "done"
    assert sleeps[:3] == [1.0, 1.0, 1.0]  # Retry-After each time, not 1, 2, 4 … of an outage
    assert runner.server_backoff.failures == 0


def test_changes_are_pushed_from_the_heartbeat_cursor(fake_api, company_path, tmp_path, company):
    stock = {s["stock_code"]: s for s in company.stock()}
    fake_api.config["cursors"] = {"stock": stock["SKU-2"]["modified_at"], "customer": None, "price": None}
    fake_api.config["poll_changes_seconds"] = 0
    runner = make_runner(fake_api, company_path, tmp_path, change_kinds=["stock"])
    runner.run()
    pushed = [c for c in fake_api.changes if c["kind"] == "stock"]
    assert [i["stock_code"] for i in pushed[0]["items"]] == ["SKU-2"]  # SKU-1 is older than the cursor
    runner.run()
    assert len(fake_api.changes) == 1  # nothing new: the record at the cursor is not pushed again
    company.set_stock("SKU-1", qty=D("3"))
    runner.run()
    close(runner)
    last = fake_api.changes[-1]
    assert [(i["stock_code"], i["in_stock"]) for i in last["items"]] == [("SKU-1", "3")]
    assert last["cursor"] == last["items"][-1]["modified_at"]


def test_backoff_delay_bounds():
    assert backoff_delay(0) == 0
    for failures in range(1, 12):
        delay = backoff_delay(failures, base=1, cap=60)
        ceiling = min(60, 2 ** failures)
        assert ceiling / 2 <= delay <= ceiling
    b = Backoff(base=1, cap=8)
    delays = [b.failure() for _ in range(6)]
    assert max(delays) <= 8 and b.failures == 6
    b.success()
    assert b.failures == 0


def test_config_file_and_overrides(tmp_path):
    path = tmp_path / "agent.toml"
    path.write_text('server = "https://x"\nbackend = "sdo"\ncompany = "C:/Sage/ACCDATA"\nlocal-retries = 5\n'
                    '[backend_options]\nsdo_version = "32"\n')
    config = load_config(str(path), {"backend": "simulator", "key": "k"})
    assert (config.server, config.backend, config.local_retries, config.backend_options) == (
        "https://x", "simulator", 5, {"sdo_version": "32"})
    path.write_text('nonsense = 1\n')
    with pytest.raises(ValueError, match="nonsense"):
        load_config(str(path), {})


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("ML_AGENT_KEY", None)
    return env


def test_cli_once_subprocess_prints_job_line_and_never_logs_the_key(fake_api, company_path, tmp_path, company):
    job = fake_api.add_job("create_sales_invoice", invoice_payload())
    log_file = tmp_path / "agent.log"
    env = {**_env(), "ML_AGENT_KEY": AGENT_KEY}
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "run", "--server", fake_api.url, "--backend", "simulator",
         "--company", str(company_path), "--journal", str(tmp_path / "j.sqlite3"), "--log-file", str(log_file),
         "--log-level", "DEBUG", "--once", "--lease-wait", "0"],
        capture_output=True, text=True, timeout=60, cwd=str(tmp_path), env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"JOB {job} create_sales_invoice ref=BC-1001 -> done" in proc.stdout
    text = log_file.read_text()
    assert "create_sales_invoice" in text and AGENT_KEY not in text and AGENT_KEY not in proc.stderr


def test_cli_sigterm_stops_gracefully(fake_api, company_path, tmp_path, company):
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--server", fake_api.url, "--key", AGENT_KEY, "--backend",
         "simulator", "--company", str(company_path), "--journal", str(tmp_path / "j.sqlite3"), "--lease-wait", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(tmp_path), env=_env())
    try:
        job = fake_api.add_job("create_sales_invoice", invoice_payload())
        line = proc.stdout.readline()
        assert f"JOB {job}" in line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert company.logins() == []
    assert len(SimCompany(company_path).invoices()) == 1


def test_cli_sigterm_during_a_long_poll_stops_at_once_and_prints_each_job_once(
        fake_api, company_path, tmp_path, company):
    fake_api.config["lease_wait_seconds"] = 25
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--server", fake_api.url, "--key", AGENT_KEY, "--backend",
         "simulator", "--company", str(company_path), "--journal", str(tmp_path / "j.sqlite3"),
         "--lease-wait", "25"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(tmp_path), env=_env())
    try:
        job = fake_api.add_job("create_sales_invoice", invoice_payload())
        assert f"JOB {job}" in proc.stdout.readline()
        time.sleep(1.5)  # the agent is now in its 25 s long poll with nothing to do
        asked = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert time.monotonic() - asked < 5, "SIGTERM waited for the long poll to run out"
        out, err = proc.communicate(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
    # The job line went to stdout once; the console log (stderr) does not repeat it.
    assert f"JOB {job}" not in err and f"JOB {job}" not in out
    assert "agent stopped after 1 job(s)" in err
    assert company.logins() == []


def test_wrong_key_exits_with_auth_code(fake_api, company_path, tmp_path):
    runner = make_runner(fake_api, company_path, tmp_path)
    runner.client = AgentClient(fake_api.url, "wrong-key")
    assert runner.run() == 3
    close(runner)


def test_agents_that_start_together_fall_out_of_step_at_their_second_call():
    """Fifty agents started in one second would heartbeat and push changes in the same second every
    minute (each change push starts a stock and a price push on the server). The second call comes
    after a random half to all of the interval, later ones after the interval ± 10 %."""
    gaps = []
    for seed in range(50):
        rng = random.Random(seed)
        first = out_of_step_gap(60, 1, rng)
        later = [out_of_step_gap(60, n, rng) for n in range(2, 22)]
        assert 30 <= first <= 60 and all(54 <= gap <= 66 for gap in later)
        gaps.append(first)
    # Spread over the half interval, not in step: no one-second window holds more than a few of the
    # fifty (in step, one second held all of them).
    assert max(gaps) - min(gaps) > 20
    assert max(sum(1 for gap in gaps if start <= gap < start + 1) for start in range(30, 60)) <= 6
