"""The simulated Sage 50 company: numbering, logins, exclusive mode, record locks, busy, lookups."""

from __future__ import annotations

import subprocess
import sys
import threading
from decimal import Decimal

import pytest

from agent.errors import (
    RecordLocked,
    SageBusy,
    SageLocked,
    SageValidationError,
    SameUserLoggedIn,
    VersionMismatch,
)
from agent.simulator.company import SimCompany


def _invoice(session, ref, kind="invoice", qty="1", **header):
    return session.post_document(kind, {"account_ref": "WEB01", "date": "2025-01-02", "cust_order_number": ref,
                                        **header},
                                 [{"stock_code": "SKU-1", "qty": qty, "unit_price": "10.00", "net": "10.00",
                                   "tax": "2.00", "tax_code": 1}])


@pytest.fixture
def session(company):
    company.add_customer("WEB01", "Web Sales", "web@example.com")
    s = company.login("AGENT")
    yield s
    s.logout()


def test_invoices_and_credit_notes_share_one_number_sequence(session):
    first = _invoice(session, "BC-1")
    credit = _invoice(session, "BC-1-R1", kind="credit", against_invoice=first["number"])
    second = _invoice(session, "BC-2")
    assert [first["number"], credit["number"], second["number"]] == [1, 2, 3]
    assert first["gross"] == "12.00"
    # The credit note is allocated against the invoice it reverses.
    assert session.find_invoice_by_number(1)["amount_paid"] == "12.00"


def test_no_idempotency_key_posting_twice_makes_two_documents(session, company):
    _invoice(session, "BC-1")
    _invoice(session, "BC-1")
    assert [i["number"] for i in company.invoices()] == [1, 2]
    assert session.find_document("invoice", "BC-1")["number"] == 1  # look-up finds the first


def test_stock_moves_and_modified_date(session, company):
    before = {s["stock_code"]: s for s in company.stock()}["SKU-1"]
    _invoice(session, "BC-1", qty="3")
    after = {s["stock_code"]: s for s in company.stock()}["SKU-1"]
    assert after["qty_in_stock"] == "7"
    assert after["modified_at"] > before["modified_at"]
    changed = session.modified_since("stock", after["modified_at"])
    assert [r["stock_code"] for r in changed] == ["SKU-1"]


def test_second_login_with_same_user_is_refused_until_logout(company):
    first = company.login("AGENT")
    with pytest.raises(SameUserLoggedIn):
        company.login("AGENT")
    other = company.login("CLERK")  # another user name is fine: Sage 50 is multi-user
    first.logout()
    again = company.login("AGENT")
    again.logout()
    other.logout()


def test_stale_login_of_a_dead_process_is_cleared(company):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    company.login("AGENT").logout()
    with company.write() as db:  # what a crashed agent leaves behind
        db.execute("INSERT INTO logins (user, token, connection_name, pid, host, logged_in_at, seen_at)"
                   " SELECT 'AGENT', 'old', 'crashed', ?, host, logged_in_at, logged_in_at FROM"
                   " (SELECT ? AS host, '2099-01-01T00:00:00+00:00' AS logged_in_at)",
                   (proc.pid, __import__("socket").gethostname()))
    session = company.login("AGENT")
    assert company.logins()[0]["token"] == session.token
    session.logout()


def test_stale_login_from_another_machine_expires_after_ttl(company):
    with company.write() as db:
        db.execute("INSERT INTO logins VALUES ('AGENT', 'x', 'other pc', 1, 'OTHER-PC',"
                   " '2000-01-01T00:00:00+00:00', '2000-01-01T00:00:00+00:00')")
    company.set_meta("login_ttl_seconds", "0")  # 0 = never expires: the manual fix is needed
    with pytest.raises(SameUserLoggedIn):
        company.login("AGENT")
    company.set_meta("login_ttl_seconds", "60")
    company.login("AGENT").logout()
    assert company.logins() == []


def test_clear_logins_takes_over_and_old_session_is_refused(session, company):
    assert company.clear_logins() == 1
    with pytest.raises(SameUserLoggedIn):
        session.find_customer(account_ref="WEB01")


def test_exclusive_task_locks_everyone_out(session, company):
    company.set_exclusive("backup")
    with pytest.raises(SageLocked):
        company.login("CLERK")
    with pytest.raises(SageLocked):
        _invoice(session, "BC-1")
    company.set_exclusive(None)
    assert _invoice(session, "BC-1")["number"] == 1


def test_record_lock_blocks_writes_touching_the_record(session, company):
    company.lock_record("customer", "WEB01", "Anna")
    with pytest.raises(RecordLocked, match="Anna"):
        _invoice(session, "BC-1")
    company.unlock_record("customer", "WEB01")
    company.lock_record("stock", "SKU-1")
    with pytest.raises(RecordLocked):
        _invoice(session, "BC-1")
    company.unlock_record("stock", "SKU-1")
    assert _invoice(session, "BC-1")["number"] == 1


def test_busy_knob_fails_the_next_n_writes_and_rolls_back(session, company):
    company.set_busy(2)
    for _ in range(2):
        with pytest.raises(SageBusy):
            _invoice(session, "BC-1")
    assert company.invoices() == []
    assert _invoice(session, "BC-1")["number"] == 1


def test_version_mismatch_and_validation(company, session):
    with pytest.raises(VersionMismatch):
        company.login("OTHER", sdo_version="31")
    with pytest.raises(SageValidationError, match="NOPE"):
        session.post_document("invoice", {"account_ref": "WEB01"},
                              [{"stock_code": "NOPE", "qty": "1", "unit_price": "1", "net": "1", "tax": "0",
                                "tax_code": 0}])
    with pytest.raises(SageValidationError, match="account reference"):
        session.create_customer({"account_ref": "too long ref", "name": "x"})


def test_receipt_allocation_and_balances(session, company):
    inv = _invoice(session, "BC-1")
    pay = session.post_payment("SR", {"account_ref": "WEB01", "inv_ref": "BC-1-P", "amount": Decimal("12.00"),
                                      "date": "2025-01-02", "bank_code": "1200"})
    session.allocate(pay["tran_number"], inv["number"], Decimal("12.00"), "2025-01-02")
    with pytest.raises(SageValidationError):
        session.allocate(pay["tran_number"], inv["number"], Decimal("0.01"), "2025-01-02")
    assert company.customers()[0]["balance"] == "0.00"
    assert company.payments("SR")[0]["allocations"][0]["invoice_number"] == 1


def test_concurrent_reader_while_writing(company_path, session):
    errors = []

    def reader():
        other = SimCompany(company_path)
        try:
            for _ in range(30):
                other.invoices()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            other.close()

    thread = threading.Thread(target=reader)
    thread.start()
    for n in range(10):
        _invoice(session, f"BC-{n}")
    thread.join()
    assert errors == []


def test_cli_init_seed_and_inspect(tmp_path):
    path = tmp_path / "c.db"
    run = lambda *a: subprocess.run([sys.executable, "-m", "agent", "simulator", *a, "--company", str(path)],  # noqa: E731
                                    capture_output=True, text=True, check=True, cwd=str(_repo())).stdout
    run("init")
    run("seed", "A-1", "B-2")
    run("set-stock", "A-1", "--qty", "4")
    out = run("inspect", "stock", "--json")
    assert '"qty_in_stock": "4"' in out and '"B-2"' in out


def _repo():
    from pathlib import Path

    return Path(__file__).resolve().parents[2]
