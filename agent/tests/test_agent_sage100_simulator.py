"""Sage 100 operations against the simulated Sage 100 company: look-up by SalesOrderNo before
create, customers by division + number, else email, else created, record locks and licence seats
as retry-later, Sage's own totals in the result, and the change poll by DateUpdated/TimeUpdated."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest

from agent.backends import create_backend
from agent.errors import RecordLocked, SageBusy, SageValidationError
from agent.operations import execute
from agent.simulator.sage100 import Sage100Company
from mlcommon.ledger import Customer, DocumentLine, SalesOrder, ShipTo, TaxMode, to_payload


@pytest.fixture
def company(tmp_path):
    company = Sage100Company.create(tmp_path / "abc.sqlite3", seats=2)
    company.set_item("MUG-WHITE", price="8.50", levels={"1": "7.99"}, warehouses={"000": 10, "EST": 5})
    company.set_item("LANTERN01", price="24.99", warehouses={"000": 3})
    yield company
    company.close()


@pytest.fixture
def backend(company):
    backend = create_backend("sage100sim", str(company.path))
    backend.connect()
    yield backend
    backend.close()


def order(number="W001001", email="amelia@example.com", *, customer_no="", tax_mode=TaxMode.STORE_TAX_LINE,
          po="1001") -> dict:
    lines = [DocumentLine(kind="item", description="Enamel mug (White)", quantity=Decimal("2"),
                          unit_net=Decimal("8.50"), net=Decimal("15.30"), tax=Decimal("3.06"), tax_code="NT",
                          stock_code="MUG-WHITE", discount=Decimal("1.70"))]
    if tax_mode == TaxMode.STORE_TAX_LINE:
        lines.append(DocumentLine(kind="service", description="Sales tax", quantity=Decimal("1"),
                                  unit_net=Decimal("3.85"), net=Decimal("3.85"), tax=Decimal("0"), tax_code="NT",
                                  stock_code="/TAX"))
    else:
        lines[0].tax_code = "TX"
    document = SalesOrder(
        reference=f"BC-{po}", date=dt.date(2025, 6, 3), currency="USD", lines=lines,
        customer=Customer(email=email, name="Amelia Hart", address_lines=["12 Orchard Lane"], city="Austin",
                          region="TX", postcode="78701", country="US"),
        order_id=po, store_total=Decimal("23.10"), sales_order_no=number, ar_division_no="01",
        customer_no=customer_no, customer_po_no=po, ship_to=ShipTo(name="Amelia Hart", address_lines=["1 Main St"]),
        ship_via="UPS GROUND", warehouse_code="000", freight=Decimal("3.95"), tax_mode=tax_mode,
        tax_schedule="NONTAX" if tax_mode == TaxMode.STORE_TAX_LINE else "WEB", store_tax=Decimal("3.85"),
        comments=["BigCommerce order 1001", "Paid by Stripe"], customer_numbering="W")
    return to_payload(document)


def test_a_sales_order_is_created_once_and_found_the_second_time(backend, company):
    first = execute(backend, "create_sales_order", order())
    assert first == {"sales_order_number": "W001001", "existed": False, "account_ref": "01-W000001",
                     "customer_created": True, "order_total": "23.10", "sales_tax": "0.00"}
    again = execute(backend, "create_sales_order", order())
    assert again["existed"] is True and again["sales_order_number"] == "W001001"
    [saved] = company.sales_orders()
    assert saved["CustomerPONo"] == "1001" and saved["ShipVia"] == "UPS GROUND" and saved["FreightAmt"] == "3.95"
    assert [(line["ItemCode"], line["ExtensionAmt"]) for line in saved["lines"]] == [
        ("MUG-WHITE", "15.30"), ("/TAX", "3.85"), ("/C", "0.00"), ("/C", "0.00")]
    assert saved["lines"][0]["CommentText"] == "Enamel mug (White)"
    assert company.query("SELECT QuantityOnSalesOrder FROM im_item_warehouse WHERE ItemCode = 'MUG-WHITE' "
                         "AND WarehouseCode = '000'") == [{"QuantityOnSalesOrder": "2"}]


def test_the_same_number_for_another_order_is_refused(backend):
    execute(backend, "create_sales_order", order())
    with pytest.raises(SageValidationError, match="already exists in Sage 100 for customer PO '1001'"):
        execute(backend, "create_sales_order", order(po="2002"))


def test_customers_are_matched_by_email_then_by_number(backend, company):
    execute(backend, "create_sales_order", order("W000001", "Amelia@Example.com"))
    second = execute(backend, "create_sales_order", order("W000002", "amelia@example.com"))
    assert second["customer_created"] is False and second["account_ref"] == "01-W000001"
    company.add_customer("01", "WEBSALE", "Web sales", "web@shop.example")
    third = execute(backend, "create_sales_order", order("W000003", customer_no="WEBSALE"))
    assert third["account_ref"] == "01-WEBSALE"
    assert company.find_customer("01", "WEBSALE")["CustomerName"] == "Web sales"  # a shared customer is not renamed
    assert len(company.customers()) == 2


def test_a_linked_customer_that_is_gone_is_a_clear_error(backend):
    with pytest.raises(SageValidationError, match="customer 01-NOPE is not in Sage 100"):
        execute(backend, "create_sales_order", order(customer_no="NOPE"))


def test_sage_s_tax_schedule_computes_its_own_tax(backend):
    result = execute(backend, "create_sales_order", order(tax_mode=TaxMode.SAGE_TAX_SCHEDULE))
    assert result["sales_tax"] == "3.06"  # 20 % of the taxable 15.30
    assert result["order_total"] == "22.31"


def test_unknown_item_codes_are_named(backend, company):
    payload = order()
    payload["lines"][0]["stock_code"] = "NOPE-1"
    with pytest.raises(SageValidationError, match="NOPE-1"):
        execute(backend, "create_sales_order", payload)
    assert company.sales_orders() == []


def test_a_record_in_use_is_retryable(backend, company):
    company.lock_record("sales_order", "W001001", holder="jane")
    with pytest.raises(RecordLocked, match="in use by jane") as caught:
        execute(backend, "create_sales_order", order())
    assert caught.value.retryable
    company.unlock_record("sales_order", "W001001")
    assert execute(backend, "create_sales_order", order())["existed"] is False


def test_licence_seats_are_held_until_disconnect(company, backend):
    other = create_backend("sage100sim", str(company.path), {"user": "JANE"})
    other.connect()
    third = create_backend("sage100sim", str(company.path))
    with pytest.raises(SageBusy, match="all 2 Sage 100 licence seats are in use") as caught:
        third.connect()
    assert caught.value.retryable
    other.disconnect()
    third.connect()
    assert len(company.seats()) == 2
    third.close()
    other.close()


def test_concurrent_orders_from_one_email_make_one_customer(company):
    errors = []

    def post(number):
        backend = create_backend("sage100sim", str(company.path))
        try:
            with backend.session():
                execute(backend, "create_sales_order", order(f"W00{number:04d}", po=str(number)))
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)
        finally:
            backend.close()

    # Two seats: the agent runs jobs of one company one at a time, so two is plenty here.
    threads = [threading.Thread(target=post, args=(n,)) for n in range(1, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] or all(isinstance(e, SageBusy) for e in errors)
    assert len(company.customers()) == 1


def test_changes_by_date_and_time_updated(backend, company):
    stock = execute(backend, "read_changes", {"kind": "stock", "since": None})
    assert {(i["stock_code"], i["in_stock"]) for i in stock["items"]} == {("MUG-WHITE", "15"), ("LANTERN01", "3")}
    assert execute(backend, "read_changes", {"kind": "stock", "since": stock["cursor"]})["items"] == []
    company.set_item("LANTERN01", warehouses={"000": 7})
    later = execute(backend, "read_changes", {"kind": "stock", "since": stock["cursor"],
                                              "options": {"warehouses": ["000"]}})
    assert [(i["stock_code"], i["in_stock"]) for i in later["items"]] == [("LANTERN01", "7")]
    prices = execute(backend, "read_changes", {"kind": "price", "since": None, "options": {"price_level": "1"}})
    assert {(i["stock_code"], i["price"]) for i in prices["items"]} == {("MUG-WHITE", "7.99"), ("LANTERN01", "24.99")}


def test_simulator_commands(tmp_path, capsys):
    from agent.cli import main

    path = str(tmp_path / "c.sqlite3")
    assert main(["simulator", "sage100", "init", "--company", path, "--sku", "MUG", "--seats", "3"]) == 0
    assert main(["simulator", "sage100", "set-item", "--company", path, "MUG", "--price", "9.5", "--level", "1=8.99",
                 "--qty", "000=40", "--qty", "EST=2"]) == 0
    capsys.readouterr()
    assert main(["simulator", "sage100", "inspect", "--company", path, "items"]) == 0
    shown = capsys.readouterr().out
    assert "MUG" in shown and "warehouse EST: on hand 2" in shown and "price level 1: 8.99" in shown
    assert main(["simulator", "sage100", "set-item", "--company", path, "MUG", "--qty", "000"]) == 1
    assert "is not KEY=VALUE" in capsys.readouterr().err
    assert main(["simulator", "sage100", "inspect", "--company", path, "sales-orders"]) == 0
    assert "(0 sales-orders)" in capsys.readouterr().out


def test_doctor_checks_the_session_and_the_item_codes(company):
    from agent import doctor

    backend = create_backend("sage100sim", str(company.path))
    report = doctor.run(backend, doctor.MappedCodes(stock=["MUG-WHITE", "NOPE-9"], tax=["T1"]), company="ABC",
                        os_user="svc")
    failed = [finding.message for finding in report.findings if not finding.ok]
    assert len(failed) == 1 and "Item code NOPE-9" in failed[0]
    assert company.seats() == []  # the doctor's session gave its seat back
