"""Sage 50 US (Sage 50 Accounting, formerly Peachtree) through its .NET SDK, via pythonnet.

Object model used (reference/sage.md §2): ``PeachtreeSession.Begin(application id)`` ->
``CompanyList()`` -> ``VerifyAccess`` / ``RequestAccess`` (AuthorizationResult) -> ``Open``;
``company.Factories.<X>Factory.Create() / List()``; lists filtered with
``LoadModifiers.Create()`` + ``FilterExpression.Equal(Property("Entity.Field"), Constant(v))``;
``SalesInvoice.AddSalesLine()``, ``Receipt.AddInvoiceLine(invoice)``, ``Save()``.

The SDK grants access per Windows user and per executable (hash), and it is 32-bit: run the
agent as the logged-in user (scheduled task at logon or tray), under 32-bit Python. Everything
.NET is reached through ``api`` so the tests can hand in fakes built from the SDK's reflected
surface (agent/tests/surfaces/sage50us.json). Every member used is traced to a source in
``agent/backends/SURFACE.md``; names with no public source are backend options with defaults,
and ``agent doctor`` checks all of them by .NET reflection before the first posting. No SDK
member is read with a fallback: a wrong name must fail loudly, not post zeros.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import struct
import sys
from decimal import Decimal
from importlib import metadata
from types import SimpleNamespace

from agent.backends.base import (
    DocumentSpec,
    NewCustomer,
    PaymentSpec,
    PostedDocument,
    PostedPayment,
    SageBackend,
    SageCustomer,
)
from agent.errors import (
    BackendUnavailable,
    RecordLocked,
    SageBusy,
    SageError,
    SageLocked,
    SageNotFound,
    SageValidationError,
    SameUserLoggedIn,
    VersionMismatch,
)
from agent.refs import fit_reference

logger = logging.getLogger(__name__)

DEFAULT_SDK_PATH = r"C:\Program Files (x86)\Sage\Peachtree\API"
WINDOWS_ONLY = ("the sage50us backend needs Windows with Sage 50 US and its .NET SDK (Sage.Peachtree.API); "
                "use --backend simulator on Linux")

# Sage 50 US keeps at most this many characters in a transaction's ReferenceNumber.
REFERENCE_MAX = 20
PYTHONNET_MIN_MAJOR = 3  # older pythonnet hands .NET enums back as ints (pythonnet issue #1913)

# SDK exception class names -> (agent error, what to tell a person). Matched by name: pythonnet
# exposes the .NET types, and the class names are what working connector code switches on.
EXCEPTIONS = {
    "RecordInUseException": (RecordLocked, "someone has this record open in Sage 50; it is retried"),
    "LicenseNotAvailableException": (SageBusy, "no Sage 50 licence is free for the agent right now; retried "
                                               "when another Sage 50 session closes"),
    "CompanyExclusiveAccessException": (SageLocked, "the company is open in single-user (exclusive) mode, e.g. "
                                                    "for a backup or year end; retried afterwards"),
    "CompanySharedAccessException": (SageLocked, "another session holds the company in a way that blocks the "
                                                 "agent; retried"),
    "InadequatePermissionException": (SageValidationError, "the Sage 50 user lacks permission: in Sage 50, "
                                                           "Maintain > Users > Set Up Security, give SDK Data "
                                                           "Access 'Full'"),
    "SessionAlreadyOpenedException": (SameUserLoggedIn, "an SDK session is already open in this process"),
    "ApplicationIdentifierExpiredException": (SageValidationError, "the Sage application id has expired; ask "
                                                                   "Sage for a new one and set application_id"),
    "ApplicationIdentifierRejectedException": (SageValidationError, "Sage rejected the application id; check "
                                                                    "application_id"),
    "AuthorizationException": (SageValidationError, "Sage 50 refused access"),
}

# What the backend touches on the live .NET objects, for ``agent doctor`` to check by reflection:
# type name -> member -> "method" or "property:<type name>" (the .NET short type name, "" = any).
NET_MEMBERS = {
    "PeachtreeSession": {"Begin": "method", "CompanyList": "method", "VerifyAccess": "method",
                         "RequestAccess": "method", "Open": "method", "Close": "method", "End": "method"},
    "CompanyIdentifier": {"CompanyName": "property:String", "Path": "property:String",
                          "DatabaseName": "property:String", "SchemaVersion": "property:String"},
    "Company": {"Factories": "property:"},
    "FactoryGroup": {"CustomerFactory": "property:CustomerFactory",
                     "SalesInvoiceFactory": "property:SalesInvoiceFactory",
                     "ReceiptFactory": "property:ReceiptFactory",
                     "AccountFactory": "property:AccountFactory",
                     "InventoryItemFactory": "property:InventoryItemFactory",
                     "SalesOrderFactory": "property:SalesOrderFactory"},
    "CustomerFactory": {"Create": "method", "List": "method", "Load": "method"},
    "SalesInvoiceFactory": {"Create": "method", "List": "method", "Load": "method"},
    "ReceiptFactory": {"Create": "method", "List": "method"},
    "AccountFactory": {"List": "method"},
    "InventoryItemFactory": {"List": "method"},
    "SalesOrderFactory": {"Create": "method", "List": "method"},
    "Customer": {"ID": "property:String", "Name": "property:String", "Email": "property:String",
                 "Balance": "property:Decimal", "Key": "property:", "LastSavedAt": "property:DateTime",
                 "Save": "method"},
    "SalesInvoice": {"CustomerReference": "property:", "Date": "property:DateTime",
                     "ReferenceNumber": "property:String", "CustomerPurchaseOrderNumber": "property:String",
                     "FreightAmount": "property:Decimal", "Amount": "property:Decimal",
                     "SalesTaxAmount": "property:Decimal", "AmountDue": "property:Decimal", "Key": "property:",
                     "AddSalesLine": "method", "Save": "method"},
    "SalesInvoiceSalesLine": {"InventoryItemReference": "property:", "AccountReference": "property:",
                              "Description": "property:String", "Quantity": "property:Decimal",
                              "UnitPrice": "property:Decimal", "Amount": "property:Decimal"},
    "SalesOrder": {"CustomerReference": "property:", "Date": "property:DateTime",
                   "ReferenceNumber": "property:String", "CustomerPurchaseOrderNumber": "property:String",
                   "FreightAmount": "property:Decimal", "Amount": "property:Decimal",
                   "SalesTaxAmount": "property:Decimal", "AddSalesLine": "method", "Save": "method"},
    "Receipt": {"CustomerReference": "property:", "AccountReference": "property:", "Date": "property:DateTime",
                "ReferenceNumber": "property:String", "PaymentMethod": "property:String",
                "Amount": "property:Decimal", "ApplyToInvoiceLines": "property:", "Key": "property:",
                "AddInvoiceLine": "method", "AddSalesLine": "method", "Save": "method"},
    "ReceiptInvoiceLine": {"AmountPaid": "property:Decimal", "InvoiceReference": "property:",
                           "IsUsed": "property:Boolean"},
    "ReceiptSalesLine": {"Amount": "property:Decimal"},
    "Account": {"ID": "property:String", "Key": "property:"},
    "InventoryItem": {"ID": "property:String", "Key": "property:", "LastSavedAt": "property:DateTime"},
}


def check_pythonnet(version: str | None) -> None:
    """pythonnet 3 or later, or a clear error: on 2.x .NET enums arrive as ints, so an
    AuthorizationResult of Granted would read as "3" and the agent would never log in."""
    if version is None:
        raise BackendUnavailable(f"{WINDOWS_ONLY}; pythonnet is missing: pip install \"pythonnet>=3\"")
    try:
        major = int(version.split(".")[0])
    except ValueError:
        major = 0
    if major < PYTHONNET_MIN_MAJOR:
        raise BackendUnavailable(f"pythonnet {version} is too old for the Sage 50 US backend (it turns .NET enums "
                                 f"into numbers): pip install --upgrade \"pythonnet>=3\"")


def _pythonnet_version() -> str | None:
    try:
        return metadata.version("pythonnet")
    except metadata.PackageNotFoundError:
        return None


def load_api(sdk_path: str = DEFAULT_SDK_PATH):
    """Import the SDK through pythonnet. Only ever called on Windows, lazily."""
    if sys.platform != "win32":
        raise BackendUnavailable(WINDOWS_ONLY)
    if struct.calcsize("P") != 4:
        raise BackendUnavailable("the Sage 50 US SDK is 32-bit: run the agent with 32-bit (x86) Python")
    check_pythonnet(_pythonnet_version())
    try:
        import clr  # noqa: PLC0415 - pythonnet, Windows only
    except ImportError as exc:
        raise BackendUnavailable(f"{WINDOWS_ONLY}; pythonnet is missing: pip install \"pythonnet>=3\"") from exc
    if not os.path.isdir(sdk_path):
        raise BackendUnavailable(f"no Sage 50 US SDK at {sdk_path}; set backend option sdk_path")
    sys.path.append(sdk_path)
    clr.AddReference("Sage.Peachtree.API")
    clr.AddReference("Sage.Peachtree.API.Resolver")
    from Sage.Peachtree.API.Resolver import AssemblyInitializer  # noqa: PLC0415

    AssemblyInitializer.Initialize()
    import System  # noqa: PLC0415
    from Sage.Peachtree import API  # noqa: PLC0415
    from Sage.Peachtree.API.Collections.Generic import FilterExpression, LoadModifiers  # noqa: PLC0415

    return SimpleNamespace(
        PeachtreeSession=API.PeachtreeSession, FilterExpression=FilterExpression, LoadModifiers=LoadModifiers,
        sdk_version=str(API.PeachtreeSession().GetType().Assembly.GetName().Version),
        date=lambda d: System.DateTime(d.year, d.month, d.day),
        decimal=lambda v: System.Decimal.Parse(str(v), System.Globalization.CultureInfo.InvariantCulture),
    )


def _dec(value) -> Decimal:
    if value in (None, ""):
        return Decimal("0.00")
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _enum_name(value) -> str:
    return str(value).split(".")[-1]


def _used(lines):
    # Line collections are padded with IsUsed == False slots.
    return [line for line in lines if line.IsUsed]


class Sage50UsBackend(SageBackend):
    name = "sage50us"
    edition = "sage50us"

    def __init__(self, company: str, *, application_id: str = "", sdk_path: str = DEFAULT_SDK_PATH,
                 sage_year: str | None = None, stock_quantity_property: str = "QuantityOnHand",
                 stock_id_filter: str = "InventoryItem.ID", sales_order_filter: str = "SalesOrder.ReferenceNumber",
                 base_currency: str = "USD", api=None, **_ignored):
        self.company_name = company
        self.application_id = application_id
        self.sdk_path = sdk_path
        self.sage_year = sage_year
        # No public dump shows InventoryItem's quantity property or the SalesOrder members
        # (SURFACE.md): settings, checked on the live SDK by `agent doctor`.
        self.stock_quantity_property = stock_quantity_property
        self.stock_id_filter = stock_id_filter
        self.sales_order_filter = sales_order_filter
        # Sage 50 US keeps one currency, the company's: the SDK's Customer, SalesInvoice and Receipt
        # have no currency member at all (SDK 2026.0 help pages, SURFACE.md). The server converts
        # foreign orders to it (Integration -> base currency); a document in another one is refused.
        self.base_currency = (base_currency or "USD").upper()
        self.api = api if api is not None else load_api(sdk_path)
        self.session = None
        self.company = None
        self.company_identifier = None

    # -- session -------------------------------------------------------------------------
    def describe(self) -> dict:
        return {"sage_edition": self.edition, "sage_version": str(self.api.sdk_version or ""),
                "company": self.company_name}

    def check_versions(self) -> None:
        sdk = str(self.api.sdk_version or "")
        if self.sage_year and sdk and sdk.split(".")[0] != str(self.sage_year).split(".")[0]:
            raise VersionMismatch(
                f"the Sage 50 US SDK in {self.sdk_path} is version {sdk} but the company runs Sage 50 "
                f"{self.sage_year}: the SDK must come from the same Sage year; point sdk_path at it")

    def _translate(self, exc: Exception, what: str) -> SageError:
        for klass in type(exc).__mro__:
            mapped = EXCEPTIONS.get(klass.__name__)
            if mapped is not None:
                error, explanation = mapped
                return error(f"{what}: {explanation} ({klass.__name__}: {exc})")
        return SageError(f"{what}: {exc.__class__.__name__}: {exc}")

    def connect(self) -> None:
        if self.company is not None:
            return
        self.check_versions()
        session = self.api.PeachtreeSession()
        try:
            session.Begin(self.application_id)
            ident = self._company_identifier(session)
            result = _enum_name(session.VerifyAccess(ident))
            if result != "Granted":
                result = _enum_name(session.RequestAccess(ident))
            if result != "Granted":
                raise self._authorization_error(result)
            self.company = session.Open(ident)
            self.company_identifier = ident
        except SageError:
            self._end(session)
            raise
        except Exception as exc:  # noqa: BLE001 - .NET exceptions arrive as their own types
            self._end(session)
            raise self._translate(exc, "opening the Sage 50 company") from exc
        self.session = session

    def _company_identifier(self, session):
        wanted = self.company_name.strip().lower()
        for ident in session.CompanyList():
            names = (ident.CompanyName, ident.Path, ident.DatabaseName)
            if any(str(n or "").strip().lower() == wanted for n in names):
                return ident
        raise SageValidationError(f"no Sage 50 company named {self.company_name!r} on this machine")

    def _authorization_error(self, result: str) -> SageError:
        if result == "Pending":
            return SageLocked("Sage 50 has not approved this agent yet: open the company in Sage 50 as an "
                              "administrator and allow the application (approval is per Windows user and per "
                              "agent executable)")
        if result == "CompanyLocked":
            return SageLocked("the company is in single-user mode; no logins are possible")
        return SageValidationError(f"Sage 50 refused access to {self.company_name!r}: {result}")

    @staticmethod
    def _end(session) -> None:
        try:
            session.End()
        except Exception:  # noqa: BLE001
            logger.warning("PeachtreeSession.End failed", exc_info=True)

    def disconnect(self) -> None:
        company, session = self.company, self.session
        self.company = self.session = None
        if company is not None and session is not None:
            # session.Close(company) exists in every SDK year; Company.Close() only in recent ones.
            try:
                session.Close(company)
            except Exception:  # noqa: BLE001 - a leaked session costs a licence until the service restarts
                logger.warning("PeachtreeSession.Close failed", exc_info=True)
        if session is not None:
            self._end(session)

    # -- helpers -------------------------------------------------------------------------
    @property
    def factories(self):
        if self.company is None:
            raise SageValidationError("not connected to Sage")
        return self.company.Factories

    def _load(self, factory_name: str, prop: str | None = None, value=None):
        items = getattr(self.factories, factory_name).List()
        if prop is None:
            items.Load()
        else:
            fe = self.api.FilterExpression
            modifiers = self.api.LoadModifiers.Create()
            modifiers.Filters = fe.Equal(fe.Property(prop), fe.Constant(value))
            items.Load(modifiers)
        return list(items)

    def _first(self, factory_name: str, prop: str, value):
        found = self._load(factory_name, prop, value)
        return found[0] if found else None

    def _save(self, entity, what: str) -> None:
        try:
            entity.Save()
        except Exception as exc:  # noqa: BLE001
            raise self._translate(exc, what) from exc

    def _customer_entity(self, account_ref: str):
        return self._first("CustomerFactory", "Customer.ID", account_ref)

    # -- customers -----------------------------------------------------------------------
    @staticmethod
    def _customer(entity) -> SageCustomer:
        return SageCustomer(account_ref=str(entity.ID), name=str(entity.Name or ""), email=str(entity.Email or ""),
                            balance=_dec(entity.Balance))

    def find_customer(self, *, account_ref=None, email=None, name=None, currency=None) -> SageCustomer | None:
        if account_ref:
            entity = self._customer_entity(account_ref)
            return self._customer(entity) if entity is not None else None
        if not (email or name):
            return None
        # Email filtering is not documented as supported, so compare on our side.
        for entity in self._load("CustomerFactory"):
            if email and str(entity.Email or "").strip().lower() == email.strip().lower():
                return self._customer(entity)
            if not email and str(entity.Name or "") == name:
                return self._customer(entity)
        return None

    def create_customer(self, customer: NewCustomer) -> SageCustomer:
        entity = self.factories.CustomerFactory.Create()
        entity.ID = customer.account_ref
        entity.Name = customer.company or customer.name
        if customer.email:
            entity.Email = customer.email
        self._save(entity, f"creating customer {customer.account_ref}")
        return self._customer(entity)

    def missing_stock_codes(self, codes: list[str]) -> list[str]:
        return [c for c in codes if self._first("InventoryItemFactory", self.stock_id_filter, c) is None]

    def missing_nominal_codes(self, codes: list[str]) -> list[str]:
        return [c for c in codes if self._first("AccountFactory", "Account.ID", c) is None]

    def missing_bank_codes(self, codes: list[str]) -> list[str]:
        return self.missing_nominal_codes(codes)  # a cash account is a GL account in Sage 50 US

    def missing_tax_codes(self, codes: list[int]) -> list[int]:
        return []  # this backend posts no tax codes: Sage 50 US applies the customer's sales tax

    # -- documents -----------------------------------------------------------------------
    def _document(self, entity, reference: str, *, outstanding=None) -> PostedDocument:
        customer = self.factories.CustomerFactory.Load(entity.CustomerReference)
        gross = _dec(entity.Amount)
        tax = _dec(entity.SalesTaxAmount)
        return PostedDocument(number=str(entity.ReferenceNumber), reference=reference,
                              account_ref=str(customer.ID), net_total=gross - tax, tax_total=tax, gross_total=gross,
                              outstanding=_dec(entity.AmountDue) if outstanding is None else outstanding)

    def _find_invoice_entity(self, reference: str, *, credit: bool = False):
        # ReferenceNumber (the invoice number) is not enforced unique by Sage: we make it the store
        # reference and look it up before every create. Credit memos are invoices with negative
        # amounts here ([U]: the SDK's own credit-memo object is not verified).
        wanted = fit_reference(reference, REFERENCE_MAX)
        for entity in self._load("SalesInvoiceFactory", "SalesInvoice.ReferenceNumber", wanted):
            if (_dec(entity.Amount) < 0) == credit:
                return entity
        return None

    def find_invoice(self, reference: str) -> PostedDocument | None:
        entity = self._find_invoice_entity(reference)
        return self._document(entity, reference) if entity is not None else None

    def find_credit_note(self, reference: str) -> PostedDocument | None:
        entity = self._find_invoice_entity(reference, credit=True)
        return self._document(entity, reference) if entity is not None else None

    def _fill(self, entity, spec: DocumentSpec, *, sign: int = 1) -> None:
        customer = self._customer_entity(spec.account_ref)
        if customer is None:
            raise SageValidationError(f"customer {spec.account_ref} is not in Sage")
        entity.CustomerReference = customer.Key
        entity.Date = self.api.date(spec.date)
        # At most 20 characters: a longer store reference is shortened the same way the look-up does.
        entity.ReferenceNumber = fit_reference(spec.reference, REFERENCE_MAX)
        entity.CustomerPurchaseOrderNumber = fit_reference(spec.reference, REFERENCE_MAX)
        for line in spec.lines:
            sales_line = entity.AddSalesLine()
            if line.stock_code:
                item = self._first("InventoryItemFactory", self.stock_id_filter, line.stock_code)
                if item is None:
                    raise SageValidationError(f"inventory item {line.stock_code} is not in Sage")
                sales_line.InventoryItemReference = item.Key
            if line.nominal_code:
                account = self._first("AccountFactory", "Account.ID", line.nominal_code)
                if account is None:
                    raise SageValidationError(f"GL account {line.nominal_code} is not in Sage")
                sales_line.AccountReference = account.Key
            sales_line.Description = line.description[:160]
            sales_line.Quantity = self.api.decimal(line.quantity * sign)
            sales_line.UnitPrice = self.api.decimal(line.unit_price)
            sales_line.Amount = self.api.decimal(line.net * sign)
        if spec.carriage is not None:
            entity.FreightAmount = self.api.decimal(spec.carriage.net * sign)

    def _base_currency_only(self, spec: DocumentSpec, what: str) -> None:
        if spec.currency and spec.currency.upper() != self.base_currency:
            raise SageValidationError(
                f"{what} {spec.reference} is in {spec.currency.upper()}, but Sage 50 US holds amounts in "
                f"{self.base_currency} only and has no foreign-currency customers: set the integration's base "
                f"currency to {self.base_currency} so such orders are converted at their exchange rate, then "
                f"replay it")

    def create_invoice(self, spec: DocumentSpec) -> PostedDocument:
        self._base_currency_only(spec, "invoice")
        entity = self.factories.SalesInvoiceFactory.Create()
        self._fill(entity, spec)
        self._save(entity, f"saving invoice {spec.reference}")
        return self._document(entity, spec.reference)

    def create_credit_note(self, spec: DocumentSpec) -> PostedDocument:
        self._base_currency_only(spec, "credit memo")
        entity = self.factories.SalesInvoiceFactory.Create()
        self._fill(entity, spec, sign=-1)
        self._save(entity, f"saving credit memo {spec.reference}")
        return self._document(entity, spec.reference)

    def find_sales_order(self, reference: str) -> PostedDocument | None:
        found = self._first("SalesOrderFactory", self.sales_order_filter, fit_reference(reference, REFERENCE_MAX))
        return self._document(found, reference, outstanding=Decimal("0.00")) if found is not None else None

    def create_sales_order(self, spec: DocumentSpec) -> PostedDocument:
        self._base_currency_only(spec, "sales order")
        entity = self.factories.SalesOrderFactory.Create()
        self._fill(entity, spec)
        self._save(entity, f"saving sales order {spec.reference}")
        return self._document(entity, spec.reference, outstanding=Decimal("0.00"))

    # -- receipts ------------------------------------------------------------------------
    def _payment(self, entity, reference: str, account_ref: str) -> PostedPayment:
        # ApplyToInvoiceLines is the receipt's applied invoices (there is no InvoiceLines): read
        # wrongly, a rerun would see nothing applied and apply the receipt a second time.
        applied = _used(entity.ApplyToInvoiceLines)
        allocated = sum((_dec(line.AmountPaid) for line in applied), Decimal("0.00"))
        target = None
        if applied:
            invoice = self.factories.SalesInvoiceFactory.Load(applied[0].InvoiceReference)
            target = str(invoice.ReferenceNumber)
        return PostedPayment(id=str(entity.Key.Guid), reference=reference, account_ref=account_ref,
                             amount=_dec(entity.Amount), allocated=allocated, allocated_to=target)

    def find_receipt(self, reference: str, account_ref: str | None = None) -> PostedPayment | None:
        entity = self._first("ReceiptFactory", "Receipt.ReferenceNumber", fit_reference(reference, REFERENCE_MAX))
        if entity is None:
            return None
        return self._payment(entity, reference, account_ref or "")

    def create_receipt(self, spec: PaymentSpec) -> PostedPayment:
        customer = self._customer_entity(spec.account_ref)
        cash = self._first("AccountFactory", "Account.ID", spec.bank_nominal)
        if customer is None or cash is None:
            raise SageValidationError(f"customer {spec.account_ref} or cash account {spec.bank_nominal} not in Sage")
        receipt = self.factories.ReceiptFactory.Create()
        receipt.CustomerReference = customer.Key
        receipt.AccountReference = cash.Key
        receipt.Date = self.api.date(spec.date)
        receipt.ReferenceNumber = fit_reference(spec.reference, REFERENCE_MAX)
        if spec.method:
            receipt.PaymentMethod = spec.method
        allocated_to = None
        if spec.apply_to is not None:
            # The SDK applies a receipt to an invoice as it creates it: one save, nothing to finish.
            invoice = self._find_invoice_entity(spec.apply_to.reference)
            if invoice is None:
                raise SageNotFound(f"invoice {spec.apply_to.reference} is not in Sage")
            line = receipt.AddInvoiceLine(invoice)
            line.AmountPaid = self.api.decimal(spec.amount)
            allocated_to = spec.apply_to.number
        else:
            line = receipt.AddSalesLine()
            line.Amount = self.api.decimal(spec.amount)
        self._save(receipt, f"saving receipt {spec.reference}")
        return PostedPayment(id=str(receipt.Key.Guid), reference=spec.reference,
                             account_ref=spec.account_ref, amount=spec.amount,
                             allocated=spec.amount if allocated_to else Decimal("0.00"), allocated_to=allocated_to)

    def allocate_receipt(self, receipt: PostedPayment, invoice: PostedDocument, amount: Decimal,
                         date: dt.date) -> PostedPayment:
        entity = self._first("ReceiptFactory", "Receipt.ReferenceNumber",
                             fit_reference(receipt.reference, REFERENCE_MAX))
        target = self._find_invoice_entity(invoice.reference)
        if entity is None or target is None:
            raise SageNotFound(f"receipt {receipt.reference} or invoice {invoice.reference} is not in Sage")
        line = entity.AddInvoiceLine(target)
        line.AmountPaid = self.api.decimal(amount)
        self._save(entity, f"applying receipt {receipt.reference}")
        receipt.allocated += amount
        receipt.allocated_to = invoice.number
        return receipt

    def find_refund(self, reference: str, account_ref: str | None = None) -> PostedPayment | None:
        return None

    def create_refund(self, spec: PaymentSpec, credit_note: PostedDocument) -> PostedPayment:
        raise SageValidationError("customer refunds are not posted through the Sage 50 US SDK by this agent; "
                                  f"record the refund of {spec.amount} for {spec.reference} in Sage 50")

    # -- change polling ------------------------------------------------------------------
    def read_changes(self, kind: str, since: str | None) -> list[dict]:
        since_at = dt.datetime.fromisoformat(since).replace(tzinfo=None) if since else None
        factory = {"stock": "InventoryItemFactory", "customer": "CustomerFactory"}.get(kind)
        if kind == "price":
            return []  # price properties are not in the public SDK material [U]
        if factory is None:
            raise SageNotFound(f"unknown change kind {kind!r}")
        items = []
        for entity in self._load(factory):
            stamp = _py_datetime(entity.LastSavedAt)
            # LastSavedAt is null on records never modified since creation: only a full sync
            # (no cursor) can know about them.
            if since_at is not None and (stamp is None or stamp < since_at):
                continue
            iso = stamp.isoformat() if stamp else None
            if kind == "stock":
                items.append({"stock_code": str(entity.ID), "in_stock": self._quantity(entity),
                              "allocated": "0", "modified_at": iso})
            else:
                items.append({"account_ref": str(entity.ID), "email": str(entity.Email or ""),
                              "name": str(entity.Name or ""), "modified_at": iso})
        items.sort(key=lambda i: i["modified_at"] or "")
        return items

    def _quantity(self, entity) -> str:
        # No fallback to 0: a wrong property name would push zero stock for every item to the store.
        try:
            value = getattr(entity, self.stock_quantity_property)
        except AttributeError as exc:
            raise SageValidationError(
                f"Sage 50 US inventory items have no property {self.stock_quantity_property!r}; set backend "
                f"option stock_quantity_property to the SDK's quantity-on-hand property (agent doctor lists "
                f"what the installed SDK has)") from exc
        if value is None:
            raise SageValidationError(f"{entity.ID}: {self.stock_quantity_property} is empty in Sage 50")
        return format(Decimal(str(value)).normalize(), "f")


def _py_datetime(value) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=None)
    try:  # System.DateTime
        return dt.datetime(value.Year, value.Month, value.Day, value.Hour, value.Minute, value.Second)
    except AttributeError:
        return dt.datetime.fromisoformat(str(value)).replace(tzinfo=None)
