"""The BOI backend against a fake of Sage 100's Business Object Interface built from its surface
description (surfaces/boi.json), over the simulated Sage 100 company: the object sequence, the
field names and types, the look-up before create, sessions cleaned up (licence seats given back),
record in use and licence exhaustion retried with Sage's message."""

from __future__ import annotations

import ast
import datetime as dt
import json
import re
from decimal import Decimal

import pytest

from agent.backends import create_backend
from agent.backends.boi import sage_error
from agent.errors import BackendUnavailable, RecordLocked, SageBusy, SageValidationError
from agent.operations import execute
from agent.simulator.sage100 import Sage100Company
from agent.tests.fake_boi import SURFACE, FakeBoi
from agent.tests.test_agent_sage100_simulator import order


@pytest.fixture
def company(tmp_path):
    company = Sage100Company.create(tmp_path / "abc.sqlite3", company_code="ABC", seats=2)
    company.set_item("MUG-WHITE", price="8.50", warehouses={"000": 10, "EST": 5})
    yield company
    company.close()


@pytest.fixture
def boi(company):
    return FakeBoi(company.path, users={"agent": "secret"})


def backend_for(boi, **options):
    return create_backend("boi", "ABC", {"home_path": r"\\sage\MAS90\Home", "user": "agent", "password": "secret",
                                         "dispatch": boi.dispatch, "session_date": dt.date(2025, 6, 3), **options})


def test_a_sales_order_through_boi_once(boi, company):
    backend = backend_for(boi)
    with backend.session():
        first = execute(backend, "create_sales_order", order())
        again = execute(backend, "create_sales_order", order())
    assert first == {"sales_order_number": "W001001", "existed": False, "account_ref": "01-W000001",
                     "customer_created": True, "order_total": "23.10", "sales_tax": "0.00"}
    assert again["existed"] is True
    [saved] = company.sales_orders()
    assert saved["CustomerPONo"] == "1001" and saved["ShipToName"] == "Amelia Hart"
    assert [line["ItemCode"] for line in saved["lines"]] == ["MUG-WHITE", "/TAX", "/C", "/C"]
    assert company.find_customer("01", "W000001")["EmailAddress"] == "amelia@example.com"
    # Every business object dropped, the session cleaned up: no licence seat left behind.
    assert boi.open_objects == []
    assert company.seats() == []


def test_sessions_are_kept_between_jobs_and_cleaned_up_on_disconnect(boi, company):
    backend = backend_for(boi)
    backend.connect()
    backend.connect()
    assert len(boi.sessions) == 1 and len(company.seats()) == 1
    backend.disconnect()
    backend.disconnect()
    assert company.seats() == [] and boi.sessions[0]._dropped


def test_licence_exhaustion_is_retried_with_sage_s_message(boi, company):
    company.set_seats(0)
    with pytest.raises(SageBusy, match="maximum number of users") as caught:
        backend_for(boi).connect()
    assert caught.value.retryable
    assert boi.sessions[0]._dropped  # the failed session was cleaned up too


def test_a_record_in_use_is_retried(boi, company):
    company.lock_record("sales_order", "W001001", holder="JANE")
    backend = backend_for(boi)
    with backend.session(), pytest.raises(RecordLocked, match="in use by JANE"):
        execute(backend, "create_sales_order", order())
    assert boi.open_objects == []


def test_sage_s_refusal_is_the_record_s_message(boi, company):
    payload = order()
    payload["tax_schedule"] = "NOPE"
    backend = backend_for(boi)
    with backend.session(), pytest.raises(SageValidationError, match="tax schedule NOPE is not on file"):
        execute(backend, "create_sales_order", payload)
    assert company.sales_orders() == []


def test_bad_logon_is_refused_clearly(boi):
    with pytest.raises(SageValidationError, match="refused user 'agent': Invalid user logon"):
        backend_for(boi, password="wrong").connect()


def test_stock_changes_from_the_item_warehouses(boi, company):
    backend = backend_for(boi)
    with backend.session():
        items = backend.read_changes("stock", None, {"warehouses": ["000"]})
        assert [(i["stock_code"], Decimal(i["in_stock"])) for i in items] == [("MUG-WHITE", Decimal(10))]
        assert backend.read_changes("stock", items[-1]["modified_at"], {}) == []
        prices = backend.read_changes("price", None, {})
    assert [(p["stock_code"], p["price"]) for p in prices] == [("MUG-WHITE", "8.50")]


def test_home_path_is_required():
    with pytest.raises(BackendUnavailable, match="home_path"):
        create_backend("boi", "ABC", {})


def test_the_fake_refuses_names_outside_the_surface(boi):
    script = boi.dispatch("ProvideX.Script")
    script.Init(r"\\sage\MAS90\Home")
    with pytest.raises(AttributeError, match="no member 'nLogonUser'"):
        script.NewObject("SY_Session").nLogonUser("x", "y")


def test_every_member_the_backend_names_is_in_the_surface():
    source = open("agent/backends/boi.py").read()
    members = {name for spec in SURFACE["objects"].values() for name in spec["members"]}
    fields = {name for spec in SURFACE["objects"].values() for name in spec.get("fields", {})}
    used = set(re.findall(r"\.((?:n|s|o)[A-Z]\w+|DropObject|Init|NewObject)\b", source))
    assert used <= members, used - members
    tree = ast.parse(source)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and node.body
                  and isinstance(node.body[0], ast.Expr)}
    literals = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
                and isinstance(node.value, str) and id(node) not in docstrings}
    assert {text for text in literals if re.fullmatch(r"\w+\$", text)} <= fields


@pytest.mark.parametrize(("message", "kind"), [("The record is in use by JANE.", RecordLocked),
                                               ("No licence available", SageBusy),
                                               ("Customer number is required", SageValidationError)])
def test_messages_become_errors(message, kind):
    assert isinstance(sage_error("x", message), kind)


def test_surface_is_valid_json():
    assert json.dumps(SURFACE)
