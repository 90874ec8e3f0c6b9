"""Sage 50 UK (Sage 50 Accounts) through Sage Data Objects over COM (pywin32).

Object model used (reference/sage.md §1): ``SDOEngine.NN`` -> ``Workspaces.Add`` ->
``SelectCompany`` / ``WorkSpace.Connect(path, user, password, connection name)``;
``CreateObject("SalesRecord" | "StockRecord" | "InvoiceRecord" | "HeaderData" | "SplitData" |
"InvoicePost" | "SopPost" | "SopRecord" | "TransactionPost")``; record fields through
``Fields.Item(NAME).Value``; ``Find`` / ``MoveFirst`` / ``MoveNext`` / ``AddNew`` / ``Update``.

Every COM member, field key and enum value used here is traced to a public source in
``agent/backends/SURFACE.md``. Names with no public source are backend options with a default
(the constructor's keyword arguments, set under ``[backend_options]`` in the agent config), so a
site whose SDO differs is corrected in its config, and ``agent doctor`` checks them on the live
objects before the first posting. Everything COM is reached through ``dispatch`` so the tests
can hand in fakes built from the interop assembly's surface (agent/tests/surfaces/sdo.json).
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
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

logger = logging.getLogger(__name__)

# InvoiceType enum (interop assembly): the document kind, written to the header field
# INVOICE_TYPE_CODE and read back from InvoiceRecord.INVOICE_TYPE_CODE.
SDO_PRODUCT_INVOICE = 0
SDO_SOP_INVOICE = 1
SDO_SERVICE_INVOICE = 2
SDO_PRODUCT_CREDIT = 3
SDO_SERVICE_CREDIT = 4
INVOICE_TYPES = (SDO_PRODUCT_INVOICE, SDO_SOP_INVOICE, SDO_SERVICE_INVOICE)
CREDIT_TYPES = (SDO_PRODUCT_CREDIT, SDO_SERVICE_CREDIT)

# LedgerType enum (interop assembly): what InvoicePost.Type takes. The C# samples cast it,
# ``Type = (InvoiceType)LedgerType.sdoLedgerInvoice``; 0 / 3 there would be read as other ledgers.
SDO_LEDGER_INVOICE = 261
SDO_LEDGER_CREDIT = 265

# TransType enum (interop assembly; agrees with Fairweather's enum and mogstuff's comment)
SDO_SI = 1
SDO_SC = 2
SDO_SR = 3
SDO_SA = 4
SDO_SP = 24  # sales payment: money paid back to a customer (13 is sdoCP, a bank cash payment)

# Connect error codes [V]
LOGON_FAIL = 21
LOGON_PASSWORD = 22
LOGON_NAME_IN_USE = 23
LOGON_EXCLUSIVE = 24
BAD_DATA_PATH = 25
WRONG_VERSION = 26
USER_COUNT_EXCEEDED = 30
NOT_REGISTERED = 31

ADDRESS_FIELDS = ("ADDRESS_1", "ADDRESS_2", "ADDRESS_3", "ADDRESS_4", "ADDRESS_5")

# What the backend touches on the live COM objects, for ``agent doctor`` to check by reflection:
# object (as CreateObject names it) -> member -> "method" | "property". The surface description
# the test fakes are built from must hold every one of these (agent/tests/test_agent_surface.py).
COM_MEMBERS = {
    "SDOEngine": {"Workspaces": "property", "SelectCompany": "method", "LastError": "property"},
    "WorkSpace": {"Connect": "method", "Disconnect": "method", "CreateObject": "method"},
    "SalesRecord": {"Fields": "property", "Find": "method", "MoveFirst": "method", "MoveNext": "method",
                    "AddNew": "method", "Update": "method", "Link": "property"},
    "StockRecord": {"Fields": "property", "Find": "method", "MoveFirst": "method", "MoveNext": "method"},
    "NominalRecord": {"Fields": "property", "Find": "method"},
    "BankRecord": {"Fields": "property", "Find": "method"},
    "InvoiceRecord": {"Fields": "property", "MoveFirst": "method", "MoveNext": "method"},
    "SopRecord": {"Fields": "property", "MoveFirst": "method", "MoveNext": "method"},
    "HeaderData": {"Fields": "property", "MoveFirst": "method", "MoveNext": "method", "Read": "method",
                   "RecordNumber": "property"},
    "SplitData": {"Fields": "property", "Read": "method"},
    "InvoicePost": {"Type": "property", "Header": "property", "Items": "property", "Update": "method"},
    "SopPost": {"Header": "property", "Items": "property", "Update": "method"},
    "TransactionPost": {"Header": "property", "Items": "property", "Update": "method",
                        "PostingNumber": "property", "AllocatePayment": "method"},
    "CurrencyData": {"Fields": "property", "MoveFirst": "method", "MoveNext": "method", "Read": "method"},
}

WINDOWS_ONLY = ("the sdo backend needs Windows with Sage 50 Accounts and Sage Data Objects (SDO) registered; "
                "use --backend simulator on Linux")


def _default_dispatch(progid: str):
    if sys.platform != "win32":
        raise BackendUnavailable(WINDOWS_ONLY)
    try:
        import win32com.client  # noqa: PLC0415 - pywin32 exists on Windows only
    except ImportError as exc:
        raise BackendUnavailable(f"{WINDOWS_ONLY}; pywin32 is missing: pip install pywin32") from exc
    try:
        return win32com.client.Dispatch(progid)
    except Exception as exc:  # noqa: BLE001 - pywintypes.com_error is not importable elsewhere
        raise BackendUnavailable(
            f"cannot create {progid}: is the SDO for this Sage 50 version installed and registered "
            f"(and does the agent's bitness match it)? {exc}") from exc


def _dec(value) -> Decimal:
    if value in (None, ""):
        return Decimal("0.00")
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _com_date(value: dt.date) -> dt.datetime:
    return dt.datetime(value.year, value.month, value.day)


def get(record, name: str):
    return record.Fields.Item(name).Value


def put(record, name: str, value) -> None:
    record.Fields.Item(name).Value = value


def scan(record):
    """Walk a SDO record set from the first record (MoveNext answers False at the end)."""
    if not record.MoveFirst():
        return
    yield record
    while record.MoveNext():
        yield record


class SdoBackend(SageBackend):
    name = "sdo"
    edition = "sage50uk"

    def __init__(self, company: str, *, user: str = "MANAGER", password: str = "", sdo_version: str = "32",
                 sage_version: str | None = None, connection_name: str = "ml-connector agent",
                 refund_trans_type: int = SDO_SP, reference_field: str = "CUST_ORDER_NUMBER",
                 notes_field: str = "NOTES_1", non_stock_code: str = "S1",
                 net_total_fields: tuple[str, ...] = ("ITEMS_NET", "CARR_NET"),
                 tax_total_fields: tuple[str, ...] = ("ITEMS_TAX", "CARR_TAX"),
                 nominal_key_field: str = "ACCOUNT_REF", bank_key_field: str = "ACCOUNT_REF",
                 currency_code_field: str = "CODE", base_currency: str = "",
                 dispatch=None, **_ignored):
        if dispatch is None and sys.platform != "win32":
            raise BackendUnavailable(WINDOWS_ONLY)
        self.company = company
        self.user = user
        self.password = password
        self.sdo_version = str(sdo_version)
        self.sage_version = sage_version
        self.connection_name = connection_name
        self.refund_trans_type = int(refund_trans_type)
        # No public source for these names (SURFACE.md says which): settings, checked by `agent doctor`.
        # The header field that carries the store reference; CUST_ORDER_NUMBER is on the InvoicePost
        # header in public code, reading it back from InvoiceRecord / SopRecord is not shown anywhere.
        self.reference_field = reference_field
        self.notes_field = notes_field
        # Sage's special product code for a non-stock line that names its own nominal code.
        self.non_stock_code = non_stock_code
        self.net_total_fields = tuple(net_total_fields)
        self.tax_total_fields = tuple(tax_total_fields)
        self.nominal_key_field = nominal_key_field
        self.bank_key_field = bank_key_field
        # The ISO code of a currency record (CurrencyData): named only in low-trust code, so a setting.
        self.currency_code_field = currency_code_field
        # The company's base currency (ISO). Optional: without it, a currency whose exchange rate in
        # Sage is 1 is taken as the base one (Sage keeps the base currency's rate at 1).
        self.base_currency = base_currency.upper()
        self._currency_table: list[tuple[str, Decimal]] | None = None
        self.dispatch = dispatch or _default_dispatch
        self.engine = None
        self.ws = None

    def used_fields(self) -> dict[str, list[str]]:
        """The field keys each object is read or written with (``Post.Header`` / ``Post.Items``
        for the posting objects), for ``agent doctor`` to look up on the live objects."""
        document_header = ["ACCOUNT_REF", "NAME", *ADDRESS_FIELDS, self.reference_field, self.notes_field,
                           "CARR_NET", "CARR_TAX", "CARR_TAX_CODE", "CARR_NOM_CODE"]
        items = ["STOCK_CODE", "DESCRIPTION", "QTY_ORDER", "UNIT_PRICE", "NET_AMOUNT", "FULL_NET_AMOUNT",
                 "TAX_AMOUNT", "TAX_CODE", "NOMINAL_CODE"]
        payment = ["TYPE", "ACCOUNT_REF", "DATE", "POSTED_DATE", "INV_REF", "DETAILS", "BANK_CODE", "NET_AMOUNT"]
        return {
            "SalesRecord": ["ACCOUNT_REF", "NAME", "CONTACT_NAME", *ADDRESS_FIELDS, "E_MAIL", "TELEPHONE", "BALANCE",
                            "RECORD_MODIFY_DATE", "CURRENCY"],
            "CurrencyData": [self.currency_code_field, "EXCHANGE_RATE"],
            "StockRecord": ["STOCK_CODE", "QTY_IN_STOCK", "QTY_ALLOCATED", "SALES_PRICE", "RECORD_MODIFY_DATE"],
            "NominalRecord": [self.nominal_key_field],
            "BankRecord": [self.bank_key_field],
            "InvoiceRecord": ["INVOICE_NUMBER", "ACCOUNT_REF", "INVOICE_TYPE_CODE", self.reference_field,
                              *self.net_total_fields, *self.tax_total_fields],
            "SopRecord": ["ORDER_NUMBER", "ACCOUNT_REF", self.reference_field, self.net_total_fields[0],
                          self.tax_total_fields[0]],
            "HeaderData": ["TYPE", "INV_REF", "ACCOUNT_REF", "NET_AMOUNT", "AMOUNT_PAID", "FIRST_SPLIT", "LAST_SPLIT"],
            "SplitData": ["TRAN_NUMBER", "NET_AMOUNT", "TAX_AMOUNT", "AMOUNT_PAID"],
            "InvoicePost.Header": [*document_header, "INVOICE_DATE", "INVOICE_TYPE_CODE", "CURRENCY", "FOREIGN_RATE"],
            "InvoicePost.Items": items,
            "SopPost.Header": [*document_header, "ORDER_DATE", "CURRENCY", "FOREIGN_RATE"],
            "SopPost.Items": items,
            "TransactionPost.Header": payment,
            "TransactionPost.Items": ["TYPE", "NOMINAL_CODE", "DETAILS", "DATE", "NET_AMOUNT", "TAX_AMOUNT",
                                      "TAX_CODE"],
        }

    # -- session -------------------------------------------------------------------------
    def describe(self) -> dict:
        return {"sage_edition": self.edition, "sage_version": self.sage_version or self.sdo_version,
                "company": self.company}

    def check_versions(self) -> None:
        if self.sage_version and str(self.sage_version).split(".")[0] != self.sdo_version.split(".")[0]:
            raise VersionMismatch(
                f"SDO v{self.sdo_version} cannot open Sage 50 data v{self.sage_version}: install the SDO for "
                f"v{str(self.sage_version).split('.')[0]} and set sdo_version to match")

    def connect(self) -> None:
        if self.ws is not None:
            return
        self.check_versions()
        engine = self.dispatch(f"SDOEngine.{self.sdo_version.split('.')[0]}")
        ws = engine.Workspaces.Add(self.connection_name)
        path = self.company
        if not path.rstrip("\\/").upper().endswith("ACCDATA"):
            path = engine.SelectCompany(path)
        try:
            ok = ws.Connect(path, self.user, self.password, self.connection_name)
        except Exception:  # noqa: BLE001 - COM raises on a refused logon; LastError has the reason
            ok = False
        if not ok:
            raise self._connect_error(engine)
        self.engine, self.ws = engine, ws

    def _connect_error(self, engine) -> SageError:
        code, text = self._last_error(engine)
        if code == LOGON_NAME_IN_USE:
            return SameUserLoggedIn(f"Sage user {self.user!r} is already logged in: {text}", sage_code=code)
        if code == LOGON_EXCLUSIVE:
            return SageLocked(f"Sage data is in exclusive use (backup, year end, check data): {text}",
                              sage_code=code)
        if code == USER_COUNT_EXCEEDED:
            return SageBusy(f"no free Sage 50 user licence: {text}", sage_code=code)
        if code == WRONG_VERSION:
            return VersionMismatch(
                f"SDO v{self.sdo_version} does not match the version of the Sage 50 data ({text}); install the "
                f"SDO that ships with the installed Sage 50 and set sdo_version", sage_code=code)
        if code in (LOGON_FAIL, LOGON_PASSWORD):
            return SageValidationError(f"Sage refused user {self.user!r}: {text}", sage_code=code)
        if code == BAD_DATA_PATH:
            return SageValidationError(f"{self.company} is not a Sage 50 data folder: {text}", sage_code=code)
        if code == NOT_REGISTERED:
            return BackendUnavailable(f"SDO is not registered on this machine: {text}", sage_code=code)
        return SageError(f"Sage logon failed ({code}): {text}", sage_code=code)

    @staticmethod
    def _last_error(engine) -> tuple[int | None, str]:
        try:
            err = engine.LastError
            return int(err.Code), str(err.Text)
        except Exception:  # noqa: BLE001
            return None, "unknown error"

    def _write_error(self, what: str) -> SageError:
        code, text = self._last_error(self.engine)
        lowered = text.lower()
        if "exclusive" in lowered:
            return SageLocked(f"{what}: {text}", sage_code=code)
        if "lock" in lowered or "in use" in lowered:
            return RecordLocked(f"{what}: {text}", sage_code=code)
        if "busy" in lowered:
            return SageBusy(f"{what}: {text}", sage_code=code)
        return SageValidationError(f"{what}: {text}", sage_code=code)

    def disconnect(self) -> None:
        ws, self.ws, self.engine = self.ws, None, None
        self._currency_table = None  # currencies can be set up between sessions
        if ws is not None:
            try:
                ws.Disconnect()
            except Exception:  # noqa: BLE001 - logging out of a broken session must not raise
                logger.warning("SDO Disconnect failed", exc_info=True)

    def _new(self, name: str):
        if self.ws is None:
            raise SageValidationError("not connected to Sage")
        return self.ws.CreateObject(name)

    # -- customers -----------------------------------------------------------------------
    @staticmethod
    def _customer(rec) -> SageCustomer:
        return SageCustomer(account_ref=str(get(rec, "ACCOUNT_REF")), name=str(get(rec, "NAME") or ""),
                            email=str(get(rec, "E_MAIL") or ""), balance=_dec(get(rec, "BALANCE")))

    def _sales_record(self, account_ref: str):
        rec = self._new("SalesRecord")
        put(rec, "ACCOUNT_REF", account_ref)
        return rec if rec.Find(False) else None

    # -- currencies --------------------------------------------------------------------------
    # A Sage 50 UK account holds one currency: SalesRecord.CURRENCY, a 0-based number into the
    # currency table, whose record CURRENCY + 1 (CurrencyData) has the code and Sage's exchange
    # rate (sources: SURFACE.md). With Foreign Trader off every account is in the base currency.
    def _currencies(self) -> list[tuple[str, Decimal]]:
        """(ISO code, exchange rate) by currency number, read once per session."""
        if self._currency_table is None:
            table = []
            for rec in scan(self._new("CurrencyData")):
                rate = get(rec, "EXCHANGE_RATE")
                table.append((str(get(rec, self.currency_code_field) or "").strip().upper(),
                              Decimal(str(rate)) if rate not in (None, "") else Decimal("0")))
            self._currency_table = table
        return self._currency_table

    def _currency_number(self, code: str) -> int | None:
        for number, (known, _rate) in enumerate(self._currencies()):
            if known == code.upper():
                return number
        return None

    def _is_base(self, code: str, rate: Decimal) -> bool:
        return code == self.base_currency if self.base_currency else rate == 1

    def _account_currency(self, rec) -> str:
        """The ISO code of a customer account's currency ("" when its number has no code in Sage)."""
        number = int(get(rec, "CURRENCY") or 0)
        table = self._currencies()
        return table[number][0] if 0 <= number < len(table) else ""

    def _takes(self, rec, currency: str) -> bool:
        own = self._account_currency(rec)
        if own:
            return own == currency.upper()
        # A currency number with no code (a blank slot, an old company): only the base currency.
        return not self.base_currency or currency.upper() == self.base_currency

    def find_customer(self, *, account_ref=None, email=None, name=None, currency=None) -> SageCustomer | None:
        if account_ref:
            rec = self._sales_record(account_ref)
            return self._customer(rec) if rec is not None else None
        if not (email or name):
            return None
        for rec in scan(self._new("SalesRecord")):
            if email and str(get(rec, "E_MAIL") or "").strip().lower() == email.strip().lower():
                # One account per email and currency: a GBP account is not the EUR order's account.
                if currency and not self._takes(rec, currency):
                    continue
                return self._customer(rec)
            if not email and str(get(rec, "NAME") or "") == name:
                return self._customer(rec)
        return None

    def create_customer(self, customer: NewCustomer) -> SageCustomer:
        rec = self._new("SalesRecord")
        rec.AddNew()
        put(rec, "ACCOUNT_REF", customer.account_ref)
        put(rec, "NAME", (customer.company or customer.name)[:60])
        if customer.company and customer.name:
            put(rec, "CONTACT_NAME", customer.name[:30])
        address = [*customer.address_lines[:4], customer.postcode]
        for field_name, value in zip(ADDRESS_FIELDS, address, strict=False):
            if value:
                put(rec, field_name, value[:60])
        if customer.email:
            put(rec, "E_MAIL", customer.email)
        if customer.phone:
            put(rec, "TELEPHONE", customer.phone[:30])
        foreign = self._foreign_number(customer.currency, f"customer {customer.account_ref}")
        if foreign is not None:
            # Only a foreign account says so: a base-currency one keeps Sage's default, which also
            # works with Foreign Trader off (where changing CURRENCY is refused).
            put(rec, "CURRENCY", foreign)
        if not rec.Update():
            raise self._write_error(f"creating customer {customer.account_ref}")
        return SageCustomer(account_ref=customer.account_ref, name=customer.company or customer.name,
                            email=customer.email)

    def _missing(self, object_name: str, key_field: str, codes: list[str]) -> list[str]:
        missing = []
        for code in codes:
            rec = self._new(object_name)
            put(rec, key_field, code)
            if not rec.Find(False):
                missing.append(code)
        return missing

    def missing_stock_codes(self, codes: list[str]) -> list[str]:
        return self._missing("StockRecord", "STOCK_CODE", codes)

    def missing_nominal_codes(self, codes: list[str]) -> list[str]:
        return self._missing("NominalRecord", self.nominal_key_field, codes)

    def missing_bank_codes(self, codes: list[str]) -> list[str]:
        return self._missing("BankRecord", self.bank_key_field, codes)

    def missing_tax_codes(self, codes: list[int]) -> list[int]:
        # No public SDO object lists a company's tax codes; the posting objects take T0..T99 as a
        # number, so only the range can be checked here (agent doctor says so).
        return [c for c in codes if not 0 <= int(c) <= 99]

    # -- invoices and credit notes ---------------------------------------------------------
    def _find_documents(self, references: list[str], types: tuple[int, ...]) -> dict[str, PostedDocument]:
        """One walk of InvoiceRecord for any number of store references (a leased batch's: the
        walk is the cost, not the number of references), stopping once each one is found."""
        wanted, found = set(references), {}
        for rec in scan(self._new("InvoiceRecord")):
            reference = str(get(rec, self.reference_field) or "")
            if reference in wanted and reference not in found and int(get(rec, "INVOICE_TYPE_CODE")) in types:
                net = sum((_dec(get(rec, f)) for f in self.net_total_fields), Decimal("0.00"))
                tax = sum((_dec(get(rec, f)) for f in self.tax_total_fields), Decimal("0.00"))
                found[reference] = PostedDocument(number=str(get(rec, "INVOICE_NUMBER")), reference=reference,
                                                  account_ref=str(get(rec, "ACCOUNT_REF")), net_total=net,
                                                  tax_total=tax, gross_total=net + tax, outstanding=net + tax)
                if len(found) == len(wanted):
                    break
        return found

    def _find_document(self, reference: str, types: tuple[int, ...]) -> PostedDocument | None:
        return self._find_documents([reference], types).get(reference)

    def find_invoice(self, reference: str) -> PostedDocument | None:
        return self._find_document(reference, INVOICE_TYPES)

    def find_credit_note(self, reference: str) -> PostedDocument | None:
        return self._find_document(reference, CREDIT_TYPES)

    def _foreign_number(self, code: str, what: str) -> int | None:
        """The currency number of ``code`` when it is a foreign currency of this company; None for
        the base currency (or no currency). A currency Sage does not have is refused."""
        if not code or code.upper() == self.base_currency:
            return None
        number = self._currency_number(code)
        if number is None:
            if not self.base_currency and not any(known for known, _rate in self._currencies()):
                return None  # a currency table without codes: a one-currency company, checked on posting
            raise SageValidationError(
                f"{code.upper()} is not a currency of this Sage company, so {what} cannot be in it: set it up "
                f"under Settings > Currencies (Foreign Trader), or convert such orders to the base currency")
        known, rate = self._currencies()[number]
        return None if self._is_base(known, rate) else number

    def _check_currency(self, customer, spec: DocumentSpec) -> tuple[int, Decimal] | None:
        """Never a document in one currency on an account in another. Returns the currency number
        and Sage's rate when the document is in a foreign currency (the header then says so)."""
        if not spec.currency:
            return None
        if not self._takes(customer, spec.currency):
            own = self._account_currency(customer) or self.base_currency or "another currency"
            raise SageValidationError(
                f"customer account {spec.account_ref} is in {own}; {spec.reference} is in {spec.currency.upper()} and "
                f"cannot be posted to it. Each currency needs its own account for this customer (or convert "
                f"the order to the base currency)")
        number = int(get(customer, "CURRENCY") or 0)
        table = self._currencies()
        code, rate = table[number] if 0 <= number < len(table) else ("", Decimal("1"))
        return None if self._is_base(code or self.base_currency, rate) else (number, rate)

    def find_invoices(self, references: list[str]) -> dict[str, PostedDocument]:
        return self._find_documents(references, INVOICE_TYPES)

    def find_credit_notes(self, references: list[str]) -> dict[str, PostedDocument]:
        return self._find_documents(references, CREDIT_TYPES)

    def _fill_header(self, header, spec: DocumentSpec, date_field: str) -> None:
        # SDO does not copy the customer's name and address onto the document as the UI does.
        customer = self._sales_record(spec.account_ref)
        if customer is None:
            raise SageValidationError(f"customer account {spec.account_ref} is not in Sage")
        foreign = self._check_currency(customer, spec)
        put(header, "ACCOUNT_REF", spec.account_ref)
        put(header, "NAME", get(customer, "NAME"))
        for field_name in ADDRESS_FIELDS:
            put(header, field_name, get(customer, field_name))
        put(header, date_field, _com_date(spec.date))
        put(header, self.reference_field, spec.reference)
        if spec.notes:
            put(header, self.notes_field, spec.notes[:60])
        if spec.carriage is not None:
            put(header, "CARR_NET", spec.carriage.net)
            put(header, "CARR_TAX", spec.carriage.tax)
            put(header, "CARR_TAX_CODE", spec.carriage.tax_code)
            if spec.carriage.nominal_code:
                put(header, "CARR_NOM_CODE", spec.carriage.nominal_code)
        if foreign is not None:
            # As working SDO code does for a foreign customer: the account's currency number and
            # Sage's own rate for it on the document header.
            put(header, "CURRENCY", foreign[0])
            put(header, "FOREIGN_RATE", foreign[1])

    def _fill_items(self, post, spec: DocumentSpec) -> None:
        for line in spec.lines:
            item = post.Items.Add()
            put(item, "STOCK_CODE", line.stock_code or self.non_stock_code)
            put(item, "DESCRIPTION", line.description[:60])
            put(item, "QTY_ORDER", line.quantity)
            put(item, "UNIT_PRICE", line.unit_price)
            put(item, "NET_AMOUNT", line.net)
            put(item, "FULL_NET_AMOUNT", line.net)
            put(item, "TAX_AMOUNT", line.tax)
            put(item, "TAX_CODE", line.tax_code)
            if line.nominal_code:
                put(item, "NOMINAL_CODE", line.nominal_code)

    def _post_document(self, spec: DocumentSpec, ledger_type: int, type_code: int, finder) -> PostedDocument:
        post = self._new("InvoicePost")
        # Two different enums: the post's Type is the ledger (invoice / credit), the header's
        # INVOICE_TYPE_CODE the document kind that InvoiceRecord keeps and find_* filters on.
        post.Type = ledger_type
        self._fill_header(post.Header, spec, "INVOICE_DATE")
        put(post.Header, "INVOICE_TYPE_CODE", type_code)
        self._fill_items(post, spec)
        if not post.Update():
            raise self._write_error(f"posting {spec.reference}")
        # The number Sage gave is read back from InvoiceRecord (setting it on the header is [U]).
        posted = finder(spec.reference)
        if posted is None:
            raise SageError(f"{spec.reference} was posted but cannot be found in InvoiceRecord")
        return posted

    def create_invoice(self, spec: DocumentSpec) -> PostedDocument:
        return self._post_document(spec, SDO_LEDGER_INVOICE, SDO_PRODUCT_INVOICE, self.find_invoice)

    def create_credit_note(self, spec: DocumentSpec) -> PostedDocument:
        return self._post_document(spec, SDO_LEDGER_CREDIT, SDO_PRODUCT_CREDIT, self.find_credit_note)

    # -- sales orders ------------------------------------------------------------------------
    def find_sales_order(self, reference: str) -> PostedDocument | None:
        for rec in scan(self._new("SopRecord")):
            if str(get(rec, self.reference_field) or "") == reference:
                net, tax = _dec(get(rec, self.net_total_fields[0])), _dec(get(rec, self.tax_total_fields[0]))
                return PostedDocument(number=str(get(rec, "ORDER_NUMBER")), reference=reference,
                                      account_ref=str(get(rec, "ACCOUNT_REF")), net_total=net, tax_total=tax,
                                      gross_total=net + tax)
        return None

    def create_sales_order(self, spec: DocumentSpec) -> PostedDocument:
        post = self._new("SopPost")
        self._fill_header(post.Header, spec, "ORDER_DATE")
        self._fill_items(post, spec)
        if not post.Update():
            raise self._write_error(f"posting sales order {spec.reference}")
        posted = self.find_sales_order(spec.reference)
        if posted is None:
            raise SageError(f"sales order {spec.reference} was posted but cannot be found in SopRecord")
        return posted

    # -- receipts, refunds, allocation ---------------------------------------------------------
    def _customer_headers(self, account_ref: str | None):
        """The customer's audit-trail headers (SalesRecord.Link), or the whole trail without one."""
        if account_ref:
            rec = self._sales_record(account_ref)
            return scan(rec.Link) if rec is not None else iter(())
        return scan(self._new("HeaderData"))

    def _find_payment(self, reference: str, account_ref: str | None, types: tuple[int, ...]):
        for hd in self._customer_headers(account_ref):
            if int(get(hd, "TYPE")) in types and str(get(hd, "INV_REF") or "") == reference:
                return PostedPayment(id=str(hd.RecordNumber), reference=reference,
                                     account_ref=str(get(hd, "ACCOUNT_REF")), amount=_dec(get(hd, "NET_AMOUNT")),
                                     allocated=_dec(get(hd, "AMOUNT_PAID")))
        return None

    def find_receipt(self, reference: str, account_ref: str | None = None) -> PostedPayment | None:
        return self._find_payment(reference, account_ref, (SDO_SR, SDO_SA))

    def _post_payment(self, spec: PaymentSpec, trans_type: int) -> PostedPayment:
        post = self._new("TransactionPost")
        header = post.Header
        put(header, "TYPE", trans_type)
        put(header, "ACCOUNT_REF", spec.account_ref)
        put(header, "DATE", _com_date(spec.date))
        put(header, "POSTED_DATE", _com_date(dt.date.today()))
        put(header, "INV_REF", spec.reference)
        put(header, "DETAILS", spec.details[:60])
        put(header, "BANK_CODE", spec.bank_nominal)
        put(header, "NET_AMOUNT", spec.amount)
        split = post.Items.Add()
        put(split, "TYPE", trans_type)
        put(split, "NOMINAL_CODE", spec.bank_nominal)
        put(split, "DETAILS", spec.details[:60])
        put(split, "DATE", _com_date(spec.date))
        put(split, "NET_AMOUNT", spec.amount)
        put(split, "TAX_AMOUNT", Decimal("0.00"))
        put(split, "TAX_CODE", 9)  # T9: bank transactions are outside the scope of VAT
        if not post.Update():
            raise self._write_error(f"posting {spec.reference}")
        return PostedPayment(id=str(post.PostingNumber), reference=spec.reference, account_ref=spec.account_ref,
                             amount=spec.amount)

    def create_receipt(self, spec: PaymentSpec) -> PostedPayment:
        return self._post_payment(spec, SDO_SR)

    def _allocate(self, payment: PostedPayment, target_type: int, target_ref: str, amount: Decimal,
                  date: dt.date) -> Decimal:
        """AllocatePayment works per split of the target transaction, not per document."""
        target = None
        for hd in self._customer_headers(payment.account_ref):
            if int(get(hd, "TYPE")) == target_type and str(get(hd, "INV_REF") or "") == target_ref:
                target = (int(get(hd, "FIRST_SPLIT")), int(get(hd, "LAST_SPLIT")))
                break
        if target is None:
            # InvoicePost documents reach the ledger only when someone runs "Update Ledgers" in
            # Sage; until then the payment stays unallocated and the rerun allocates it.
            logger.warning("%s %s is not on the ledger yet; %s left unallocated", "document", target_ref,
                           payment.reference)
            return Decimal("0.00")
        own = self._new("HeaderData")
        own.Read(int(payment.id))
        payment_split = int(get(own, "FIRST_SPLIT"))
        split = self._new("SplitData")
        remaining = amount
        for number in range(target[0], target[1] + 1):
            if remaining <= 0:
                break
            split.Read(number)
            open_amount = _dec(get(split, "NET_AMOUNT")) + _dec(get(split, "TAX_AMOUNT")) - \
                _dec(get(split, "AMOUNT_PAID"))
            part = min(remaining, open_amount)
            if part <= 0:
                continue
            poster = self._new("TransactionPost")
            if not poster.AllocatePayment(int(get(split, "TRAN_NUMBER")), payment_split, part, _com_date(date)):
                raise self._write_error(f"allocating {payment.reference} to {target_ref}")
            remaining -= part
        return amount - remaining

    def allocate_receipt(self, receipt: PostedPayment, invoice: PostedDocument, amount: Decimal,
                         date: dt.date) -> PostedPayment:
        allocated = self._allocate(receipt, SDO_SI, invoice.number, amount, date)
        receipt.allocated += allocated
        if allocated > 0:
            receipt.allocated_to = invoice.number
        return receipt

    def find_refund(self, reference: str, account_ref: str | None = None) -> PostedPayment | None:
        return self._find_payment(reference, account_ref, (self.refund_trans_type,))

    def create_refund(self, spec: PaymentSpec, credit_note: PostedDocument) -> PostedPayment:
        paid = self._post_payment(spec, self.refund_trans_type)
        return self.allocate_refund(paid, credit_note, spec.amount, spec.date)

    def allocate_refund(self, refund: PostedPayment, credit_note: PostedDocument, amount: Decimal,
                        date: dt.date) -> PostedPayment:
        allocated = self._allocate(refund, SDO_SC, credit_note.number, amount, date)
        refund.allocated += allocated
        if allocated > 0:
            refund.allocated_to = credit_note.number
        return refund

    # -- change polling ------------------------------------------------------------------
    def read_changes(self, kind: str, since: str | None) -> list[dict]:
        since_at = dt.datetime.fromisoformat(since) if since else None
        table = {"stock": "StockRecord", "price": "StockRecord", "customer": "SalesRecord"}.get(kind)
        if table is None:
            raise SageNotFound(f"unknown change kind {kind!r}")
        items = []
        for rec in scan(self._new(table)):
            modified = _as_datetime(get(rec, "RECORD_MODIFY_DATE"))
            if since_at is not None and modified is not None and _naive(modified) < _naive(since_at):
                continue
            stamp = modified.isoformat() if modified else None
            if kind == "stock":
                items.append({"stock_code": str(get(rec, "STOCK_CODE")),
                              "in_stock": _qty(get(rec, "QTY_IN_STOCK")),
                              "allocated": _qty(get(rec, "QTY_ALLOCATED")), "modified_at": stamp})
            elif kind == "price":
                items.append({"stock_code": str(get(rec, "STOCK_CODE")), "price": str(_dec(get(rec, "SALES_PRICE"))),
                              "modified_at": stamp})
            else:
                items.append({"account_ref": str(get(rec, "ACCOUNT_REF")), "email": str(get(rec, "E_MAIL") or ""),
                              "name": str(get(rec, "NAME") or ""), "modified_at": stamp})
        items.sort(key=lambda i: i["modified_at"] or "")
        return items


def _as_datetime(value) -> dt.datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def _naive(value: dt.datetime) -> dt.datetime:
    # Sage stores local wall-clock time; pywin32 hands back an aware datetime in some versions.
    return value.replace(tzinfo=None)


def _qty(value) -> str:
    return format(Decimal(str(value or 0)).normalize(), "f")
