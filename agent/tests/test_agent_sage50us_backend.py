"""The Sage 50 US backend against a recorded fake of the .NET SDK object model."""

from __future__ import annotations

import datetime as dt
import sys
import uuid
from decimal import Decimal as D
from types import SimpleNamespace

import pytest

from agent.backends.sage50us import Sage50UsBackend
from agent.errors import BackendUnavailable, RecordLocked, SageLocked, VersionMismatch
from agent.operations import execute
from mlcommon.ledger import Customer, DocumentLine, Receipt, SalesInvoice, to_payload


class RecordInUseException(Exception):
    pass


class Entity:
    """A SDK entity: records every property set and method call in the shared log."""

    def __init__(self, sdk, kind, **values):
        object.__setattr__(self, "_sdk", sdk)
        object.__setattr__(self, "_kind", kind)
        object.__setattr__(self, "_lines", [])
        object.__setattr__(self, "Key", SimpleNamespace(Guid=str(uuid.UUID(int=len(sdk.saved) + 1)), entity=self))
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        self._sdk.log.append((f"{self._kind}.{name}", value))
        object.__setattr__(self, name, value)

    def AddSalesLine(self):  # noqa: N802
        self._sdk.log.append((f"{self._kind}.AddSalesLine",))
        line = Entity(self._sdk, f"{self._kind}.Line[{len(self._lines)}]")
        self._lines.append(line)
        return line

    def AddInvoiceLine(self, invoice):  # noqa: N802
        self._sdk.log.append((f"{self._kind}.AddInvoiceLine", invoice.ReferenceNumber))
        line = Entity(self._sdk, f"{self._kind}.InvoiceLine", InvoiceReference=invoice.Key)
        self._lines.append(line)
        object.__setattr__(self, "InvoiceLines", self._lines)
        return line

    def Save(self):  # noqa: N802
        self._sdk.log.append((f"{self._kind}.Save",))
        if self._sdk.save_error:
            raise self._sdk.save_error
        if self._kind == "SalesInvoice":
            amount = sum((ln.Amount for ln in self._lines), D("0")) + getattr(self, "FreightAmount", D("0"))
            object.__setattr__(self, "Amount", amount)
        if self._kind == "Receipt":
            object.__setattr__(self, "Amount", sum((getattr(ln, "AmountPaid", D("0")) for ln in self._lines), D("0")))
        if self not in self._sdk.saved:
            self._sdk.saved.append(self)
            self._sdk.tables.setdefault(self._kind, []).append(self)


class EntityList(list):
    def __init__(self, sdk, kind):
        super().__init__()
        self.sdk, self.kind = sdk, kind

    def Load(self, modifiers=None):  # noqa: N802
        rows = self.sdk.tables.get(self.kind, [])
        if modifiers is not None:
            prop, value = modifiers.Filters
            self.sdk.log.append(("Load", prop, value))
            rows = [r for r in rows if getattr(r, prop.split(".")[1], None) == value]
        self.extend(rows)


class Factory:
    def __init__(self, sdk, kind):
        self.sdk, self.kind = sdk, kind

    def Create(self):  # noqa: N802
        self.sdk.log.append((f"{self.kind}Factory.Create",))
        return Entity(self.sdk, self.kind)

    def List(self):  # noqa: N802
        return EntityList(self.sdk, self.kind)

    def Load(self, key):  # noqa: N802
        return key.entity


class FakeSdk:
    def __init__(self, auth="Granted"):
        self.log, self.saved, self.save_error, self.auth = [], [], None, auth
        self.tables = {}
        self.tables["Customer"] = [Entity(self, "Customer", ID="WEB01", Name="Web Sales", Email="web@example.com")]
        self.tables["InventoryItem"] = [Entity(self, "InventoryItem", ID="SKU-1", QuantityOnHand=D("7"),
                                               LastSavedAt=dt.datetime(2025, 1, 5, 10))]
        self.tables["Account"] = [Entity(self, "Account", ID="40000"), Entity(self, "Account", ID="10200")]
        self.log.clear()
        kinds = ["Customer", "SalesInvoice", "Receipt", "InventoryItem", "Account", "SalesOrder"]
        self.company = SimpleNamespace(Factories=SimpleNamespace(**{f"{k}Factory": Factory(self, k) for k in kinds}),
                                       Close=lambda: self.log.append(("Company.Close",)))
        sdk = self

        class Session:
            def Begin(self, app_id):  # noqa: N802
                sdk.log.append(("Session.Begin", app_id))

            def CompanyList(self):  # noqa: N802
                return [SimpleNamespace(CompanyName="Bellwether Garden Supply", Path="C:\\Sage\\BGS",
                                        DatabaseName="bgs")]

            def VerifyAccess(self, ident):  # noqa: N802
                sdk.log.append(("Session.VerifyAccess", ident.CompanyName))
                return f"AuthorizationResult.{sdk.auth}"

            def RequestAccess(self, ident):  # noqa: N802
                sdk.log.append(("Session.RequestAccess", ident.CompanyName))
                return f"AuthorizationResult.{sdk.auth}"

            def Open(self, ident):  # noqa: N802
                sdk.log.append(("Session.Open", ident.CompanyName))
                return sdk.company

            def End(self):  # noqa: N802
                sdk.log.append(("Session.End",))

        fe = SimpleNamespace(Property=lambda p: p, Constant=lambda v: v, Equal=lambda p, v: (p, v))
        self.api = SimpleNamespace(PeachtreeSession=Session, FilterExpression=fe,
                                   LoadModifiers=SimpleNamespace(Create=lambda: SimpleNamespace(Filters=None)),
                                   sdk_version="2025.0.0.1", date=lambda d: d, decimal=lambda v: v)


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
    assert sdk.log[-2:] == [("Company.Close",), ("Session.End",)]


def test_invoice_calls_and_lookup_by_reference(sdk, backend):
    result = execute(backend, "create_sales_invoice", to_payload(_invoice()))
    assert result == {"invoice_number": "BC-1001", "existed": False, "gross_total": "25.00", "account_ref": "WEB01"}
    invoice = sdk.tables["SalesInvoice"][0]
    calls = [e for e in sdk.log if e[0].startswith("SalesInvoice")]
    assert calls == [
        ("SalesInvoiceFactory.Create",), ("SalesInvoice.CustomerReference", sdk.tables["Customer"][0].Key),
        ("SalesInvoice.Date", dt.date(2025, 1, 2)), ("SalesInvoice.ReferenceNumber", "BC-1001"),
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
        ("Receipt.AccountReference", sdk.tables["Account"][1].Key), ("Receipt.Date", dt.date(2025, 1, 2)),
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
    sdk.save_error = RecordInUseException("in use")
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
