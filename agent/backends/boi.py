"""Sage 100 through the Business Object Interface (BOI): ProvideX COM, ``pvxcom.exe``.

The object sequence (reference/sage.md §3b, traced member by member in ``SURFACE.md``)::

    script = Dispatch("ProvideX.Script"); script.Init(r"\\\\server\\MAS90\\Home")
    session = script.NewObject("SY_Session")
    session.nSetUser(user, password); session.nSetCompany("ABC")
    session.nSetDate("S/O", "YYYYMMDD"); session.nSetModule("S/O")
    session.nSetProgram(session.nLookupTask("SO_SalesOrder_ui"))
    so = script.NewObject("SO_SalesOrder_bus", session)   # ... nSetKeyValue / nSetKey / nSetValue / nWrite
    so.DropObject(); session.nCleanup(); session.DropObject()

Conventions: methods are prefixed by what they return (``n`` number, ``s`` string, ``o`` object);
string fields end in ``$``; ``1`` is success and ``0`` failure with the reason in ``sLastErrorMsg``.
pywin32 returns a by-reference argument as a tuple after the return value
(``rc, value = obj.nGetValue("Field$", "")``).

Sessions: one ``SY_Session`` per agent connection, kept open between jobs (the runner connects
around each batch) and recycled after ``max_session_age_seconds``; every business object is
dropped right after its use and the session is cleaned up (``nCleanup`` + ``DropObject``) on
disconnect, because a leaked session keeps holding a concurrent-user licence seat.
"Record in use" and licence exhaustion are retry-later errors carrying Sage's own message.

BOI needs no interactive desktop: the agent can run as a Windows service (agent/README.md).
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from decimal import Decimal

from agent.backends.sage100 import Sage100Backend
from agent.errors import (
    BackendUnavailable,
    RecordLocked,
    SageBusy,
    SageError,
    SageNotFound,
    SageValidationError,
)

WINDOWS_ONLY = ("the boi backend needs Windows with Sage 100 (ProvideX COM, pvxcom.exe) installed; use --backend "
                "sage100sim on Linux")

# Business object → (task it is opened under, module whose date is set). The task names are the
# UI programs BOI sessions run as (nLookupTask); security is checked per task.
TASKS = {
    "SO_SalesOrder_bus": ("SO_SalesOrder_ui", "S/O"),
    "SO_SalesOrder_svc": ("SO_SalesOrder_ui", "S/O"),
    "AR_Customer_bus": ("AR_Customer_ui", "A/R"),
    "AR_Customer_svc": ("AR_Customer_ui", "A/R"),
    "CI_ItemCode_svc": ("CI_ItemCode_ui", "C/I"),
    "IM_ItemWarehouse_svc": ("IM_ItemWarehouse_ui", "I/M"),
}
CUSTOMER_STRINGS = ("CustomerName", "AddressLine1", "AddressLine2", "AddressLine3", "City", "State", "ZipCode",
                    "CountryCode", "TelephoneNo", "EmailAddress")
HEADER_NUMBERS = ("FreightAmt", "DiscountAmt")
LINE_NUMBERS = ("QuantityOrdered", "UnitPrice", "ExtensionAmt")
CENT = Decimal("0.01")
LOCKED_WORDS = ("in use", "locked", "is being accessed")
LICENCE_WORDS = ("licen", "user limit", "maximum number of users", "no more users")


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
        raise BackendUnavailable(f"cannot create {progid}: is Sage 100 installed on this machine and pvxcom.exe "
                                 f"registered (DCOM)? {exc}") from exc


def sage_error(what: str, message: str) -> SageError:
    """Sage's sLastErrorMsg → the agent's error: a locked record and a full licence count are
    retried later; anything else is the record's problem, in Sage's words."""
    text = f"{what}: {message or 'Sage 100 gave no reason'}"
    lowered = (message or "").lower()
    if any(word in lowered for word in LOCKED_WORDS):
        return RecordLocked(text)
    if any(word in lowered for word in LICENCE_WORDS):
        return SageBusy(text)
    return SageValidationError(text)


def _value(answer):
    """pywin32 answers a by-reference call with (return code, value)."""
    if isinstance(answer, tuple):
        return answer[0], answer[1]
    return answer, None


def _string(field: str) -> str:
    return field if field.endswith("$") else f"{field}$"


class BoiBackend(Sage100Backend):
    name = "boi"

    def __init__(self, company: str, *, home_path: str = "", user: str = "", password: str = "",
                 session_date: dt.date | None = None, max_session_age_seconds: float = 4 * 3600,
                 price_level: str = "", warehouses: list[str] | None = None, dispatch=None, **_ignored):
        if not home_path:
            raise BackendUnavailable("the boi backend needs home_path: the MAS90\\Home folder of the Sage 100 "
                                     "server (backend option home_path)")
        self.company_code = company
        self.home_path = home_path
        self.user, self.password = user, password
        self.session_date = session_date
        self.max_session_age_seconds = max_session_age_seconds
        self.change_options = {"price_level": price_level, "warehouses": list(warehouses or [])}
        self._dispatch = dispatch or _default_dispatch
        self._script = None
        self._session = None
        self._opened_at = 0.0

    # -- session -------------------------------------------------------------------------------
    def connect(self) -> None:
        if self._session is not None and time.monotonic() - self._opened_at < self.max_session_age_seconds:
            return
        self.disconnect()
        script = self._dispatch("ProvideX.Script")
        script.Init(self.home_path)
        session = script.NewObject("SY_Session")
        try:
            if not session.nSetUser(self.user, self.password):
                raise sage_error(f"Sage 100 refused user {self.user!r}", session.sLastErrorMsg)
            if not session.nSetCompany(self.company_code):
                raise sage_error(f"Sage 100 refused company {self.company_code!r} (is \"Allow External Access\" on "
                                 "in Company Maintenance?)", session.sLastErrorMsg)
        except BaseException:
            self._cleanup(session)
            raise
        self._script, self._session, self._opened_at = script, session, time.monotonic()

    def disconnect(self) -> None:
        session, self._session, self._script = self._session, None, None
        if session is not None:
            self._cleanup(session)

    @staticmethod
    def _cleanup(session) -> None:
        try:
            session.nCleanup()
        finally:
            session.DropObject()

    def describe(self) -> dict:
        return {**super().describe(), "company": self.company_code}

    def _open(self, object_name: str):
        """A business object under its task, with its module's date: security and the posting
        date are per module in Sage 100 (a missing nSetDate gives period errors)."""
        if self._session is None:
            raise BackendUnavailable("no Sage 100 session: connect first")
        task, module = TASKS[object_name]
        date = (self.session_date or dt.date.today()).strftime("%Y%m%d")
        session = self._session
        if not session.nSetDate(module, date) or not session.nSetModule(module):
            raise sage_error(f"Sage 100 refused module {module}", session.sLastErrorMsg)
        if not session.nSetProgram(session.nLookupTask(task)):
            raise sage_error(f"Sage 100 refused task {task}", session.sLastErrorMsg)
        return self._script.NewObject(object_name, session)

    def _get(self, obj, field: str):
        rc, value = _value(obj.nGetValue(field, "" if field.endswith("$") else 0))
        if not rc:
            raise sage_error(f"reading {field}", obj.sLastErrorMsg)
        return value

    def _find(self, object_name: str, keys: dict[str, str], fields: tuple[str, ...]) -> dict | None:
        obj = self._open(object_name)
        try:
            for key, value in keys.items():
                obj.nSetKeyValue(_string(key), value)
            if obj.nFind() != 1:
                return None
            return {field.rstrip("$"): self._get(obj, field) for field in fields}
        finally:
            obj.DropObject()

    def _browse(self, object_name: str, fields: tuple[str, ...]):
        """Every record of a read-only (_svc) object: nMoveFirst / nMoveNext until nEOF."""
        obj = self._open(object_name)
        try:
            obj.nMoveFirst()
            while not obj.nEOF:
                yield {field.rstrip("$"): self._get(obj, field) for field in fields}
                obj.nMoveNext()
        finally:
            obj.DropObject()

    # -- customers -------------------------------------------------------------------------------
    CUSTOMER_READ = ("ARDivisionNo$", "CustomerNo$", *(f"{f}$" for f in CUSTOMER_STRINGS))

    def find_customer(self, division: str, customer_no: str) -> dict | None:
        return self._find("AR_Customer_svc", {"ARDivisionNo": division, "CustomerNo": customer_no},
                          self.CUSTOMER_READ)

    def find_customer_by_email(self, email: str) -> dict | None:
        wanted = email.strip().lower()
        return next((row for row in self._browse("AR_Customer_svc", self.CUSTOMER_READ)
                     if (row["EmailAddress"] or "").strip().lower() == wanted), None)

    def _next_customer_no(self, division: str, numbering: str) -> str:
        """Our own numbering rule: the prefix and one more than the highest number under it."""
        width = 7 - len(numbering)
        used = [row["CustomerNo"][len(numbering):] for row in self._browse("AR_Customer_svc",
                                                                             ("ARDivisionNo$", "CustomerNo$"))
                if row["ARDivisionNo"] == division and row["CustomerNo"].startswith(numbering)]
        highest = max((int(rest) for rest in used if rest.isdigit()), default=0)
        return f"{numbering}{highest + 1:0{width}d}"

    def create_customer(self, division: str, fields: dict, *, numbering: str = "") -> dict:
        customer_no = self._next_customer_no(division, numbering)
        self._write_customer(division, customer_no, fields, new=True)
        return {"ARDivisionNo": division, "CustomerNo": customer_no, **fields}

    def update_customer(self, division: str, customer_no: str, fields: dict) -> None:
        self._write_customer(division, customer_no, fields, new=False)

    def _write_customer(self, division: str, customer_no: str, fields: dict, *, new: bool) -> None:
        bus = self._open("AR_Customer_bus")
        try:
            bus.nSetKeyValue("ARDivisionNo$", division)
            bus.nSetKeyValue("CustomerNo$", customer_no)
            found = bus.nSetKey()  # 2: a new record, 1: an existing one, 0: refused (e.g. in use)
            if found == 0 or (found == 1 and new) or (found == 2 and not new):
                reason = bus.sLastErrorMsg or ("the customer already exists" if new else "the customer is not on file")
                raise sage_error(f"customer {division}-{customer_no}", reason)
            for field, value in fields.items():
                if field not in CUSTOMER_STRINGS:
                    raise SageValidationError(f"AR_Customer has no field {field!r} in this agent")
                if not bus.nSetValue(_string(field), str(value)):
                    raise sage_error(f"customer {division}-{customer_no} {field}", bus.sLastErrorMsg)
            if bus.nWrite() != 1:
                raise sage_error(f"customer {division}-{customer_no}", bus.sLastErrorMsg)
        finally:
            bus.DropObject()

    # -- items -----------------------------------------------------------------------------------
    def missing_item_codes(self, codes: list[str]) -> list[str]:
        return [code for code in codes if not code.startswith("/")
                and self._find("CI_ItemCode_svc", {"ItemCode": code}, ("ItemCode$",)) is None]

    # -- sales orders ----------------------------------------------------------------------------
    ORDER_READ = ("SalesOrderNo$", "CustomerPONo$", "ARDivisionNo$", "CustomerNo$", "TaxableAmt", "NonTaxableAmt",
                  "FreightAmt", "DiscountAmt", "SalesTaxAmt")

    def find_sales_order(self, sales_order_no: str) -> dict | None:
        found = self._find("SO_SalesOrder_svc", {"SalesOrderNo": sales_order_no}, self.ORDER_READ)
        return self._with_totals(found) if found else None

    @staticmethod
    def _with_totals(row: dict) -> dict:
        amounts = {name: Decimal(str(row[name] or 0)) for name in ("TaxableAmt", "NonTaxableAmt", "FreightAmt",
                                                                    "DiscountAmt", "SalesTaxAmt")}
        total = (amounts["TaxableAmt"] + amounts["NonTaxableAmt"] + amounts["FreightAmt"] - amounts["DiscountAmt"]
                 + amounts["SalesTaxAmt"])
        return {**row, "order_total": total, "sales_tax": amounts["SalesTaxAmt"]}

    def create_sales_order(self, header: dict, lines: list[dict]) -> dict:
        number = header["SalesOrderNo"]
        so = self._open("SO_SalesOrder_bus")
        try:
            so.nSetKeyValue("SalesOrderNo$", number)
            if so.nSetKey() != 2:
                raise sage_error(f"sales order {number}", so.sLastErrorMsg or "the sales order is already on file")
            # Customer first: it fills the header's defaults (terms, ship-to, tax schedule) that the
            # fields after it then override.
            for field in ("ARDivisionNo", "CustomerNo", *[f for f in header if f not in ("SalesOrderNo",
                                                                                            "ARDivisionNo",
                                                                                            "CustomerNo")]):
                self._set(so, field, header[field], numeric=field in HEADER_NUMBERS, what=f"sales order {number}")
            lines_object = so.oLines
            for index, line in enumerate(lines, start=1):
                if not lines_object.nAddLine():
                    raise sage_error(f"sales order {number} line {index}", lines_object.sLastErrorMsg)
                # ItemCode first: it fills the line's defaults (description, unit of measure, price).
                for field in ("ItemCode", *[f for f in line if f != "ItemCode"]):
                    self._set(lines_object, field, line[field], numeric=field in LINE_NUMBERS,
                              what=f"sales order {number} line {index}")
                if lines_object.nWrite() != 1:
                    raise sage_error(f"sales order {number} line {index}", lines_object.sLastErrorMsg)
            if so.nWrite() != 1:
                message = so.sLastErrorMsg
                so.nClear()
                raise sage_error(f"sales order {number}", message)
        finally:
            so.DropObject()
        found = self.find_sales_order(number)
        if found is None:
            raise SageNotFound(f"sales order {number} was written but cannot be read back")
        return found

    @staticmethod
    def _set(obj, field: str, value, *, numeric: bool, what: str) -> None:
        if value in (None, ""):
            return
        answer = obj.nSetValue(field, float(Decimal(str(value)))) if numeric else obj.nSetValue(_string(field),
                                                                                                   str(value))
        if not answer:
            raise sage_error(f"{what} {field}", obj.sLastErrorMsg)

    # -- product data out ------------------------------------------------------------------------
    def read_changes(self, kind: str, since: str | None, options: dict | None = None) -> list[dict]:
        """Records stamped (DateUpdated$ + TimeUpdated$) after ``since``, an ISO moment; browsed
        in full, since BOI browse filters are not publicly documented."""
        options = options or self.change_options
        after = _stamp_of(since) if since else ""
        if kind == "price":
            if options.get("price_level"):
                # Price levels live in Sage 100's pricing tables (IM_PriceCode), whose BOI object and
                # fields no public source shows: the standard price is what this backend reads.
                raise SageValidationError("the boi backend reads the standard price only; clear price_level, or "
                                          "use the standard price as the store's price")
            rows = [row for row in self._browse("CI_ItemCode_svc", ("ItemCode$", "StandardUnitPrice",
                                                                    "DateUpdated$", "TimeUpdated$"))
                    if f"{row['DateUpdated']}:{row['TimeUpdated']}" > after]
            return [{"stock_code": row["ItemCode"], "price": str(Decimal(str(row["StandardUnitPrice"] or 0)).quantize(CENT)),
                     "modified_at": _moment_of(row["DateUpdated"], row["TimeUpdated"])} for row in rows]
        if kind == "customer":
            return []  # customers flow from the store to Sage 100, not back
        if kind != "stock":
            raise SageValidationError(f"read_changes kind must be 'stock' or 'price', not {kind!r}")
        warehouses = set(options.get("warehouses") or [])
        items: dict[str, dict] = {}
        for row in self._browse("IM_ItemWarehouse_svc", ("ItemCode$", "WarehouseCode$", "QuantityOnHand",
                                                         "QuantityOnSalesOrder", "DateUpdated$", "TimeUpdated$")):
            if warehouses and row["WarehouseCode"] not in warehouses:
                continue
            item = items.setdefault(row["ItemCode"], {"stock_code": row["ItemCode"], "in_stock": Decimal(0),
                                                      "allocated": Decimal(0), "stamp": ""})
            item["in_stock"] += Decimal(str(row["QuantityOnHand"] or 0))
            item["allocated"] += Decimal(str(row["QuantityOnSalesOrder"] or 0))
            item["stamp"] = max(item["stamp"], f"{row['DateUpdated']}:{row['TimeUpdated']}")
        return [{"stock_code": item["stock_code"], "in_stock": str(item["in_stock"]),
                 "allocated": str(item["allocated"]), "modified_at": _moment_of(*item["stamp"].split(":"))}
                for item in sorted(items.values(), key=lambda i: i["stamp"]) if item["stamp"] > after]


def _moment_of(date: str, seconds: str) -> str:
    day = dt.datetime.strptime(date, "%Y%m%d").replace(tzinfo=dt.UTC)
    return (day + dt.timedelta(seconds=float(seconds or 0))).isoformat(timespec="microseconds")


def _stamp_of(moment: str) -> str:
    when = dt.datetime.fromisoformat(moment).astimezone(dt.UTC)
    seconds = when.hour * 3600 + when.minute * 60 + when.second + when.microsecond / 1_000_000
    return f"{when:%Y%m%d}:{seconds:011.5f}"
