"""The job operations, written once against ``SageBackend``.

Every create looks its document up in Sage by the store reference before it writes, because no
Sage surface accepts an idempotency key: running a job twice (a retry, a replay, a crash between
the Sage write and the server's acknowledgement) finds the first document and reports
``"existed": true`` instead of posting a second one.

Each Sage call costs tens to hundreds of milliseconds on a real desktop Sage, so the look-ups are
made as few as that rule allows (issue 22; measured by ``bench/sage_cost.py``):
- a leased batch's document references are looked up in one search before its first job
  (``prefetch``), inside the same Sage login the jobs then write in. Each answer is used once, by
  the first attempt of its job; a second job with the same reference, or a retry, looks again, so
  a document this agent wrote meanwhile is always found;
- a payment that follows a document the same job has just written is not looked up: the document
  was absent a moment before, and no payment of ours is ever posted before its document, so the
  payment cannot exist yet (the invoice is not looked up again either; Sage's answer to the write
  is used, and so is its answer to the payments' writes for the reconciliation figures);
- a customer account the server sends (from its record links) is not looked up first: every
  backend's document write refuses an account Sage does not have;
- stock codes seen to exist in this company are not looked up again for an hour.
The journal does not replace the look-up by reference: it cannot prove a document absent (it is
lost with its machine, and another job may carry the same reference), so the batch search stays.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from dataclasses import dataclass
from decimal import Decimal

from agent.backends.base import (
    Carriage,
    DocumentSpec,
    NewCustomer,
    PaymentSpec,
    PostedDocument,
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


# -- what the agent already knows of its Sage company -------------------------------------------
STOCK_CODE_TTL_SECONDS = 3600.0


class SageKnowledge:
    """Answers from Sage that spare look-ups: the current batch's search (each answer used once)
    and the stock codes seen to exist (for an hour: a code removed meanwhile is refused by the
    write itself; this check only gives the clearer message earlier). One per agent process and
    company, used from the thread that runs the jobs."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._documents: dict[tuple[str, str], PostedDocument | None] = {}
        self._stock_seen: dict[str, float] = {}

    def begin_batch(self, documents: dict[tuple[str, str], PostedDocument | None]) -> None:
        self._documents = dict(documents)

    def take_document(self, kind: str, reference: str) -> tuple[bool, PostedDocument | None]:
        """(known, document) from the batch search, forgotten once taken."""
        key = (kind, reference)
        if key not in self._documents:
            return False, None
        return True, self._documents.pop(key)

    def unknown_stock(self, codes) -> list[str]:
        now = self.clock()
        return sorted(c for c in set(codes) if now - self._stock_seen.get(c, -STOCK_CODE_TTL_SECONDS * 2)
                      > STOCK_CODE_TTL_SECONDS)

    def saw_stock(self, codes) -> None:
        now = self.clock()
        self._stock_seen.update(dict.fromkeys(codes, now))


@dataclass
class JobContext:
    """What one job's run has learnt from Sage so far (its document and payments share it)."""

    knowledge: SageKnowledge | None = None
    kind: str = ""
    posted: PostedDocument | None = None  # written by this run: it was absent just before
    payments_fresh: bool = True  # every payment so far was written by this run, as Sage answered


def _find(backend: SageBackend, context: JobContext | None, kind: str, reference: str) -> PostedDocument | None:
    if context is not None and context.knowledge is not None:
        known, document = context.knowledge.take_document(kind, reference)
        if known:
            return document
    return backend.find_invoice(reference) if kind == "invoice" else backend.find_credit_note(reference)


def prefetch(backend: SageBackend, jobs: list[dict], knowledge: SageKnowledge) -> None:
    """One search for the documents a leased batch creates or needs, and one check of the stock
    codes it uses that are not known yet, before its first job (inside the batch's Sage login).
    A refusal here costs nothing: each job then looks up for itself."""
    knowledge.begin_batch({})
    if isinstance(backend, Sage100Backend):
        return
    wanted: dict[str, set[str]] = {"invoice": set(), "credit": set()}
    codes: set[str] = set()
    for job in jobs:
        payload = job.get("payload") or {}
        op = job.get("op")
        if op == "create_sales_invoice" and payload.get("reference"):
            wanted["invoice"].add(str(payload["reference"]))
        elif op == "create_credit_note":
            if payload.get("reference"):
                wanted["credit"].add(str(payload["reference"]))
            if payload.get("invoice_reference"):
                wanted["invoice"].add(str(payload["invoice_reference"]))
        elif op == "create_receipt" and payload.get("invoice_reference"):
            wanted["invoice"].add(str(payload["invoice_reference"]))
        elif op == "create_refund_payment" and payload.get("credit_note_reference"):
            wanted["credit"].add(str(payload["credit_note_reference"]))
        if op in ("create_sales_invoice", "create_credit_note", "create_sales_order"):
            codes.update(str(line["stock_code"]) for line in payload.get("lines") or []
                         if isinstance(line, dict) and line.get("kind") == "item" and line.get("stock_code"))
    documents: dict[tuple[str, str], PostedDocument | None] = {}
    try:
        for kind, references in wanted.items():
            if not references:
                continue
            ordered = sorted(references)
            found = backend.find_invoices(ordered) if kind == "invoice" else backend.find_credit_notes(ordered)
            documents.update({(kind, reference): found.get(reference) for reference in ordered})
        unknown = knowledge.unknown_stock(codes)
        if unknown:
            missing = set(backend.missing_stock_codes(unknown))
            knowledge.saw_stock([c for c in unknown if c not in missing])
    except SageError as exc:
        logger.info("batch look-up skipped (%s: %s); each job looks up for itself", exc.code, exc)
        return
    knowledge.begin_batch(documents)


def _check_stock(backend: SageBackend, lines: list[PostLine], knowledge: SageKnowledge | None = None) -> None:
    codes = sorted({ln.stock_code for ln in lines if ln.stock_code})
    if knowledge is not None:
        codes = knowledge.unknown_stock(codes)
    missing = backend.missing_stock_codes(codes) if codes else []
    if knowledge is not None:
        knowledge.saw_stock([c for c in codes if c not in missing])
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
        # Not looked up first: the document write itself refuses an account Sage does not have
        # (SDO reads the SalesRecord for the header's name and address, the US SDK loads the
        # Customer for its key, the simulator checks), with the same validation error.
        return customer.account_ref
    return ensure_customer(backend, dataclasses.asdict(customer))["account_ref"]


# -- documents ---------------------------------------------------------------------------------
def create_sales_invoice(backend: SageBackend, payload: dict, settings: OperationSettings | None = None,
                         context: JobContext | None = None) -> dict:
    settings = settings or OperationSettings()
    doc = from_payload("create_sales_invoice", payload)
    found = _find(backend, context, "invoice", doc.reference)
    if found:
        return {"invoice_number": found.number, "existed": True, "gross_total": _m(found.gross_total),
                "account_ref": found.account_ref}
    lines, carriage = build_lines(doc.lines, settings)
    _check_stock(backend, lines, context.knowledge if context else None)
    account = _account_for(backend, doc.customer)
    posted = backend.create_invoice(DocumentSpec(reference=doc.reference, account_ref=account, date=doc.date,
                                                 lines=lines, carriage=carriage, currency=doc.currency,
                                                 notes=doc.notes))
    if context is not None:
        context.kind, context.posted = "invoice", posted
    if posted.gross_total != money(doc.gross_total):
        logger.warning("invoice %s: Sage gross %s differs from the document's %s", posted.number,
                       posted.gross_total, doc.gross_total)
    return {"invoice_number": posted.number, "existed": False, "gross_total": _m(posted.gross_total),
            "account_ref": posted.account_ref}


def create_credit_note(backend: SageBackend, payload: dict, settings: OperationSettings | None = None,
                       context: JobContext | None = None) -> dict:
    settings = settings or OperationSettings()
    doc = from_payload("create_credit_note", payload)
    found = _find(backend, context, "credit", doc.reference)
    if found:
        return {"credit_note_number": found.number, "existed": True, "gross_total": _m(found.gross_total)}
    invoice = _find(backend, context, "invoice", doc.invoice_reference) if doc.invoice_reference else None
    if doc.invoice_reference and invoice is None:
        raise SageNotFound(f"invoice {doc.invoice_reference} is not in Sage; post it before its credit note")
    lines, carriage = build_lines(doc.lines, settings)
    _check_stock(backend, lines, context.knowledge if context else None)
    account = invoice.account_ref if invoice else _account_for(backend, doc.customer)
    posted = backend.create_credit_note(DocumentSpec(
        reference=doc.reference, account_ref=account, date=doc.date, lines=lines, carriage=carriage,
        currency=doc.currency, notes=f"Credit for invoice {invoice.number}" if invoice else "",
        against_invoice=invoice.number if invoice else None))
    if context is not None:
        context.kind, context.posted = "credit", posted
    return {"credit_note_number": posted.number, "existed": False, "gross_total": _m(posted.gross_total)}


def create_sales_order(backend: SageBackend, payload: dict, settings: OperationSettings | None = None,
                       context: JobContext | None = None) -> dict:
    settings = settings or OperationSettings()
    doc = from_payload("create_sales_order", payload)
    found = backend.find_sales_order(doc.reference)
    if found:
        return {"sales_order_number": found.number, "existed": True, "gross_total": _m(found.gross_total)}
    lines, carriage = build_lines(doc.lines, settings)
    _check_stock(backend, lines, context.knowledge if context else None)
    account = _account_for(backend, doc.customer)
    posted = backend.create_sales_order(DocumentSpec(reference=doc.reference, account_ref=account, date=doc.date,
                                                     lines=lines, carriage=carriage, currency=doc.currency,
                                                     notes=doc.notes))
    return {"sales_order_number": posted.number, "existed": False, "gross_total": _m(posted.gross_total)}


# -- money -------------------------------------------------------------------------------------
def _just_posted(context: JobContext | None, kind: str, reference: str) -> PostedDocument | None:
    """The document this job's run wrote a moment ago, if the payment is for it."""
    if context is None or context.posted is None or context.kind != kind or not reference:
        return None
    return context.posted if context.posted.reference == reference else None


def create_receipt(backend: SageBackend, payload: dict, settings: OperationSettings | None = None,
                   context: JobContext | None = None) -> dict:
    settings = settings or OperationSettings()
    doc = from_payload("create_receipt", payload)
    invoice = _just_posted(context, "invoice", doc.invoice_reference)
    fresh = invoice is not None
    if not fresh:
        invoice = _find(backend, context, "invoice", doc.invoice_reference) if doc.invoice_reference else None
    # A receipt is only ever posted once its invoice is in Sage: for an invoice this run has just
    # written (it was absent before), there is no receipt to find.
    receipt = None if fresh else backend.find_receipt(
        doc.reference, doc.account_ref or (invoice.account_ref if invoice else None))
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
    if fresh and not existed and allocated_to == invoice.number:
        # What the invoice still owes after this receipt, as Sage answered the writes.
        context.posted = dataclasses.replace(invoice, outstanding=invoice.outstanding - receipt.allocated)
    elif context is not None:
        context.payments_fresh = False
    return {"receipt_id": receipt.id, "existed": existed, "allocated_to": allocated_to,
            "amount": _m(receipt.amount)}


def create_refund_payment(backend: SageBackend, payload: dict, settings: OperationSettings | None = None,
                          context: JobContext | None = None) -> dict:
    settings = settings or OperationSettings()
    doc = from_payload("create_refund_payment", payload)
    credit = _just_posted(context, "credit", doc.credit_note_reference)
    fresh = credit is not None
    if not fresh:
        credit = _find(backend, context, "credit", doc.credit_note_reference)
    # As for receipts: a refund follows its credit note, so one just written has none yet.
    found = None if fresh else backend.find_refund(
        doc.reference, doc.account_ref or (credit.account_ref if credit else None))
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


# The handlers that share what a job's run learnt from Sage (of Sage 100's, create_sales_order).
CONTEXT_OPS = frozenset({"create_sales_invoice", "create_credit_note", "create_sales_order", "create_receipt",
                         "create_refund_payment"})


def execute(backend: SageBackend, op: str, payload: dict, settings: OperationSettings | None = None, *,
            knowledge: SageKnowledge | None = None) -> dict:
    context = JobContext(knowledge=knowledge)
    result = _execute_one(backend, op, payload, settings, context)
    payments = payload.get("payments") if op in PAYMENT_OPS else None
    if payments:
        result["payments"] = [_execute_payment(backend, PAYMENT_OPS[op], payment, result, settings, context)
                              for payment in payments]
    if op == "create_sales_invoice" and payments:
        result["reconciliation"] = reconciliation(backend, str(payload.get("reference", "")), context)
    return result


def reconciliation(backend: SageBackend, reference: str, context: JobContext | None = None) -> dict | None:
    """What Sage itself now reports for the invoice: its gross, the amount allocated to it and what
    is still outstanding. The server compares these with the store's figures (the reconciliation
    check), so a silent difference cannot hide behind a document that posted without error.

    When this run wrote the invoice and every one of its payments, Sage's answers to those writes
    are these figures (nothing else can have paid an invoice that did not exist a moment ago), so
    it is not looked up again."""
    if context is not None and context.payments_fresh and _just_posted(context, "invoice", reference):
        invoice = context.posted
        return {"gross": _m(invoice.gross_total), "allocated": _m(invoice.gross_total - invoice.outstanding),
                "outstanding": _m(invoice.outstanding)}
    invoice = backend.find_invoice(reference) if reference else None
    if invoice is None:
        return None
    return {"gross": _m(invoice.gross_total), "allocated": _m(invoice.gross_total - invoice.outstanding),
            "outstanding": _m(invoice.outstanding)}


def _execute_one(backend: SageBackend, op: str, payload: dict, settings: OperationSettings | None,
                 context: JobContext | None = None) -> dict:
    handler = OPERATIONS.get(op)
    sage100 = isinstance(backend, Sage100Backend)
    if sage100:  # Sage 100 keys its records its own way (SalesOrderNo, division)
        handler = SAGE100_OPERATIONS.get(op)
    if handler is None:
        raise SageValidationError(f"this agent does not know the operation {op!r}")
    try:
        if context is not None and (op in CONTEXT_OPS if not sage100 else op == "create_sales_order"):
            return handler(backend, payload, settings, context)
        return handler(backend, payload, settings)
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        # A malformed payload will fail the same way every time: report it, do not retry.
        raise SageValidationError(f"bad {op} payload: {exc.__class__.__name__}: {exc}") from exc


def _execute_payment(backend: SageBackend, op: str, payment: dict, document: dict,
                     settings: OperationSettings | None, context: JobContext | None = None) -> dict:
    """One payment of a document just posted (or found). A refusal is reported in the result, not
    raised: the document is in Sage now and the server must hear its number; it queues the refused
    payment as a job of its own, which fails or retries under the usual rules. Busy, locked and
    lost-session errors still raise: the whole job is retried, and the re-run finds the document."""
    reference = str(payment.get("reference", ""))
    if document.get("account_ref") and not payment.get("account_ref"):
        payment = {**payment, "account_ref": document["account_ref"]}
    try:
        return {"op": op, "reference": reference, "result": _execute_one(backend, op, payment, settings, context)}
    except SageError as exc:
        if context is not None:
            context.payments_fresh = False
        if exc.retryable:
            raise
        return {"op": op, "reference": reference, "error": {"code": exc.code, "message": str(exc)}}


def sage_id_of(result: dict) -> str | None:
    for key in SAGE_ID_KEYS:
        if result.get(key):
            return str(result[key])
    return None
