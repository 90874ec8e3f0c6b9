"""Backend over the simulated Sage 50 company (``agent/simulator``): the demo and every test use it."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from agent.backends.base import (
    DocumentSpec,
    NewCustomer,
    PaymentSpec,
    PostedDocument,
    PostedPayment,
    SageBackend,
    SageCustomer,
)
from agent.errors import SageNotFound, SageValidationError
from agent.simulator.company import SimCompany, SimSession

# Audit-trail type the simulator uses for a customer refund (money paid back to the shopper).
REFUND_TYPE = "SP"


def _dec(value) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else Decimal("0.00")


def _qty(value) -> str:
    return format(_dec(value).normalize(), "f")


class SimulatorBackend(SageBackend):
    name = "simulator"
    edition = "sage50uk"

    def __init__(self, company: str, *, user: str = "AGENT", sdo_version: str | None = None,
                 apply_on_create: bool = True, **_ignored):
        self.company_path = company
        self.user = user
        self.sdo_version = sdo_version
        # True: a receipt is applied to its invoice as it is saved, one call (the Sage 50 US SDK's
        # Receipt.AddInvoiceLine + Save). False: posted, then allocated in a second call (SDO's
        # TransactionPost.Update + AllocatePayment), for the tests of a crash between the two.
        self.apply_on_create = apply_on_create
        self._company: SimCompany | None = None
        self._session: SimSession | None = None

    # -- session -------------------------------------------------------------------------
    @property
    def company(self) -> SimCompany:
        if self._company is None:
            self._company = SimCompany(self.company_path)
        return self._company

    @property
    def s(self) -> SimSession:
        if self._session is None or not self._session.open:
            raise SageValidationError("not connected to Sage")
        return self._session

    def connect(self) -> None:
        if self._session is not None and self._session.open:
            return
        self._session = self.company.login(self.user, sdo_version=self.sdo_version)

    def disconnect(self) -> None:
        if self._session is not None:
            try:
                self._session.logout()
            finally:
                self._session = None

    def close(self) -> None:
        self.disconnect()
        if self._company is not None:
            self._company.close()
            self._company = None

    def describe(self) -> dict:
        return {"sage_edition": self.edition, "sage_version": self.company.meta("data_version"),
                "company": self.company.meta("company_name")}

    # -- customers -----------------------------------------------------------------------
    @staticmethod
    def _customer(row: dict | None) -> SageCustomer | None:
        if row is None:
            return None
        return SageCustomer(account_ref=row["account_ref"], name=row["name"], email=row.get("email") or "",
                            balance=_dec(row["balance"]), postcode=row.get("postcode") or "")

    def find_customer(self, *, account_ref=None, email=None, name=None, currency=None) -> SageCustomer | None:
        return self._customer(self.s.find_customer(account_ref=account_ref, email=email, name=name,
                                                   currency=currency))

    def create_customer(self, customer: NewCustomer) -> SageCustomer:
        return self._customer(self.s.create_customer(vars(customer)))

    def missing_stock_codes(self, codes: list[str]) -> list[str]:
        return self.s.missing_stock_codes(codes)

    def missing_nominal_codes(self, codes: list[str]) -> list[str]:
        return self.s.missing_nominal_codes(codes)

    def missing_bank_codes(self, codes: list[str]) -> list[str]:
        return self.s.missing_nominal_codes(codes, bank=True)

    def missing_tax_codes(self, codes: list[int]) -> list[int]:
        return self.s.missing_tax_codes(codes)

    # -- documents -----------------------------------------------------------------------
    @staticmethod
    def _document(row: dict | None) -> PostedDocument | None:
        if row is None:
            return None
        gross = _dec(row["gross"])
        return PostedDocument(number=str(row["number"]), reference=row.get("cust_order_number") or "",
                              account_ref=row["account_ref"], net_total=_dec(row["net"]),
                              tax_total=_dec(row["tax"]), gross_total=gross,
                              outstanding=gross - _dec(row.get("amount_paid")))

    @staticmethod
    def _header(spec: DocumentSpec) -> dict:
        header = {"account_ref": spec.account_ref, "date": spec.date.isoformat(),
                  "cust_order_number": spec.reference, "notes": spec.notes, "currency": spec.currency,
                  "against_invoice": spec.against_invoice}
        if spec.carriage is not None:
            header.update(carr_net=str(spec.carriage.net), carr_tax=str(spec.carriage.tax),
                          carr_tax_code=spec.carriage.tax_code, carr_nom_code=spec.carriage.nominal_code)
        return header

    @staticmethod
    def _lines(spec: DocumentSpec) -> list[dict]:
        return [{"stock_code": ln.stock_code, "description": ln.description, "qty": ln.quantity,
                 "unit_price": ln.unit_price, "net": ln.net, "tax": ln.tax, "tax_code": ln.tax_code,
                 "nominal_code": ln.nominal_code} for ln in spec.lines]

    def find_invoice(self, reference: str) -> PostedDocument | None:
        return self._document(self.s.find_document("invoice", reference))

    def create_invoice(self, spec: DocumentSpec) -> PostedDocument:
        return self._document(self.s.post_document("invoice", self._header(spec), self._lines(spec)))

    def find_credit_note(self, reference: str) -> PostedDocument | None:
        return self._document(self.s.find_document("credit", reference))

    def find_invoices(self, references: list[str]) -> dict[str, PostedDocument]:
        return {ref: self._document(row) for ref, row in self.s.find_documents("invoice", references).items()}

    def find_credit_notes(self, references: list[str]) -> dict[str, PostedDocument]:
        return {ref: self._document(row) for ref, row in self.s.find_documents("credit", references).items()}

    def create_credit_note(self, spec: DocumentSpec) -> PostedDocument:
        return self._document(self.s.post_document("credit", self._header(spec), self._lines(spec)))

    def find_sales_order(self, reference: str) -> PostedDocument | None:
        row = self.s.find_sales_order(reference)
        return None if row is None else self._document({**row, "amount_paid": "0"})

    def create_sales_order(self, spec: DocumentSpec) -> PostedDocument:
        row = self.s.post_sales_order(self._header(spec), self._lines(spec))
        return self._document({**row, "amount_paid": "0"})

    # -- money ---------------------------------------------------------------------------
    def _payment(self, row: dict | None) -> PostedPayment | None:
        if row is None:
            return None
        allocations = self.s.allocations_of(row["tran_number"])
        return PostedPayment(id=str(row["tran_number"]), reference=row["inv_ref"], account_ref=row["account_ref"],
                             amount=_dec(row["amount"]), allocated=_dec(row["amount_paid"]),
                             allocated_to=str(allocations[-1]["invoice_number"]) if allocations else None)

    @staticmethod
    def _payment_header(spec: PaymentSpec) -> dict:
        return {"account_ref": spec.account_ref, "date": spec.date.isoformat(), "inv_ref": spec.reference,
                "details": spec.details, "bank_code": spec.bank_nominal, "amount": spec.amount}

    def find_receipt(self, reference: str, account_ref: str | None = None) -> PostedPayment | None:
        return self._payment(self.s.find_payment("SR", reference))

    def create_receipt(self, spec: PaymentSpec) -> PostedPayment:
        header = self._payment_header(spec)
        if self.apply_on_create and spec.apply_to is not None:
            header["apply_to"] = int(spec.apply_to.number)
        return self._payment(self.s.post_payment("SR", header))

    def allocate_receipt(self, receipt: PostedPayment, invoice: PostedDocument, amount: Decimal,
                         date: dt.date) -> PostedPayment:
        self.s.allocate(int(receipt.id), int(invoice.number), amount, date.isoformat())
        return self.find_receipt(receipt.reference)

    def find_refund(self, reference: str, account_ref: str | None = None) -> PostedPayment | None:
        return self._payment(self.s.find_payment(REFUND_TYPE, reference))

    def create_refund(self, spec: PaymentSpec, credit_note: PostedDocument) -> PostedPayment:
        paid = self._payment(self.s.post_payment(REFUND_TYPE, self._payment_header(spec)))
        # Like the SDO backend: the money paid back is allocated to its credit note, so neither stays
        # open on the customer's account (what the credit note already settled on its invoice aside).
        amount = min(paid.amount, credit_note.outstanding)
        return self.allocate_refund(paid, credit_note, amount, spec.date) if amount > 0 else paid

    def allocate_refund(self, refund: PostedPayment, credit_note: PostedDocument, amount: Decimal,
                        date: dt.date) -> PostedPayment:
        self.s.allocate(int(refund.id), int(credit_note.number), amount, date.isoformat())
        return self.find_refund(refund.reference)

    # -- change polling ------------------------------------------------------------------
    def read_changes(self, kind: str, since: str | None) -> list[dict]:
        if kind in ("stock", "price"):
            rows = self.s.modified_since("stock", since)
            if kind == "price":
                return [{"stock_code": r["stock_code"], "price": str(_dec(r["sales_price"])),
                         "modified_at": r["modified_at"]} for r in rows]
            return [{"stock_code": r["stock_code"], "in_stock": _qty(r["qty_in_stock"]),
                     "allocated": _qty(r["qty_allocated"]), "modified_at": r["modified_at"]}
                    for r in rows]
        if kind == "customer":
            return [{"account_ref": r["account_ref"], "email": r["email"] or "", "name": r["name"],
                     "modified_at": r["modified_at"]} for r in self.s.modified_since("customers", since)]
        raise SageNotFound(f"unknown change kind {kind!r}")
