"""BigCommerce REST client for one store: Orders v2, Orders v3 (transactions, refunds),
Customers v3, Catalog v3, Inventory v3 and Webhooks v3.

Quirks handled here so no caller has to know them:
- every v2 collection answers ``204 No Content`` with an empty body when empty, and also for a
  page past the last one; that is an empty list, not a JSON error;
- v2 error bodies are a JSON list ``[{status, message}]``, v3 ones an object ``{status, title,
  errors}`` (refunds wrap it in ``data``); both become typed errors with the store's words;
- JSON is parsed with Decimal, so v3 money never passes through float; v2 money stays a string;
- 207 Multi-Status (a batch partly applied) comes back as a ``BatchResult`` naming what failed;
- the store's request budget is shared by every worker process (see ratelimit.py).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import requests

from mlcommon.http import (
    ApiError,
    AuthError,
    BaseApiClient,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    RetryableError,
    kept_alive_session,
)

from .formats import format_rfc2822, format_rfc3339
from .ratelimit import HEADER_RESET_MS, Budget, budget_for

V2_MAX_LIMIT = 250
V3_MAX_LIMIT = 250
CUSTOMER_BATCH = 10
INVENTORY_BATCH = 2000
VARIANT_BATCH = 50  # PUT /v3/catalog/variants takes at most 50 variants a call
ORDER_INCLUDE = "consignments.line_items"


@dataclass
class BatchResult:
    """A batch write's outcome: what the store returned, and the items it refused (207/422)."""

    status: int
    data: list | dict | None = None
    failed: list = field(default_factory=list)  # [{"item": ..., "error": ...}] or the store's error entries
    transaction_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


class BigCommerceClient(BaseApiClient):
    user_agent = "ml-connector/1.0 (BigCommerce-Sage sync)"

    def __init__(self, api_base_url: str, store_hash: str, access_token: str, *, budget: Budget | None = None,
                 session: requests.Session | None = None, verify: bool = True):
        super().__init__(f"{api_base_url.rstrip('/')}/stores/{store_hash}", session=session, verify=verify)
        self.store_hash = store_hash
        self._token = access_token
        self.budget = budget if budget is not None else budget_for(api_base_url, store_hash)

    @classmethod
    def for_store(cls, store, **kwargs) -> BigCommerceClient:
        # A kept-alive session: the token travels in each request's headers, so the session holds
        # nothing of one store's that another could pick up.
        verify = getattr(store, "verify_tls", True)
        kwargs.setdefault("session", kept_alive_session(verify))
        return cls(store.api_base_url, store.store_hash, store.access_token, verify=verify, **kwargs)

    # -- BaseApiClient hooks -------------------------------------------------------------
    def default_headers(self) -> dict[str, str]:
        # X-Auth-Token, not Authorization: Bearer. The token never reaches a log: redact() knows it.
        return {"Accept": "application/json", "X-Auth-Token": self._token, "User-Agent": self.user_agent}

    def before_request(self, method: str, url: str) -> None:
        self.budget.acquire(sleep=self.sleep)

    def after_response(self, response: requests.Response) -> None:
        self.budget.observe_response(response)

    def decode(self, response: requests.Response):
        if not response.content:
            return None
        try:
            return json.loads(response.content, parse_float=Decimal)
        except ValueError:
            return response.text

    def retry_after_of(self, response: requests.Response) -> float | None:
        reset_ms = response.headers.get(HEADER_RESET_MS)
        try:
            return int(reset_ms) / 1000 if reset_ms is not None else None
        except ValueError:
            return None

    def backoff_for(self, attempt: int, error: ApiError) -> float:
        if isinstance(error, RateLimitedError):
            # The shared budget already holds every process until the reset; this is only a nudge.
            return 0.01
        return super().backoff_for(attempt, error)

    def error_for(self, response: requests.Response, body) -> ApiError:
        status = response.status_code
        detail = remote_message(body)
        message = f"BigCommerce {response.request.method} {_path_of(response.url)} answered {status}"
        if detail:
            message = f"{message}: {detail}"
        if status == 429:
            return RateLimitedError(message, status=status, body=body, retry_after=self.retry_after_of(response))
        if status == 401:
            return AuthError(f"{message} (the access token is not valid)", status=status, body=body)
        if status == 403:
            return AuthError(f"{message} (the API account lacks the scope for this call)", status=status, body=body)
        if status == 404:
            return NotFoundError(message, status=status, body=body)
        if status in (408, 423, 425) or (status >= 500 and status not in (501, 507)):
            return RetryableError(message, status=status, body=body)
        return PermanentError(message, status=status, body=body)

    def request(self, method: str, path: str, **kwargs):
        """A 429 means the store did not run the request, so even a non-idempotent write (POST
        customer) is safe to send again after the wait; any other failure of a POST is not."""
        if method.upper() in self.idempotent_methods or kwargs.get("retry"):
            return super().request(method, path, **kwargs)
        kwargs["retry"] = False
        for attempt in range(1, self.max_attempts + 1):
            try:
                return super().request(method, path, **kwargs)
            except RateLimitedError:
                if attempt == self.max_attempts:
                    raise
        raise AssertionError("unreachable")

    # -- paging --------------------------------------------------------------------------
    def v2_list(self, path: str, params: dict | None = None) -> list:
        body = self.get(path, params=params)
        return body if isinstance(body, list) else []

    def iter_v2(self, path: str, params: dict | None = None, limit: int = V2_MAX_LIMIT) -> Iterator[dict]:
        """Page a v2 collection until a short page or a 204 (v2 sends no paging metadata)."""
        for page in self.iter_v2_pages(path, params, limit):
            yield from page

    def iter_v2_pages(self, path: str, params: dict | None = None, limit: int = V2_MAX_LIMIT) -> Iterator[list]:
        page = 1
        while True:
            items = self.v2_list(path, {**(params or {}), "page": page, "limit": limit})
            if items:
                yield items
            if len(items) < limit:
                return
            page += 1

    def iter_v3(self, path: str, params: dict | None = None, limit: int = V3_MAX_LIMIT) -> Iterator[dict]:
        """Page a v3 collection by ``meta.pagination`` (200 with ``data: []`` when empty)."""
        page = 1
        while True:
            body = self.get(path, params={**(params or {}), "page": page, "limit": limit})
            if not isinstance(body, dict):
                return
            data = body.get("data") or []
            yield from data
            pagination = (body.get("meta") or {}).get("pagination") or {}
            total_pages = pagination.get("total_pages")
            if total_pages is None:
                if len(data) < limit:
                    return
            elif page >= int(total_pages):
                return
            if not data:
                return
            page += 1

    # -- orders v2 -----------------------------------------------------------------------
    @staticmethod
    def order_filters(*, modified_since: dt.datetime | None = None, modified_until: dt.datetime | None = None,
                      created_since: dt.datetime | None = None, created_until: dt.datetime | None = None,
                      min_id: int | None = None, max_id: int | None = None, status_id: int | None = None,
                      **extra) -> dict:
        params = {k: v for k, v in extra.items() if v is not None}
        if modified_since:
            params["min_date_modified"] = format_rfc2822(modified_since)
        if modified_until:
            params["max_date_modified"] = format_rfc2822(modified_until)
        if created_since:
            params["min_date_created"] = format_rfc2822(created_since)
        if created_until:
            params["max_date_created"] = format_rfc2822(created_until)
        if min_id is not None:
            params["min_id"] = min_id
        if max_id is not None:
            params["max_id"] = max_id
        if status_id is not None:
            params["status_id"] = status_id
        return params

    def list_orders(self, params: dict | None = None, *, page: int = 1, limit: int = V2_MAX_LIMIT,
                    sort: str | None = None, with_lines: bool = True) -> list[dict]:
        query = {**(params or {}), "page": page, "limit": limit}
        if sort:
            query["sort"] = sort
        if with_lines:
            query["include"] = ORDER_INCLUDE
            query["consignment_structure"] = "object"
        return self.v2_list("/v2/orders", query)

    def iter_orders(self, params: dict | None = None, *, sort: str = "id:asc", with_lines: bool = True,
                    limit: int = V2_MAX_LIMIT) -> Iterator[dict]:
        page = 1
        while True:
            items = self.list_orders(params, page=page, limit=limit, sort=sort, with_lines=with_lines)
            yield from items
            if len(items) < limit:
                return
            page += 1

    def count_orders(self, params: dict | None = None) -> int:
        body = self.get("/v2/orders/count", params=params or None)
        return int(body.get("count", 0)) if isinstance(body, dict) else 0

    def get_order(self, order_id: int, *, with_lines: bool = True) -> dict:
        params = {"include": ORDER_INCLUDE, "consignment_structure": "object"} if with_lines else None
        return self.get(f"/v2/orders/{int(order_id)}", params=params)

    def order_products(self, order_id: int) -> list[dict]:
        return list(self.iter_v2(f"/v2/orders/{int(order_id)}/products"))

    def order_shipping_addresses(self, order_id: int) -> list[dict]:
        return list(self.iter_v2(f"/v2/orders/{int(order_id)}/shipping_addresses"))

    def order_coupons(self, order_id: int) -> list[dict]:
        return list(self.iter_v2(f"/v2/orders/{int(order_id)}/coupons"))

    def order_taxes(self, order_id: int, *, details: bool = True) -> list[dict]:
        return list(self.iter_v2(f"/v2/orders/{int(order_id)}/taxes", {"details": "true"} if details else None))

    def update_order_status(self, order_id: int, status_id: int) -> dict:
        return self.put(f"/v2/orders/{int(order_id)}", json_body={"status_id": int(status_id)})

    def order_statuses(self) -> list[dict]:
        return self.v2_list("/v2/order_statuses")

    # -- orders v3: transactions and refunds ---------------------------------------------
    def v3_data(self, path: str, params: dict | None = None) -> list:
        """One v3 GET whose spec documents no page/limit: the whole list in ``data``."""
        body = self.get(path, params=params)
        return (body.get("data") or []) if isinstance(body, dict) else []

    def order_transactions(self, order_id: int) -> list[dict]:
        # Documented to answer 204 when the order has none, like a v2 collection.
        return self.v3_data(f"/v3/orders/{int(order_id)}/transactions")

    def order_refunds(self, order_id: int) -> list[dict]:
        return self.v3_data(f"/v3/orders/{int(order_id)}/payment_actions/refunds")

    def iter_refunds(self, *, created_since: dt.datetime | None = None, created_until: dt.datetime | None = None,
                     order_ids: Iterable[int] | None = None) -> Iterator[dict]:
        params: dict = {}
        if created_since:
            params["created:min"] = format_rfc3339(created_since)
        if created_until:
            params["created:max"] = format_rfc3339(created_until)
        if order_ids:
            params["order_id:in"] = ",".join(str(int(i)) for i in order_ids)
        return self.iter_v3("/v3/orders/payment_actions/refunds", params)

    # -- customers v3 --------------------------------------------------------------------
    def customers_by_email(self, emails: Iterable[str]) -> list[dict]:
        emails = sorted({e.strip().lower() for e in emails if e and e.strip()})
        found: list[dict] = []
        for start in range(0, len(emails), 50):  # keeps the URL short
            chunk = emails[start:start + 50]
            found.extend(self.iter_v3("/v3/customers", {"email:in": ",".join(chunk)}))
        return found

    def create_customers(self, customers: list[dict]) -> BatchResult:
        """POST in batches of 10 (the store's maximum). Not retried on failure: a POST that timed
        out may have been applied, so look the emails up before trying again."""
        result = BatchResult(status=200, data=[])
        for start in range(0, len(customers), CUSTOMER_BATCH):
            chunk = customers[start:start + CUSTOMER_BATCH]
            response, body = self.request("POST", "/v3/customers", json_body=chunk)
            result.status = max(result.status, response.status_code)
            if isinstance(body, dict):
                result.data.extend(body.get("data") or [])
                result.failed.extend(_batch_errors(body))
        return result

    # -- catalog v3 ----------------------------------------------------------------------
    def iter_products(self, params: dict | None = None) -> Iterator[dict]:
        return self.iter_v3("/v3/catalog/products", params)

    def iter_variants(self, params: dict | None = None) -> Iterator[dict]:
        return self.iter_v3("/v3/catalog/variants", params)

    def variants_by_sku(self, skus: Iterable[str]) -> dict[str, dict]:
        """The variants with these SKUs (50 SKUs a call), by SKU."""
        skus = sorted({s for s in skus if s})
        found: dict[str, dict] = {}
        for start in range(0, len(skus), VARIANT_BATCH):
            for variant in self.iter_v3("/v3/catalog/variants", {"sku:in": ",".join(skus[start:start + VARIANT_BATCH])}):
                found[variant.get("sku")] = variant
        return found

    def update_variants(self, items: list[dict]) -> None:
        """PUT /v3/catalog/variants in batches of 50 (the store's limit), one after the other.
        Setting a price is safe to repeat, so a transient failure is retried."""
        for start in range(0, len(items), VARIANT_BATCH):
            self.request("PUT", "/v3/catalog/variants", json_body=items[start:start + VARIANT_BATCH])

    # -- inventory v3 --------------------------------------------------------------------
    def set_absolute_stock(self, items: list[dict], reason: str = "Stock from Sage") -> BatchResult:
        """PUT absolute adjustments in chunks of 2,000. Each item: location_id plus one of sku,
        variant_id, product_id, and quantity. PUT of absolute values is safe to repeat, so
        transient failures are retried; chunks go one after the other, never in parallel
        (the store applies concurrent absolute adjustments in no defined order)."""
        result = BatchResult(status=200)
        for start in range(0, len(items), INVENTORY_BATCH):
            chunk = items[start:start + INVENTORY_BATCH]
            try:
                response, body = self.request("PUT", "/v3/inventory/adjustments/absolute",
                                              json_body={"reason": reason, "items": chunk})
            except PermanentError as error:
                if isinstance(error, AuthError):
                    raise
                result.status = max(result.status, error.status or 0)
                result.failed.extend({"item": item, "error": str(error)} for item in chunk)
                continue
            result.status = max(result.status, response.status_code)
            if isinstance(body, dict):
                if body.get("transaction_id"):
                    result.transaction_ids.append(str(body["transaction_id"]))
                result.failed.extend(_batch_errors(body))
        return result

    def inventory_items(self, skus: Iterable[str]) -> list[dict]:
        skus = sorted({s for s in skus if s})
        found: list[dict] = []
        for start in range(0, len(skus), 50):
            found.extend(self.iter_v3("/v3/inventory/items", {"sku:in": ",".join(skus[start:start + 50])}))
        return found

    def inventory_locations(self) -> list[dict]:
        return list(self.iter_v3("/v3/inventory/locations"))

    # -- webhooks v3 ---------------------------------------------------------------------
    def list_hooks(self, **filters) -> list[dict]:
        return [_unwrap(h) for h in self.iter_v3("/v3/hooks", {k: v for k, v in filters.items() if v is not None})]

    def create_hook(self, scope: str, destination: str, headers: dict | None = None,
                    is_active: bool = True) -> dict:
        body = {"scope": scope, "destination": destination, "is_active": is_active}
        if headers:
            body["headers"] = headers
        return _unwrap(self.post("/v3/hooks", json_body=body))

    def update_hook(self, hook_id: int, **changes) -> dict:
        return _unwrap(self.put(f"/v3/hooks/{int(hook_id)}", json_body=changes))

    def delete_hook(self, hook_id: int) -> dict:
        return _unwrap(self.request("DELETE", f"/v3/hooks/{int(hook_id)}")[1])


def _unwrap(body):
    """The spec wraps one hook in ``data``; the guide's examples show it bare. Accept both."""
    if isinstance(body, dict) and isinstance(body.get("data"), dict):
        return body["data"]
    return body


def _batch_errors(body: dict) -> list:
    errors = body.get("errors") or body.get("batch_errors") or []
    if isinstance(errors, dict):
        return [{"item": key, "error": value} for key, value in errors.items()]
    return list(errors)


def remote_message(body) -> str:
    """The store's own words from either error shape."""
    if isinstance(body, list):
        parts = [str(item.get("message") or item.get("title") or "") for item in body if isinstance(item, dict)]
        return "; ".join(p for p in parts if p)
    if isinstance(body, dict):
        if isinstance(body.get("data"), list) and body["data"] and not body.get("title"):
            return remote_message(body["data"])
        text = str(body.get("title") or body.get("message") or "")
        errors = body.get("errors")
        if isinstance(errors, dict) and errors:
            text = f"{text} ({'; '.join(f'{k}: {v}' for k, v in errors.items())})".strip()
        elif isinstance(errors, list) and errors:
            text = f"{text} ({'; '.join(str(e) for e in errors)})".strip()
        return text
    if isinstance(body, str):
        return body[:200]
    return ""


def _path_of(url: str) -> str:
    if "/stores/" not in url:
        return url
    return "/" + url.split("/stores/", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
