"""A Sage 100 eBusiness Web Services emulator: SOAP 1.1 (document/literal) over HTTP or HTTPS.

* WSDL at ``GET /eBusinessWebServices/eBusinessWebServices.svc?wsdl`` (``SERVICE_PATH``); its
  ``soap:address`` is the URL it was asked on. Calls are ``POST`` to the same path.
* Operations: GetContractInformation, GetDiagnosticInformation, GetSalesOrder, GetNextSalesOrderNo,
  CreateSalesOrder, GetCustomer, GetNextCustomerNo, CreateCustomer, UpdateCustomer.
* Stateless logon on every call, checked like Sage 100 checks it: the user and password, the user's
  "web services enabled" flag (User Maintenance), the company's (Company Maintenance), and the
  user's access to the company (role security: "No Access").
* Faults as Sage raises them, as SOAP faults with the Sage message id in the text: ``CI_NoKey`` (no
  such record), ``WS_AlreadyExists`` (create of an existing number), ``CI_NOF`` (unknown customer or
  item), ``CI_CharLength`` (a value longer than its field), logon failures, "No Access".
* Companies hold customers and sales orders in memory. Sage's sales-order totals are computed as
  Sage does for the lines it is given (extension = quantity × unit price to the cent; miscellaneous
  charges ``/XXX`` take their ``ExtensionAmt``); sales-tax schedules are not computed (``SalesTaxAmt``
  stays 0: the store's tax travels as a ``/TAX`` line).
* Faults on demand (``POST /__sandbox__/faults``): ``latency_ms`` (slow), ``error_rate`` (HTTP 503
  from IIS, nothing applied), ``lost_reply_rate`` (a create is applied, then answered 502: the reply
  is lost, as when a proxy fails), ``drop_reply_rate`` (a create is applied, then the connection
  is closed with no answer at all), ``slow_reply_rate`` + ``slow_reply_s`` (a create is applied,
  then answered only after ``slow_reply_s``: past the client's timeout, its reply is lost too),
  ``record_in_use_rate`` (a create refused: record in use). The three after-the-write faults are
  the exactly-once case: the client must find the order (GetSalesOrder) before creating again.
* Control: ``GET /__sandbox__/sage100/companies[/<code>/sales-orders|customers]``,
  ``POST /__sandbox__/sage100/users/<name>`` {web_services_enabled, password, companies},
  ``POST /__sandbox__/sage100/companies/<code>`` {web_services_enabled, items}.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from sandbox.httpserver import DropConnection, Faults, Request, Response, SandboxApp

from . import soap

SERVICE_PATH = "/eBusinessWebServices/eBusinessWebServices.svc"
CENT = Decimal("0.01")
COMMENT_ITEM = "/C"
CONTENT_TYPE = "text/xml; charset=utf-8"
FIELD_LENGTHS = {
    "SalesOrderNo": 7, "ARDivisionNo": 2, "CustomerNo": 20, "CustomerPONo": 15, "ShipVia": 15, "WarehouseCode": 3,
    "CustomerName": 30, "AddressLine1": 30, "AddressLine2": 30, "AddressLine3": 30, "City": 20, "State": 2,
    "ZipCode": 10, "CountryCode": 3, "TelephoneNo": 17, "ShipToName": 30, "ShipToAddress1": 30,
    "ShipToAddress2": 30, "ShipToAddress3": 30, "ShipToCity": 20, "ShipToState": 2, "ShipToZipCode": 10,
    "ShipToCountryCode": 3, "ItemCode": 30, "Comment": 30, "EmailAddress": 250, "TaxSchedule": 9,
}


class SageFault(Exception):
    """A refusal Sage 100 reports as a SOAP fault (``s:Server``)."""


@dataclass
class EBusinessFaults(Faults):
    lost_reply_rate: float = 0.0
    drop_reply_rate: float = 0.0
    slow_reply_rate: float = 0.0
    slow_reply_s: float = 0.0
    record_in_use_rate: float = 0.0


@dataclass
class User:
    password: str
    web_services_enabled: bool = True
    companies: set[str] | None = None  # None: every company


@dataclass
class Company:
    code: str
    name: str = ""
    web_services_enabled: bool = True
    items: set[str] = field(default_factory=set)  # empty: any item code is on file
    customers: dict[tuple[str, str], dict] = field(default_factory=dict)
    sales_orders: dict[str, dict] = field(default_factory=dict)
    next_customer_no: int = 1
    next_sales_order_no: int = 1
    created_sales_orders: int = 0  # CreateSalesOrder calls that created one (a second try is refused)
    created_customers: int = 0


def _money(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT, rounding=ROUND_HALF_UP)


class EBusinessSandboxApp(SandboxApp):
    name = "sage100-ebusiness"

    def __init__(self, *, users: dict[str, User] | None = None, companies: dict[str, Company] | None = None,
                 faults: EBusinessFaults | None = None, seed: int = 1):
        super().__init__(faults or EBusinessFaults(), seed=seed)
        self.wsdl_text, self.schema = soap.load_schema()
        self.users = users if users is not None else {"WEBUSER": User("web-password")}
        self.companies = companies if companies is not None else {"ABC": Company("ABC", "ABC Distribution")}
        self.operations: Counter[str] = Counter()
        self.state_lock = threading.RLock()
        self.route("GET", SERVICE_PATH, self.get_wsdl)
        self.route("POST", SERVICE_PATH, self.post_call)
        self.route("GET", r"/__sandbox__/sage100/companies", self.control_companies)
        self.route("GET", r"/__sandbox__/sage100/companies/(?P<code>[^/]+)/sales-orders", self.control_orders)
        self.route("GET", r"/__sandbox__/sage100/companies/(?P<code>[^/]+)/customers", self.control_customers)
        self.route("POST", r"/__sandbox__/sage100/companies/(?P<code>[^/]+)", self.control_set_company)
        self.route("POST", r"/__sandbox__/sage100/users/(?P<name>[^/]+)", self.control_set_user)
        self.route("GET", r"/__sandbox__/sage100/operations", self.control_operations)

    # -- HTTP ------------------------------------------------------------------------------------------
    def get_wsdl(self, request: Request) -> Response:
        if "wsdl" not in request.query:
            return Response(200, "eBusiness Web Services (sandbox). The WSDL is at ?wsdl.", content_type="text/plain")
        host = request.headers.get("host", "127.0.0.1")
        scheme = "https" if getattr(self, "https", False) else "http"
        address = f"{scheme}://{host}{SERVICE_PATH}"
        return Response(200, self.wsdl_text.replace("@ADDRESS@", address), content_type=CONTENT_TYPE)

    def post_call(self, request: Request) -> Response:
        try:
            operation, arguments = soap.parse_request(request.body, self.schema)
        except soap.SoapClientError as exc:
            return Response(500, soap.fault(str(exc), code="s:Client"), content_type=CONTENT_TYPE)
        with self.state_lock:
            self.operations[operation] += 1
        try:
            result = getattr(self, f"op_{operation}")(arguments)
        except SageFault as exc:
            return Response(500, soap.fault(str(exc), code="s:Server"), content_type=CONTENT_TYPE)
        except _LostReply:
            return Response(502, "<html><body>502 Bad Gateway</body></html>", content_type="text/html")
        return Response(200, soap.response(operation, self.schema, result), content_type=CONTENT_TYPE)

    # -- logon (every call) ------------------------------------------------------------------------------
    def _logon(self, arguments: dict, *, company: bool = True) -> Company | None:
        logon = arguments.get("logon") or {}
        username, password = logon.get("Username") or "", logon.get("Password") or ""
        user = self.users.get(username)
        if user is None or user.password != password:
            raise SageFault("Logon failure: unknown user name or bad password.")
        if not user.web_services_enabled:
            raise SageFault(f"Logon failure: user {username} is not enabled for web services.")
        if not company:
            return None
        code = (arguments.get("companyCode") or "").upper()
        found = self.companies.get(code)
        if found is None:
            raise SageFault(f"Logon failure: company code {code!r} does not exist.")
        if not found.web_services_enabled:
            raise SageFault(f"Logon failure: company {code} is not enabled for web services.")
        if user.companies is not None and code not in user.companies:
            raise SageFault(f"No Access: user {username} is not authorized for company {code}.")
        return found

    def _maybe_busy(self, what: str) -> None:
        if self.faults.record_in_use_rate and self.random.random() < self.faults.record_in_use_rate:
            raise SageFault(f"SY_RecordInUse: {what} is in use by another user. Try again later.")

    def _lose_reply(self) -> bool:
        return bool(self.faults.lost_reply_rate) and self.random.random() < self.faults.lost_reply_rate

    def _after_write(self) -> None:
        """What may befall the answer of a create Sage has applied: lost (502), dropped (no answer),
        slow (late). One draw each, so the rates add up as the knobs say."""
        faults = self.faults
        if self._lose_reply():
            with self.state_lock:
                self.operations["(answer lost: 502)"] += 1
            raise _LostReply()
        if faults.drop_reply_rate and self.random.random() < faults.drop_reply_rate:
            with self.state_lock:
                self.operations["(answer dropped)"] += 1
            raise DropConnection()
        if faults.slow_reply_rate and faults.slow_reply_s and self.random.random() < faults.slow_reply_rate:
            with self.state_lock:
                self.operations["(answer late)"] += 1
            time.sleep(faults.slow_reply_s)

    # -- operations --------------------------------------------------------------------------------------
    def op_GetContractInformation(self, arguments: dict):  # noqa: N802 - the SOAP operation's name
        self._logon(arguments, company=False)
        return "Sage 100 eBusiness Web Services sandbox (ml-connector); contract version 1"

    def op_GetDiagnosticInformation(self, arguments: dict):  # noqa: N802
        self._logon(arguments, company=False)
        return f"companies: {', '.join(sorted(self.companies))}; operations served: {sum(self.operations.values())}"

    def op_GetSalesOrder(self, arguments: dict):  # noqa: N802
        company = self._logon(arguments)
        number = (arguments.get("salesOrderNo") or "").strip().upper()
        with self.state_lock:
            order = company.sales_orders.get(number)
        if order is None:
            raise SageFault(f"CI_NoKey: The Sales Order No. {number} is not on file.")
        return order

    def op_GetNextSalesOrderNo(self, arguments: dict):  # noqa: N802
        company = self._logon(arguments)
        with self.state_lock:
            while f"{company.next_sales_order_no:07d}" in company.sales_orders:
                company.next_sales_order_no += 1
            number = f"{company.next_sales_order_no:07d}"
            company.next_sales_order_no += 1  # advanced whether or not the number is used, as in Sage
        return number

    def op_CreateSalesOrder(self, arguments: dict):  # noqa: N802
        company = self._logon(arguments)
        order = dict(arguments.get("salesOrder") or {})
        number = (order.get("SalesOrderNo") or "").strip().upper()
        if not number:
            raise SageFault("CI_Required: The Sales Order No. is required.")
        _check_lengths(order)
        self._maybe_busy(f"Sales order {number}")
        lines = []
        for line in (order.get("Lines") or {}).get("SalesOrderLine") or []:
            lines.append(self._line(company, dict(line), order))
        with self.state_lock:
            if number in company.sales_orders:
                raise SageFault(f"WS_AlreadyExists: Sales order {number} already exists.")
            key = ((order.get("ARDivisionNo") or "").strip(), (order.get("CustomerNo") or "").strip().upper())
            customer = company.customers.get(key)
            if customer is None:
                raise SageFault(f"CI_NOF: Customer {key[0]}-{key[1]} is not on file.")
            record = {**order, "SalesOrderNo": number, "ARDivisionNo": key[0], "CustomerNo": key[1],
                      "OrderDate": order.get("OrderDate") or dt.date.today(), "OrderType": "S"}
            taxable = sum((line["ExtensionAmt"] for line in lines if line.get("TaxClass") == "TX"), Decimal("0.00"))
            non_taxable = sum((line["ExtensionAmt"] for line in lines if line.get("TaxClass") != "TX"
                               and line["ItemCode"] != COMMENT_ITEM), Decimal("0.00"))
            record.update(Lines={"SalesOrderLine": lines}, TaxableAmt=taxable, NonTaxableAmt=non_taxable,
                          SalesTaxAmt=Decimal("0.00"), FreightAmt=_money(order.get("FreightAmt")),
                          DiscountAmt=_money(order.get("DiscountAmt")))
            company.sales_orders[number] = record
            company.created_sales_orders += 1
        self._after_write()
        return None

    def _line(self, company: Company, line: dict, order: dict) -> dict:
        code = (line.get("ItemCode") or "").strip().upper()
        if not code:
            raise SageFault("CI_Required: The Item Code is required on every line.")
        _check_lengths(line)
        line["ItemCode"] = code
        if code == COMMENT_ITEM:
            return {"ItemCode": code, "CommentText": line.get("CommentText") or ""}
        if not code.startswith("/") and company.items and code not in company.items:
            raise SageFault(f"CI_NOF: Item code {code} is not on file.")
        quantity = Decimal(str(line.get("QuantityOrdered") or 0))
        price = Decimal(str(line.get("UnitPrice") or 0))
        if code.startswith("/") and line.get("ExtensionAmt") is not None:
            extension = _money(line["ExtensionAmt"])
        else:
            extension = _money(quantity * price)
        line.update(QuantityOrdered=quantity, UnitPrice=price, ExtensionAmt=extension,
                    WarehouseCode=line.get("WarehouseCode") or order.get("WarehouseCode") or "000")
        return line

    def op_GetCustomer(self, arguments: dict):  # noqa: N802
        company = self._logon(arguments)
        key = ((arguments.get("arDivisionNo") or "").strip(), (arguments.get("customerNo") or "").strip().upper())
        with self.state_lock:
            customer = company.customers.get(key)
        if customer is None:
            raise SageFault(f"CI_NoKey: Customer {key[0]}-{key[1]} is not on file.")
        return customer

    def op_GetNextCustomerNo(self, arguments: dict):  # noqa: N802
        company = self._logon(arguments)
        with self.state_lock:
            number = f"{company.next_customer_no:07d}"
            company.next_customer_no += 1
        return number

    def op_CreateCustomer(self, arguments: dict):  # noqa: N802
        company = self._logon(arguments)
        customer = dict(arguments.get("customer") or {})
        key = ((customer.get("ARDivisionNo") or "").strip(), (customer.get("CustomerNo") or "").strip().upper())
        if not key[0] or not key[1]:
            raise SageFault("CI_Required: The AR Division No. and Customer No. are required.")
        _check_lengths(customer)
        self._maybe_busy(f"Customer {key[0]}-{key[1]}")
        with self.state_lock:
            if key in company.customers:
                raise SageFault(f"WS_AlreadyExists: Customer {key[0]}-{key[1]} already exists.")
            company.customers[key] = {**customer, "ARDivisionNo": key[0], "CustomerNo": key[1]}
            company.created_customers += 1
        self._after_write()
        return None

    def op_UpdateCustomer(self, arguments: dict):  # noqa: N802
        company = self._logon(arguments)
        changes = dict(arguments.get("customer") or {})
        key = ((changes.get("ARDivisionNo") or "").strip(), (changes.get("CustomerNo") or "").strip().upper())
        _check_lengths(changes)
        with self.state_lock:
            customer = company.customers.get(key)
            if customer is None:
                raise SageFault(f"CI_NoKey: Customer {key[0]}-{key[1]} is not on file.")
            customer.update({k: v for k, v in changes.items() if k not in ("ARDivisionNo", "CustomerNo")})
        return None

    # -- control -------------------------------------------------------------------------------------------
    def control_companies(self, request: Request) -> Response:
        with self.state_lock:
            return Response(200, [
                {"code": c.code, "name": c.name, "web_services_enabled": c.web_services_enabled,
                 "customers": len(c.customers), "sales_orders": len(c.sales_orders),
                 "created_sales_orders": c.created_sales_orders, "created_customers": c.created_customers}
                for c in self.companies.values()])

    def _company(self, request: Request) -> Company | None:
        return self.companies.get(request.params["code"].upper())

    def control_orders(self, request: Request) -> Response:
        company = self._company(request)
        if company is None:
            return Response(404, {"error": "no such company"})
        with self.state_lock:
            orders = [_jsonable(order) for order in company.sales_orders.values()]
        return Response(200, orders)

    def control_customers(self, request: Request) -> Response:
        company = self._company(request)
        if company is None:
            return Response(404, {"error": "no such company"})
        with self.state_lock:
            customers = [_jsonable(customer) for customer in company.customers.values()]
        return Response(200, customers)

    def control_set_company(self, request: Request) -> Response:
        body = request.json() or {}
        code = request.params["code"].upper()
        with self.state_lock:
            company = self.companies.setdefault(code, Company(code, body.get("name", "")))
            if "web_services_enabled" in body:
                company.web_services_enabled = bool(body["web_services_enabled"])
            if "items" in body:
                company.items = {str(item).upper() for item in body["items"]}
            for customer in body.get("customers") or ():
                key = (customer["ARDivisionNo"], customer["CustomerNo"].upper())
                company.customers[key] = dict(customer)
        return Response(200, {"code": code, "web_services_enabled": company.web_services_enabled,
                              "items": sorted(company.items)})

    def control_set_user(self, request: Request) -> Response:
        body = request.json() or {}
        name = request.params["name"]
        with self.state_lock:
            user = self.users.setdefault(name, User(body.get("password", "")))
            if "password" in body:
                user.password = str(body["password"])
            if "web_services_enabled" in body:
                user.web_services_enabled = bool(body["web_services_enabled"])
            if "companies" in body:
                user.companies = None if body["companies"] is None else {c.upper() for c in body["companies"]}
        return Response(200, {"user": name, "web_services_enabled": user.web_services_enabled,
                              "companies": None if user.companies is None else sorted(user.companies)})

    def control_operations(self, request: Request) -> Response:
        with self.state_lock:
            return Response(200, dict(self.operations))


class _LostReply(Exception):
    """The write was applied; the answer never reaches the client."""


def _check_lengths(record: dict) -> None:
    for name, value in record.items():
        limit = FIELD_LENGTHS.get(name)
        if limit and isinstance(value, str) and len(value) > limit:
            raise SageFault(f"CI_CharLength: The {name} is greater than {limit} character(s).")


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
