"""A small Adobe Commerce stand-in for the client's tests: a real HTTP server on a thread, which
checks requests the way Magento does and records them for the contract test.

It verifies OAuth 1.0a HMAC-SHA256 independently of the client (its own parsing of the header and
the query, Magento's rawurlencode/ksort), refuses reused nonces and timestamps more than 600 s off
(or ``clock_offset`` seconds, to simulate skew), refuses Bearer integration tokens unless
``bearer_enabled``, issues IMS tokens, applies searchCriteria (OR within a group, AND across,
DESC without a direction, pageSize > 300 refused with Magento's message) and can answer 429 with
Retry-After. The full emulator for the demo and the end-to-end test is ``sandbox/adobe``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import urllib.parse
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _enc(value: str) -> str:
    return urllib.parse.quote(value, safe="~-._")


class FakeAdobe:
    def __init__(self, *, accs: bool = False):
        self.accs = accs
        self.consumer_key, self.consumer_secret = "ck", "cs/secret+1"
        self.token, self.token_secret = "at", "ats&2"
        self.ims_client_id, self.ims_secret, self.ims_org = "imsid", "imssecret", "ORG@AdobeOrg"
        self.ims_tokens: dict[str, float] = {}
        self.ims_lifetime = 86399
        self.bearer_enabled = False
        self.clock_offset = 0
        self.nonces: set[str] = set()
        self.requests: list[dict] = []
        self.throttle_next = 0
        self.revoke_ims = False
        self.orders: dict[int, dict] = {}
        self.invoices: dict[int, dict] = {}
        self.creditmemos: dict[int, dict] = {}
        self.source_items: dict[str, dict] = {}
        self.product_searches = 0
        self.comments: list[tuple[int, dict]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def base_url(self) -> str:
        return f"{self.root}/tenant42" if self.accs else self.root

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    # -- auth ----------------------------------------------------------------------------------

    def check_oauth(self, method: str, url: str, header: str) -> str | None:
        params = dict(re.findall(r'(\w+)="([^"]*)"', header))
        params = {k: urllib.parse.unquote(v) for k, v in params.items()}
        if params.get("oauth_signature_method") != "HMAC-SHA256":
            return f"Signature method {params.get('oauth_signature_method')} is not supported"
        if params.get("oauth_consumer_key") != self.consumer_key or params.get("oauth_token") != self.token:
            return "The consumer isn't authorized to access %resources."
        if abs(int(params.get("oauth_timestamp", 0)) - (time.time() + self.clock_offset)) > 600:
            return "The timestamp is out of date."
        if params["oauth_nonce"] in self.nonces:
            return "The nonce is already being used by the consumer with ID %1"
        signature = params.pop("oauth_signature", "")
        split = urllib.parse.urlsplit(url)
        collected = dict(params)
        for key, value in urllib.parse.parse_qsl(split.query, keep_blank_values=True):
            collected[key] = value
        ordered = sorted((_enc(k), _enc(v)) for k, v in collected.items())
        text = "&".join(f"{k}={v}" for k, v in ordered)
        base = f"{method}&{_enc(f'{split.scheme}://{split.netloc}{split.path}')}&{_enc(text)}"
        key = f"{_enc(self.consumer_secret)}&{_enc(self.token_secret)}".encode()
        expected = base64.b64encode(hmac.new(key, base.encode(), hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected, signature):
            return "The signature is invalid. Verify and try again."
        self.nonces.add(params["oauth_nonce"])
        return None

    # -- data ----------------------------------------------------------------------------------

    def search(self, records: list[dict], query: dict[str, str]):
        size = int(query.get("searchCriteria[pageSize]", "0") or 0)
        if size > 300:
            return 400, {"message": "Maximum SearchCriteria pageSize is %max", "parameters": {"max": 300}}
        groups: dict[str, dict[str, dict]] = {}
        for key, value in query.items():
            m = re.match(r"searchCriteria\[filter_?[gG]roups\]\[(\d+)\]\[filters\]\[(\d+)\]\[(\w+)\]", key)
            if m:
                name = {"condition_type": "conditionType"}.get(m.group(3), m.group(3))
                groups.setdefault(m.group(1), {}).setdefault(m.group(2), {})[name] = value

        def match(record, flt):
            have, want = record.get(flt["field"]), flt.get("value")
            cond = flt.get("conditionType", "eq")
            if have is None:
                return False
            ops = {"eq": lambda a, b: str(a) == b, "gteq": lambda a, b: str(a) >= b, "lteq": lambda a, b: str(a) <= b,
                   "gt": lambda a, b: _num(a) > _num(b), "in": lambda a, b: str(a) in b.split(",")}
            return ops[cond](have, want)

        found = [r for r in records if all(any(match(r, f) for f in g.values()) for g in groups.values())]
        field = query.get("searchCriteria[sortOrders][0][field]")
        if field:
            found.sort(key=lambda r: _num(r.get(field)),
                       reverse=query.get("searchCriteria[sortOrders][0][direction]") != "ASC")
        page = int(query.get("searchCriteria[currentPage]", "1") or 1)
        items = found[(page - 1) * size: page * size] if size else found
        body = {"items": items, "search_criteria": {}, "total_count": len(found)}
        if query.get("fields") and "items" not in query["fields"]:
            body.pop("items")
        return 200, body

    def route(self, method: str, path: str, query: dict[str, str], body):
        if method == "GET" and path == "/V1/orders":
            return self.search(list(self.orders.values()), query)
        if method == "GET" and path == "/V1/invoices":
            return self.search(list(self.invoices.values()), query)
        if method == "GET" and path == "/V1/creditmemos":
            return self.search(list(self.creditmemos.values()), query)
        for pattern, store in ((r"/V1/orders/(\d+)", self.orders), (r"/V1/invoices/(\d+)", self.invoices),
                               (r"/V1/creditmemo/(\d+)", self.creditmemos)):
            m = re.fullmatch(pattern, path)
            if method == "GET" and m:
                record = store.get(int(m.group(1)))
                return (200, record) if record else (404, {"message": "The entity that was requested doesn't exist."})
        m = re.fullmatch(r"/V1/orders/(\d+)/comments", path)
        if method == "POST" and m:
            self.comments.append((int(m.group(1)), body["statusHistory"]))
            return 200, True
        if method == "GET" and path == "/V1/products":
            # The catalog: every SKU asked about, except the UNKNOWN-* ones (the same rule the
            # source-items route refuses by).
            asked = [v for k, v in query.items() if k.endswith("[value]")]
            skus = [s for value in asked for s in value.split(",") if not s.startswith("UNKNOWN")]
            self.product_searches += 1
            return self.search([{"sku": s} for s in skus], query)
        if method == "POST" and path == "/V1/inventory/source-items":
            for item in body["sourceItems"]:
                if item["sku"].startswith("UNKNOWN"):
                    return 400, {"message": "Validation Failed", "errors": [{"message": "SKU not found"}]}
            for item in body["sourceItems"]:
                self.source_items[item["sku"]] = item
            return 200, []
        return 404, {"message": "Request does not match any route."}

    # -- the server ----------------------------------------------------------------------------

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status, body, headers=None):
                data = json.dumps(body, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _serve(self, method):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                split = urllib.parse.urlsplit(self.path)
                if split.path == "/ims/token/v3":
                    form = dict(urllib.parse.parse_qsl(raw.decode()))
                    if form.get("client_secret") != fake.ims_secret or "commerce.accs" not in form.get("scope", ""):
                        return self._answer(400, {"error": "invalid_client"})
                    token = f"ims-{len(fake.ims_tokens) + 1}"
                    fake.ims_tokens[token] = time.time() + fake.ims_lifetime
                    return self._answer(200, {"access_token": token, "token_type": "bearer",
                                              "expires_in": fake.ims_lifetime})
                url = f"{fake.root}{self.path}"
                body = json.loads(raw, parse_float=Decimal) if raw else None
                record = {"method": method, "url": url, "path": split.path, "headers": dict(self.headers),
                          "query": urllib.parse.parse_qsl(split.query, keep_blank_values=True), "body": body}
                fake.requests.append(record)
                if fake.throttle_next:
                    fake.throttle_next -= 1
                    return self._answer(429, {"message": "Too Many Requests", "trace": None}, {"Retry-After": "0"})
                auth = self.headers.get("Authorization", "")
                if fake.accs:
                    prefix = "/tenant42"
                    token = auth.removeprefix("Bearer ")
                    if fake.revoke_ims:
                        fake.ims_tokens.clear()
                        fake.revoke_ims = False
                    if token not in fake.ims_tokens or fake.ims_tokens[token] < time.time():
                        return self._answer(401, {"message": "The consumer isn't authorized to access %resources.",
                                                  "parameters": {"resources": "Magento_Sales::sales"}})
                    if self.headers.get("x-gw-ims-org-id") != fake.ims_org:
                        return self._answer(403, {"message": "Forbidden"})
                    path = split.path.removeprefix(prefix)
                else:
                    m = re.match(r"/rest/([\w-]+)(/V1/.*)", split.path)
                    if not m:
                        return self._answer(404, {"message": "Request does not match any route."})
                    path = m.group(2)
                    if auth.startswith("OAuth "):
                        problem = fake.check_oauth(method, url, auth)
                        if problem:
                            status = 400 if "not supported" in problem else 401
                            return self._answer(status, {"message": problem, "parameters": {
                                "resources": "Magento_Sales::sales"}})
                    elif auth == f"Bearer {fake.token}" and fake.bearer_enabled:
                        pass
                    else:
                        return self._answer(401, {"message": "The consumer isn't authorized to access %resources.",
                                                  "parameters": {"resources": "Magento_Sales::sales"}})
                status, answer = fake.route(method, path, dict(record["query"]), body)
                self._answer(status, answer)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

            def do_PUT(self):
                self._serve("PUT")

        return Handler


def _num(value):
    try:
        return Decimal(str(value))
    except Exception:  # noqa: BLE001 - dates compare as text
        return str(value)
