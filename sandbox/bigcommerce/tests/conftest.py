"""Fixtures for the BigCommerce sandbox tests: a served store and a webhook receiver (loopback only)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from sandbox.bigcommerce.app import build_app
from sandbox.httpserver import SandboxServer

ANCHOR = datetime(2026, 3, 1, tzinfo=UTC)
TOKEN = "test-token"
SECRET = "test-client-secret"


class BC:
    """A running sandbox store and a requests session authenticated against it."""

    def __init__(self, **kwargs):
        kwargs.setdefault("orders", 60)
        self.app = build_app(store_hash="abc123", token=TOKEN, client_id="cid", client_secret=SECRET,
                             anchor=ANCHOR, webhook_retry_delay=0.01, **kwargs)
        self.server = SandboxServer(self.app).start()
        self.root = self.server.url
        self.base = f"{self.server.url}/stores/abc123"
        self.http = requests.Session()
        self.http.headers.update({"X-Auth-Token": TOKEN, "Accept": "application/json"})

    def get(self, path, **kw):
        return self.http.get(self.base + path, timeout=5, **kw)

    def put(self, path, body):
        return self.http.put(self.base + path, json=body, timeout=5)

    def post(self, path, body):
        return self.http.post(self.base + path, json=body, timeout=5)

    def control(self, method, path, body=None):
        return requests.request(method, self.root + "/__sandbox__" + path, json=body, timeout=5)

    def close(self):
        self.app.dispatcher.stop()
        self.server.stop()


@pytest.fixture
def bc():
    store = BC()
    yield store
    store.close()


@pytest.fixture
def make_bc():
    made = []

    def factory(**kwargs):
        store = BC(**kwargs)
        made.append(store)
        return store

    yield factory
    for store in made:
        store.close()


class Receiver:
    """Collects webhook deliveries; answers with ``self.status``."""

    def __init__(self):
        self.received: list[tuple[dict, bytes]] = []
        self.status = 200
        self.event = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(outer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                outer.event.set()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()
