"""The Sage 50 UK SDO backend against a recorded fake of the SDO COM object model."""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal as D

import pytest

from agent.backends.sdo import SdoBackend
from agent.errors import BackendUnavailable, SageLocked, SameUserLoggedIn, VersionMismatch
from agent.operations import execute
from mlcommon.ledger import CreditNote, Customer, DocumentLine, Receipt, SalesInvoice, to_payload

KEYS = {"SalesRecord": "ACCOUNT_REF", "StockRecord": "STOCK_CODE"}


class Field:
    def __init__(self, owner, name):
        self._owner, self._name = owner, name

    @property
    def Value(self):  # noqa: N802 - COM property name
        return self._owner.current.get(self._name)

    @Value.setter
    def Value(self, value):  # noqa: N802
        self._owner.fake.log.append((f"{self._owner.label}.{self._name}", value))
        self._owner.current[self._name] = value


class Fields:
    def __init__(self, owner):
        self._owner = owner

    def Item(self, name):  # noqa: N802
        return Field(self._owner, name)


class Buffer:
    """A posting header or item: fields only."""

    def __init__(self, fake, label):
        self.fake, self.label, self.current = fake, label, {}
        self.Fields = Fields(self)


class Record(Buffer):
    """A SDO record set over one of the fake's tables, with a cursor."""

    def __init__(self, fake, label, rows):
        super().__init__(fake, label)
        self.rows, self.pos, self.adding = rows, -1, False

    def Find(self, partial):  # noqa: N802
        key = KEYS[self.label]
        self.fake.log.append((f"{self.label}.Find", self.current.get(key)))
        for i, row in enumerate(self.rows):
            if row[key] == self.current.get(key):
                self.pos, self.current = i, row
                return True
        return False

    def MoveFirst(self):  # noqa: N802
        self.pos = 0
        if self.rows:
            self.current = self.rows[0]
        return bool(self.rows)

    def MoveNext(self):  # noqa: N802
        self.pos += 1
        if self.pos < len(self.rows):
            self.current = self.rows[self.pos]
            return True
        return False

    def Read(self, number):  # noqa: N802
        self.fake.log.append((f"{self.label}.Read", number))
        self.current = self.rows[number - 1]
        return True

    @property
    def RecordNumber(self):  # noqa: N802
        return self.rows.index(self.current) + 1

    def AddNew(self):  # noqa: N802
        self.fake.log.append((f"{self.label}.AddNew",))
        self.current, self.adding = {}, True

    def Update(self):  # noqa: N802
        self.fake.log.append((f"{self.label}.Update",))
        if self.adding:
            self.rows.append(self.current)
        return True

    @property
    def Link(self):  # noqa: N802
        return Record(self.fake, "HeaderData",
                      [h for h in self.fake.headers if h["ACCOUNT_REF"] == self.current["ACCOUNT_REF"]])


class Items:
    def __init__(self, post):
        self.post, self.items = post, []

    def Add(self):  # noqa: N802
        item = Buffer(self.post.fake, f"{self.post.label}.Items[{len(self.items)}]")
        self.items.append(item)
        return item


class Post:
    def __init__(self, fake, label):
        self.fake, self.label, self.Type = fake, label, None
        self.Header = Buffer(fake, f"{label}.Header")
        self.Items = Items(self)
        self.PostingNumber = None

    def Update(self):  # noqa: N802
        self.fake.log.append((f"{self.label}.Update", self.Type))
        if self.fake.fail_updates:
            self.fake.last_error = (0, self.fake.fail_updates.pop(0))
            return False
        header = dict(self.Header.current)
        items = [dict(i.current) for i in self.Items.items]
        if self.label == "InvoicePost":
            net = sum((D(str(i["NET_AMOUNT"])) for i in items), D("0")) + D(str(header.get("CARR_NET", 0)))
            tax = sum((D(str(i["TAX_AMOUNT"])) for i in items), D("0")) + D(str(header.get("CARR_TAX", 0)))
            self.fake.invoices.append({**header, "INVOICE_NUMBER": len(self.fake.invoices) + 1,
                                       "INVOICE_TYPE_CODE": self.Type, "ITEMS_NET": net - D(str(header.get("CARR_NET", 0))),
                                       "ITEMS_TAX": tax - D(str(header.get("CARR_TAX", 0)))})
        elif self.label == "TransactionPost":
            split_no = len(self.fake.splits) + 1
            self.fake.splits.append({"TRAN_NUMBER": split_no, "NET_AMOUNT": header["NET_AMOUNT"],
                                     "TAX_AMOUNT": D("0"), "AMOUNT_PAID": D("0")})
            self.fake.headers.append({**header, "FIRST_SPLIT": split_no, "LAST_SPLIT": split_no,
                                      "AMOUNT_PAID": D("0")})
            self.PostingNumber = len(self.fake.headers)
        return True

    def AllocatePayment(self, invoice_split, payment_split, amount, date):  # noqa: N802
        self.fake.log.append(("TransactionPost.AllocatePayment", invoice_split, payment_split, amount, date))
        self.fake.splits[invoice_split - 1]["AMOUNT_PAID"] += amount
        for h in self.fake.headers:
            if h["FIRST_SPLIT"] == payment_split:
                h["AMOUNT_PAID"] += amount
        return True


class Workspace:
    def __init__(self, fake):
        self.fake = fake

    def Connect(self, path, user, password, name):  # noqa: N802
        self.fake.log.append(("Workspace.Connect", path, user, password, name))
        if self.fake.connect_error:
            self.fake.last_error = self.fake.connect_error
            return False
        return True

    def Disconnect(self):  # noqa: N802
        self.fake.log.append(("Workspace.Disconnect",))

    def CreateObject(self, name):  # noqa: N802
        tables = {"SalesRecord": self.fake.customers, "StockRecord": self.fake.stock,
                  "InvoiceRecord": self.fake.invoices, "HeaderData": self.fake.headers, "SplitData": self.fake.splits,
                  "SopRecord": self.fake.orders}
        if name in tables:
            return Record(self.fake, name, tables[name])
        return Post(self.fake, name)


class FakeSdo:
    """The engine plus its data; ``log`` records every property set and method call in order."""

    def __init__(self):
        self.log, self.progids = [], []
        self.customers = [{"ACCOUNT_REF": "WEB01", "NAME": "Web Sales", "E_MAIL": "web@example.com",
                           "ADDRESS_1": "1 High St", "ADDRESS_2": "", "ADDRESS_3": "", "ADDRESS_4": "",
                           "ADDRESS_5": "AB1 2CD", "BALANCE": D("0")}]
        self.stock = [{"STOCK_CODE": "SKU-1", "QTY_IN_STOCK": D("5"), "QTY_ALLOCATED": D("1"),
                       "SALES_PRICE": D("10"), "RECORD_MODIFY_DATE": dt.datetime(2025, 1, 5, 10, 0, 0)}]
        self.invoices, self.headers, self.splits, self.orders = [], [], [], []
        self.connect_error, self.fail_updates, self.last_error = None, [], (0, "")
        self.Workspaces = self

    def __call__(self, progid):  # the dispatch function
        self.progids.append(progid)
        return self

    def Add(self, name):  # noqa: N802 - Workspaces.Add
        self.log.append(("Workspaces.Add", name))
        return Workspace(self)

    def SelectCompany(self, path):  # noqa: N802
        self.log.append(("SelectCompany", path))
        return path + "\\ACCDATA"

    @property
    def LastError(self):  # noqa: N802
        code, text = self.last_error
        return type("Err", (), {"Code": code, "Text": text})()

    def update_ledgers(self):
        """What "Update Ledgers" in Sage does for an invoice: an SI header with its split."""
        for inv in self.invoices:
            first = len(self.splits) + 1
            for net, tax in ((inv["ITEMS_NET"], inv["ITEMS_TAX"]), (inv.get("CARR_NET"), inv.get("CARR_TAX"))):
                if net:  # one split for the items, one for carriage
                    self.splits.append({"TRAN_NUMBER": len(self.splits) + 1, "NET_AMOUNT": net, "TAX_AMOUNT": tax,
                                        "AMOUNT_PAID": D("0")})
            self.headers.append({"TYPE": 1, "ACCOUNT_REF": inv["ACCOUNT_REF"], "INV_REF": str(inv["INVOICE_NUMBER"]),
                                 "FIRST_SPLIT": first, "LAST_SPLIT": len(self.splits), "NET_AMOUNT": inv["ITEMS_NET"],
                                 "AMOUNT_PAID": D("0")})

    def sets(self, prefix):
        return [(name.split(".")[-1], value) for name, *rest in self.log if name.startswith(prefix + ".")
                and rest for value in rest[:1]]


@pytest.fixture
def fake():
    return FakeSdo()


@pytest.fixture
def backend(fake):
    b = SdoBackend("C:\\ProgramData\\Sage\\Accounts\\2025", user="AGENT", password="pw", sdo_version="32",
                   dispatch=fake, refund_trans_type=13)
    b.connect()
    yield b
    b.disconnect()


WEB = Customer(email="web@example.com", name="Web Sales", account_ref="WEB01")


def _invoice():
    return SalesInvoice(reference="BC-1001", date=dt.date(2025, 1, 2), currency="GBP", customer=WEB, lines=[
        DocumentLine(kind="item", description="Widget", quantity=D("2"), unit_net=D("10.00"), net=D("20.00"),
                     tax=D("4.00"), tax_code="T1", stock_code="SKU-1"),
        DocumentLine(kind="service", description="Shipping", quantity=D("1"), unit_net=D("5.00"), net=D("5.00"),
                     tax=D("1.00"), tax_code="T1")])


def test_connect_uses_engine_workspace_and_select_company(fake, backend):
    assert fake.progids == ["SDOEngine.32"]
    assert fake.log[:3] == [("Workspaces.Add", "ml-connector agent"),
                            ("SelectCompany", "C:\\ProgramData\\Sage\\Accounts\\2025"),
                            ("Workspace.Connect", "C:\\ProgramData\\Sage\\Accounts\\2025\\ACCDATA", "AGENT", "pw",
                             "ml-connector agent")]


def test_invoice_is_posted_with_exact_fields_and_read_back(fake, backend):
    fake.log.clear()
    result = execute(backend, "create_sales_invoice", to_payload(_invoice()))
    assert result == {"invoice_number": "1", "existed": False, "gross_total": "30.00", "account_ref": "WEB01"}
    assert ("InvoicePost.Update", 0) in fake.log  # sdoProductInvoice
    assert fake.sets("InvoicePost.Header") == [
        ("ACCOUNT_REF", "WEB01"), ("NAME", "Web Sales"), ("ADDRESS_1", "1 High St"), ("ADDRESS_2", ""),
        ("ADDRESS_3", ""), ("ADDRESS_4", ""), ("ADDRESS_5", "AB1 2CD"), ("INVOICE_DATE", dt.datetime(2025, 1, 2)),
        ("CUST_ORDER_NUMBER", "BC-1001"), ("CARR_NET", D("5.00")), ("CARR_TAX", D("1.00")), ("CARR_TAX_CODE", 1),
        ("CARR_NOM_CODE", "4905")]
    assert fake.sets("InvoicePost.Items[0]") == [
        ("STOCK_CODE", "SKU-1"), ("DESCRIPTION", "Widget"), ("QTY_ORDER", D("2")), ("UNIT_PRICE", D("10.00")),
        ("NET_AMOUNT", D("20.00")), ("FULL_NET_AMOUNT", D("20.00")), ("TAX_AMOUNT", D("4.00")), ("TAX_CODE", 1)]
    assert fake.sets("InvoicePost.Items[1]") == []  # shipping went to carriage


def test_lookup_by_reference_prevents_a_second_post(fake, backend):
    execute(backend, "create_sales_invoice", to_payload(_invoice()))
    fake.log.clear()
    again = execute(backend, "create_sales_invoice", to_payload(_invoice()))
    assert again["existed"] is True and again["invoice_number"] == "1"
    assert not [entry for entry in fake.log if entry[0].startswith("InvoicePost")]
    assert len(fake.invoices) == 1


def test_credit_note_is_product_credit(fake, backend):
    execute(backend, "create_sales_invoice", to_payload(_invoice()))
    credit = CreditNote(reference="BC-1001-R1", date=dt.date(2025, 1, 3), currency="GBP", customer=WEB,
                        lines=_invoice().lines[:1], invoice_reference="BC-1001")
    fake.log.clear()
    result = execute(backend, "create_credit_note", to_payload(credit))
    assert result == {"credit_note_number": "2", "existed": False, "gross_total": "24.00"}
    assert ("InvoicePost.Update", 3) in fake.log  # sdoProductCredit
    header = dict(fake.sets("InvoicePost.Header"))
    assert header["CUST_ORDER_NUMBER"] == "BC-1001-R1" and header["NOTES_1"] == "Credit for invoice 1"
    assert execute(backend, "create_credit_note", to_payload(credit))["existed"] is True


def test_receipt_is_posted_and_allocated_per_split(fake, backend):
    execute(backend, "create_sales_invoice", to_payload(_invoice()))
    fake.update_ledgers()
    receipt = Receipt(reference="BC-1001-P", invoice_reference="BC-1001", date=dt.date(2025, 1, 2), currency="GBP",
                      amount=D("30.00"), bank_account="1200", method="card", payment_reference="ch_1")
    fake.log.clear()
    result = execute(backend, "create_receipt", to_payload(receipt))
    assert result == {"receipt_id": "2", "existed": False, "allocated_to": "1", "amount": "30.00"}
    assert fake.headers[1]["AMOUNT_PAID"] == D("30.00")
    header = fake.sets("TransactionPost.Header")
    assert [h for h in header if h[0] != "POSTED_DATE"] == [
        ("TYPE", 3), ("ACCOUNT_REF", "WEB01"), ("DATE", dt.datetime(2025, 1, 2)), ("INV_REF", "BC-1001-P"),
        ("DETAILS", "card ch_1"), ("BANK_CODE", "1200"), ("NET_AMOUNT", D("30.00"))]
    assert fake.sets("TransactionPost.Items[0]") == [
        ("TYPE", 3), ("NOMINAL_CODE", "1200"), ("DETAILS", "card ch_1"), ("DATE", dt.datetime(2025, 1, 2)),
        ("NET_AMOUNT", D("30.00")), ("TAX_AMOUNT", D("0.00")), ("TAX_CODE", 9)]
    # Invoice splits 1 (items 24.00) and 2 (carriage 6.00) from Update Ledgers; the receipt's split is 3.
    allocations = [e for e in fake.log if e[0] == "TransactionPost.AllocatePayment"]
    assert allocations == [("TransactionPost.AllocatePayment", 1, 3, D("24.00"), dt.datetime(2025, 1, 2)),
                           ("TransactionPost.AllocatePayment", 2, 3, D("6.00"), dt.datetime(2025, 1, 2))]
    again = execute(backend, "create_receipt", to_payload(receipt))
    assert again == {**result, "existed": True}
    assert len([e for e in fake.log if e[0] == "TransactionPost.AllocatePayment"]) == 2


def test_receipt_before_ledger_update_stays_unallocated_then_is_finished(fake, backend):
    execute(backend, "create_sales_invoice", to_payload(_invoice()))
    receipt = Receipt(reference="BC-1001-P", invoice_reference="BC-1001", date=dt.date(2025, 1, 2), currency="GBP",
                      amount=D("30.00"), bank_account="1200", method="card")
    first = execute(backend, "create_receipt", to_payload(receipt))
    assert first["allocated_to"] is None
    fake.update_ledgers()
    second = execute(backend, "create_receipt", to_payload(receipt))
    assert second["existed"] is True and second["allocated_to"] == "1"


def test_customer_creation_fields(fake, backend):
    fake.log.clear()
    result = execute(backend, "ensure_customer", {"email": "ann@example.com", "name": "Ann Lee",
                                                  "address_lines": ["2 Low Rd"], "city": "Leeds",
                                                  "postcode": "LS1 1AA", "phone": "0113"})
    assert result == {"account_ref": "LEEA01", "created": True}
    creation = fake.log[fake.log.index(("SalesRecord.AddNew",)):]
    assert creation == [("SalesRecord.AddNew",), ("SalesRecord.ACCOUNT_REF", "LEEA01"), ("SalesRecord.NAME", "Ann Lee"),
                        ("SalesRecord.ADDRESS_1", "2 Low Rd"), ("SalesRecord.ADDRESS_2", "Leeds"),
                        ("SalesRecord.ADDRESS_3", "LS1 1AA"), ("SalesRecord.E_MAIL", "ann@example.com"),
                        ("SalesRecord.TELEPHONE", "0113"), ("SalesRecord.Update",)]
    assert execute(backend, "ensure_customer", {"email": "ANN@example.com", "name": "Ann"})["created"] is False


def test_stock_changes_by_modify_date(fake, backend):
    assert backend.read_changes("stock", "2025-01-05T09:00:00") == [
        {"stock_code": "SKU-1", "in_stock": "5", "allocated": "1", "modified_at": "2025-01-05T10:00:00"}]
    assert backend.read_changes("stock", "2025-01-05T11:00:00") == []


@pytest.mark.parametrize(("code", "error"), [(23, SameUserLoggedIn), (24, SageLocked), (26, VersionMismatch)])
def test_connect_errors_are_typed(fake, code, error):
    fake.connect_error = (code, "refused")
    b = SdoBackend("C:\\Data\\ACCDATA", dispatch=fake)
    with pytest.raises(error):
        b.connect()
    assert ("SelectCompany", "C:\\Data\\ACCDATA") not in fake.log  # an ACCDATA path is used as is


def test_locked_update_is_record_locked(fake, backend):
    from agent.errors import RecordLocked

    fake.fail_updates = ["Record is locked by another user"]
    with pytest.raises(RecordLocked):
        execute(backend, "create_sales_invoice", to_payload(_invoice()))


def test_version_check_before_connect(fake):
    b = SdoBackend("C:\\Data", dispatch=fake, sdo_version="31", sage_version="32.0")
    with pytest.raises(VersionMismatch, match="install the SDO for v32"):
        b.connect()
    assert fake.progids == []


@pytest.mark.skipif(sys.platform == "win32", reason="checks the non-Windows message")
def test_clear_message_off_windows():
    with pytest.raises(BackendUnavailable, match="use --backend simulator on Linux"):
        SdoBackend("C:\\Data")
