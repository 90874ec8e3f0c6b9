"""Test kit for the Adobe Commerce sandbox: a served store with clients for both URL shapes, a webhook
receiver, and an OAuth 1.0a signer written from RFC 5849 (independent of the sandbox's Magento-faithful verifier,
the way oauthlib signs: parameters percent-encoded, then sorted, ``+`` in the query read as a space)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import requests

from sandbox.adobe.app import build_app
from sandbox.httpserver import SandboxServer

ANCHOR = datetime(2026, 3, 1, tzinfo=UTC)
_nonce = itertools.count(1)


def _esc(value: str) -> str:
    return quote(str(value), safe="~")


def oauth_header(method: str, url: str, consumer_key: str, consumer_secret: str, token: str, token_secret: str,
                 *, timestamp: int | None = None, nonce: str | None = None, signature_method: str = "HMAC-SHA256",
                 extra: dict | None = None) -> str:
    """An RFC 5849 Authorization header for ``url`` (query included in the signature)."""
    parts = urlsplit(url)
    oauth = {"oauth_consumer_key": consumer_key, "oauth_token": token, "oauth_signature_method": signature_method,
             "oauth_timestamp": str(int(time.time()) if timestamp is None else timestamp),
             "oauth_nonce": nonce or f"n{next(_nonce):08d}{time.time_ns() % 10**9}", "oauth_version": "1.0"}
    oauth.update(extra or {})
    pairs = [(_esc(k), _esc(v)) for k, v in [*parse_qsl(parts.query, keep_blank_values=True), *oauth.items()]]
    normalized = "&".join(f"{k}={v}" for k, v in sorted(pairs))
    base_uri = f"{parts.scheme.lower()}://{parts.netloc.lower()}{parts.path}"
    base = "&".join((method.upper(), _esc(base_uri), _esc(normalized)))
    key = f"{_esc(consumer_secret)}&{_esc(token_secret)}"
    digest = hashlib.sha256 if signature_method == "HMAC-SHA256" else hashlib.sha1
    oauth["oauth_signature"] = base64.b64encode(hmac.new(key.encode(), base.encode(), digest).digest()).decode()
    return "OAuth " + ", ".join(f'{k}="{_esc(v)}"' for k, v in oauth.items())


def encode_query(params: dict) -> str:
    """Spaces as %20: Magento reads a '+' in a bracketed parameter as a plus sign when verifying."""
    return urlencode(params, quote_via=quote)


class Adobe:
    """A running sandbox and helpers to call it as a PaaS integration or an ACCS client."""

    def __init__(self, **kwargs):
        kwargs.setdefault("orders", 60)
        self.app = build_app(anchor=ANCHOR, webhook_retry_delay=0.01, **kwargs)
        self.server = SandboxServer(self.app).start()
        self.root = self.server.url
        self.integration = self.app.integrations[0]
        self.http = requests.Session()

    def url(self, path: str, params: dict | None = None, store: str | None = "default") -> str:
        prefix = f"/rest/{store}" if store else "/rest"
        query = f"?{encode_query(params)}" if params else ""
        return f"{self.root}{prefix}/V1/{path}{query}"

    def call(self, method: str, path: str, params: dict | None = None, body=None, store: str | None = "default",
             integration=None, **sign_kw) -> requests.Response:
        url = self.url(path, params, store)
        i = integration or self.integration
        header = oauth_header(method, url, i.consumer_key, i.consumer_secret, i.access_token, i.access_token_secret,
                              **sign_kw)
        return self.http.request(method, url, json=body, headers={"Authorization": header}, timeout=60)

    def get(self, path: str, params: dict | None = None, **kw) -> requests.Response:
        return self.call("GET", path, params, **kw)

    def ims_token(self, scope: str = "openid,AdobeID,commerce.accs") -> str:
        ims = self.app.ims
        r = requests.post(f"{self.root}/ims/token/v3", data={"grant_type": "client_credentials",
                                                             "client_id": ims.client_id,
                                                             "client_secret": ims.client_secret, "scope": scope},
                          timeout=60)
        assert r.status_code == 200, r.text
        return r.json()["access_token"]

    def accs(self, method: str, path: str, params: dict | None = None, body=None, token: str | None = None,
             store: str = "default", headers: dict | None = None) -> requests.Response:
        ims = self.app.ims
        sent = {"Authorization": f"Bearer {token or self.ims_token()}", "x-api-key": ims.client_id,
                "x-gw-ims-org-id": ims.org_id, "Store": store}
        sent.update(headers or {})
        query = f"?{encode_query(params)}" if params else ""
        return self.http.request(method, f"{self.root}/{self.app.tenant}/V1/{path}{query}", json=body, headers=sent,
                                 timeout=60)

    def control(self, method: str, path: str, body=None) -> requests.Response:
        return requests.request(method, f"{self.root}/__sandbox__{path}", json=body, timeout=60)

    def close(self):
        self.app.dispatcher.stop()
        self.server.stop()


class Receiver:
    """Collects webhook deliveries (and answers I/O Events challenges); replies with ``self.status``."""

    def __init__(self, answer: bytes = b'[{"op":"success"}]', echo_challenge: bool = True):
        self.received: list[tuple[dict, bytes]] = []
        self.challenges: list[str] = []
        self.status = 200
        self.answer = answer
        self.echo_challenge = echo_challenge
        self.event = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                query = dict(parse_qsl(urlsplit(self.path).query))
                outer.challenges.append(query.get("challenge", ""))
                body = query.get("challenge", "").encode() if outer.echo_challenge else b"nope"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.status)
                self.send_header("Content-Length", str(len(outer.answer)))
                self.end_headers()
                self.wfile.write(outer.answer)
                outer.event.set()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
