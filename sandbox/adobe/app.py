"""HTTP face of the sandbox Adobe Commerce: the REST API under both URL shapes, the IMS token endpoint,
and control endpoints under ``/__sandbox__/``.

* PaaS: ``/rest/<store_code>/V1/…`` and ``/rest/V1/…`` (= ``default``), OAuth 1.0a or (opt-in) bearer;
* ACCS: ``/<tenant>/V1/…`` with the ``Store:`` header, IMS bearer + ``x-api-key`` + ``x-gw-ims-org-id``;
* IMS: ``POST /ims/token/v3`` (form-encoded client_credentials).

Like Magento's REST controller the route is matched first (an unknown path or store code is
``404 Request does not match any route.`` even without credentials), then the caller is
authenticated and the route's ACL resource checked. ``build_app(...)`` returns an ``AdobeCommerceApp``;
serve it with ``sandbox.httpserver.SandboxServer``. With ``validate=True`` every API request and
response is checked against the shipped specs (admin schema 2.4.9 for PaaS, the ACCS schema for
ACCS) and violations are kept in ``app.violations`` (served at ``/__sandbox__/violations``).
"""

from __future__ import annotations

import random
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from urllib.parse import parse_qs, unquote

from sandbox.httpserver import Faults, Request, Response, SandboxApp

from . import render
from .auth import ImsIssuer, Integration, OAuthVerifier, make_integration
from .columns import COLUMNS
from .searchcriteria import Limits, parse, parse_fields, search, trim
from .store import AdobeCommerceStore, StoreError
from .webhooks import WebhookDispatcher

PAAS = re.compile(r"^/rest/(?:(?P<store>(?!V1/)[^/]+)/)?V1/(?P<rest>.+)$")
ID = r"(?P<id>\d+)"

# ACL resources per route, as Magento's webapi.xml files declare them (best knowledge; the sandbox
# checks them against each integration's granted resources).
SALES_VIEW = "Magento_Sales::actions_view"
INVOICE = "Magento_Sales::sales_invoice"
CREDITMEMO = "Magento_Sales::sales_creditmemo"
COMMENT = "Magento_Sales::comment"
SOURCE = "Magento_InventoryApi::source"
STOCK = "Magento_CatalogInventory::cataloginventory"
STORE = "Magento_Backend::store"
CUSTOMER = "Magento_Customer::customer"
PRODUCTS = "Magento_Catalog::products"


@dataclass
class AdobeFaults(Faults):
    throttle_rate: float = 0.0  # share of API calls answered 429
    throttle_storm: float = 0.0  # seconds of "429 to everything", starting when set
    retry_after: int = 2  # seconds, in the Retry-After header of every 429
    webhook_drop_rate: float = 0.0
    webhook_repeat: int = 1  # each delivery is sent this many times
    ims_token_ttl: int = 86399

    def __post_init__(self):
        self.storm_until = 0.0

    def update(self, values: dict) -> None:
        super().update(values)
        if "throttle_storm" in values:
            self.storm_until = time.monotonic() + float(self.throttle_storm)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "storm_until"}


@dataclass
class Settings:
    """Store configuration the sandbox lets tests flip (Stores › Configuration in a real admin)."""

    bearer_enabled: bool = False  # oauth/consumer/enable_integration_as_bearer (off since 2.4.4)
    msi_enabled: bool = True


@dataclass
class Context:
    flavor: str  # paas | accs
    view: object  # StoreView
    integration: Integration | None = None


def magento_error(status: int, message: str, parameters=None, errors=None) -> Response:
    body: dict = {"message": message}
    if errors:
        body["errors"] = errors
    if parameters not in (None, [], {}):
        body["parameters"] = parameters
    return Response(status, body)


def _bool(value) -> bool:
    return value in (True, 1, "1", "true", "True", "yes")


class AdobeCommerceApp(SandboxApp):
    name = "adobe"

    def __init__(self, store: AdobeCommerceStore, integrations: list[Integration], ims: ImsIssuer,
                 tenant: str = "sandboxtenant", faults: AdobeFaults | None = None, validate: bool = False,
                 seed: int = 1, scheme: str = "http", limits: Limits | None = None,
                 settings: Settings | None = None, webhook_retry_delay: float = 0.2, webhook_attempts: int = 3,
                 commerce_private_pem: bytes | None = None):
        faults = faults or AdobeFaults()
        super().__init__(faults, seed)
        self.store = store
        self.integrations = integrations
        self.oauth = OAuthVerifier(integrations, clock=store.clock)
        self.ims = ims
        self.tenant = tenant
        self.scheme = scheme
        self.limits = limits or Limits()
        self.settings = settings or Settings()
        self.validate = validate
        self.violations: list[dict] = []
        self.counters: dict[str, int] = {}
        self.rng = random.Random(seed)
        self.dispatcher = WebhookDispatcher(store, faults, seed=seed, retry_delay=webhook_retry_delay,
                                            max_attempts=webhook_attempts,
                                            commerce_private_pem=commerce_private_pem)
        self._local = threading.local()
        self._order_cache: dict[int, tuple[tuple, dict]] = {}
        self.api: list[tuple[str, re.Pattern, object, tuple[str, ...]]] = []
        self._register()

    # -- routes --------------------------------------------------------------------------------------
    def _api(self, method: str, pattern: str, handler, *resources: str) -> None:
        self.api.append((method, re.compile(f"^{pattern}$"), handler, resources))

    def _register(self) -> None:
        a = self._api
        a("GET", r"orders", self.list_orders, SALES_VIEW)
        a("GET", rf"orders/{ID}", self.get_order, SALES_VIEW)
        a("GET", rf"orders/{ID}/comments", self.list_comments, SALES_VIEW)
        a("POST", rf"orders/{ID}/comments", self.post_comment, COMMENT)
        a("GET", r"invoices", self.list_invoices, INVOICE)
        a("GET", rf"invoices/{ID}", self.get_invoice, INVOICE)
        a("POST", rf"order/{ID}/invoice", self.post_invoice, INVOICE)
        a("GET", r"creditmemos", self.list_creditmemos, CREDITMEMO)
        a("GET", rf"creditmemo/{ID}", self.get_creditmemo, CREDITMEMO)
        a("POST", rf"order/{ID}/refund", self.post_order_refund, CREDITMEMO)
        a("POST", rf"invoice/{ID}/refund", self.post_invoice_refund, CREDITMEMO)
        a("GET", r"customers/search", self.search_customers, CUSTOMER)
        a("GET", rf"customers/{ID}", self.get_customer, CUSTOMER)
        a("GET", r"products", self.list_products, PRODUCTS)
        a("GET", r"inventory/source-items", self.list_source_items, SOURCE)
        a("POST", r"inventory/source-items", self.post_source_items, SOURCE)
        a("GET", r"stockItems/(?P<sku>[^/]+)", self.get_stock_item, STOCK)
        a("PUT", r"products/(?P<sku>[^/]+)/stockItems/(?P<item>[^/]+)", self.put_stock_item, STOCK)
        a("GET", r"store/storeViews", self.store_views, STORE)
        a("GET", r"store/websites", self.websites, STORE)
        a("GET", r"store/storeGroups", self.store_groups, STORE)
        a("GET", r"store/storeConfigs", self.store_configs, STORE)
        r = self.route
        r("POST", r"/ims/token/v3", self.ims_token)
        r("GET", r"/__sandbox__/info", self.ctl_info)
        r("GET", r"/__sandbox__/settings", self.ctl_settings)
        r("POST", r"/__sandbox__/settings", self.ctl_settings)
        r("GET", r"/__sandbox__/integrations", self.ctl_integrations)
        r("POST", r"/__sandbox__/integrations", self.ctl_new_integration)
        r("POST", r"/__sandbox__/integrations/(?P<id>\d+)", self.ctl_update_integration)
        r("POST", r"/__sandbox__/ims/expire", self.ctl_ims_expire)
        r("POST", r"/__sandbox__/orders", self.ctl_place)
        r("POST", r"/__sandbox__/orders/generate", self.ctl_generate)
        r("POST", r"/__sandbox__/activity", self.ctl_activity)
        r("POST", rf"/__sandbox__/orders/{ID}/invoice", self.ctl_invoice)
        r("POST", rf"/__sandbox__/orders/{ID}/refund", self.ctl_refund)
        r("POST", rf"/__sandbox__/orders/{ID}/ship", self.ctl_ship)
        r("POST", rf"/__sandbox__/orders/{ID}/status", self.ctl_status)
        r("GET", r"/__sandbox__/stock", self.ctl_stock)
        r("POST", r"/__sandbox__/stock", self.ctl_set_stock)
        r("GET", r"/__sandbox__/counters", self.ctl_counters)
        r("GET", r"/__sandbox__/violations", self.ctl_violations)
        r("GET", r"/__sandbox__/webhooks", self.ctl_webhooks)
        r("POST", r"/__sandbox__/webhooks", self.ctl_subscribe)
        r("GET", r"/__sandbox__/webhooks/public-key", self.ctl_public_key)
        r("GET", r"/__sandbox__/io-events/keys/(?P<name>[\w.-]+)", self.ctl_io_key)
        r("GET", r"/prod/keys/(?P<name>[\w.-]+)", self.ctl_io_key)  # Adobe's key host path shape

    # -- dispatch ------------------------------------------------------------------------------------
    def dispatch(self, request: Request) -> Response:
        paas = PAAS.match(request.path)
        accs = None if paas else re.match(rf"^/{re.escape(self.tenant)}/V1/(?P<rest>.+)$", request.path)
        if not paas and not accs:
            try:
                if request.path.startswith(("/__sandbox__/webhooks", "/__sandbox__/faults")):
                    return super().dispatch(request)  # a subscription calls out (challenge): no lock held
                with self.store.lock:  # control endpoints change and render records in one piece
                    return super().dispatch(request)
            except StoreError as exc:
                return magento_error(exc.status, exc.message, exc.parameters)
        with self.lock:
            self.request_log.append((request.method, request.path))
        if self.faults.latency_ms:
            time.sleep(self.faults.latency_ms / 1000)
        flavor = "paas" if paas else "accs"
        rest = (paas or accs).group("rest")
        self._local.untrimmed = None
        response = self._api_call(request, flavor, paas.group("store") if paas else None, rest)
        key = f"{request.method} {flavor} " + re.sub(r"/\d+", "/{id}", rest)
        with self.lock:
            self.counters[key] = self.counters.get(key, 0) + 1
            if response.status == 429:
                self.counters["429"] = self.counters.get("429", 0) + 1
        if self.validate:
            self._check_contract(request, response, flavor, rest)
        return response

    def _fault(self) -> Response | None:
        faults: AdobeFaults = self.faults
        if time.monotonic() < faults.storm_until or (faults.throttle_rate and self.rng.random() < faults.throttle_rate):
            return Response(429, {"message": "Too Many Requests"}, headers={"Retry-After": str(faults.retry_after)})
        if faults.error_rate and self.rng.random() < faults.error_rate:
            return Response(503, {"message": "Service Unavailable (injected)"})
        return None

    def _api_call(self, request: Request, flavor: str, store_code: str | None, rest: str) -> Response:
        found = None
        for method, pattern, handler, resources in self.api:
            match = pattern.match(rest)
            if match and method == request.method:
                found = (handler, resources, match)
                break
        view = self._paas_view(store_code) if flavor == "paas" else None
        if found is None or (flavor == "paas" and view is None):
            return magento_error(404, "Request does not match any route.")
        if not self.settings.msi_enabled and rest.startswith("inventory/"):
            return magento_error(404, "Request does not match any route.")
        fault = self._fault()
        if fault is not None:
            return fault
        handler, resources, match = found
        try:
            if flavor == "accs":
                refused = self.ims.check(request.headers)
                if refused is not None:
                    return Response(refused[0], refused[1])
                ctx = Context("accs", self._accs_view(request.headers.get("store")))
            else:
                ctx = self._authenticate(request, view, resources)
                if isinstance(ctx, Response):
                    return ctx
            request.params = {k: unquote(v) for k, v in match.groupdict().items()}
            with self.store.lock:
                response = handler(request, ctx)
        except StoreError as exc:
            return magento_error(exc.status, exc.message, exc.parameters, getattr(exc, "errors", None))
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            return magento_error(400, "Invalid request: %1", [f"{type(exc).__name__}: {exc}"])
        fields = request.arg("fields")
        if fields and response.status == 200 and isinstance(response.body, (dict, list)):
            # The contract is checked on the whole body: a trimmed one lacks required fields by design.
            self._local.untrimmed = response.body
            response.body = trim(response.body, parse_fields(fields))
        return response

    def _paas_view(self, store_code: str | None):
        """The store view a PaaS path names; None (→ no route) for an unknown code, like Magento's
        PathProcessor, which then treats the code as part of the route."""
        code = store_code or "default"
        if code == "all":
            return self.store.views[0]
        view = self.store.view_by_code(code)
        return view if view is not None and view.id != 0 else None

    def _accs_view(self, code: str | None):
        code = code or "default"
        if code == "all":
            return self.store.views[0]
        view = self.store.view_by_code(code)
        if view is None or view.id == 0:
            raise StoreError(404, "The store that was requested wasn't found. Verify the store and try again.")
        return view

    def _authenticate(self, request: Request, view, resources: tuple[str, ...]):
        host = request.headers.get("host", "localhost")
        url = f"{self.scheme}://{host}{request.path}"
        integration = self.oauth.verify(request.method, url, request.raw_query, request.headers, request.body)
        auth = request.headers.get("authorization", "")
        if integration is None and auth.lower().startswith("bearer ") and self.settings.bearer_enabled:
            candidate = self.oauth.by_token(auth[7:].strip())
            if candidate is not None and candidate.active and not candidate.revoked:
                integration = candidate
        if integration is None or not integration.allows(resources):
            return magento_error(401, "The consumer isn't authorized to access %resources.",
                                 {"resources": ", ".join(resources)})
        return Context("paas", view, integration)

    def _check_contract(self, request: Request, response: Response, flavor: str, rest: str) -> None:
        from sandbox.specs import adobe_specs

        specs = adobe_specs(flavor)
        path = "/V1/" + rest
        try:
            body = request.json()
        except ValueError:
            body = request.body.decode("utf-8", "replace")
        found = []
        if response.status not in (401, 403, 404, 429) and response.status < 500:
            found += specs.validate_request(request.method, path, request.query, body)
        untrimmed = getattr(self._local, "untrimmed", None)
        body = response.body if untrimmed is None else untrimmed
        found += specs.validate_response(request.method, path, response.status, body, response.content_type)
        if found:
            with self.lock:
                self.violations += [v.as_dict() | {"flavor": flavor} for v in found]

    # -- searches ------------------------------------------------------------------------------------
    def _search(self, request: Request, records: list, row, columns: set[str], out) -> Response:
        criteria = parse(request.query)
        rows = [(row(r), r) for r in records]
        return Response(200, search(rows, criteria, columns, self.limits, out))

    def _rendered_order(self, order) -> dict:
        """``render.order`` cached until the order changes (every change moves one of these)."""
        key = (order.updated_at, order.state, order.status, len(order.histories), len(order.invoices),
               len(order.creditmemos), order.shipped)
        cached = self._order_cache.get(order.entity_id)
        if cached is None or cached[0] != key:
            cached = (key, render.order(order))
            self._order_cache[order.entity_id] = cached
        return cached[1]

    def list_orders(self, request: Request, ctx: Context) -> Response:
        orders = sorted(self.store.orders.values(), key=lambda o: o.entity_id)
        return self._search(request, orders, _order_row, ORDER_COLUMNS, self._rendered_order)

    def get_order(self, request: Request, ctx: Context) -> Response:
        return Response(200, self._rendered_order(self.store.get_order(int(request.params["id"]))))

    def list_comments(self, request: Request, ctx: Context) -> Response:
        order = self.store.get_order(int(request.params["id"]))
        items = [render.history(c) for c in sorted(order.histories, key=lambda c: c.entity_id)]
        return Response(200, {"items": items, "search_criteria": {"filter_groups": []}, "total_count": len(items)})

    def post_comment(self, request: Request, ctx: Context) -> Response:
        body = request.json() or {}
        history = body.get("statusHistory")
        if not isinstance(history, dict):
            raise StoreError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": "statusHistory"})
        self.store.add_comment(int(request.params["id"]), str(history.get("comment") or ""),
                               history.get("status") or None, int(history.get("is_customer_notified") or 0),
                               int(history.get("is_visible_on_front") or 0))
        return Response(200, True)

    def list_invoices(self, request: Request, ctx: Context) -> Response:
        invoices = sorted(self.store.invoices.values(), key=lambda i: i.entity_id)
        return self._search(request, invoices, self._invoice_row, INVOICE_COLUMNS,
                            lambda inv: render.invoice(inv, self.store.orders[inv.order_id]))

    def get_invoice(self, request: Request, ctx: Context) -> Response:
        invoice = self.store.invoices.get(int(request.params["id"]))
        if invoice is None:
            raise StoreError(404, "The entity that was requested doesn't exist. Verify the entity and try again.")
        return Response(200, render.invoice(invoice, self.store.orders[invoice.order_id]))

    def list_creditmemos(self, request: Request, ctx: Context) -> Response:
        memos = sorted(self.store.creditmemos.values(), key=lambda c: c.entity_id)
        return self._search(request, memos, self._creditmemo_row, CREDITMEMO_COLUMNS,
                            lambda cm: render.creditmemo(cm, self.store.orders[cm.order_id]))

    def get_creditmemo(self, request: Request, ctx: Context) -> Response:
        memo = self.store.creditmemos.get(int(request.params["id"]))
        if memo is None:
            raise StoreError(404, "The entity that was requested doesn't exist. Verify the entity and try again.")
        return Response(200, render.creditmemo(memo, self.store.orders[memo.order_id]))

    def _invoice_row(self, inv) -> dict:
        return _columns(render.invoice(inv, self.store.orders[inv.order_id]))

    def _creditmemo_row(self, cm) -> dict:
        return _columns(render.creditmemo(cm, self.store.orders[cm.order_id]))

    # -- writes --------------------------------------------------------------------------------------
    @staticmethod
    def _qtys(items) -> dict[int, Decimal] | None:
        if not items:
            return None
        return {int(i["order_item_id"]): Decimal(str(i["qty"])) for i in items}

    def post_invoice(self, request: Request, ctx: Context) -> Response:
        body = request.json() or {}
        invoice = self.store.invoice(int(request.params["id"]), self._qtys(body.get("items")),
                                     state=2 if body.get("capture", True) else 1)
        return Response(200, invoice.entity_id)

    def post_order_refund(self, request: Request, ctx: Context) -> Response:
        return self._refund(request, int(request.params["id"]), None)

    def post_invoice_refund(self, request: Request, ctx: Context) -> Response:
        invoice = self.store.invoices.get(int(request.params["id"]))
        if invoice is None:
            raise StoreError(404, "The entity that was requested doesn't exist. Verify the entity and try again.")
        return self._refund(request, invoice.order_id, invoice.entity_id)

    def _refund(self, request: Request, order_id: int, invoice_id: int | None) -> Response:
        body = request.json() or {}
        args = body.get("arguments") or {}
        qtys = self._qtys(body.get("items"))
        memo = self.store.refund(order_id, qtys if qtys is not None else (None if not body.get("items") else {}),
                                 invoice_id=invoice_id, shipping=args.get("shipping_amount"),
                                 adjustment_positive=Decimal(str(args.get("adjustment_positive") or 0)),
                                 adjustment_negative=Decimal(str(args.get("adjustment_negative") or 0)))
        return Response(200, memo.entity_id)

    # -- customers -----------------------------------------------------------------------------------
    def search_customers(self, request: Request, ctx: Context) -> Response:
        customers = [self.store.customers[k] for k in sorted(self.store.customers)]
        return self._search(request, customers, lambda c: _columns(render.customer(c)), CUSTOMER_COLUMNS,
                            render.customer)

    def get_customer(self, request: Request, ctx: Context) -> Response:
        customer = self.store.customers.get(int(request.params["id"]))
        if customer is None:
            raise StoreError(404, 'No such entity with %fieldName = %fieldValue',
                             {"fieldName": "customerId", "fieldValue": request.params["id"]})
        return Response(200, render.customer(customer))

    # -- stock ---------------------------------------------------------------------------------------
    def list_products(self, request: Request, ctx: Context) -> Response:
        products = sorted(self.store.products.values(), key=lambda p: p.id)
        return self._search(request, products, render.product, PRODUCT_COLUMNS, render.product)

    def list_source_items(self, request: Request, ctx: Context) -> Response:
        items = sorted(self.store.source_items.values(), key=lambda s: (s.sku, s.source_code))
        return self._search(request, items, render.source_item, {"sku", "source_code", "quantity", "status"},
                            render.source_item)

    def post_source_items(self, request: Request, ctx: Context) -> Response:
        body = request.json() or {}
        items = body.get("sourceItems")
        if not isinstance(items, list) or not items:
            raise StoreError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": "sourceItems"})
        self.store.set_source_items(items)
        return Response(200, [])  # a void service method: Magento's REST layer answers []

    def get_stock_item(self, request: Request, ctx: Context) -> Response:
        product = self.store.product_by_sku(request.params["sku"])
        if product is None or product.id not in self.store.stock_items:
            raise StoreError(404, "The Product with the \"%1\" SKU doesn't exist.", [request.params["sku"]])
        return Response(200, render.stock_item(self.store.stock_items[product.id]))

    def put_stock_item(self, request: Request, ctx: Context) -> Response:
        body = request.json() or {}
        item = body.get("stockItem")
        if not isinstance(item, dict) or "qty" not in item:
            raise StoreError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": "stockItem"})
        in_stock = item.get("is_in_stock")
        saved = self.store.set_legacy_stock(request.params["sku"], request.params["item"],
                                            Decimal(str(item["qty"])), None if in_stock is None else bool(in_stock))
        return Response(200, saved.item_id)

    # -- store structure -----------------------------------------------------------------------------
    def store_views(self, request: Request, ctx: Context) -> Response:
        return Response(200, [render.store_view(v) for v in self.store.views.values()])

    def websites(self, request: Request, ctx: Context) -> Response:
        return Response(200, [render.website(w) for w in self.store.websites.values()])

    def store_groups(self, request: Request, ctx: Context) -> Response:
        return Response(200, [render.store_group(g) for g in self.store.groups.values()])

    def store_configs(self, request: Request, ctx: Context) -> Response:
        codes = set()
        for key, values in request.query.items():
            if key == "storeCodes" or key.startswith("storeCodes["):
                codes.update(v for value in values for v in value.split(","))
        views = [v for v in self.store.views.values() if v.id != 0 and (not codes or v.code in codes)]
        host = request.headers.get("host", "localhost")
        return Response(200, [render.store_config(v, self.store.websites[v.website_id].base_currency,
                                                  f"{self.scheme}://{host}/") for v in views])

    # -- IMS -----------------------------------------------------------------------------------------
    def ims_token(self, request: Request) -> Response:
        form = {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        self.ims.ttl = int(self.faults.ims_token_ttl)
        status, body = self.ims.issue(form)
        return Response(status, body)

    # -- control endpoints ---------------------------------------------------------------------------
    def info(self) -> dict:
        return {
            "tenant": self.tenant, "paas_path": "/rest/<store_code>/V1/", "accs_path": f"/{self.tenant}/V1/",
            "store_views": [v.code for v in self.store.views.values() if v.id],
            "integrations": [i.as_dict() for i in self.integrations],
            "ims": {"token_url": "/ims/token/v3", "client_id": self.ims.client_id,
                    "client_secret": self.ims.client_secret, "org_id": self.ims.org_id,
                    "scope": "openid,AdobeID,additional_info.projectedProductContext,commerce.accs"},
            "orders": len(self.store.orders), "invoices": len(self.store.invoices),
            "creditmemos": len(self.store.creditmemos),
            "webhooks": {"public_key_pem": self.dispatcher.keys.commerce_public_pem(),
                         "hmac_secret": self.dispatcher.hmac_secret},
            "settings": self._settings_dict(),
        }

    def _settings_dict(self) -> dict:
        return {"bearer_enabled": self.settings.bearer_enabled, "msi_enabled": self.settings.msi_enabled,
                "input_limit_enabled": self.limits.input_limit_enabled,
                "maximum_page_size": self.limits.maximum_page_size,
                "default_page_size": self.limits.default_page_size, "past_last_page": self.limits.past_last_page}

    def ctl_info(self, request: Request) -> Response:
        return Response(200, self.info())

    def ctl_settings(self, request: Request) -> Response:
        body = request.json() or {} if request.method == "POST" else {}
        for key, value in body.items():
            if key in ("bearer_enabled", "msi_enabled"):
                setattr(self.settings, key, _bool(value))
            elif key == "input_limit_enabled":
                self.limits.input_limit_enabled = _bool(value)
            elif key in ("maximum_page_size", "default_page_size"):
                setattr(self.limits, key, int(value))
            elif key == "past_last_page" and value in ("empty", "last"):
                self.limits.past_last_page = value
            else:
                return Response(400, {"message": f"unknown or invalid setting: {key}"})
        self.store.msi_enabled = self.settings.msi_enabled
        return Response(200, self._settings_dict())

    def ctl_integrations(self, request: Request) -> Response:
        return Response(200, [i.as_dict() for i in self.integrations])

    def ctl_new_integration(self, request: Request) -> Response:
        body = request.json() or {}
        with self.lock:
            integration = make_integration(max(i.consumer_id for i in self.integrations) + 1,
                                           str(body.get("name") or "sandbox"), self.rng,
                                           resources=body.get("resources"))
            self.integrations.append(integration)
        return Response(201, integration.as_dict())

    def ctl_update_integration(self, request: Request) -> Response:
        body = request.json() or {}
        integration = next((i for i in self.integrations if i.consumer_id == int(request.params["id"])), None)
        if integration is None:
            return Response(404, {"message": "no such integration"})
        if "resources" in body:
            integration.resources = set(body["resources"])
        for key in ("active", "revoked"):
            if key in body:
                setattr(integration, key, _bool(body[key]))
        return Response(200, integration.as_dict())

    def ctl_ims_expire(self, request: Request) -> Response:
        return Response(200, {"expired": self.ims.expire_all()})

    def ctl_place(self, request: Request) -> Response:
        order = self.store.place_order(request.json() or {})
        return Response(201, render.order(order))

    def ctl_generate(self, request: Request) -> Response:
        count = int((request.json() or {}).get("count", 10))
        created = []
        for _ in range(count):
            order = self.store.place_order({})
            created.append(order.entity_id)
        return Response(201, {"created": created})

    def ctl_activity(self, request: Request) -> Response:
        """``{"orders": N}``: N orders live their lifecycle now (placed, invoiced, some in parts,
        shipped, some refunded), each step firing its webhooks, as on a store in use."""
        count = int((request.json() or {}).get("orders", 10))
        orders = self.store.simulate(count)
        return Response(201, {"orders": [o.entity_id for o in orders],
                              "invoices": [i.entity_id for o in orders for i in o.invoices],
                              "creditmemos": [c.entity_id for o in orders for c in o.creditmemos]})

    def ctl_invoice(self, request: Request) -> Response:
        body = request.json() or {}
        items = body.get("items")
        qtys = None if items is None else {int(k): Decimal(str(v)) for k, v in items.items()}
        invoice = self.store.invoice(int(request.params["id"]), qtys, state=int(body.get("state", 2)))
        return Response(201, render.invoice(invoice, self.store.orders[invoice.order_id]))

    def ctl_refund(self, request: Request) -> Response:
        body = request.json() or {}
        items = body.get("items")
        qtys = None if items is None else {int(k): Decimal(str(v)) for k, v in items.items()}
        memo = self.store.refund(int(request.params["id"]), qtys, invoice_id=body.get("invoice_id"),
                                 shipping=body.get("shipping"),
                                 adjustment_positive=Decimal(str(body.get("adjustment_positive") or 0)),
                                 adjustment_negative=Decimal(str(body.get("adjustment_negative") or 0)))
        return Response(201, render.creditmemo(memo, self.store.orders[memo.order_id]))

    def ctl_ship(self, request: Request) -> Response:
        return Response(200, render.order(self.store.ship(int(request.params["id"]))))

    def ctl_status(self, request: Request) -> Response:
        body = request.json() or {}
        order = self.store.set_status(int(request.params["id"]), str(body.get("state")), body.get("status"))
        return Response(200, render.order(order))

    def ctl_stock(self, request: Request) -> Response:
        with self.store.lock:
            return Response(200, {"source_items": [render.source_item(s) for s in self.store.source_items.values()],
                                  "stock_items": {self.store.products[p].sku: render.stock_item(s)
                                                  for p, s in self.store.stock_items.items()},
                                  # Every SKU sold, bundles and configurable parents included (the
                                  # demo maps them all to Sage stock codes).
                                  "skus": sorted(p.sku for p in self.store.products.values())})

    def ctl_set_stock(self, request: Request) -> Response:
        items = (request.json() or {}).get("items") or []
        changed = self.store.set_source_items(items)
        return Response(200, {"changed": [render.source_item(s) for s in changed]})

    def ctl_counters(self, request: Request) -> Response:
        with self.lock:
            return Response(200, {"endpoints": dict(self.counters), "ims_tokens_issued": self.ims.issued})

    def ctl_violations(self, request: Request) -> Response:
        with self.lock:
            return Response(200, {"count": len(self.violations), "violations": list(self.violations)})

    def ctl_webhooks(self, request: Request) -> Response:
        with self.dispatcher.lock:
            return Response(200, {"subscriptions": [s.as_dict() for s in self.dispatcher.subscriptions],
                                  "deliveries": list(self.dispatcher.deliveries)})

    def ctl_subscribe(self, request: Request) -> Response:
        body = request.json() or {}
        try:
            subscription = self.dispatcher.subscribe(body)
        except ValueError as exc:
            return Response(400, {"message": str(exc)})
        return Response(201, subscription.as_dict())

    def ctl_public_key(self, request: Request) -> Response:
        return Response(200, self.dispatcher.keys.commerce_public_pem(), content_type="application/x-pem-file")

    def ctl_io_key(self, request: Request) -> Response:
        pem = self.dispatcher.keys.io_public_pem(request.params["name"])
        if pem is None:
            return Response(404, {"message": "no such key"})
        return Response(200, pem, content_type="application/x-pem-file")


# -- search rows ---------------------------------------------------------------------------------------
def _columns(rendered: dict) -> dict:
    return {k: v for k, v in rendered.items() if not isinstance(v, (dict, list))}


def _order_row(order) -> dict:
    return render.order(order, nested=False)


ORDER_COLUMNS = COLUMNS["sales-data-order-interface"]
INVOICE_COLUMNS = COLUMNS["sales-data-invoice-interface"]
CREDITMEMO_COLUMNS = COLUMNS["sales-data-creditmemo-interface"]
CUSTOMER_COLUMNS = COLUMNS["customer-data-customer-interface"]
PRODUCT_COLUMNS = {"entity_id", "id", "sku", "name", "type_id", "price", "status", "visibility", "updated_at"}


def build_app(orders: int = 300, seed: int = 1, anchor: datetime | None = None, validate: bool = False,
              faults: dict | None = None, clock=time.time, tenant: str = "sandboxtenant",
              consumer_key: str | None = None, consumer_secret: str | None = None, access_token: str | None = None,
              access_token_secret: str | None = None, ims_client_id: str = "sandbox-ims-client",
              ims_client_secret: str = "sandbox-ims-secret", ims_org_id: str = "SANDBOXORG@AdobeOrg",
              bearer_enabled: bool = False, input_limits: bool = True, past_last_page: str = "empty",
              shared_increment_sequence: bool = False, **kwargs) -> AdobeCommerceApp:
    """A ready-to-serve sandbox Adobe Commerce with one activated integration (all resources)."""
    knobs = AdobeFaults()
    if faults:
        knobs.update(faults)
    store = AdobeCommerceStore(seed=seed, orders=orders, anchor=anchor, clock=clock,
                               shared_increment_sequence=shared_increment_sequence)
    rng = random.Random(seed * 31 + 7)
    integration = make_integration(1, "ml-connector", rng, consumer_key=consumer_key,
                                   consumer_secret=consumer_secret, access_token=access_token,
                                   access_token_secret=access_token_secret)
    ims = ImsIssuer(ims_client_id, ims_client_secret, ims_org_id, clock=clock, ttl=knobs.ims_token_ttl)
    return AdobeCommerceApp(store, [integration], ims, tenant=tenant, faults=knobs, validate=validate, seed=seed,
                            limits=Limits(input_limit_enabled=input_limits, past_last_page=past_last_page),
                            settings=Settings(bearer_enabled=bearer_enabled), **kwargs)
