"""Operations against the simulator: look-up before create makes every job safe to run twice."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from agent.backends.simulator import SimulatorBackend
from agent.errors import RecordLocked, SageNotFound, SageValidationError
from agent.operations import build_lines, execute, tax_code_number
from agent.refs import account_ref_candidates, account_ref_stem, is_valid_account_ref
from mlcommon.ledger import (
    CreditNote,
    Customer,
    DocumentLine,
    Receipt,
    Refund,
    SalesInvoice,
    SalesOrder,
    to_payload,
)

SHOPPER = Customer(email="john@example.com", name="John Smith", postcode="AB1 2CD")


def item(qty="2", sku="SKU-1"):
    return DocumentLine(kind="item", description="Widget", quantity=D(qty), unit_net=D("10.00"),
                        net=D("10.00") * D(qty), tax=D("2.00") * D(qty), tax_code="T1", stock_code=sku)


SHIPPING = DocumentLine(kind="service", description="Shipping", quantity=D("1"), unit_net=D("5.00"), net=D("5.00"),
                        tax=D("1.00"), tax_code="T1", store_line_id="shipping-1")
COUPON = DocumentLine(kind="discount", description="Coupon", quantity=D("1"), unit_net=D("-2.00"), net=D("-2.00"),
                      tax=D("-0.40"), tax_code="T1")


def invoice(ref="BC-1001", customer=SHOPPER, lines=None):
    return SalesInvoice(reference=ref, date=dt.date(2025, 1, 2), currency="GBP", customer=customer,
                        lines=lines or [item(), SHIPPING, COUPON], store_total=D("27.60"))


def credit_note_and_refund() -> tuple[CreditNote, Refund]:
    """A one-item credit note against BC-1001, and the refund payment that follows it."""
    credit = CreditNote(reference="BC-1001-R1", date=dt.date(2025, 1, 3), currency="GBP", customer=SHOPPER,
                        lines=[item("1")], invoice_reference="BC-1001")
    refund = Refund(reference="BC-1001-R1-P", credit_note_reference="BC-1001-R1", date=dt.date(2025, 1, 3),
                    currency="GBP", amount=D("12.00"), bank_account="1200", method="card")
    return credit, refund


@pytest.fixture
def backend(company_path):
    b = SimulatorBackend(str(company_path))
    b.connect()
    yield b
    b.close()


def test_invoice_twice_creates_one_document(backend):
    first = execute(backend, "create_sales_invoice", to_payload(invoice()))
    second = execute(backend, "create_sales_invoice", to_payload(invoice()))
    assert first == {"invoice_number": "1", "existed": False, "gross_total": "27.60", "account_ref": "SMITHJ01"}
    assert second == {**first, "existed": True}
    posted = backend.company.invoices()
    assert len(posted) == 1
    assert posted[0]["carr_net"] == "5.00"  # shipping went to carriage, not to a line
    assert [ln["stock_code"] for ln in posted[0]["lines"]] == ["SKU-1", None]
    assert posted[0]["lines"][1]["nominal_code"] == "4000"
    assert len(backend.company.customers()) == 1


def test_receipt_twice_is_allocated_once(backend):
    execute(backend, "create_sales_invoice", to_payload(invoice()))
    receipt = Receipt(reference="BC-1001-P", invoice_reference="BC-1001", date=dt.date(2025, 1, 2), currency="GBP",
                      amount=D("27.60"), bank_account="1210", method="card")
    first = execute(backend, "create_receipt", to_payload(receipt))
    second = execute(backend, "create_receipt", to_payload(receipt))
    assert first["existed"] is False and first["allocated_to"] == "1"
    assert second == {**first, "existed": True}
    receipts = backend.company.payments("SR")
    assert len(receipts) == 1 and receipts[0]["bank_code"] == "1210"
    assert receipts[0]["allocations"] == [{"invoice_number": 1, "amount": "27.60", "date": "2025-01-02"}]


def test_receipt_posted_but_not_allocated_is_finished_on_rerun(backend):
    """A crash between the two Sage calls (post, allocate) is completed by the rerun (SDO's
    surface: the simulator applying receipts as they are saved has no such gap)."""
    backend.apply_on_create = False
    execute(backend, "create_sales_invoice", to_payload(invoice()))
    receipt = Receipt(reference="BC-1001-P", invoice_reference="BC-1001", date=dt.date(2025, 1, 2), currency="GBP",
                      amount=D("27.60"), bank_account="1200", method="card")
    original = backend.allocate_receipt
    backend.allocate_receipt = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("crash"))
    with pytest.raises(RuntimeError):
        execute(backend, "create_receipt", to_payload(receipt))
    backend.allocate_receipt = original
    result = execute(backend, "create_receipt", to_payload(receipt))
    assert result["existed"] is True and result["allocated_to"] == "1"
    assert len(backend.company.payments("SR")) == 1


def test_credit_note_refund_and_sales_order_are_idempotent(backend):
    execute(backend, "create_sales_invoice", to_payload(invoice()))
    credit, refund = credit_note_and_refund()
    order = SalesOrder(reference="BC-1002", date=dt.date(2025, 1, 3), currency="GBP", customer=SHOPPER,
                       lines=[item("1", "SKU-2")])
    for op, doc, key in (("create_credit_note", credit, "credit_note_number"),
                         ("create_refund_payment", refund, "payment_id"),
                         ("create_sales_order", order, "sales_order_number")):
        first = execute(backend, op, to_payload(doc))
        second = execute(backend, op, to_payload(doc))
        assert first["existed"] is False and second["existed"] is True
        assert first[key] == second[key]
    assert len(backend.company.invoices("credit")) == 1
    assert backend.company.invoices("credit")[0]["against_invoice"] == 1
    assert len(backend.company.payments("SP")) == 1
    assert len(backend.company.sales_orders()) == 1
    stock = {s["stock_code"]: s for s in backend.company.stock()}
    assert stock["SKU-2"]["qty_allocated"] == "1"


def paid_invoice(receipt_amount="27.60"):
    """An invoice job's payload as the server sends it: the receipt travels in the invoice's job."""
    receipt = Receipt(reference="BC-1001-P", invoice_reference="BC-1001", date=dt.date(2025, 1, 2), currency="GBP",
                      amount=D("27.60"), bank_account="1210", method="card")
    return {**to_payload(invoice()), "payments": [{**to_payload(receipt), "amount": receipt_amount}]}


def test_an_invoice_job_posts_its_receipts_after_it_and_twice_still_one_of_each(backend):
    first = execute(backend, "create_sales_invoice", paid_invoice())
    assert first["invoice_number"] == "1" and first["existed"] is False
    assert first["payments"] == [{"op": "create_receipt", "reference": "BC-1001-P",
                                  "result": {"receipt_id": first["payments"][0]["result"]["receipt_id"],
                                             "existed": False, "allocated_to": "1", "amount": "27.60"}}]
    again = execute(backend, "create_sales_invoice", paid_invoice())
    assert again["existed"] is True and again["payments"][0]["result"]["existed"] is True
    assert len(backend.company.invoices()) == 1
    receipts = backend.company.payments("SR")
    # The receipt took the account the invoice's customer was found or created under.
    assert len(receipts) == 1 and receipts[0]["account_ref"] == first["account_ref"] == "SMITHJ01"


@pytest.mark.parametrize("interruption", [RuntimeError("agent killed"), RecordLocked("customer open in Sage")],
                         ids=["agent killed", "Sage busy"])
def test_a_job_stopped_between_the_invoice_and_its_receipt_is_finished_by_the_rerun(backend, interruption):
    """The agent dying between the two writes, or Sage busy at the receipt (raised, so the whole
    job is retried): the rerun finds the invoice and posts only the receipt."""
    original = backend.create_receipt
    backend.create_receipt = lambda *a, **k: (_ for _ in ()).throw(interruption)
    with pytest.raises(type(interruption)):
        execute(backend, "create_sales_invoice", paid_invoice())
    backend.create_receipt = original
    assert len(backend.company.invoices()) == 1 and backend.company.payments("SR") == []
    result = execute(backend, "create_sales_invoice", paid_invoice())
    assert result["existed"] is True and result["payments"][0]["result"]["existed"] is False
    assert len(backend.company.invoices()) == 1 and len(backend.company.payments("SR")) == 1


def test_a_refused_receipt_is_reported_beside_the_posted_invoice(backend):
    """The invoice is in Sage: the server must hear its number, so a receipt Sage refuses is an
    outcome in the result (the server queues it as a job of its own), not the job's failure."""
    result = execute(backend, "create_sales_invoice", paid_invoice(receipt_amount="lots"))
    assert result["invoice_number"] == "1" and result["existed"] is False
    [payment] = result["payments"]
    assert payment["reference"] == "BC-1001-P" and "result" not in payment
    assert payment["error"]["code"] == "validation" and "create_receipt" in payment["error"]["message"]
    assert backend.company.payments("SR") == []


def test_a_credit_note_job_posts_its_refund_payment(backend):
    execute(backend, "create_sales_invoice", to_payload(invoice()))
    credit, refund = credit_note_and_refund()
    result = execute(backend, "create_credit_note", {**to_payload(credit), "payments": [to_payload(refund)]})
    assert result["credit_note_number"] and result["payments"][0]["op"] == "create_refund_payment"
    assert result["payments"][0]["result"]["existed"] is False
    assert len(backend.company.payments("SP")) == 1


def test_payments_are_only_run_after_documents_that_have_them(backend):
    """A "payments" key on any other operation is not a reason to post money."""
    order = SalesOrder(reference="BC-1002", date=dt.date(2025, 1, 3), currency="GBP", customer=SHOPPER,
                       lines=[item("1", "SKU-2")])
    result = execute(backend, "create_sales_order", {**to_payload(order), "payments": [{"reference": "X"}]})
    assert "payments" not in result and backend.company.payments("SR") == []


def test_ensure_customer_matches_by_email_and_generates_unique_refs(backend):
    a = execute(backend, "ensure_customer", {**to_payload_customer(SHOPPER)})
    again = execute(backend, "ensure_customer", {**to_payload_customer(SHOPPER), "name": "J. Smith"})
    namesake = execute(backend, "ensure_customer", to_payload_customer(
        Customer(email="other@example.com", name="Jane Smith")))
    assert a == {"account_ref": "SMITHJ01", "created": True}
    assert again == {"account_ref": "SMITHJ01", "created": False}
    assert namesake == {"account_ref": "SMITHJ02", "created": True}
    hinted = execute(backend, "ensure_customer", {**to_payload_customer(Customer(email="x@y.z", name="Bob")),
                                                  "account_ref_hint": "BOBCO"})
    assert hinted["account_ref"] == "BOBCO"


def to_payload_customer(customer: Customer) -> dict:
    import dataclasses

    return dataclasses.asdict(customer)


def test_validation_errors_name_what_to_fix(backend):
    with pytest.raises(SageValidationError, match="NOPE"):
        execute(backend, "create_sales_invoice", to_payload(invoice(lines=[item(sku="NOPE")])))
    assert backend.company.invoices() == []
    receipt = Receipt(reference="BC-9-P", invoice_reference="BC-9", date=dt.date(2025, 1, 2), currency="GBP",
                      amount=D("1.00"), bank_account="1200", method="card")
    with pytest.raises(SageNotFound):
        execute(backend, "create_receipt", to_payload(receipt))
    with pytest.raises(SageValidationError, match="bad create_sales_invoice payload"):
        execute(backend, "create_sales_invoice", {"reference": "x"})
    with pytest.raises(SageValidationError):
        execute(backend, "unknown_op", {})


def test_read_changes_returns_cursor(backend):
    result = execute(backend, "read_changes", {"kind": "stock", "since": None})
    assert [i["stock_code"] for i in result["items"]] == ["SKU-1", "SKU-2"]
    assert result["cursor"] == result["items"][-1]["modified_at"]
    assert result["items"][0]["in_stock"] == "10"


@pytest.mark.parametrize(("code", "number"), [("T1", 1), ("t0", 0), ("9", 9), (5, 5), ("T99", 99)])
def test_tax_codes(code, number):
    assert tax_code_number(code) == number


@pytest.mark.parametrize("code", ["", None, "X1", "T100", "VAT"])
def test_bad_tax_codes(code):
    with pytest.raises(SageValidationError):
        tax_code_number(code)


def test_build_lines_first_shipping_line_is_carriage():
    from agent.operations import OperationSettings

    lines, carriage = build_lines([item(), SHIPPING, SHIPPING], OperationSettings())
    assert carriage is not None and carriage.net == D("5.00") and carriage.nominal_code == "4905"
    assert [ln.stock_code for ln in lines] == ["SKU-1", None]


def test_account_refs():
    assert account_ref_stem("John Smith") == "SMITHJ"
    assert account_ref_stem("Ann", company="Acme Trading Ltd") == "ACMETR"
    assert account_ref_stem("", email="zoë.o'neil@example.com") == "ZOEONE"
    assert account_ref_stem("") == "WEB"
    refs = list(account_ref_candidates("Mary-Jane Watson-Parker"))
    assert refs[0] == "PARKEM01"
    assert len(set(refs)) == len(refs)
    assert all(is_valid_account_ref(r) for r in refs)
    assert not is_valid_account_ref("smith01") and not is_valid_account_ref("TOOLONGREF")


def test_buyer_without_email_never_lands_on_an_existing_account_of_the_same_name(backend):
    backend.company.add_customer("SMITHJ01", "John Smith", "someone.else@example.com")
    nameless = Customer(email="", name="John Smith", currency="GBP")
    result = execute(backend, "create_sales_invoice", to_payload(invoice(customer=nameless)))
    assert result["account_ref"] != "SMITHJ01"
    assert backend.find_customer(account_ref="SMITHJ01").balance == D("0.00")


def test_gift_certificate_and_card_settle_the_invoice_and_sage_reports_it(backend):
    payload = to_payload(invoice())
    payload["payments"] = [
        to_payload(Receipt(reference="BC-1001-P", invoice_reference="BC-1001", date=dt.date(2025, 1, 2),
                           currency="GBP", amount=D("17.60"), bank_account="1200", method="card")),
        to_payload(Receipt(reference="BC-1001-GC", invoice_reference="BC-1001", date=dt.date(2025, 1, 2),
                           currency="GBP", amount=D("10.00"), bank_account="2210", method="gift certificate")),
    ]
    result = execute(backend, "create_sales_invoice", payload)
    assert result["reconciliation"] == {"gross": "27.60", "allocated": "27.60", "outstanding": "0.00"}
    assert backend.find_customer(account_ref=result["account_ref"]).balance == D("0.00")
    again = execute(backend, "create_sales_invoice", payload)  # the job run twice: nothing posted twice
    assert [p["result"]["existed"] for p in again["payments"]] == [True, True]
    assert len(backend.company.payments("SR")) == 2


# -- issue 17: money paid back settles its credit note, and nothing stays open ----------------------


def test_a_refund_on_a_paid_invoice_is_allocated_to_its_credit_note_and_the_account_is_square(backend):
    execute(backend, "create_sales_invoice", paid_invoice())
    credit, refund = credit_note_and_refund()
    execute(backend, "create_credit_note", to_payload(credit))
    execute(backend, "create_refund_payment", to_payload(refund))
    note = backend.company.invoices("credit")[0]
    paid_back = backend.company.payments("SP")[0]
    assert D(note["amount_paid"]) == D(note["gross"]) == D("12.00")
    assert [(a["invoice_number"], D(a["amount"])) for a in paid_back["allocations"]] == [(note["number"], D("12.00"))]
    assert {c["account_ref"]: D(c["balance"]) for c in backend.company.customers()} == {"SMITHJ01": D("0.00")}


def test_a_refund_paid_but_not_allocated_before_a_crash_is_allocated_on_the_rerun(backend):
    execute(backend, "create_sales_invoice", paid_invoice())
    credit, refund = credit_note_and_refund()
    execute(backend, "create_credit_note", to_payload(credit))
    # The first run paid the money back and died before AllocatePayment.
    backend.s.post_payment("SP", {"account_ref": "SMITHJ01", "date": "2025-01-03", "inv_ref": refund.reference,
                                  "bank_code": "1200", "amount": D("12.00")})
    again = execute(backend, "create_refund_payment", to_payload(refund))
    assert again["existed"] is True
    paid_back = backend.company.payments("SP")
    assert len(paid_back) == 1 and D(paid_back[0]["amount_paid"]) == D("12.00")
    assert D(backend.company.invoices("credit")[0]["amount_paid"]) == D("12.00")
    execute(backend, "create_refund_payment", to_payload(refund))  # and a third run changes nothing
    assert D(backend.company.payments("SP")[0]["amount_paid"]) == D("12.00")


def test_the_simulated_company_allocates_only_what_sage_allows(backend):
    execute(backend, "create_sales_invoice", paid_invoice())
    credit, _ = credit_note_and_refund()
    execute(backend, "create_credit_note", to_payload(credit))
    execute(backend, "ensure_customer", to_payload(Customer(email="ann@example.com", name="Ann Other")))
    company = backend.s
    note = backend.company.invoices("credit")[0]["number"]
    inv = backend.company.invoices("invoice")[0]["number"]
    receipt = company.post_payment("SR", {"account_ref": "SMITHJ01", "inv_ref": "X-1", "amount": D("1.00")})
    refund = company.post_payment("SP", {"account_ref": "SMITHJ01", "inv_ref": "X-2", "amount": D("1.00")})
    other = company.post_payment("SP", {"account_ref": "OTHERA01", "inv_ref": "X-3", "amount": D("1.00")})
    with pytest.raises(SageValidationError, match="a SR transaction cannot be allocated to a credit note"):
        company.allocate(receipt["tran_number"], note, D("1.00"), "2025-01-03")
    with pytest.raises(SageValidationError, match="a SP transaction cannot be allocated to an invoice"):
        company.allocate(refund["tran_number"], inv, D("1.00"), "2025-01-03")
    with pytest.raises(SageValidationError, match="allocation is within one account"):
        company.allocate(other["tran_number"], note, D("1.00"), "2025-01-03")
