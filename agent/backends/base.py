"""The one interface every Sage backend implements, and the plain records that cross it.

Operations (``agent/operations.py``) are written against this interface only, so the look-up
before create, the account-ref rules and the result shapes are the same for the simulator, Sage 50
UK (SDO) and Sage 50 US (.NET SDK). A backend translates these records to its object model and
turns the surface's errors into ``agent.errors`` types.
"""

from __future__ import annotations

import abc
import contextlib
import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass
class SageCustomer:
    account_ref: str
    name: str
    email: str = ""
    balance: Decimal = Decimal("0.00")
    postcode: str = ""


@dataclass
class NewCustomer:
    account_ref: str
    name: str
    email: str = ""
    company: str = ""
    phone: str = ""
    address_lines: list[str] = field(default_factory=list)  # street lines, city, region, postcode
    postcode: str = ""
    country: str = ""
    currency: str = ""


@dataclass
class PostLine:
    """One line of an invoice, credit note or sales order as Sage takes it.

    ``stock_code`` is None for a non-stock line (service, discount, rounding) posted to
    ``nominal_code``. ``tax_code`` is the Sage number (1 for T1): the posting objects take ints.
    """

    description: str
    quantity: Decimal
    unit_price: Decimal
    net: Decimal
    tax: Decimal
    tax_code: int
    stock_code: str | None = None
    nominal_code: str | None = None


@dataclass
class Carriage:
    net: Decimal
    tax: Decimal
    tax_code: int
    nominal_code: str | None = None
    description: str = "Carriage"


@dataclass
class DocumentSpec:
    """An invoice, credit note or sales order to create. ``reference`` is the store reference."""

    reference: str
    account_ref: str
    date: dt.date
    lines: list[PostLine]
    carriage: Carriage | None = None
    currency: str = ""
    notes: str = ""
    against_invoice: str | None = None  # credit notes: the Sage invoice number they credit


@dataclass
class PostedDocument:
    number: str  # Sage's own number
    reference: str
    account_ref: str
    net_total: Decimal
    tax_total: Decimal
    gross_total: Decimal
    outstanding: Decimal = Decimal("0.00")


@dataclass
class PaymentSpec:
    reference: str
    account_ref: str
    date: dt.date
    amount: Decimal
    bank_nominal: str
    details: str = ""
    method: str = ""
    # Surfaces that apply a payment while creating it (Sage 50 US AddInvoiceLine) use this;
    # the others post first and allocate with allocate_receipt.
    apply_to: PostedDocument | None = None


@dataclass
class PostedPayment:
    id: str
    reference: str
    account_ref: str
    amount: Decimal
    allocated: Decimal = Decimal("0.00")
    allocated_to: str | None = None

    @property
    def unallocated(self) -> Decimal:
        return self.amount - self.allocated


CHANGE_KINDS = ("stock", "price", "customer")


class SageBackend(abc.ABC):
    """A connection to one Sage company. Not thread-safe: one worker uses one backend."""

    name = "base"
    edition = ""  # sage50uk | sage50us

    # -- session -------------------------------------------------------------------------
    @abc.abstractmethod
    def connect(self) -> None:
        """Log in. Raises SameUserLoggedIn, SageLocked, VersionMismatch, BackendUnavailable..."""

    @abc.abstractmethod
    def disconnect(self) -> None:
        """Log out; must be safe to call twice and after a failed connect."""

    @contextlib.contextmanager
    def session(self):
        # Connect per batch and release early: a held login blocks the bookkeeper's exclusive
        # tasks and, for a crashed process, lingers as a stale login.
        self.connect()
        try:
            yield self
        finally:
            self.disconnect()

    def describe(self) -> dict:
        """What the heartbeat reports: sage_edition, sage_version, company."""
        return {"sage_edition": self.edition, "sage_version": "", "company": ""}

    # -- customers -----------------------------------------------------------------------
    @abc.abstractmethod
    def find_customer(self, *, account_ref: str | None = None, email: str | None = None,
                      name: str | None = None, currency: str | None = None) -> SageCustomer | None:
        """By account ref, or by email (in ``currency`` when given: an account holds one currency;
        backends whose surface shows no account currency match on the email alone)."""

    @abc.abstractmethod
    def create_customer(self, customer: NewCustomer) -> SageCustomer: ...

    @abc.abstractmethod
    def missing_stock_codes(self, codes: list[str]) -> list[str]: ...

    # Used by `agent doctor` before the first posting: the codes the mappings name must exist here.
    @abc.abstractmethod
    def missing_nominal_codes(self, codes: list[str]) -> list[str]: ...

    @abc.abstractmethod
    def missing_bank_codes(self, codes: list[str]) -> list[str]: ...

    @abc.abstractmethod
    def missing_tax_codes(self, codes: list[int]) -> list[int]: ...

    # -- documents -----------------------------------------------------------------------
    @abc.abstractmethod
    def find_invoice(self, reference: str) -> PostedDocument | None: ...

    @abc.abstractmethod
    def create_invoice(self, spec: DocumentSpec) -> PostedDocument: ...

    @abc.abstractmethod
    def find_credit_note(self, reference: str) -> PostedDocument | None: ...

    # A leased batch's documents in one search where the surface allows it (operations.prefetch).
    # These defaults look each reference up on its own: no cheaper than before, never wrong.
    def find_invoices(self, references: list[str]) -> dict[str, PostedDocument]:
        return {ref: doc for ref in references if (doc := self.find_invoice(ref)) is not None}

    def find_credit_notes(self, references: list[str]) -> dict[str, PostedDocument]:
        return {ref: doc for ref in references if (doc := self.find_credit_note(ref)) is not None}

    @abc.abstractmethod
    def create_credit_note(self, spec: DocumentSpec) -> PostedDocument: ...

    @abc.abstractmethod
    def find_sales_order(self, reference: str) -> PostedDocument | None: ...

    @abc.abstractmethod
    def create_sales_order(self, spec: DocumentSpec) -> PostedDocument: ...

    # -- money ---------------------------------------------------------------------------
    @abc.abstractmethod
    def find_receipt(self, reference: str, account_ref: str | None = None) -> PostedPayment | None: ...

    @abc.abstractmethod
    def create_receipt(self, spec: PaymentSpec) -> PostedPayment: ...

    @abc.abstractmethod
    def allocate_receipt(self, receipt: PostedPayment, invoice: PostedDocument, amount: Decimal,
                         date: dt.date) -> PostedPayment: ...

    @abc.abstractmethod
    def find_refund(self, reference: str, account_ref: str | None = None) -> PostedPayment | None: ...

    @abc.abstractmethod
    def create_refund(self, spec: PaymentSpec, credit_note: PostedDocument) -> PostedPayment:
        """Pay money back and allocate it to the credit note (where the surface allocates)."""

    def allocate_refund(self, refund: PostedPayment, credit_note: PostedDocument, amount: Decimal,
                        date: dt.date) -> PostedPayment:
        """Finish a refund whose allocation to its credit note did not happen (a crash between the
        two Sage calls). Surfaces that apply a refund while creating it have nothing to do."""
        return refund

    # -- change polling ------------------------------------------------------------------
    @abc.abstractmethod
    def read_changes(self, kind: str, since: str | None) -> list[dict]:
        """Records of ``kind`` modified at or after ``since`` (ISO), each with ``modified_at``."""
