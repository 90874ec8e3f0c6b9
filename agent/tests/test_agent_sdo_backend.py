"""The Sage 50 UK SDO backend against a recorded fake of the SDO COM object model."""

from __future__ import annotations

import datetime as dt
import sys
from decimal import Decimal as D

import pytest

from agent.backends.sdo import SdoBackend
from agent.errors import BackendUnavailable, SageLocked, SameUserLoggedIn, VersionMismatch
from agent.operations import execute
from agent.tests.fake_sdo import FakeSdo
from mlcommon.ledger import CreditNote, Customer, DocumentLine, Receipt, Refund, SalesInvoice, to_payload


@pytest.fixture
def fake():
    return FakeSdo()


@pytest.fixture
def backend(fake):
    b = SdoBackend("C:\\ProgramData\\Sage\\Accounts\\2025", user="AGENT", password="pw", sdo_version="32",
                   dispatch=fake)
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
    # The post's Type is the ledger (sdoLedgerInvoice); the document kind is the header's
    # INVOICE_TYPE_CODE (sdoProductInvoice), which InvoiceRecord keeps.
    assert ("InvoicePost.Type", 261) in fake.log
    assert fake.invoices[0]["LEDGER"] == 261 and fake.invoices[0]["INVOICE_TYPE_CODE"] == 0
    assert fake.sets("InvoicePost.Header") == [
        ("ACCOUNT_REF", "WEB01"), ("NAME", "Web Sales"), ("ADDRESS_1", "1 High St"), ("ADDRESS_2", ""),
        ("ADDRESS_3", ""), ("ADDRESS_4", ""), ("ADDRESS_5", "AB1 2CD"), ("INVOICE_DATE", dt.datetime(2025, 1, 2)),
        ("CUST_ORDER_NUMBER", "BC-1001"), ("CARR_NET", D("5.00")), ("CARR_TAX", D("1.00")), ("CARR_TAX_CODE", 1),
        ("CARR_NOM_CODE", "4905"), ("INVOICE_TYPE_CODE", 0)]
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
    assert ("InvoicePost.Type", 265) in fake.log  # sdoLedgerCredit
    assert fake.invoices[1]["LEDGER"] == 265 and fake.invoices[1]["INVOICE_TYPE_CODE"] == 3  # sdoProductCredit
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


def _credit():
    return CreditNote(reference="BC-1001-R1", date=dt.date(2025, 1, 3), currency="GBP", customer=WEB,
                      lines=_invoice().lines[:1], invoice_reference="BC-1001")


def test_credit_note_is_found_as_a_credit_so_a_retry_posts_no_duplicate(fake, backend):
    execute(backend, "create_sales_invoice", to_payload(_invoice()))
    execute(backend, "create_credit_note", to_payload(_credit()))
    assert backend.find_credit_note("BC-1001-R1") is not None
    assert backend.find_invoice("BC-1001-R1") is None  # not stored as an invoice
    again = execute(backend, "create_credit_note", to_payload(_credit()))
    assert again["existed"] is True and len(fake.invoices) == 2


def test_refund_is_a_sales_payment_sp_24_by_default(fake, backend):
    execute(backend, "create_sales_invoice", to_payload(_invoice()))
    execute(backend, "create_credit_note", to_payload(_credit()))
    fake.update_ledgers()
    refund = Refund(reference="BC-1001-R1-P", credit_note_reference="BC-1001-R1", date=dt.date(2025, 1, 3),
                    currency="GBP", amount=D("24.00"), bank_account="1200", method="card")
    fake.log.clear()
    result = execute(backend, "create_refund_payment", to_payload(refund))
    assert result["existed"] is False
    assert ("TYPE", 24) in fake.sets("TransactionPost.Header")  # sdoSP, not 13 (sdoCP, a bank cash payment)
    assert ("TYPE", 24) in fake.sets("TransactionPost.Items[0]")
    assert execute(backend, "create_refund_payment", to_payload(refund))["existed"] is True
    assert len([h for h in fake.headers if h["TYPE"] == 24]) == 1


def test_fake_refuses_a_member_the_real_object_lacks(fake, backend):
    post = backend.ws.CreateObject("InvoicePost")
    with pytest.raises(AttributeError, match="InvoicePost has no member 'DocumentType'"):
        post.DocumentType = 1  # noqa: B010 - the point is a wrong COM name
    with pytest.raises(AttributeError, match="PostingNumber"):
        post.PostingNumber  # noqa: B018 - TransactionPost has it, InvoicePost does not
    with pytest.raises(Exception, match="not a field"):
        post.Header.Fields.Item("INVOICE_TYPE")


def test_unverified_names_are_settings(fake):
    fake.invoices.append({"ORDER_REF": "BC-9", "INVOICE_TYPE_CODE": 0, "INVOICE_NUMBER": 7, "ACCOUNT_REF": "WEB01",
                          "ITEMS_NET": D("1"), "ITEMS_TAX": D("0"), "CARR_NET": D("0"), "CARR_TAX": D("0")})
    b = SdoBackend("C:\\Data", dispatch=fake, reference_field="INVOICE_NUMBER")
    b.connect()
    assert b.find_invoice("7").number == "7"


def test_wrong_sdo_version_is_refused_at_logon_with_a_clear_message(fake):
    b = SdoBackend("C:\\Data", dispatch=fake, sdo_version="31")
    with pytest.raises(VersionMismatch, match="install the SDO that ships with the installed Sage 50"):
        b.connect()



# -- the account's currency (issue 17): one account per email and currency ------------------------


def _order_in(currency, reference, customer=None):
    shopper = customer or Customer(email="anna@example.com", name="Anna Berg", currency=currency)
    return SalesInvoice(reference=reference, date=dt.date(2025, 1, 2), currency=currency, customer=shopper, lines=[
        DocumentLine(kind="item", description="Widget", quantity=D("1"), unit_net=D("10.00"), net=D("10.00"),
                     tax=D("2.00"), tax_code="T1", stock_code="SKU-1")])


def test_two_currencies_from_one_email_land_on_two_accounts_each_in_its_currency(fake, backend):
    gbp = execute(backend, "create_sales_invoice", to_payload(_order_in("GBP", "BC-2001")))
    eur = execute(backend, "create_sales_invoice", to_payload(_order_in("EUR", "BC-2002")))
    assert gbp["account_ref"] != eur["account_ref"]
    accounts = {c["ACCOUNT_REF"]: c for c in fake.customers}
    # SalesRecord.CURRENCY is the currency number (CurrencyData record CURRENCY + 1): EUR 2; a
    # base-currency (GBP) account keeps Sage's default, 0.
    assert "CURRENCY" not in accounts[gbp["account_ref"]] and accounts[eur["account_ref"]]["CURRENCY"] == 2
    # The EUR invoice says it is in EUR, at Sage's own rate for EUR; the GBP one says nothing.
    eur_invoice = next(i for i in fake.invoices if i["CUST_ORDER_NUMBER"] == "BC-2002")
    gbp_invoice = next(i for i in fake.invoices if i["CUST_ORDER_NUMBER"] == "BC-2001")
    assert (eur_invoice["CURRENCY"], eur_invoice["FOREIGN_RATE"]) == (2, D("1.170000"))
    assert "CURRENCY" not in gbp_invoice and "FOREIGN_RATE" not in gbp_invoice
    # A second EUR order from the same email finds the EUR account, not the GBP one.
    again = execute(backend, "create_sales_invoice", to_payload(_order_in("EUR", "BC-2003")))
    assert again["account_ref"] == eur["account_ref"]
    assert len(fake.customers) == 3  # WEB01 and Anna's two accounts


def test_a_document_is_never_posted_to_an_account_of_another_currency(fake, backend):
    from agent.errors import SageValidationError

    fake.log.clear()
    with pytest.raises(SageValidationError, match=r"account WEB01 is in GBP; BC-2004 is in EUR and cannot be posted"):
        execute(backend, "create_sales_invoice", to_payload(_order_in("EUR", "BC-2004", customer=WEB)))
    assert fake.invoices == [] and not [e for e in fake.log if e[0] == "InvoicePost.Update"]


def test_a_currency_sage_does_not_have_is_refused_with_what_to_do(fake, backend):
    from agent.errors import SageValidationError

    with pytest.raises(SageValidationError, match="CHF is not a currency of this Sage company.*Settings > Currencies"):
        execute(backend, "create_sales_invoice", to_payload(_order_in("CHF", "BC-2005")))
    assert fake.invoices == [] and len(fake.customers) == 1


def test_the_fake_refuses_a_header_currency_other_than_the_accounts(fake, backend):
    # What the backend guards against, as the recorded object model answers it (sdoCurrencyDoesNotMatch).
    post = backend._new("InvoicePost")
    post.Type = 261
    post.Header.Fields.Item("ACCOUNT_REF").Value = "WEB01"
    post.Header.Fields.Item("CURRENCY").Value = 2
    assert post.Update() is False and fake.last_error[0] == 34


def test_the_base_currency_setting_decides_which_currency_is_foreign(fake):
    fake.currencies[1]["EXCHANGE_RATE"] = D("1")  # a foreign rate that happens to be 1
    backend = SdoBackend("C:\\Sage", sdo_version="32", dispatch=fake, base_currency="GBP")
    backend.connect()
    try:
        execute(backend, "create_sales_invoice", to_payload(_order_in("USD", "BC-2006")))
    finally:
        backend.disconnect()
    assert (fake.invoices[0]["CURRENCY"], fake.invoices[0]["FOREIGN_RATE"]) == (1, D("1"))


def test_a_batch_of_references_is_found_in_one_walk_of_invoice_record(fake, backend, monkeypatch):
    execute(backend, "create_sales_invoice", to_payload(_invoice()))
    created = []
    new = backend._new
    monkeypatch.setattr(backend, "_new", lambda name: created.append(name) or new(name))
    found = backend.find_invoices(["BC-1001", "BC-404", "BC-405"])
    assert list(found) == ["BC-1001"] and found["BC-1001"].number == "1" and found["BC-1001"].account_ref == "WEB01"
    assert created == ["InvoiceRecord"]  # one record set walked for the three references
    assert backend.find_credit_notes(["BC-1001"]) == {}


def test_a_currency_table_without_codes_is_a_one_currency_company(fake, backend):
    for row in fake.currencies:
        row["CODE"] = ""
    result = execute(backend, "create_sales_invoice", to_payload(_order_in("GBP", "BC-2007")))
    assert result["existed"] is False and "CURRENCY" not in fake.invoices[0]
