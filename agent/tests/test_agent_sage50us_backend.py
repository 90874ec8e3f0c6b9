"""The Sage 50 US backend against a recorded fake of the .NET SDK object model."""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal as D

import pytest

from agent.backends.sage50us import Sage50UsBackend, check_pythonnet
from agent.errors import (
    BackendUnavailable,
    RecordLocked,
    SageBusy,
    SageLocked,
    SageValidationError,
    VersionMismatch,
)
from agent.operations import execute
from agent.tests.fake_sage50us import EXCEPTIONS, FakeSdk
from mlcommon.ledger import Customer, DocumentLine, Receipt, SalesInvoice, to_payload


@pytest.fixture
def sdk():
    return FakeSdk()


@pytest.fixture
def backend(sdk):
    b = Sage50UsBackend("bellwether garden supply", application_id="APP-ID", api=sdk.api, sage_year="2025")
    b.connect()
    yield b
    b.disconnect()


WEB = Customer(email="web@example.com", name="Web Sales", account_ref="WEB01")


def _invoice():
    return SalesInvoice(reference="BC-1001", date=dt.date(2025, 1, 2), currency="USD", customer=WEB, lines=[
        DocumentLine(kind="item", description="Widget", quantity=D("2"), unit_net=D("10.00"), net=D("20.00"),
                     tax=D("0.00"), tax_code="T0", stock_code="SKU-1", nominal_code="40000"),
        DocumentLine(kind="service", description="Shipping", quantity=D("1"), unit_net=D("5.00"), net=D("5.00"),
                     tax=D("0.00"), tax_code="T0")])


def test_session_flow(sdk, backend):
    assert sdk.log == [("Session.Begin", "APP-ID"), ("Session.VerifyAccess", "Bellwether Garden Supply"),
                       ("Session.Open", "Bellwether Garden Supply")]
    backend.disconnect()
    # session.Close(company) works on every SDK year; Company.Close() is not on this (2025) one.
    assert sdk.log[-2:] == [("Session.Close", True), ("Session.End",)]
    with pytest.raises(AttributeError, match="Close"):
        sdk.company.Close()


def test_invoice_calls_and_lookup_by_reference(sdk, backend):
    result = execute(backend, "create_sales_invoice", to_payload(_invoice()))
    assert result == {"invoice_number": "BC-1001", "existed": False, "gross_total": "25.00", "account_ref": "WEB01"}
    invoice = sdk.tables["SalesInvoice"][0]
    calls = [e for e in sdk.log if e[0].startswith("SalesInvoice")]
    assert calls == [
        ("SalesInvoiceFactory.Create",), ("SalesInvoice.CustomerReference", sdk.tables["Customer"][0].Key),
        ("SalesInvoice.Date", dt.datetime(2025, 1, 2)), ("SalesInvoice.ReferenceNumber", "BC-1001"),
        ("SalesInvoice.CustomerPurchaseOrderNumber", "BC-1001"), ("SalesInvoice.AddSalesLine",),
        ("SalesInvoice.Line[0].InventoryItemReference", sdk.tables["InventoryItem"][0].Key),
        ("SalesInvoice.Line[0].AccountReference", sdk.tables["Account"][0].Key),
        ("SalesInvoice.Line[0].Description", "Widget"), ("SalesInvoice.Line[0].Quantity", D("2")),
        ("SalesInvoice.Line[0].UnitPrice", D("10.00")), ("SalesInvoice.Line[0].Amount", D("20.00")),
        ("SalesInvoice.FreightAmount", D("5.00")), ("SalesInvoice.Save",)]
    assert invoice.Amount == D("25.00")
    sdk.log.clear()
    again = execute(backend, "create_sales_invoice", to_payload(_invoice()))
    assert again["existed"] is True
    assert ("Load", "SalesInvoice.ReferenceNumber", "BC-1001") in sdk.log
    assert ("SalesInvoiceFactory.Create",) not in sdk.log


def test_receipt_is_applied_to_the_invoice(sdk, backend):
    execute(backend, "create_sales_invoice", to_payload(_invoice()))
    receipt = Receipt(reference="BC-1001-P", invoice_reference="BC-1001", date=dt.date(2025, 1, 2), currency="USD",
                      amount=D("25.00"), bank_account="10200", method="Credit Card")
    sdk.log.clear()
    result = execute(backend, "create_receipt", to_payload(receipt))
    assert result["existed"] is False and result["allocated_to"] == "BC-1001" and result["amount"] == "25.00"
    calls = [e for e in sdk.log if e[0].startswith("Receipt")]
    assert calls == [
        ("ReceiptFactory.Create",), ("Receipt.CustomerReference", sdk.tables["Customer"][0].Key),
        ("Receipt.AccountReference", sdk.tables["Account"][1].Key), ("Receipt.Date", dt.datetime(2025, 1, 2)),
        ("Receipt.ReferenceNumber", "BC-1001-P"), ("Receipt.PaymentMethod", "Credit Card"),
        ("Receipt.AddInvoiceLine", "BC-1001"), ("Receipt.InvoiceLine.AmountPaid", D("25.00")), ("Receipt.Save",)]
    again = execute(backend, "create_receipt", to_payload(receipt))
    assert again["existed"] is True and again["allocated_to"] == "BC-1001"
    assert len(sdk.tables["Receipt"]) == 1


def test_customer_creation(sdk, backend):
    result = execute(backend, "ensure_customer", {"email": "ann@example.com", "name": "Ann Lee"})
    assert result == {"account_ref": "LEEA01", "created": True}
    calls = [e for e in sdk.log if e[0].startswith("Customer")]
    assert calls[-5:] == [("CustomerFactory.Create",), ("Customer.ID", "LEEA01"), ("Customer.Name", "Ann Lee"),
                          ("Customer.Email", "ann@example.com"), ("Customer.Save",)]


def test_record_in_use_is_retryable_lock(sdk, backend):
    sdk.save_error = EXCEPTIONS["RecordInUseException"]("in use")
    with pytest.raises(RecordLocked):
        execute(backend, "create_sales_invoice", to_payload(_invoice()))


def test_pending_authorization_is_retryable(sdk):
    sdk.auth = "Pending"
    b = Sage50UsBackend("Bellwether Garden Supply", api=sdk.api)
    with pytest.raises(SageLocked, match="approve|allow"):
        b.connect()
    assert ("Session.RequestAccess", "Bellwether Garden Supply") in sdk.log and sdk.log[-1] == ("Session.End",)


def test_sdk_year_must_match(sdk):
    b = Sage50UsBackend("Bellwether Garden Supply", api=sdk.api, sage_year="2024")
    with pytest.raises(VersionMismatch, match="same Sage year"):
        b.connect()


def test_stock_changes(backend):
    assert backend.read_changes("stock", "2025-01-05T09:00:00") == [
        {"stock_code": "SKU-1", "in_stock": "7", "allocated": "0", "modified_at": "2025-01-05T10:00:00"}]
    assert backend.read_changes("stock", "2025-01-06T00:00:00") == []


@pytest.mark.skipif(sys.platform == "win32", reason="checks the non-Windows message")
def test_clear_message_off_windows():
    with pytest.raises(BackendUnavailable, match="use --backend simulator on Linux"):
        Sage50UsBackend("Company")


def test_rerun_of_an_applied_receipt_sees_it_applied(sdk, backend):
    execute(backend, "create_sales_invoice", to_payload(_invoice()))
    receipt = Receipt(reference="BC-1001-P", invoice_reference="BC-1001", date=dt.date(2025, 1, 2), currency="USD",
                      amount=D("25.00"), bank_account="10200", method="Credit Card")
    execute(backend, "create_receipt", to_payload(receipt))
    found = backend.find_receipt("BC-1001-P")
    assert found.allocated == D("25.00") and found.allocated_to == "BC-1001" and found.unallocated == 0
    sdk.log.clear()
    again = execute(backend, "create_receipt", to_payload(receipt))
    assert again["existed"] is True
    assert not [e for e in sdk.log if e[0] in ("Receipt.AddInvoiceLine", "Receipt.Save")]


def test_fake_refuses_names_the_sdk_does_not_have(sdk, backend):
    receipt = sdk.company.Factories.ReceiptFactory.Create()
    with pytest.raises(AttributeError, match="Receipt has no member 'InvoiceLines'"):
        receipt.InvoiceLines  # noqa: B018
    with pytest.raises(AttributeError, match="read-only"):
        receipt.Amount = D("1")


def test_a_long_reference_is_shortened_stably_and_found_again(sdk, backend):
    long_ref = "AC-000000123-R1-PAYMENT-2"
    invoice = _invoice()
    invoice.reference = long_ref
    first = execute(backend, "create_sales_invoice", to_payload(invoice))
    stored = sdk.tables["SalesInvoice"][0].ReferenceNumber
    assert len(stored) == 20 and stored.startswith("AC-00000012~")
    assert first["invoice_number"] == stored
    again = execute(backend, "create_sales_invoice", to_payload(invoice))
    assert again["existed"] is True and len(sdk.tables["SalesInvoice"]) == 1


def test_the_fake_refuses_a_reference_over_20_characters(sdk, backend):
    entity = sdk.company.Factories.SalesInvoiceFactory.Create()
    entity.ReferenceNumber = "X" * 21
    with pytest.raises(EXCEPTIONS["ValidationException"]):
        entity.Save()


@pytest.mark.parametrize(("name", "error", "words"), [
    ("CompanyExclusiveAccessException", SageLocked, "single-user"),
    ("CompanySharedAccessException", SageLocked, "retried"),
    ("LicenseNotAvailableException", SageBusy, "licence"),
    ("InadequatePermissionException", SageValidationError, "SDK Data Access"),
])
def test_sdk_exceptions_are_retry_later_or_a_clear_failure(sdk, backend, name, error, words):
    sdk.save_error = EXCEPTIONS[name]("refused")
    with pytest.raises(error, match=words) as caught:
        execute(backend, "create_sales_invoice", to_payload(_invoice()))
    assert caught.value.retryable is (error is not SageValidationError)


def test_exclusive_access_on_open_is_retryable(sdk):
    class Refusing(sdk.api.PeachtreeSession):
        def Open(self, ident):  # noqa: N802
            raise EXCEPTIONS["CompanyExclusiveAccessException"]("exclusive")

    sdk.api.PeachtreeSession = Refusing
    b = Sage50UsBackend("Bellwether Garden Supply", api=sdk.api)
    with pytest.raises(SageLocked):
        b.connect()
    assert sdk.log[-1] == ("Session.End",)


@pytest.mark.parametrize("version", ["2.5.2", "2.5.0.dev1", None])
def test_pythonnet_older_than_3_is_refused_clearly(version):

    with pytest.raises(BackendUnavailable, match="pythonnet"):
        check_pythonnet(version)


def test_pythonnet_3_is_accepted():

    check_pythonnet("3.0.3")


def test_a_wrong_stock_quantity_property_is_a_loud_error_not_zero_stock(sdk):
    b = Sage50UsBackend("Bellwether Garden Supply", api=sdk.api, stock_quantity_property="QtyOnHand")
    b.connect()
    with pytest.raises(SageValidationError, match="QtyOnHand"):
        b.read_changes("stock", None)


def test_a_document_in_another_currency_is_refused_before_anything_is_saved(sdk, backend):
    # Sage 50 US keeps the company's currency only (no currency member on Customer or SalesInvoice);
    # the server converts foreign orders, and anything that still arrives in EUR is refused whole.
    import dataclasses

    eur = dataclasses.replace(_invoice(), currency="EUR")
    with pytest.raises(SageValidationError, match="BC-1001 is in EUR, but Sage 50 US holds amounts in USD only"):
        execute(backend, "create_sales_invoice", to_payload(eur))
    assert not [entry for entry in sdk.log if entry[0].endswith(".Save")]
    # In the base currency (any case) it posts as before.
    assert execute(backend, "create_sales_invoice", to_payload(dataclasses.replace(_invoice(), currency="usd")))[
        "existed"] is False
