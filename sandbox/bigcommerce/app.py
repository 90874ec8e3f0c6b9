"""HTTP face of the sandbox store: BigCommerce's REST paths under ``/stores/{store_hash}/`` plus
control endpoints under ``/__sandbox__/``.

``build_app(...)`` returns a ``BigCommerceApp``; serve it with ``sandbox.httpserver.SandboxServer``.
With ``validate=True`` every API request and response is checked against the official specs and
violations are kept in ``app.violations`` (and served at ``/__sandbox__/violations``).
"""

from __future__ import annotations

import hmac
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sandbox.httpserver import Faults, Request, Response, SandboxApp

from . import render
from .catalog import LOCATIONS
from .formats import parse_date_filter
from .models import STATUSES
from .ratelimit import RateLimiter
from .store import BigCommerceStore, StoreError
from .webhooks import WebhookDispatcher

V3_ERROR_TYPE = "https://developer.bigcommerce.com/api-docs/getting-started/api-status-codes"
P = r"/stores/(?P<store_hash>[^/]+)"
ID = r"(?P<id>\d+)"


@dataclass
class BigCommerceFaults(Faults):
    rate_limit_storm: float = 0.0  # seconds of "429 to everything", starting when set
    webhook_drop_rate: float = 0.0
    webhook_repeat: int = 1  # each delivery is sent this many times
    webhook_duplicate_rate: float = 0.0  # share of deliveries sent once more (a retry the receiver already has)
    webhook_deactivate_after: int = 20  # consecutive failed attempts before is_active=false
    quota: int = 150
    window_ms: int = 30000

    def __post_init__(self):
        self.on_storm = None  # callback(seconds), set by the app

    def update(self, values: dict) -> None:
        super().update({k: v for k, v in values.items()})
        if "rate_limit_storm" in values and self.on_storm:
            self.on_storm(self.rate_limit_storm)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "on_storm"}


def v2_error(status: int, message: str) -> Response:
    return Response(status, [{"status": status, "message": message}])


def v3_error(status: int, title: str, errors: dict | None = None, problem: bool = False) -> Response:
    body = {"status": status, "title": title, "type": V3_ERROR_TYPE, "errors": errors or {}}
    return Response(status, body, content_type="application/problem+json" if problem else "application/json")


def _int(request: Request, name: str, default: int) -> int:
    raw = request.arg(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise StoreError(400, f"The field '{name}' is invalid.") from exc


def _csv(request: Request, name: str) -> list[str] | None:
    raw = request.arg(name)
    if raw is None:
        return None
    return [x for x in raw.split(",") if x != ""]


class BigCommerceApp(SandboxApp):
    name = "bigcommerce"

    def __init__(self, store: BigCommerceStore, token: str = "sandbox-token", client_id: str = "sandbox-client",
                 client_secret: str = "sandbox-secret", faults: BigCommerceFaults | None = None,
                 validate: bool = False, seed: int = 1, webhook_retry_delay: float = 0.2,
                 webhook_attempts: int = 3, base_url: str = "https://api.bigcommerce.com"):
        faults = faults or BigCommerceFaults()
        super().__init__(faults, seed)
        self.store = store
        self.token = token
        self.client_id = client_id
        self.store.client_id = client_id
        self.base_url = f"{base_url}/stores/{store.store_hash}"
        self.limiter = RateLimiter()
        faults.on_storm = self.limiter.start_storm
        if faults.rate_limit_storm:
            self.limiter.start_storm(faults.rate_limit_storm)
        self.dispatcher = WebhookDispatcher(store, client_secret, faults, seed, webhook_retry_delay,
                                            webhook_attempts)
        self.validate = validate
        self.violations: list[dict] = []
        self.counters: dict[str, int] = {}
        self._local = threading.local()
        self._register()

    # -- dispatch: auth, rate limit, headers, validation -------------------------------------------
    def pre_dispatch(self, request: Request) -> Response | None:
        match = re.match(P + r"/", request.path)
        if not match or match.group("store_hash") != self.store.store_hash:
            return None  # falls through to the 404
        supplied = request.headers.get("x-auth-token", "")
        if not supplied or not hmac.compare_digest(supplied.encode(), self.token.encode()):
            return self._error(request, 401, "You are not authorized to access this resource.")
        decision = self.limiter.consume(int(self.faults.quota), int(self.faults.window_ms), request.method,
                                        request.path)
        self._local.decision = decision
        if not decision.allowed:
            return self._error(request, 429, "Too many requests")
        return None

    def dispatch(self, request: Request) -> Response:
        is_api = request.path.startswith("/stores/")
        self._local.decision = None
        try:
            response = super().dispatch(request)
        except StoreError as exc:
            response = self._error(request, exc.status, exc.message)
        except (ValueError, TypeError, KeyError) as exc:
            if isinstance(exc, ValueError) and exc.__class__.__name__ == "JSONDecodeError":
                raise
            response = self._error(request, 400, f"Bad request: {exc}")
        if not is_api:
            return response
        if response.status >= 400 and isinstance(response.body, dict) and "type" not in response.body:
            response = self._error(request, response.status, str(response.body.get("title", "")))
        decision = self._local.decision or self.limiter.peek(int(self.faults.quota), int(self.faults.window_ms))
        response.headers.update(decision.headers())
        key = request.method + " " + re.sub(r"/\d+", "/{id}", re.sub(P, "", request.path))
        with self.lock:
            self.counters[key] = self.counters.get(key, 0) + 1
            if response.status == 429:
                self.counters["429"] = self.counters.get("429", 0) + 1
        if self.validate:
            self._check_contract(request, response)
        return response

    def _error(self, request: Request, status: int, message: str) -> Response:
        if "/v2/" in request.path:
            return v2_error(status, message)
        problem = "/v3/inventory/" in request.path and status == 422
        return v3_error(status, message, problem=problem)

    def _check_contract(self, request: Request, response: Response) -> None:
        from sandbox.specs import bigcommerce_specs

        specs = bigcommerce_specs()
        path = re.sub(P, "", request.path)
        try:
            body = request.json()
        except ValueError:
            body = request.body.decode("utf-8", "replace")
        found = []
        if response.status not in (401, 429) and response.status < 500:
            found += specs.validate_request(request.method, path, request.query, body)
        found += specs.validate_response(request.method, path, response.status, _jsonable(response.body),
                                         response.content_type)
        if found:
            with self.lock:
                self.violations += [v.as_dict() for v in found]

    # -- routes --------------------------------------------------------------------------------------
    def _register(self) -> None:
        r = self.route
        r("GET", P + r"/v2/orders", self.list_orders)
        r("GET", P + r"/v2/orders/count", self.count_orders)
        r("GET", P + rf"/v2/orders/{ID}", self.get_order)
        r("PUT", P + rf"/v2/orders/{ID}", self.update_order)
        r("GET", P + rf"/v2/orders/{ID}/products", self.order_products)
        r("GET", P + rf"/v2/orders/{ID}/shipping_addresses", self.order_addresses)
        r("GET", P + rf"/v2/orders/{ID}/coupons", self.order_coupons)
        r("GET", P + rf"/v2/orders/{ID}/taxes", self.order_taxes)
        r("GET", P + r"/v2/order_statuses", self.order_statuses)
        r("GET", P + rf"/v2/order_statuses/{ID}", self.order_status)
        r("GET", P + r"/v3/orders/payment_actions/refunds", self.all_refunds)
        r("GET", P + rf"/v3/orders/{ID}/transactions", self.transactions)
        r("GET", P + rf"/v3/orders/{ID}/payment_actions/refunds", self.order_refunds)
        r("POST", P + rf"/v3/orders/{ID}/payment_actions/refunds", self.post_refund)
        r("GET", P + r"/v3/customers", self.list_customers)
        r("POST", P + r"/v3/customers", self.create_customers)
        r("GET", P + r"/v3/catalog/products", self.list_products)
        r("PUT", P + r"/v3/catalog/products", self.update_products)
        r("GET", P + rf"/v3/catalog/products/{ID}", self.get_product)
        r("GET", P + rf"/v3/catalog/products/{ID}/variants", self.product_variants)
        r("GET", P + r"/v3/catalog/variants", self.list_variants)
        r("PUT", P + r"/v3/catalog/variants", self.update_variants)
        r("PUT", P + r"/v3/inventory/adjustments/absolute", self.absolute_adjustment)
        r("GET", P + r"/v3/inventory/items", self.inventory_items)
        r("GET", P + r"/v3/hooks", self.list_hooks)
        r("POST", P + r"/v3/hooks", self.create_hook)
        r("GET", P + rf"/v3/hooks/{ID}", self.get_hook)
        r("PUT", P + rf"/v3/hooks/{ID}", self.update_hook)
        r("DELETE", P + rf"/v3/hooks/{ID}", self.delete_hook)
        # control
        r("POST", r"/__sandbox__/orders", self.ctl_create_order)
        r("POST", r"/__sandbox__/orders/generate", self.ctl_generate)
        r("POST", rf"/__sandbox__/orders/{ID}/refunds", self.ctl_refund)
        r("POST", rf"/__sandbox__/orders/{ID}/status", self.ctl_status)
        r("POST", r"/__sandbox__/stock", self.ctl_stock)
        r("GET", r"/__sandbox__/inventory", self.ctl_inventory)
        r("POST", rf"/__sandbox__/products/{ID}", self.ctl_touch_product)
        r("GET", r"/__sandbox__/counters", self.ctl_counters)
        r("GET", r"/__sandbox__/ratelimit", self.ctl_ratelimit)
        r("GET", r"/__sandbox__/violations", self.ctl_violations)
        r("GET", r"/__sandbox__/webhooks", self.ctl_webhooks)
        r("GET", r"/__sandbox__/info", self.ctl_info)

    def _store_ok(self, request: Request) -> None:
        if request.params.get("store_hash") != self.store.store_hash:
            raise StoreError(404, "The requested resource was not found.")

    # -- v2 orders -----------------------------------------------------------------------------
    def _filtered_orders(self, request: Request) -> list:
        orders = [o for o in self.store.orders.values() if not o.is_deleted]

        def keep(pred):
            nonlocal orders
            orders = [o for o in orders if pred(o)]

        for name, pred in (
            ("min_id", lambda o, v: o.id >= int(v)), ("max_id", lambda o, v: o.id <= int(v)),
            ("status_id", lambda o, v: o.status_id == int(v)), ("customer_id", lambda o, v: o.customer_id == int(v)),
            ("min_total", lambda o, v: o.figures.total_inc >= Decimal(v)),
            ("max_total", lambda o, v: o.figures.total_inc <= Decimal(v)),
            ("email", lambda o, v: o.billing["email"].lower() == v.lower()),
            ("payment_method", lambda o, v: o.payment_method == v),
            ("channel_id", lambda o, v: int(v) == o.channel_id),
            ("cart_id", lambda o, v: f"cart-{o.id:08d}" == v),
            ("external_order_id", lambda o, v: v == ""),
        ):
            value = request.arg(name)
            if value not in (None, ""):
                keep(lambda o, p=pred, v=value: p(o, v))
        for name, attr, is_min in (("min_date_created", "date_created", True),
                                   ("max_date_created", "date_created", False),
                                   ("min_date_modified", "date_modified", True),
                                   ("max_date_modified", "date_modified", False)):
            moment = parse_date_filter(request.arg(name))
            if moment is not None:  # unparseable dates are ignored, like the real API does
                keep(lambda o, a=attr, m=moment, lo=is_min: (getattr(o, a) >= m) if lo else (getattr(o, a) <= m))
        sort = request.arg("sort") or "id"
        field, _, direction = sort.partition(":")
        if field not in ("id", "customer_id", "date_created", "date_modified", "status_id", "channel_id"):
            field = "id"
        orders.sort(key=lambda o: (getattr(o, field, 1), o.id), reverse=direction == "desc")
        return orders

    def _page(self, request: Request, items: list, default_limit: int = 50, max_limit: int = 250):
        page = max(1, _int(request, "page", 1))
        limit = _int(request, "limit", default_limit)
        if limit > max_limit:
            raise StoreError(413, f"The limit may not exceed {max_limit}.")
        limit = max(1, limit)
        return items[(page - 1) * limit: page * limit], page, limit

    def list_orders(self, request: Request) -> Response:
        self._store_ok(request)
        include = set(_csv(request, "include") or [])
        with self.store.lock:
            rows, _, _ = self._page(request, self._filtered_orders(request))
            if not rows:
                return Response(204)  # empty or past the last page: no body, not []
            return Response(200, [render.order_v2(o, self.base_url, include) for o in rows])

    def count_orders(self, request: Request) -> Response:
        self._store_ok(request)
        with self.store.lock:
            orders = self._filtered_orders(request)
        statuses = []
        for sid in STATUSES:
            row = render.order_status(sid)
            row.update({"count": sum(1 for o in orders if o.status_id == sid), "sort_order": sid})
            statuses.append(row)
        return Response(200, {"statuses": statuses, "count": len(orders)})

    def get_order(self, request: Request) -> Response:
        self._store_ok(request)
        include = set(_csv(request, "include") or [])
        with self.store.lock:
            order = self.store.get_order(int(request.params["id"]))
            return Response(200, render.order_v2(order, self.base_url, include))

    def update_order(self, request: Request) -> Response:
        self._store_ok(request)
        body = request.json() or {}
        order_id = int(request.params["id"])
        with self.store.lock:
            order = self.store.get_order(order_id)
            if "status_id" in body:
                if int(body["status_id"]) not in STATUSES:
                    raise StoreError(400, "The field 'status_id' is invalid.")
                self.store.set_status(order_id, int(body["status_id"]))
            for key in ("staff_notes", "customer_message"):
                if key in body:
                    setattr(order, key, str(body[key]))
            return Response(200, render.order_v2(order, self.base_url))

    def _sub(self, request: Request, build) -> Response:
        self._store_ok(request)
        with self.store.lock:
            order = self.store.get_order(int(request.params["id"]))
            rows, _, _ = self._page(request, build(order))
        return Response(200, rows) if rows else Response(204)

    def order_products(self, request: Request) -> Response:
        return self._sub(request, lambda o: [render.order_product_v2(o, ln) for ln in o.lines])

    def order_addresses(self, request: Request) -> Response:
        return self._sub(request, lambda o: [render.shipping_address_v2(o, self.base_url)])

    def order_coupons(self, request: Request) -> Response:
        return self._sub(request, render.coupons_v2)

    def order_taxes(self, request: Request) -> Response:
        return self._sub(request, render.taxes_v2)

    def order_statuses(self, request: Request) -> Response:
        self._store_ok(request)
        return Response(200, [render.order_status(s) for s in STATUSES])

    def order_status(self, request: Request) -> Response:
        self._store_ok(request)
        sid = int(request.params["id"])
        if sid not in STATUSES:
            raise StoreError(404, "The requested resource was not found.")
        return Response(200, render.order_status(sid))

    # -- v3 orders ------------------------------------------------------------------------------
    def _v3_list(self, request: Request, items: list, default_limit: int = 50, max_limit: int = 250) -> dict:
        rows, page, limit = self._page(request, items, default_limit, max_limit)
        return {"data": rows, "meta": {"pagination": render.pagination(len(items), page, limit, len(rows),
                                                                      request.path)}}

    def transactions(self, request: Request) -> Response:
        self._store_ok(request)
        with self.store.lock:
            order = self.store.get_order(int(request.params["id"]))
            txns = [render.transaction_v3(t) for t in self.store.transactions.get(order.id, [])]
        if not txns:
            return Response(204)
        return Response(200, self._v3_list(request, txns))

    def _refunds(self, request: Request, order_ids: set[int] | None) -> list[dict]:
        ids = _csv(request, "id:in")
        order_in = _csv(request, "order_id:in")
        low = request.arg("created:min")
        high = request.arg("created:max")
        low_at = datetime.fromisoformat(low.replace("Z", "+00:00")) if low else None
        high_at = datetime.fromisoformat(high.replace("Z", "+00:00")) if high else None
        txn = request.arg("transaction_id")
        out = []
        with self.store.lock:
            for refund in sorted(self.store.refunds.values(), key=lambda r: r.id):
                if order_ids is not None and refund.order_id not in order_ids:
                    continue
                if ids and str(refund.id) not in ids:
                    continue
                if order_in and str(refund.order_id) not in order_in:
                    continue
                if low_at and refund.created < low_at or high_at and refund.created > high_at:
                    continue
                if txn and not any(p["transaction_id"] == txn for p in refund.payments):
                    continue
                out.append(render.refund_v3(refund))
        return out

    def all_refunds(self, request: Request) -> Response:
        self._store_ok(request)
        return Response(200, self._v3_list(request, self._refunds(request, None)))

    def order_refunds(self, request: Request) -> Response:
        self._store_ok(request)
        order = self.store.get_order(int(request.params["id"]))
        return Response(200, self._v3_list(request, self._refunds(request, {order.id})))

    def post_refund(self, request: Request) -> Response:
        self._store_ok(request)
        body = request.json() or {}
        items = body.get("items") or []
        if body.get("tax_adjustment_amount") is not None:
            items = [*items, {"tax_adjustment_amount": body["tax_adjustment_amount"]}]
        if not items:
            raise StoreError(422, "items are required")
        if body.get("items") and not body.get("payments"):
            raise StoreError(422, "payments are required")
        order_id = int(request.params["id"])
        with self.store.lock:
            _, total, _ = self.store.quote_refund(self.store.get_order(order_id), items)
            requested = sum((Decimal(str(p.get("amount", 0))) for p in body.get("payments") or []), Decimal(0))
            if body.get("payments") and requested != total:
                # Like the real API: the payments must match the refund quote.
                raise StoreError(422, f"Payment total {requested} does not match the refund quote {total}")
            refund = self.store.create_refund(order_id, items=items, reason=body.get("reason", ""),
                                              payments=body.get("payments"))
        return Response(201, {"data": render.refund_v3(refund), "meta": {}})

    # -- customers -----------------------------------------------------------------------------
    def list_customers(self, request: Request) -> Response:
        self._store_ok(request)
        emails = {e.lower() for e in _csv(request, "email:in") or []}
        ids = set(_csv(request, "id:in") or [])
        with self.store.lock:
            rows = [c for c in sorted(self.store.customers.values(), key=lambda c: c.id)
                    if (not emails or c.email.lower() in emails) and (not ids or str(c.id) in ids)]
            data = [render.customer_v3(c) for c in rows]
        return Response(200, self._v3_list(request, data))

    def create_customers(self, request: Request) -> Response:
        self._store_ok(request)
        body = request.json()
        if not isinstance(body, list):
            raise StoreError(422, "The request body must be an array of customers.")
        if len(body) > 10:
            raise StoreError(413, "The maximum number of customers per request is 10.")
        created = self.store.create_customers(body)
        return Response(200, {"data": [render.customer_v3(c) for c in created], "meta": {}})

    # -- catalog -------------------------------------------------------------------------------
    def list_products(self, request: Request) -> Response:
        self._store_ok(request)
        ids = set(_csv(request, "id:in") or [])
        skus = set(_csv(request, "sku:in") or [])
        sku = request.arg("sku")
        include = set(_csv(request, "include") or [])
        low = parse_date_filter(request.arg("date_modified:min"))
        with self.store.lock:
            products = [p for p in sorted(self.store.catalog.products.values(), key=lambda p: p.id)
                        if (not ids or str(p.id) in ids) and (not skus or p.sku in skus)
                        and (not sku or p.sku == sku) and (low is None or p.date_modified >= low)]
            data = [self.store.catalog.product_json(p, "variants" in include) for p in products]
        return Response(200, self._v3_list(request, data))

    def get_product(self, request: Request) -> Response:
        self._store_ok(request)
        include = set(_csv(request, "include") or [])
        product = self.store.catalog.products.get(int(request.params["id"]))
        if product is None:
            raise StoreError(404, "The requested product was not found.")
        return Response(200, {"data": self.store.catalog.product_json(product, "variants" in include), "meta": {}})

    def update_products(self, request: Request) -> Response:
        """Batch update (max 10). Like the real API, a product whose inventory part cannot be saved
        (stock for a variant-tracked product) is saved otherwise and the call answers 207."""
        self._store_ok(request)
        body = request.json()
        if not isinstance(body, list):
            raise StoreError(422, "The request body must be an array of products.")
        if len(body) > 10:
            raise StoreError(413, "The maximum number of products per request is 10.")
        failed = []
        with self.store.lock:
            products = []
            for item in body:
                product = self.store.catalog.products.get(int(item.get("id") or 0))
                if product is None:
                    raise StoreError(404, f"Product {item.get('id')} was not found.")
                products.append((product, item))
            for product, item in products:
                if "price" in item:
                    product.price = Decimal(str(item["price"]))
                if "cost_price" in item:
                    product.cost_price = Decimal(str(item["cost_price"]))
                if "inventory_level" in item:
                    if product.tracking == "variant":
                        failed.append(product.id)
                    else:
                        self.store.set_stock([{"product_id": product.id, "location_id": 1,
                                               "quantity": int(item["inventory_level"])}])
                self.store.touch_product(product.id)
            data = [self.store.catalog.product_json(p) for p, _ in products]
        if failed:
            return Response(207, {"data": data, "errors": {
                "status": 422, "title": "Some products were saved, but their inventory was not.",
                "type": V3_ERROR_TYPE,
                "errors": {str(pid): "inventory is tracked by variant; set it through the variants or the "
                                     "Inventory API" for pid in failed}}, "meta": {}})
        return Response(200, {"data": data, "meta": {}})

    def product_variants(self, request: Request) -> Response:
        self._store_ok(request)
        product = self.store.catalog.products.get(int(request.params["id"]))
        if product is None:
            raise StoreError(404, "The requested product was not found.")
        with self.store.lock:
            data = [self.store.catalog.variant_json(v) for v in product.variants]
        return Response(200, self._v3_list(request, data))

    def list_variants(self, request: Request) -> Response:
        self._store_ok(request)
        sku = request.arg("sku")
        skus = set(_csv(request, "sku:in") or [])  # undocumented but observed to work
        product_ids = set(_csv(request, "product_id:in") or [])
        vid = request.arg("id")
        with self.store.lock:
            variants = [v for v in sorted(self.store.catalog.variants.values(), key=lambda v: v.id)
                        if (not sku or v.sku == sku) and (not skus or v.sku in skus)
                        and (not product_ids or str(v.product_id) in product_ids)
                        and (not vid or str(v.id) == vid)]
            data = [self.store.catalog.variant_json(v) for v in variants]
        return Response(200, self._v3_list(request, data))

    def update_variants(self, request: Request) -> Response:
        """PUT /v3/catalog/variants: a batch of at most 50 variants, each with its id; all or none."""
        self._store_ok(request)
        body = request.json()
        if not isinstance(body, list) or not body:
            return v3_error(422, "a list of variants is required", problem=True)
        if len(body) > 50:
            return v3_error(413, "The maximum number of variants per request is 50.")
        with self.store.lock:
            found = []
            for n, item in enumerate(body):
                variant = self.store.catalog.variants.get(int(item.get("id") or 0)) if isinstance(item, dict) else None
                if variant is None:
                    return v3_error(422, f"[{n}].id: no variant with id {item.get('id') if isinstance(item, dict) else item}")
                found.append((variant, item))
            for variant, item in found:
                if "price" in item:
                    variant.price = Decimal(str(item["price"]))
                self.store.touch_product(variant.product_id)
            data = [self.store.catalog.variant_json(v) for v, _ in found]
        return Response(200, {"data": data, "meta": {}})

    # -- inventory -----------------------------------------------------------------------------
    def absolute_adjustment(self, request: Request) -> Response:
        self._store_ok(request)
        body = request.json() or {}
        items = body.get("items")
        if not isinstance(items, list) or not items:
            return v3_error(422, "items are required", problem=True)
        if len(items) > 2000:
            return v3_error(413, "The maximum number of items per request is 2000.")
        try:
            txn = self.store.set_stock(items)
        except StoreError as exc:
            return v3_error(exc.status, f"[{exc.message}]", problem=True)
        return Response(200, {"transaction_id": txn})

    def inventory_items(self, request: Request) -> Response:
        self._store_ok(request)
        skus = set(_csv(request, "sku:in") or [])
        vids = set(_csv(request, "variant_id:in") or [])
        pids = set(_csv(request, "product_id:in") or [])
        locs = {int(x) for x in _csv(request, "location_id:in") or []}
        with self.store.lock:
            variants = [v for v in sorted(self.store.catalog.variants.values(), key=lambda v: v.id)
                        if (not skus or v.sku in skus) and (not vids or str(v.id) in vids)
                        and (not pids or str(v.product_id) in pids)]
            data = []
            for v in variants:
                item = self.store.catalog.inventory_item_json(v)
                if locs:
                    item["locations"] = [loc for loc in item["locations"] if loc["location_id"] in locs]
                data.append(item)
        return Response(200, self._v3_list(request, data, default_limit=50, max_limit=1000))

    # -- hooks ---------------------------------------------------------------------------------
    def list_hooks(self, request: Request) -> Response:
        self._store_ok(request)
        active = request.arg("is_active")
        scope = request.arg("scope")
        destination = request.arg("destination")
        with self.store.lock:
            hooks = [h for h in sorted(self.store.hooks.values(), key=lambda h: h.id)
                     if (active is None or h.is_active == (active == "true"))
                     and (not scope or h.scope == scope) and (not destination or h.destination == destination)]
            data = [render.hook_v3(h, self.store.store_hash) for h in hooks]
        return Response(200, self._v3_list(request, data))

    def create_hook(self, request: Request) -> Response:
        self._store_ok(request)
        hook = self.store.create_hook(request.json() or {})
        return Response(200, {"data": render.hook_v3(hook, self.store.store_hash), "meta": {}})

    def get_hook(self, request: Request) -> Response:
        self._store_ok(request)
        hook = self.store.hooks.get(int(request.params["id"]))
        if hook is None:
            raise StoreError(404, "Webhook not found")
        return Response(200, {"data": render.hook_v3(hook, self.store.store_hash), "meta": {}})

    def update_hook(self, request: Request) -> Response:
        self._store_ok(request)
        hook = self.store.update_hook(int(request.params["id"]), request.json() or {})
        return Response(200, {"data": render.hook_v3(hook, self.store.store_hash), "meta": {}})

    def delete_hook(self, request: Request) -> Response:
        self._store_ok(request)
        hook = self.store.delete_hook(int(request.params["id"]))
        return Response(200, {"data": render.hook_v3(hook, self.store.store_hash), "meta": {}})

    # -- control endpoints -----------------------------------------------------------------------
    def ctl_create_order(self, request: Request) -> Response:
        order = self.store.create_order(request.json() or {})
        return Response(201, render.order_v2(order, self.base_url, {"consignments.line_items"}))

    def ctl_generate(self, request: Request) -> Response:
        count = int((request.json() or {}).get("count", 10))
        orders = self.store.generate_orders(count)
        return Response(201, {"created": [o.id for o in orders]})

    def ctl_refund(self, request: Request) -> Response:
        body = request.json() or {}
        try:
            refund = self.store.create_refund(int(request.params["id"]), items=body.get("items"),
                                              kind=body.get("kind", "item"), reason=body.get("reason", "Refund"),
                                              payments=body.get("payments"))
        except StoreError as exc:
            return Response(exc.status, {"error": exc.message})
        return Response(201, render.refund_v3(refund))

    def ctl_status(self, request: Request) -> Response:
        body = request.json() or {}
        order = self.store.set_status(int(request.params["id"]), int(body["status_id"]))
        return Response(200, render.order_v2(order, self.base_url))

    def ctl_stock(self, request: Request) -> Response:
        body = request.json() or {}
        try:
            txn = self.store.set_stock(body.get("items") or [])
        except StoreError as exc:
            return Response(exc.status, {"error": exc.message})
        return Response(200, {"transaction_id": txn})

    def ctl_inventory(self, request: Request) -> Response:
        catalog = self.store.catalog
        with self.store.lock:
            levels = {v.sku: {str(loc["location_id"]): catalog.level(v.id, loc["location_id"]) for loc in LOCATIONS}
                      for v in catalog.variants.values()}
        return Response(200, {"levels": levels})

    def ctl_touch_product(self, request: Request) -> Response:
        body = request.json() or {}
        price = Decimal(str(body["price"])) if "price" in body else None
        self.store.touch_product(int(request.params["id"]), price)
        return Response(200, self.store.catalog.product_json(self.store.catalog.products[int(request.params["id"])]))

    def ctl_counters(self, request: Request) -> Response:
        with self.lock:
            return Response(200, {"endpoints": dict(self.counters), "rate_limit": self.limiter.summary()})

    def ctl_ratelimit(self, request: Request) -> Response:
        with self.limiter.lock:
            log = list(self.limiter.log[-2000:])
        return Response(200, {"summary": self.limiter.summary(), "log": log})

    def ctl_violations(self, request: Request) -> Response:
        with self.lock:
            return Response(200, {"count": len(self.violations), "violations": list(self.violations)})

    def ctl_webhooks(self, request: Request) -> Response:
        with self.dispatcher.lock:
            return Response(200, {"deliveries": list(self.dispatcher.deliveries)})

    def ctl_info(self, request: Request) -> Response:
        return Response(200, {"store_hash": self.store.store_hash, "store_id": self.store.store_id,
                              "orders": len(self.store.orders), "client_id": self.client_id,
                              "api_path": f"/stores/{self.store.store_hash}/"})


def _jsonable(body):
    """The response body as a client would parse it (Decimals are never in bodies; keep it simple)."""
    if isinstance(body, (bytes, str)):
        return None if not body else body
    return body


def build_app(store_hash: str = "abc123", token: str = "sandbox-token", client_id: str = "sandbox-client",
              client_secret: str = "sandbox-secret", orders: int = 300, seed: int = 1,
              anchor: datetime | None = None, validate: bool = False, faults: dict | None = None,
              clock=time.time, channels: int = 1, **kwargs) -> BigCommerceApp:
    """A ready-to-serve sandbox store. ``faults`` takes the knob names of ``BigCommerceFaults``."""
    knobs = BigCommerceFaults()
    if faults:
        knobs.update(faults)
    store = BigCommerceStore(seed=seed, orders=orders, store_hash=store_hash, anchor=anchor, clock=clock,
                             client_id=client_id, channels=channels)
    return BigCommerceApp(store, token=token, client_id=client_id, client_secret=client_secret, faults=knobs,
                          validate=validate, seed=seed, **kwargs)
