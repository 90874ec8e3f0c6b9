"""The job operations, written once against ``SageBackend``.

Every create looks its document up in Sage by the store reference before it writes, because no
Sage surface accepts an idempotency key: running a job twice (a retry, a replay, a crash between
the Sage write and the server's acknowledgement) finds the first document and reports
``"existed": true`` instead of posting a second one.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from decimal import Decimal

from agent.backends.base import (
    Carriage,
    DocumentSpec,
    NewCustomer,
    PaymentSpec,
    PostLine,
    SageBackend,
)
from agent.backends.sage100 import Sage100Backend
from agent.errors import SageError, SageNotFound, SageValidationError
from agent.refs import account_ref_candidates, is_valid_account_ref
from agent.sage100_operations import OPERATIONS as SAGE100_OPERATIONS
from mlcommon.ledger import Customer, DocumentLine, LineKind, from_payload, money

logger = logging.getLogger(__name__)

CARRIAGE_WORDS = re.compile(r"\b(shipping|carriage|delivery|postage|freight)\b", re.IGNORECASE)


@dataclass
class OperationSettings:
    """Sage defaults used when a job does not say (nominal codes are the UK standard chart)."""

    sales_nominal: str = "4000"
    carriage_nominal: str = "4905"
    bank_nominal: str = "1200"


def _m(value: Decimal) -> str:
    return str(money(value))


def tax_code_number(code: str | int | None) -> int:
    """"T1" -> 1. The SDO posting objects take the number; the UI and ODBC show "T1"."""
    if code is None or code == "":
        raise SageValidationError("a line has no tax code; map the store tax class to a Sage tax code")
    if isinstance(code, int):
        number = code
    else:
        match = re.fullmatch(r"[Tt]?(\d{1,2})", str(code).strip())
        if not match:
            raise SageValidationError(f"{code!r} is not a Sage tax code (T0..T99)")
        number = int(match.group(1))
    if not 0 <= number <= 99:
        raise SageValidationError(f"{code!r} is not a Sage tax code (T0..T99)")
    return number


def is_carriage(line: DocumentLine) -> bool:
    if line.kind != LineKind.SERVICE:
        return False
    return (line.store_line_id or "").lower().startswith("shipping") or bool(CARRIAGE_WORDS.search(line.description))


def build_lines(lines: list[DocumentLine], settings: OperationSettings) -> tuple[list[PostLine], Carriage | None]:
    """Item lines by stock code; the first shipping line becomes Sage carriage; the rest are
    non-stock lines on a nominal code (discounts and rounding are negative non-stock lines)."""
    post_lines: list[PostLine] = []
    carriage: Carriage | None = None
    for line in lines:
        tax_code = tax_code_number(line.tax_code)
        if carriage is None and is_carriage(line):
            carriage = Carriage(net=money(line.net), tax=money(line.tax), tax_code=tax_code,
                                nominal_code=line.nominal_code or settings.carriage_nominal,
                                description=line.description or "Carriage")
            continue
        if line.kind == LineKind.ITEM:
            if not line.stock_code:
                raise SageValidationError(f"line {line.description!r} has no stock code; map the SKU")
            stock_code, nominal = line.stock_code, line.nominal_code
        else:
            stock_code, nominal = None, line.nominal_code or settings.sales_nominal
        post_lines.append(PostLine(description=line.description, quantity=Decimal(line.quantity),
                                   unit_price=Decimal(line.unit_net), net=money(line.net), tax=money(line.tax),
                                   tax_code=tax_code, stock_code=stock_code, nominal_code=nominal))
    return post_lines, carriage


def _check_stock(backend: SageBackend, lines: list[PostLine]) -> None:
    codes = sorted({ln.stock_code for ln in lines if ln.stock_code})
    missing = backend.missing_stock_codes(codes) if codes else []
    if missing:
        raise SageValidationError(f"stock codes not in Sage: {', '.join(missing)}; create them or fix the SKU map")


# -- customers -------------------------------------------------------------------------------
def customer_from_payload(payload: dict) -> Customer:
    names = {f.name for f in dataclasses.fields(Customer)}
    return Customer(**{k: v for k, v in payload.items() if k in names})


def ensure_customer(backend: SageBackend, payload: dict, settings: OperationSettings | None = None) -> dict:
    customer = customer_from_payload(payload)
    hint = payload.get("account_ref_hint")
    if customer.account_ref:
        found = backend.find_customer(account_ref=customer.account_ref)
        if found:
            return {"account_ref": found.account_ref, "created": False}
    # Matched by email in the document's currency (an account holds one currency), never by name:
    # two people share a name, and an invoice on the other one's account is worse than a new account.
    # A buyer without email reaches here only with a store customer account the server has not
    # linked yet (the mapper sends anonymous buyers to the web-sales account or holds them), so a
    # new account is right; the server links it to the store customer id for the next order.
    found = backend.find_customer(email=customer.email, currency=customer.currency or None) \
        if customer.email else None
    if found:
        return {"account_ref": found.account_ref, "created": False}
    candidates = []
    if is_valid_account_ref(customer.account_ref):
        candidates.append(customer.account_ref)
    if is_valid_account_ref(hint):
        candidates.append(hint)
    candidates.extend(account_ref_candidates(customer.name, customer.company, customer.email))
    for ref in candidates:
        if backend.find_customer(account_ref=ref) is None:
            break
    else:
        raise SageValidationError(f"no free account reference for {customer.name!r}")
    address = [*customer.address_lines, customer.city, customer.region]
    created = backend.create_customer(NewCustomer(
        account_ref=ref, name=customer.name or customer.company or customer.email, email=customer.email,
        company=customer.company, phone=customer.phone, address_lines=[a for a in address if a],
        postcode=customer.postcode, country=customer.country, currency=customer.currency))
    return {"account_ref": created.account_ref, "created": True}


def _account_for(backend: SageBackend, customer: Customer) -> str:
    if customer.account_ref:
        if backend.find_customer(account_ref=customer.account_ref) is None:
            raise SageValidationError(f"customer account {customer.account_ref} is not in Sage")
        return customer.account_ref
    return ensure_customer(backend, dataclasses.asdict(customer))["account_ref"]


# -- documents ---------------------------------------------------------------------------------
def create_sales_invoice(backend: SageBackend, payload: dict, settings: OperationSettings | None = None) -> dict:
    settings = settings or OperationSettings()
    doc = from_payload("create_sales_invoice", payload)
    found = backend.find_invoice(doc.reference)
    if found:
        return {"invoice_number": found.number, "existed": True, "gross_total": _m(found.gross_total),
                "account_ref": found.account_ref}
    lines, carriage = build_lines(doc.lines, settings)
    _check_stock(backend, lines)
    account = _account_for(backend, doc.customer)
    posted = backend.create_invoice(DocumentSpec(reference=doc.reference, account_ref=account, date=doc.date,
                                                 lines=lines, carriage=carriage, currency=doc.currency,
                                                 notes=doc.notes))
    if posted.gross_total != money(doc.gross_total):
        logger.warning("invoice %s: Sage gross %s differs from the document's %s", posted.number,
                       posted.gross_total, doc.gross_total)
    return {"invoice_number": posted.number, "existed": False, "gross_total": _m(posted.gross_total),
            "account_ref": posted.account_ref}


def create_credit_note(backend: SageBackend, payload: dict, settings: OperationSettings | None = None) -> dict:
    settings = settings or OperationSettings()
    doc = from_payload("create_credit_note", payload)
    found = backend.find_credit_note(doc.reference)
    if found:
        return {"credit_note_number": found.number, "existed": True, "gross_total": _m(found.gross_total)}
    invoice = backend.find_invoice(doc.invoice_reference) if doc.invoice_reference else None
    if doc.invoice_reference and invoice is None:
        raise SageNotFound(f"invoice {doc.invoice_reference} is not in Sage; post it before its credit note")
    lines, carriage = build_lines(doc.lines, settings)
    _check_stock(backend, lines)
    account = invoice.account_ref if invoice else _account_for(backend, doc.customer)
    posted = backend.create_credit_note(DocumentSpec(
        reference=doc.reference, account_ref=account, date=doc.date, lines=lines, carriage=carriage,
        currency=doc.currency, notes=f"Credit for invoice {invoice.number}" if invoice else "",
        against_invoice=invoice.number if invoice else None))
    return {"credit_note_number": posted.number, "existed": False, "gross_total": _m(posted.gross_total)}


def create_sales_order(backend: SageBackend, payload: dict, settings: OperationSettings | None = None) -> dict:
    settings = settings or OperationSettings()
    doc = from_payload("create_sales_order", payload)
    found = backend.find_sales_order(doc.reference)
    if found:
        return {"sales_order_number": found.number, "existed": True, "gross_total": _m(found.gross_total)}
    lines, carriage = build_lines(doc.lines, settings)
    _check_stock(backend, lines)
    account = _account_for(backend, doc.customer)
    posted = backend.create_sales_order(DocumentSpec(reference=doc.reference, account_ref=account, date=doc.date,
                                                     lines=lines, carriage=carriage, currency=doc.currency,
                                                     notes=doc.notes))
    return {"sales_order_number": posted.number, "existed": False, "gross_total": _m(posted.gross_total)}


# -- money -------------------------------------------------------------------------------------
def create_receipt(backend: SageBackend, payload: dict, settings: OperationSettings | None = None) -> dict:
    settings = settings or OperationSettings()
    doc = from_payload("create_receipt", payload)
    invoice = backend.find_invoice(doc.invoice_reference) if doc.invoice_reference else None
    receipt = backend.find_receipt(doc.reference, doc.account_ref or (invoice.account_ref if invoice else None))
    existed = receipt is not None
    if receipt is None:
        if invoice is None:
            raise SageNotFound(f"invoice {doc.invoice_reference} is not in Sage; post it before its receipt")
        receipt = backend.create_receipt(PaymentSpec(
            reference=doc.reference, account_ref=doc.account_ref or invoice.account_ref, date=doc.date,
            amount=money(doc.amount), bank_nominal=doc.bank_account or settings.bank_nominal,
            details=f"{doc.method} {doc.payment_reference}".strip() or f"Receipt for {doc.invoice_reference}",
            method=doc.method, apply_to=invoice))
    # Posting and allocating are two Sage calls; a crash between them is finished here on the rerun.
    if invoice is not None and receipt.allocated_to is None and receipt.unallocated > 0:
        amount = min(receipt.unallocated, invoice.outstanding)
        if amount > 0:
            receipt = backend.allocate_receipt(receipt, invoice, amount, doc.date)
    allocated_to = receipt.allocated_to
    if allocated_to is None and invoice is not None and receipt.allocated > 0:
        allocated_to = invoice.number  # surfaces that report the amount paid but not the target
    return {"receipt_id": receipt.id, "existed": existed, "allocated_to": allocated_to,
            "amount": _m(receipt.amount)}


def create_refund_payment(backend: SageBackend, payload: dict, settings: OperationSettings | None = None) -> dict:
    settings = settings or OperationSettings()
    doc = from_payload("create_refund_payment", payload)
    credit = backend.find_credit_note(doc.credit_note_reference)
    found = backend.find_refund(doc.reference, doc.account_ref or (credit.account_ref if credit else None))
    if found:
        # Paying back and allocating are two Sage calls; a crash between them is finished here.
        if credit is not None and found.allocated_to is None and found.unallocated > 0:
            amount = min(found.unallocated, credit.outstanding)
            if amount > 0:
                found = backend.allocate_refund(found, credit, amount, doc.date)
        return {"payment_id": found.id, "existed": True}
    if credit is None:
        raise SageNotFound(f"credit note {doc.credit_note_reference} is not in Sage; post it before the refund")
    paid = backend.create_refund(PaymentSpec(
        reference=doc.reference, account_ref=doc.account_ref or credit.account_ref, date=doc.date,
        amount=money(doc.amount), bank_nominal=doc.bank_account or settings.bank_nominal,
        details=f"Refund {doc.method}".strip(), method=doc.method), credit)
    return {"payment_id": paid.id, "existed": False}


# -- changes -----------------------------------------------------------------------------------
def read_changes(backend: SageBackend, payload: dict, settings: OperationSettings | None = None) -> dict:
    kind = payload.get("kind", "stock")
    since = payload.get("since")
    items = backend.read_changes(kind, since)
    cursor = max((item["modified_at"] for item in items if item.get("modified_at")), default=since)
    return {"items": items, "cursor": cursor}


OPERATIONS = {
    "ensure_customer": ensure_customer,
    "create_sales_invoice": create_sales_invoice,
    "create_receipt": create_receipt,
    "create_credit_note": create_credit_note,
    "create_refund_payment": create_refund_payment,
    "create_sales_order": create_sales_order,
    "read_changes": read_changes,
}
WRITE_OPERATIONS = frozenset(OPERATIONS) - {"read_changes"}

SAGE_ID_KEYS = ("invoice_number", "credit_note_number", "receipt_id", "payment_id", "sales_order_number",
                "account_ref")


# A document's payments travel in its job (payload "payments") and are posted right after it in the
# same Sage session: one job, one lease and one result per paid order instead of two, and the receipt
# no longer waits a lease round for its invoice. Each payment is looked up by its own reference before
# it is created, like every create, so a job run twice still leaves one of each.
PAYMENT_OPS = {"create_sales_invoice": "create_receipt", "create_credit_note": "create_refund_payment"}


def execute(backend: SageBackend, op: str, payload: dict, settings: OperationSettings | None = None) -> dict:
    result = _execute_one(backend, op, payload, settings)
    payments = payload.get("payments") if op in PAYMENT_OPS else None
    if payments:
        result["payments"] = [_execute_payment(backend, PAYMENT_OPS[op], payment, result, settings)
                              for payment in payments]
    if op == "create_sales_invoice" and payments:
        result["reconciliation"] = reconciliation(backend, str(payload.get("reference", "")))
    return result


def reconciliation(backend: SageBackend, reference: str) -> dict | None:
    """What Sage itself now reports for the invoice: its gross, the amount allocated to it and what
    is still outstanding. The server compares these with the store's figures (the reconciliation
    check), so a silent difference cannot hide behind a document that posted without error."""
    invoice = backend.find_invoice(reference) if reference else None
    if invoice is None:
        return None
    return {"gross": _m(invoice.gross_total), "allocated": _m(invoice.gross_total - invoice.outstanding),
            "outstanding": _m(invoice.outstanding)}


def _execute_one(backend: SageBackend, op: str, payload: dict, settings: OperationSettings | None) -> dict:
    handler = OPERATIONS.get(op)
    if isinstance(backend, Sage100Backend):  # Sage 100 keys its records its own way (SalesOrderNo, division)
        handler = SAGE100_OPERATIONS.get(op)
    if handler is None:
        raise SageValidationError(f"this agent does not know the operation {op!r}")
    try:
        return handler(backend, payload, settings)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        # A malformed payload will fail the same way every time: report it, do not retry.
        raise SageValidationError(f"bad {op} payload: {exc.__class__.__name__}: {exc}") from exc


def _execute_payment(backend: SageBackend, op: str, payment: dict, document: dict,
                     settings: OperationSettings | None) -> dict:
    """One payment of a document just posted (or found). A refusal is reported in the result, not
    raised: the document is in Sage now and the server must hear its number; it queues the refused
    payment as a job of its own, which fails or retries under the usual rules. Busy, locked and
    lost-session errors still raise: the whole job is retried, and the re-run finds the document."""
    reference = str(payment.get("reference", ""))
    if document.get("account_ref") and not payment.get("account_ref"):
        payment = {**payment, "account_ref": document["account_ref"]}
    try:
        return {"op": op, "reference": reference, "result": _execute_one(backend, op, payment, settings)}
    except SageError as exc:
        if exc.retryable:
            raise
        return {"op": op, "reference": reference, "error": {"code": exc.code, "message": str(exc)}}


def sage_id_of(result: dict) -> str | None:
    for key in SAGE_ID_KEYS:
        if result.get(key):
            return str(result[key])
    return None
