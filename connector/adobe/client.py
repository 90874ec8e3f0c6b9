"""Adobe Commerce REST client on the shared HTTP base (``mlcommon.http``), for both deployment models.

* PaaS (on-premises, Commerce Cloud, Open Source): ``https://<host>/rest/<store_code>/V1/…``, every
  call signed with OAuth 1.0a HMAC-SHA256 from an Integration's four values. The query string is
  part of the signature, so the client writes the query itself (RFC 3986) and signs exactly the
  URL it sends. HMAC-SHA1 was dropped in 2.4.4. Bearer use of the integration token is an opt-in
  fallback: since 2.4.4 it is off in the store unless the merchant switches it on, and the store
  then answers 401 "The consumer isn't authorized…", which reads like an ACL problem but is not.
* Cloud Service (ACCS): ``https://<region>.api.commerce.adobe.com/<tenant>/V1/…`` with a ``Store:``
  header, an IMS server-to-server token (client_credentials, scope with ``commerce.accs``; no
  refresh token: asked for again ~1 h before its ~24 h expiry and once on a 401), ``x-api-key``
  and ``x-gw-ims-org-id``.

Searches always send ``pageSize`` ≤ 300 and an explicit sort direction (Magento sorts DESC when it
is missing), and stop on ``total_count`` (past the last page ≤ 2.3 repeats it, 2.4 answers empty).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import requests

from mlcommon.http import ApiError, AuthError, BaseApiClient, PermanentError, typed_error

SKU_QUERY_BUDGET = 5000  # characters of SKUs in one ``sku in (…)`` query string
MAX_PAGE_SIZE = 300  # webapi/validation/maximum_page_size: above it the store answers 400
IMS_TOKEN_URL = "https://ims-na1.adobelogin.com/ims/token/v3"
IMS_SCOPE = ("openid,AdobeID,email,profile,additional_info.roles,additional_info.projectedProductContext,"
             "commerce.accs")
IMS_REFRESH_MARGIN = 3600  # seconds before expiry (Adobe: refresh after ~23 of the 24 hours)
OAUTH_TIME_DEVIATION = 600  # Magento refuses a timestamp further than this from its clock

OAUTH1, BEARER, IMS = "oauth1", "bearer", "ims"


def rfc3986(value) -> str:
    """OAuth percent-encoding: everything but ALPHA / DIGIT / - . _ ~ (PHP's rawurlencode)."""
    return urllib.parse.quote(str(value), safe="-._~")


def encode_query(params: Sequence[tuple[str, object]]) -> str:
    return "&".join(f"{rfc3986(k)}={rfc3986(v)}" for k, v in params)


@dataclass(frozen=True)
class OAuth1Credentials:
    consumer_key: str
    consumer_secret: str
    access_token: str
    access_token_secret: str


def oauth1_header(method: str, url: str, creds: OAuth1Credentials, *, nonce: str | None = None,
                  timestamp: int | None = None) -> str:
    """The ``Authorization: OAuth …`` header for one request (HMAC-SHA256; the query string's
    parameters enter the base string, a JSON body does not)."""
    oauth = {
        "oauth_consumer_key": creds.consumer_key,
        "oauth_nonce": nonce or secrets.token_hex(16),
        "oauth_signature_method": "HMAC-SHA256",
        "oauth_timestamp": str(int(time.time()) if timestamp is None else timestamp),
        "oauth_token": creds.access_token,
        "oauth_version": "1.0",
    }
    base_string = signature_base_string(method, url, oauth)
    key = f"{rfc3986(creds.consumer_secret)}&{rfc3986(creds.access_token_secret)}"
    signature = base64.b64encode(hmac.new(key.encode(), base_string.encode(), hashlib.sha256).digest()).decode()
    oauth["oauth_signature"] = signature
    return "OAuth " + ",".join(f'{k}="{rfc3986(v)}"' for k, v in oauth.items())


def signature_base_string(method: str, url: str, oauth: dict, extra: Sequence[tuple[str, str]] = ()) -> str:
    """RFC 5849 §3.4.1: METHOD & enc(base URL) & enc(sorted, encoded parameters), the query
    string's parameters (and ``extra``: a form body's, which this client never sends) included."""
    parts = urllib.parse.urlsplit(url)
    base_url = urllib.parse.urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, "", ""))
    pairs = [(rfc3986(k), rfc3986(v)) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)]
    pairs += [(rfc3986(k), rfc3986(v)) for k, v in list(extra) + list(oauth.items())]
    normalized = "&".join(f"{k}={v}" for k, v in sorted(pairs))
    return "&".join((method.upper(), rfc3986(base_url), rfc3986(normalized)))


class _OAuth1Signer(requests.auth.AuthBase):
    """Signs each prepared request (each retry gets a fresh nonce and timestamp: nonces are single-use)."""

    def __init__(self, creds: OAuth1Credentials):
        self.creds = creds

    def __call__(self, request):
        request.headers["Authorization"] = oauth1_header(request.method, request.url, self.creds)
        return request


@dataclass
class ImsToken:
    """An Adobe IMS server-to-server token, asked for again before it expires."""

    client_id: str
    client_secret: str
    org_id: str
    token_url: str = IMS_TOKEN_URL
    scope: str = IMS_SCOPE
    verify: bool | str = True
    access_token: str = ""
    expires_at: float = 0.0
    fetched: int = field(default=0)

    def value(self, session: requests.Session | None = None) -> str:
        if not self.access_token or time.time() >= self.expires_at - IMS_REFRESH_MARGIN:
            self.refresh(session)
        return self.access_token

    def invalidate(self) -> None:
        self.access_token, self.expires_at = "", 0.0

    def refresh(self, session: requests.Session | None = None) -> None:
        http = session or requests
        try:
            response = http.post(self.token_url, data={
                "grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": self.client_secret, "scope": self.scope}, timeout=(5, 30), verify=self.verify)
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise typed_error(503, f"Adobe IMS token request failed: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not body.get("access_token"):
            detail = body.get("error_description") or body.get("error") or response.text[:200]
            error = typed_error(response.status_code if response.status_code != 200 else 502,
                                f"Adobe IMS refused the client credentials ({response.status_code}): {detail}. "
                                "Check the OAuth Server-to-Server credential's client id and secret in the "
                                "Developer Console, and that its project has the Commerce (commerce.accs) API.",
                                body)
            raise error
        self.access_token = body["access_token"]
        self.expires_at = time.time() + float(body.get("expires_in") or 86399)
        self.fetched += 1


def render_message(body) -> str:
    """Magento's message template with its parameters filled in (%1… from a list, %name from an object)."""
    if not isinstance(body, dict):
        return str(body or "")[:300]
    message = str(body.get("message") or "")
    parameters = body.get("parameters")
    if isinstance(parameters, list):
        for n, value in enumerate(parameters, start=1):
            message = message.replace(f"%{n}", str(value))
    elif isinstance(parameters, dict):
        for name, value in sorted(parameters.items(), key=lambda kv: -len(kv[0])):
            message = message.replace(f"%{name}", str(value))
    return message


def explain(status: int, message: str, auth: str, *, clock_offset: float | None = None) -> str:
    """What the merchant should do about an error, in words (used by errors and by test connection)."""
    lowered = message.lower()
    if "timestamp" in lowered or (clock_offset is not None and abs(clock_offset) > OAUTH_TIME_DEVIATION):
        offset = f" (this server's clock is {clock_offset:+.0f} s from the store's)" if clock_offset is not None else ""
        return (f"Clock skew: the store refuses OAuth timestamps more than {OAUTH_TIME_DEVIATION} s from its own "
                f"clock{offset}. Synchronise the clocks (NTP) of this server and the store.")
    if "nonce" in lowered:
        return "The store saw this OAuth nonce already (a replayed request); it is safe to try again."
    if "signature method" in lowered:
        return ("The store refuses the signature method: since 2.4.4 only HMAC-SHA256 is accepted "
                "(this client always uses it; a proxy may be re-signing requests).")
    if "signature" in lowered and "invalid" in lowered:
        return ("The OAuth signature is invalid: check the four Integration values (consumer key/secret, access "
                "token/secret), and that the base URL's scheme and host are exactly the store's (http vs https, "
                "www). A SKU containing '/' can also break the signature (magento2#37913).")
    if "consumer isn't authorized" in lowered or "consumer is not authorized" in lowered:
        if auth == BEARER:
            return ("This is the store's bearer setting, not an ACL problem: since 2.4.4 integration tokens are refused "
                    "as bearer tokens unless Stores › Configuration › Services › OAuth › Consumer Settings › 'Allow "
                    "OAuth Access Tokens to be used as standalone Bearer tokens' is Yes "
                    "(bin/magento config:set oauth/consumer/enable_integration_as_bearer 1). Better: switch this "
                    "connection to OAuth 1.0a signing.")
        return (f"The integration lacks an API permission ({message}): in Admin › System › Integrations, edit the "
                "integration's API resources (Sales › Orders, Invoices, Credit Memos; Catalog › Inventory) and "
                "re-activate it.")
    if status == 403 and auth == IMS:
        return "Adobe refused the request (403): verify the IMS organization id and the credential's product profile."
    if status == 401:
        return "The store refused the credentials (401): check them, or re-activate the integration."
    if "maximum searchcriteria pagesize" in lowered:
        return "The store caps pageSize (input limits on); this client never sends more than 300."
    return message


class AdobeApiError(ApiError):
    pass


@dataclass(frozen=True)
class Filter:
    field: str
    value: object
    condition: str = "eq"


def search_params(groups: Sequence[Sequence[Filter]] = (), *, page_size: int = MAX_PAGE_SIZE, page: int = 1,
                  sort: Sequence[tuple[str, str]] = (("entity_id", "ASC"),), fields: str | None = None
                  ) -> list[tuple[str, object]]:
    """``searchCriteria`` query parameters: filters in one group are OR-ed, groups AND-ed. The
    schema's camelCase spelling (the docs' snake_case is accepted too)."""
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"pageSize must be between 1 and {MAX_PAGE_SIZE}, not {page_size}")
    params: list[tuple[str, object]] = []
    for g, group in enumerate(groups):
        for f, flt in enumerate(group):
            prefix = f"searchCriteria[filterGroups][{g}][filters][{f}]"
            params += [(f"{prefix}[field]", flt.field), (f"{prefix}[value]", flt.value),
                       (f"{prefix}[conditionType]", flt.condition)]
    for s, (name, direction) in enumerate(sort):
        if direction not in ("ASC", "DESC"):
            raise ValueError("sort direction must be ASC or DESC (a missing one means DESC in Magento)")
        params += [(f"searchCriteria[sortOrders][{s}][field]", name),
                   (f"searchCriteria[sortOrders][{s}][direction]", direction)]
    params += [("searchCriteria[pageSize]", page_size), ("searchCriteria[currentPage]", page)]
    if fields:
        params.append(("fields", fields))
    return params


def date_text(moment) -> str:
    """Adobe's filter format: UTC, ``YYYY-MM-DD HH:MM:SS``."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


class AdobeCommerceClient(BaseApiClient):
    def __init__(self, base_url: str, *, auth: str, store_code: str = "default",
                 oauth1: OAuth1Credentials | None = None, ims: ImsToken | None = None,
                 verify: bool | str = True, session: requests.Session | None = None):
        self.auth = auth
        self.store_code = store_code or "default"
        self.oauth1, self.ims = oauth1, ims
        root = base_url.rstrip("/")
        # PaaS puts the store view in the path; the Cloud Service has neither /rest nor a code there.
        super().__init__(root if auth == IMS else f"{root}/rest/{urllib.parse.quote(self.store_code)}",
                         session=session, verify=True)
        self.session.verify = verify  # False, True or a CA bundle path, per connection
        if ims is not None:
            ims.verify = verify
        if auth == OAUTH1:
            if oauth1 is None:
                raise ValueError("OAuth 1.0a needs the integration's four values")
            self.session.auth = _OAuth1Signer(oauth1)
        self.calls_by_path: dict[str, int] = {}
        self.last_response: requests.Response | None = None

    @classmethod
    def for_store(cls, store, **kwargs) -> AdobeCommerceClient:
        auth = store.adobe_auth or OAUTH1
        oauth1 = OAuth1Credentials(store.consumer_key, store.consumer_secret, store.access_token,
                                   store.access_token_secret)
        ims = ImsToken(store.ims_client_id, store.ims_client_secret, store.ims_org_id) if auth == IMS else None
        if auth == IMS and getattr(store, "ims_token_url", ""):
            ims.token_url = store.ims_token_url
        return cls(store.base_url, auth=auth, store_code=store.store_code, oauth1=oauth1, ims=ims,
                   verify=_verify_of(store), **kwargs)

    # -- auth and errors ------------------------------------------------------------------------

    def default_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.auth == BEARER:
            headers["Authorization"] = f"Bearer {self.oauth1.access_token}"
        elif self.auth == IMS:
            headers.update({"Authorization": f"Bearer {self.ims.value()}", "x-api-key": self.ims.client_id,
                            "x-gw-ims-org-id": self.ims.org_id, "Store": self.store_code})
        return headers

    def after_response(self, response: requests.Response) -> None:
        self.last_response = response  # its Date header tells clock skew apart (test connection)

    def error_for(self, response: requests.Response, body) -> ApiError:
        status = response.status_code
        message = render_message(body) or response.reason or ""
        why = explain(status, message, self.auth)
        text = f"{response.request.method} {response.url.split('?')[0]} answered {status}: {message}"
        if why != message:
            text = f"{text}. {why}"
        return typed_error(status, text, body, self.retry_after_of(response))

    def request(self, method, path, **kwargs):
        params = kwargs.pop("params", None)
        if params:
            # Written here, once, so the OAuth signature covers exactly the query that is sent.
            items = list(params.items()) if isinstance(params, dict) else list(params)
            path = f"{path}?{encode_query(items)}"
        self.calls_by_path[path.split("?")[0]] = self.calls_by_path.get(path.split("?")[0], 0) + 1
        try:
            return super().request(method, path, **kwargs)
        except AuthError as error:
            if self.auth != IMS or error.status != 401:
                raise
            # An IMS token can be revoked or rotated before its expiry: ask for a new one, once.
            self.ims.invalidate()
            return super().request(method, path, **kwargs)

    # -- reading --------------------------------------------------------------------------------

    def get_order(self, order_id) -> dict:
        return self.get(f"/V1/orders/{int(order_id)}")

    def get_invoice(self, invoice_id) -> dict:
        return self.get(f"/V1/invoices/{int(invoice_id)}")

    def get_creditmemo(self, memo_id) -> dict:
        return self.get(f"/V1/creditmemo/{int(memo_id)}")  # singular for one record

    def search(self, path: str, groups: Sequence[Sequence[Filter]] = (), *, page_size: int = MAX_PAGE_SIZE,
               sort=(("entity_id", "ASC"),), fields: str | None = None,
               on_total: Callable[[int], None] | None = None) -> Iterator[dict]:
        """Every match, page by page, stopping on ``total_count`` (or an empty page). ``on_total``
        hears the match count once, from the first page (a backfill's progress: seen / total)."""
        page, seen = 1, 0
        if fields and "total_count" not in fields:
            fields = f"{fields},total_count"
        while True:
            body = self.get(path, params=search_params(groups, page_size=page_size, page=page, sort=sort,
                                                       fields=fields)) or {}
            items = body.get("items") or []
            total = int(body.get("total_count") or 0)
            if page == 1 and on_total is not None:
                on_total(total)
            yield from items
            seen += len(items)
            if not items or seen >= total:
                return
            page += 1

    def changed(self, path: str, since, until=None, **kwargs) -> Iterator[dict]:
        """Records whose ``updated_at`` is in [since, until], by entity_id ascending: a fixed window
        (a record updated while we page leaves it and is read by the next, overlapping poll)."""
        group = [[Filter("updated_at", date_text(since), "gteq")]]
        if until is not None:
            group.append([Filter("updated_at", date_text(until), "lteq")])
        return self.search(path, group, **kwargs)

    def created_between(self, path: str, start, end, **kwargs) -> Iterator[dict]:
        """Records created in [start, end] (aware; sent as UTC, Adobe's own time), by entity_id
        ascending, every page at the largest page size, stopping on ``total_count``."""
        groups = [[Filter("created_at", date_text(start), "gteq")], [Filter("created_at", date_text(end), "lteq")]]
        return self.search(path, groups, sort=(("entity_id", "ASC"),), **kwargs)

    def order_invoices(self, order_id) -> list[dict]:
        return list(self.search("/V1/invoices", [[Filter("order_id", int(order_id))]]))

    def order_creditmemos(self, order_id) -> list[dict]:
        return list(self.search("/V1/creditmemos", [[Filter("order_id", int(order_id))]]))

    def existing_skus(self, skus: Iterable[str]) -> set[str]:
        """Which of ``skus`` the catalog has: ``GET /V1/products`` with ``sku in (…)`` and only the
        sku field back, up to 300 SKUs a call and a query short enough for the web server in front
        of the store (nginx refuses request lines over 8 KB by default). Magento splits an ``in``
        value on commas, so a SKU that holds one cannot be asked about this way: it is reported as
        existing (the caller then finds out by sending it)."""
        skus = list(dict.fromkeys(skus))
        found = {sku for sku in skus if "," in sku}
        chunk: list[str] = []
        size = 0
        for sku in [sku for sku in skus if "," not in sku] + [None]:
            quoted = len(urllib.parse.quote(sku or "")) + 3  # the %2C between SKUs
            if chunk and (sku is None or len(chunk) >= MAX_PAGE_SIZE or size + quoted > SKU_QUERY_BUDGET):
                groups = [[Filter("sku", ",".join(chunk), "in")]]
                found |= {str(p["sku"]) for p in self.search("/V1/products", groups, fields="items[sku]")
                          if p.get("sku")}
                chunk, size = [], 0
            if sku is not None:
                chunk.append(sku)
                size += quoted
        return found

    # -- writing --------------------------------------------------------------------------------

    def add_order_comment(self, order_id, comment: str, status: str | None = None) -> None:
        history = {"comment": comment, "is_customer_notified": 0, "is_visible_on_front": 0,
                   "parent_id": int(order_id)}
        if status:
            history["status"] = status
        self.post(f"/V1/orders/{int(order_id)}/comments", json_body={"statusHistory": history})

    def save_source_items(self, items: list[dict]) -> None:
        """MSI: absolute quantities per (sku, source_code)."""
        self.post("/V1/inventory/source-items", json_body={"sourceItems": items})

    def stock_item(self, sku: str) -> dict:
        return self.get(f"/V1/stockItems/{urllib.parse.quote(sku, safe='')}")

    def update_stock_item(self, sku: str, item: dict, qty, in_stock: bool) -> None:
        """Legacy CatalogInventory (MSI off): the default stock only. The body is the whole stock
        item as ``stock_item`` read it, with the new quantity and status: the schema requires every
        field of catalog-inventory-data-stock-item-interface, and Magento saves the stock item it
        builds from the body, so a partial one would reset the settings it leaves out."""
        self.put(f"/V1/products/{urllib.parse.quote(sku, safe='')}/stockItems/{int(item['item_id'])}",
                 json_body={"stockItem": full_stock_item(item, qty=qty, in_stock=in_stock)})


# Magento's own defaults for a stock item (the "use config" values), for a field the store's answer
# left out; what the store answered always wins.
STOCK_ITEM_DEFAULTS = {
    "is_qty_decimal": False, "show_default_notification_message": False, "use_config_min_qty": True, "min_qty": 0,
    "use_config_min_sale_qty": 1, "min_sale_qty": 1, "use_config_max_sale_qty": True, "max_sale_qty": 10000,
    "use_config_backorders": True, "backorders": 0, "use_config_notify_stock_qty": True, "notify_stock_qty": 1,
    "use_config_qty_increments": True, "qty_increments": 0, "use_config_enable_qty_inc": True,
    "enable_qty_increments": False, "use_config_manage_stock": True, "manage_stock": True,
    "is_decimal_divided": False, "stock_status_changed_auto": 0,
}
STOCK_ITEM_FIELDS = ("item_id", "product_id", "stock_id", "qty", "is_in_stock", *STOCK_ITEM_DEFAULTS,
                     "low_stock_date", "extension_attributes")


def full_stock_item(item: dict, *, qty, in_stock: bool) -> dict:
    """The stock item to PUT: the store's own values, the new quantity and status, nothing unknown."""
    body = {**STOCK_ITEM_DEFAULTS, **{k: item[k] for k in STOCK_ITEM_FIELDS if item.get(k) is not None}}
    body.update(qty=qty, is_in_stock=bool(in_stock))
    if not body.get("low_stock_date"):
        # The schema wants a string; Magento answers null while the item is not low. Magento's
        # StockItemRepository::save overwrites it anyway (cleared, then "now" if the item is low),
        # so what we send here never sticks.
        body["low_stock_date"] = date_text(dt.datetime.now(dt.UTC))
    return body


def _verify_of(store) -> bool | str:
    """Per connection: verify TLS (default), or not (a self-signed on-premises store), or a CA file."""
    ca_bundle = getattr(store, "tls_ca_bundle", "") or ""
    if ca_bundle:
        return ca_bundle
    return bool(getattr(store, "verify_tls", True))


__all__ = ["AdobeCommerceClient", "AdobeApiError", "Filter", "ImsToken", "OAuth1Credentials", "PermanentError",
           "explain", "oauth1_header", "render_message", "search_params"]
