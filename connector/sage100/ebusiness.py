"""Sage 100 over eBusiness Web Services (SOAP 1.1, no agent): sales orders and AR customers.

The poster API the flow calls:

    posted = post_sales_order(connection, document)       # -> connector.sage100.transport.PostResult
    ref = ensure_customer(connection, customer, division="01", numbering="W")   # -> CustomerRef

``connection`` is a ``SageConnection`` (server URL of the service, 3-character company code, user,
encrypted password, TLS settings); ``document`` a ``mlcommon.ledger.SalesOrder`` with its Sage 100
fields (``sales_order_no``, ``ar_division_no``, ``customer_no``, ship-to, …) as the Sage 100 mapper
builds it.

Exactly once, without an idempotency key (Sage 100 has none):

* every sales order is looked up by our own ``SalesOrderNo`` (derived from the store order) before
  it is created, and a ``WS_AlreadyExists`` on create is read back as "existed" (two workers, or a
  create that timed out after Sage applied it);
* a found order whose ``CustomerPONo`` is another store order's is refused, not taken for ours;
* a customer without a number yet gets one derived from the buyer's email (``customer_no_for_email``)
  rather than ``GetNextCustomerNo``: two orders from one email at once then name the same customer,
  and the second create's ``WS_AlreadyExists`` is read back; a number already held by another email
  moves to the next candidate. ``GetNextCustomerNo`` advances Sage's counter on every call, so a
  retried create would make a second customer.

Every call is stateless: ``logon`` {Username, Password} and the company code travel on each one.
SOAP faults become the typed errors of ``mlcommon.http`` (``ebusiness_faults``): retryable (5xx,
timeouts, records in use) or permanent with what to change. eBusiness Web Services has no items or
inventory: prices and stock out of Sage 100 need the agent (BOI) even when orders go over SOAP.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import requests
import zeep
import zeep.exceptions
import zeep.helpers
from zeep.transports import Transport
from zeep.wsdl.bindings.soap import Soap11Binding

from mlcommon.http import PermanentError, RetryableError

from . import tls
from .ebusiness_faults import (
    SageAlreadyExists,
    SageRecordNotFound,
    error_for_connection,
    error_for_fault,
    error_for_http,
)
from .transport import PostResult

CENT = Decimal("0.01")
COMPANY_CODE_LENGTH = 3
CUSTOMER_NO_LENGTH = 7  # fits AR_Customer.CustomerNo$ on every Sage 100 version (20 on recent ones)
DEFAULT_DIVISION = "01"
DEFAULT_CUSTOMER_PREFIX = "W"
COMMENT_ITEM = "/C"  # a Sage 100 comment line
CUSTOMER_NUMBER_CANDIDATES = 6
# AR_Customer field lengths: longer values are cut here rather than refused by Sage (CI_CharLength).
CUSTOMER_FIELD_LENGTHS = {
    "CustomerName": 30, "AddressLine1": 30, "AddressLine2": 30, "AddressLine3": 30, "City": 20, "State": 2,
    "ZipCode": 10, "CountryCode": 3, "TelephoneNo": 17, "EmailAddress": 250,
}
SHIP_TO_FIELD_LENGTHS = {
    "ShipToName": 30, "ShipToAddress1": 30, "ShipToAddress2": 30, "ShipToAddress3": 30, "ShipToCity": 20,
    "ShipToState": 2, "ShipToZipCode": 10, "ShipToCountryCode": 3,
}
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class CustomerRef:
    """An AR customer in Sage 100, and whether it was there before this call."""

    ar_division_no: str
    customer_no: str
    existed: bool

    @property
    def account_ref(self) -> str:
        """How record links keep it: ``01-ABF``."""
        return f"{self.ar_division_no}-{self.customer_no}"


DEFAULT_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class EBusinessSettings:
    """Everything a call needs, taken from a ``SageConnection`` once (``for_connection``)."""

    service_url: str  # the service endpoint; its WSDL is at ``service_url + "?wsdl"``
    company_code: str
    username: str
    password: str = field(repr=False)  # never in a log line or an error's repr
    verify: bool | str = True  # requests' verify: True, False or a trust-store path
    timeout: float = 30.0

    @classmethod
    def for_connection(cls, connection, *, timeout: float | None = None) -> EBusinessSettings:
        # Connect and read timeout of every call; SAGE100_SOAP_TIMEOUT_SECONDS shortens it for a run
        # that makes answers late on purpose (make chaos), where a 30 s wait would only slow it down.
        if timeout is None:
            timeout = float(os.environ.get("SAGE100_SOAP_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT_SECONDS)
        if not (connection.server_url or "").strip():
            raise PermanentError(f"Sage connection '{connection}' has no server URL: enter the eBusiness Web "
                                 "Services address (https://…).")
        code = (connection.company_code or "").strip().upper()
        if len(code) != COMPANY_CODE_LENGTH:
            raise PermanentError(f"Sage connection '{connection}': the Sage 100 company code must be 3 characters "
                                 f"(got {code!r}).")
        if not connection.username:
            raise PermanentError(f"Sage connection '{connection}' has no user name for eBusiness Web Services.")
        try:
            verify = tls.verify_setting(verify_tls=connection.verify_tls, ca_pem=connection.tls_ca_pem)
        except ValueError as exc:
            raise PermanentError(f"Sage connection '{connection}': the uploaded certificate is unusable: {exc}.") \
                from exc
        return cls(service_url=connection.server_url.strip(), company_code=code, username=connection.username,
                   password=connection.password or "", verify=verify, timeout=timeout)


class _Transport(Transport):
    """zeep reads any XML answer as SOAP, so an IIS or proxy error page (``<html>…``, 502/503) would
    come back as an "Unknown fault" and be taken for Sage refusing the call. An error status whose
    body is not XML is a transport error here, classed by its status (5xx: retryable)."""

    def post(self, address, message, headers):
        response = super().post(address, message, headers)
        content_type = (response.headers.get("Content-Type") or "").lower()
        if response.status_code >= 400 and "xml" not in content_type:
            raise zeep.exceptions.TransportError(f"HTTP {response.status_code}", status_code=response.status_code,
                                                 content=response.content)
        return response


# -- zeep clients, one per (URL, trust) per process ------------------------------------------------

_clients: OrderedDict[tuple, zeep.Client] = OrderedDict()
_clients_lock = threading.Lock()
MAX_CACHED_CLIENTS = 32


def _zeep_client(settings: EBusinessSettings) -> zeep.Client:
    """Parsing a WSDL costs milliseconds to seconds; each worker keeps the parsed client per URL and
    trust setting. The service proxy is bound to the configured URL, not to the WSDL's
    ``soap:address`` (IIS often writes its own machine name there)."""
    key = (settings.service_url, settings.verify, settings.timeout)
    with _clients_lock:
        client = _clients.get(key)
        if client is not None:
            _clients.move_to_end(key)
            return client
    session = tls.TrustSession(settings.verify)
    transport = _Transport(session=session, timeout=settings.timeout, operation_timeout=settings.timeout)
    wsdl = f"{settings.service_url}?wsdl"
    try:
        client = zeep.Client(wsdl, transport=transport, settings=zeep.Settings(strict=True))
    except zeep.exceptions.TransportError as exc:
        raise error_for_http(exc.status_code, operation="loading the WSDL", url=wsdl, body=str(exc.content or "")) from None
    except requests.RequestException as exc:
        raise error_for_connection(exc, operation="loading the WSDL", url=wsdl, tls=tls.describe(settings.verify)) from None
    except (zeep.exceptions.Error, ValueError) as exc:  # XMLSyntaxError, WsdlSyntaxError, lxml errors
        raise PermanentError(f"{wsdl} is not a usable eBusiness Web Services WSDL: {exc}. Check the connection's "
                             "server URL.") from exc
    bindings = [name for name, binding in client.wsdl.bindings.items() if isinstance(binding, Soap11Binding)]
    if not bindings:
        raise PermanentError(f"{wsdl} has no SOAP 1.1 binding.")
    client.ebusiness_service = client.create_service(bindings[0], settings.service_url)
    with _clients_lock:
        _clients[key] = client
        while len(_clients) > MAX_CACHED_CLIENTS:
            _clients.popitem(last=False)
    return client


def forget_clients() -> None:
    """Drop the cached WSDLs (tests; a connection whose server was upgraded)."""
    with _clients_lock:
        _clients.clear()


# -- the client -------------------------------------------------------------------------------------


class EBusinessClient:
    """One company on one eBusiness Web Services server. Read operations are retried in-process a
    few times on retryable errors (they change nothing); writes never are: the caller looks the
    record up again first."""

    read_attempts = 3
    backoff_base = 0.3

    def __init__(self, settings: EBusinessSettings):
        self.settings = settings
        self.calls = 0

    @classmethod
    def for_connection(cls, connection, **kwargs) -> EBusinessClient:
        return cls(EBusinessSettings.for_connection(connection, **kwargs))

    def __repr__(self) -> str:
        return f"EBusinessClient({self.settings.service_url!r}, company={self.settings.company_code!r})"

    @property
    def logon(self) -> dict:
        return {"Username": self.settings.username, "Password": self.settings.password}

    # -- operations ---------------------------------------------------------------------------------
    def contract_information(self) -> str:
        return self._call("GetContractInformation", company=False, read=True) or ""

    def diagnostic_information(self) -> str:
        return self._call("GetDiagnosticInformation", company=False, read=True) or ""

    def get_sales_order(self, sales_order_no: str) -> dict | None:
        """The sales order as a plain dict (``Lines`` a list), or None when Sage 100 has none
        (``CI_NoKey``)."""
        try:
            result = self._call("GetSalesOrder", record=f"sales order {sales_order_no}", read=True,
                                salesOrderNo=sales_order_no)
        except SageRecordNotFound:
            return None
        return _plain_sales_order(result)

    def create_sales_order(self, payload: dict) -> None:
        self._call("CreateSalesOrder", record=f"sales order {payload.get('SalesOrderNo')}", salesOrder=payload)

    def get_customer(self, division: str, customer_no: str) -> dict | None:
        try:
            result = self._call("GetCustomer", record=f"customer {division}-{customer_no}", read=True,
                                arDivisionNo=division, customerNo=customer_no)
        except SageRecordNotFound:
            return None
        return _plain(result)

    def create_customer(self, payload: dict) -> None:
        self._call("CreateCustomer", record=f"customer {payload['ARDivisionNo']}-{payload['CustomerNo']}",
                   customer=payload)

    def update_customer(self, payload: dict) -> None:
        self._call("UpdateCustomer", record=f"customer {payload['ARDivisionNo']}-{payload['CustomerNo']}",
                   customer=payload)

    def next_customer_no(self) -> str:
        """Advances Sage's counter on every call (see the module docstring for why the poster does not
        use it)."""
        return self._call("GetNextCustomerNo") or ""

    # -- the call -------------------------------------------------------------------------------------
    def _call(self, operation: str, *, company: bool = True, record: str = "", read: bool = False, **params):
        settings = self.settings
        arguments = {"logon": self.logon}
        if company:
            arguments["companyCode"] = settings.company_code
        arguments.update(params)
        attempts = self.read_attempts if read else 1
        for attempt in range(1, attempts + 1):
            try:
                return self._send(operation, record, arguments)
            except RetryableError:
                if attempt == attempts:
                    raise
                time.sleep(random.uniform(0, self.backoff_base * (2 ** attempt)))
        raise AssertionError("unreachable")

    def _send(self, operation: str, record: str, arguments: dict):
        settings = self.settings
        service = _zeep_client(settings).ebusiness_service
        self.calls += 1
        try:
            return getattr(service, operation)(**arguments)
        except zeep.exceptions.Fault as fault:
            text = fault.message or ""
            detail = _detail_text(fault.detail)
            if detail and detail not in text:
                text = f"{text} {detail}".strip()
            raise error_for_fault(text, operation=operation, company=settings.company_code,
                                  username=settings.username, record=record) from None
        except zeep.exceptions.TransportError as exc:
            raise error_for_http(exc.status_code, operation=operation, url=settings.service_url,
                                 body=_text(exc.content)) from None
        except requests.RequestException as exc:
            raise error_for_connection(exc, operation=operation, url=settings.service_url,
                                       tls=tls.describe(settings.verify)) from None
        except zeep.exceptions.XMLSyntaxError as exc:
            raise RetryableError(f"{operation}: Sage 100 eBusiness Web Services at {settings.service_url} answered "
                                 f"something that is not SOAP ({exc}); a proxy or IIS error page, tried again "
                                 "later.") from None
        except (TypeError, zeep.exceptions.ValidationError) as exc:
            # zeep refuses an element the server's WSDL does not declare, or a required one left out.
            raise PermanentError(f"{operation}: the server's WSDL does not accept what was sent ({exc}); "
                                 "its eBusiness Web Services version differs from the one this connector knows.") \
                from None


def _detail_text(detail) -> str:
    if detail is None:
        return ""
    try:
        return " ".join(" ".join(detail.itertext()).split())
    except AttributeError:
        return str(detail)


def _text(content) -> str:
    if isinstance(content, bytes):
        return content.decode("utf-8", "replace")
    return str(content or "")


def _plain(value):
    """zeep objects → dicts and lists of plain values (Decimal and date kept)."""
    value = zeep.helpers.serialize_object(value, target_cls=dict)
    return value


def _plain_sales_order(result) -> dict | None:
    order = _plain(result)
    if order is None:
        return None
    lines = order.get("Lines") or {}
    order["Lines"] = list(lines.get("SalesOrderLine") or []) if isinstance(lines, dict) else list(lines)
    return order


# -- customers ------------------------------------------------------------------------------------------


def customer_no_for_email(email: str, *, prefix: str = DEFAULT_CUSTOMER_PREFIX, attempt: int = 0,
                          length: int = CUSTOMER_NO_LENGTH) -> str:
    """A stable customer number for a buyer: ``prefix`` and a base-36 digest of the lower-cased email
    (attempt 0), or of ``email#attempt`` for the next candidates when a number is taken by another
    email. Upper case, ``length`` characters."""
    prefix = (prefix or "").strip().upper()
    width = length - len(prefix)
    if width < 4:
        raise ValueError(f"customer number prefix {prefix!r} leaves fewer than 4 characters for the number")
    key = email.strip().lower() + (f"#{attempt}" if attempt else "")
    value = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:10], "big")
    digits = ""
    for _ in range(width):
        value, rest = divmod(value, 36)
        digits = _BASE36[rest] + digits
    return prefix + digits


def customer_payload(customer, division: str, customer_no: str) -> dict:
    """A ``mlcommon.ledger.Customer`` as eBusiness Web Services' Customer, cut to Sage's lengths."""
    lines = list(customer.address_lines or [])[:3]
    fields = {
        "ARDivisionNo": division, "CustomerNo": customer_no,
        "CustomerName": customer.name or customer.company or customer.email,
        "AddressLine1": lines[0] if len(lines) > 0 else "",
        "AddressLine2": lines[1] if len(lines) > 1 else "",
        "AddressLine3": lines[2] if len(lines) > 2 else "",
        "City": customer.city, "State": customer.region, "ZipCode": customer.postcode,
        "CountryCode": customer.country, "TelephoneNo": customer.phone, "EmailAddress": customer.email,
    }
    return {name: _cut(value, CUSTOMER_FIELD_LENGTHS.get(name)) for name, value in fields.items()
            if value not in (None, "") or name in ("ARDivisionNo", "CustomerNo")}


UPDATABLE_CUSTOMER_FIELDS = ("CustomerName", "AddressLine1", "AddressLine2", "AddressLine3", "City", "State",
                             "ZipCode", "CountryCode", "TelephoneNo", "EmailAddress")


def _changes(existing: dict, wanted: dict) -> dict:
    return {name: wanted[name] for name in UPDATABLE_CUSTOMER_FIELDS
            if name in wanted and (existing.get(name) or "") != wanted[name]}


def _same_email(existing: dict, email: str) -> bool:
    held = (existing.get("EmailAddress") or "").strip().lower()
    return not held or held == email.strip().lower()


def ensure_customer(connection, customer, *, division: str = "", numbering: str = "",
                    client: EBusinessClient | None = None) -> CustomerRef:
    """The buyer's AR customer in Sage 100, created if missing, its address and email updated when
    they changed.

    ``customer.account_ref`` ("01-ABF", from a record link or the web customer) names it; otherwise
    its number is derived from the email (``numbering`` is the prefix, default ``W``). Returns
    ``CustomerRef(ar_division_no, customer_no, existed)``."""
    client = client or EBusinessClient.for_connection(connection)
    if customer.account_ref:
        division_no, _, number = customer.account_ref.partition("-")
        if not number:
            raise PermanentError(f"{customer.account_ref!r} is not a Sage 100 customer (division-number, e.g. 01-ABF)")
        return _ensure_numbered(client, customer, division_no, number)
    if not (customer.email or "").strip():
        raise PermanentError("the buyer has no email address to find their Sage 100 customer by: post such orders "
                             "to one web customer (the integration's customer setting)")
    division_no = (division or DEFAULT_DIVISION).strip()
    for attempt in range(CUSTOMER_NUMBER_CANDIDATES):
        number = customer_no_for_email(customer.email, prefix=numbering or DEFAULT_CUSTOMER_PREFIX, attempt=attempt)
        existing = client.get_customer(division_no, number)
        if existing is not None and not _same_email(existing, customer.email):
            continue  # another buyer holds this number: the next candidate
        if existing is not None:
            _update_if_changed(client, existing, customer, division_no, number)
            return CustomerRef(division_no, number, existed=True)
        try:
            client.create_customer(customer_payload(customer, division_no, number))
        except SageAlreadyExists:
            # Created meanwhile (a concurrent order from the same email, or our own create that timed
            # out after Sage applied it): read it back, and check it is this buyer's.
            existing = client.get_customer(division_no, number)
            if existing is None or not _same_email(existing, customer.email):
                continue
            return CustomerRef(division_no, number, existed=True)
        return CustomerRef(division_no, number, existed=False)
    raise PermanentError(f"no free Sage 100 customer number for {customer.email} after {CUSTOMER_NUMBER_CANDIDATES} "
                         "candidates: link the buyer to a customer by hand")


def _ensure_numbered(client: EBusinessClient, customer, division: str, number: str) -> CustomerRef:
    existing = client.get_customer(division, number)
    if existing is not None:
        _update_if_changed(client, existing, customer, division, number)
        return CustomerRef(division, number, existed=True)
    try:
        client.create_customer(customer_payload(customer, division, number))
    except SageAlreadyExists:
        return CustomerRef(division, number, existed=True)
    return CustomerRef(division, number, existed=False)


def _update_if_changed(client: EBusinessClient, existing: dict, customer, division: str, number: str) -> None:
    if customer.is_guest and not customer.email:
        return
    changes = _changes(existing, customer_payload(customer, division, number))
    if changes:
        client.update_customer({"ARDivisionNo": division, "CustomerNo": number, **changes})


# -- sales orders ---------------------------------------------------------------------------------------


def _cut(value, length: int | None):
    if not isinstance(value, str) or length is None:
        return value
    return value[:length]


def _money(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT, rounding=ROUND_HALF_UP)


def sales_order_payload(document, *, division: str, customer_no: str) -> dict:
    """A Sage 100 ``SalesOrder`` document (``mlcommon.ledger``) as eBusiness Web Services' SalesOrder.

    Item lines carry ``ItemCode`` first, quantity and unit price; miscellaneous charges (codes that
    start with ``/``, e.g. the store's tax as ``/TAX``) carry their amount as ``ExtensionAmt``;
    comment lines are ``/C`` lines with ``CommentText``."""
    lines = []
    for line in document.lines:
        code = (line.stock_code or "").upper()
        entry = {"ItemCode": code}
        if document.warehouse_code and not code.startswith("/"):
            entry["WarehouseCode"] = document.warehouse_code
        if code.startswith("/"):
            entry.update(QuantityOrdered=line.quantity, UnitPrice=line.unit_net, ExtensionAmt=line.net)
        else:
            entry.update(QuantityOrdered=line.quantity, UnitPrice=_unit_price(line))
        if line.tax_code:
            entry["TaxClass"] = line.tax_code
        if line.description:
            entry["CommentText"] = line.description
        lines.append(entry)
    for comment in document.comments or ():
        lines.append({"ItemCode": COMMENT_ITEM, "CommentText": comment})
    header = {
        "SalesOrderNo": document.sales_order_no, "ARDivisionNo": division, "CustomerNo": customer_no,
        "OrderDate": document.date, "CustomerPONo": document.customer_po_no, "ShipVia": document.ship_via,
        "WarehouseCode": document.warehouse_code, "EmailAddress": document.customer.email,
        "TaxSchedule": document.tax_schedule, "FreightAmt": _money(document.freight),
        "DiscountAmt": _money(document.discount), "Comment": _cut(document.notes, 30),
    }
    ship_to = document.ship_to
    if ship_to is not None:
        address = list(ship_to.address_lines or [])[:3]
        header.update({
            "ShipToName": ship_to.name, "ShipToAddress1": address[0] if address else "",
            "ShipToAddress2": address[1] if len(address) > 1 else "",
            "ShipToAddress3": address[2] if len(address) > 2 else "", "ShipToCity": ship_to.city,
            "ShipToState": ship_to.region, "ShipToZipCode": ship_to.postcode, "ShipToCountryCode": ship_to.country,
        })
    header = {name: _cut(value, SHIP_TO_FIELD_LENGTHS.get(name)) for name, value in header.items()
              if value not in (None, "")}
    header["Lines"] = {"SalesOrderLine": lines}
    return header


def _unit_price(line) -> Decimal:
    """The unit price whose extension Sage computes back to the line's net to the cent: the line's own
    unit price when it does, else the net spread over the quantity to Sage's 4 decimals."""
    quantity = Decimal(str(line.quantity))
    if not quantity:
        return line.unit_net
    if (line.unit_net * quantity).quantize(CENT, rounding=ROUND_HALF_UP) == line.net:
        return line.unit_net
    return (line.net / quantity).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def sage_order_total(order: dict) -> Decimal:
    """What Sage 100 holds as the order total: the lines' extensions + freight − discount + sales tax."""
    lines = sum((_money(line.get("ExtensionAmt")) for line in order.get("Lines") or ()
                 if (line.get("ItemCode") or "") != COMMENT_ITEM), Decimal("0.00"))
    return lines + _money(order.get("FreightAmt")) - _money(order.get("DiscountAmt")) + _money(order.get("SalesTaxAmt"))


def _check_ours(found: dict, document) -> None:
    """A sales order found under our number must be this store order's (its PO number), else the
    derived number collided with another order's, or someone keyed it by hand."""
    theirs = (found.get("CustomerPONo") or "").strip()
    ours = (document.customer_po_no or "").strip()
    if theirs and ours and theirs != ours:
        raise PermanentError(
            f"Sage 100 already holds sales order {document.sales_order_no} for customer PO {theirs!r}, not for this "
            f"order (PO {ours!r}); change the integration's sales order prefix, or renumber the order in Sage 100.")


def _result(document, found: dict, *, existed: bool, customer_created: bool = False) -> PostResult:
    return PostResult(sales_order_no=document.sales_order_no, ar_division_no=found.get("ARDivisionNo") or "",
                      customer_no=found.get("CustomerNo") or "", existed=existed, customer_created=customer_created,
                      order_total=sage_order_total(found), sales_tax=_money(found.get("SalesTaxAmt")))


def post_sales_order(connection, document, *, client: EBusinessClient | None = None) -> PostResult:
    """Post one Sage 100 sales order: look it up by its ``SalesOrderNo``, else make sure of its
    customer and create it, then read it back for Sage's own total. Safe to run again after any
    failure (see the module docstring)."""
    if not document.sales_order_no:
        raise PermanentError(f"{document.reference}: the sales order has no SalesOrderNo (the Sage 100 mapper sets it)")
    client = client or EBusinessClient.for_connection(connection)
    found = client.get_sales_order(document.sales_order_no)
    if found is not None:
        _check_ours(found, document)
        return _result(document, found, existed=True)
    if document.customer_no:
        # The web customer or a linked one: used as it is. The web customer is never created from one
        # buyer's details; a missing one is Sage's CI_NOF on create, which says what to fix.
        customer = CustomerRef(document.ar_division_no or DEFAULT_DIVISION, document.customer_no, existed=True)
    else:
        customer = ensure_customer(connection, document.customer, division=document.ar_division_no,
                                   numbering=document.customer_numbering, client=client)
    payload = sales_order_payload(document, division=customer.ar_division_no, customer_no=customer.customer_no)
    existed = False
    try:
        client.create_sales_order(payload)
    except SageAlreadyExists:
        existed = True  # created meanwhile (another worker, or our own create whose reply was lost)
    found = client.get_sales_order(document.sales_order_no)
    if found is None:  # created (or refused as existing), yet not there: Sage's view lags; try later
        raise RetryableError(f"Sage 100 does not return sales order {document.sales_order_no} after creating it")
    if existed:
        _check_ours(found, document)
    return _result(document, found, existed=existed, customer_created=not customer.existed)


def check_connection(connection) -> str:
    """For admin's "Test the connection": one stateless call that checks URL, TLS, user and company."""
    client = EBusinessClient.for_connection(connection)
    client.get_sales_order("0000000")  # CI_NoKey is fine; logon and company faults are not
    return (f"Sage 100 eBusiness Web Services at {client.settings.service_url}: logon as "
            f"'{client.settings.username}' to company {client.settings.company_code} works; TLS "
            f"{tls.describe(client.settings.verify)}.")


__all__ = [
    "CustomerRef",
    "EBusinessClient",
    "EBusinessSettings",
    "PostResult",
    "customer_no_for_email",
    "ensure_customer",
    "post_sales_order",
    "sales_order_payload",
    "check_connection",
]
