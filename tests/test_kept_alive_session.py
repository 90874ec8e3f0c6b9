"""kept_alive_session: one session per thread and TLS setting, reused across clients, holding no cookies."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connector.bigcommerce.client import BigCommerceClient
from mlcommon.http import kept_alive_session


class CookieSetter(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen_cookies: list[str | None] = []
    connections: set[int] = set()

    def do_GET(self):  # noqa: N802 - http.server's naming
        CookieSetter.seen_cookies.append(self.headers.get("Cookie"))
        CookieSetter.connections.add(self.client_address[1])
        body = b"{}"
        self.send_response(200)
        self.send_header("Set-Cookie", "SHOP_SESSION=merchant-a; Path=/")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), CookieSetter)
    CookieSetter.seen_cookies, CookieSetter.connections = [], set()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.mark.django_db  # the rate-limit budget lives in the database
def test_clients_share_the_thread_session_and_one_connection_but_no_cookie(server):
    first = BigCommerceClient(server, "a", "token-a", session=kept_alive_session(False), verify=False)
    second = BigCommerceClient(server, "b", "token-b", session=kept_alive_session(False), verify=False)
    assert first.session is second.session
    first.get("/ping")
    second.get("/ping")
    assert CookieSetter.seen_cookies == [None, None], "merchant a's cookie must not ride along on b's call"
    assert len(CookieSetter.connections) == 1, "the second client reused the first one's connection"


def test_one_session_per_thread_and_per_tls_setting():
    here = kept_alive_session(True)
    assert kept_alive_session(True) is here and kept_alive_session(False) is not here
    assert kept_alive_session(False).verify is False and here.verify is True
    other: list = []
    worker = threading.Thread(target=lambda: other.append(kept_alive_session(True)))
    worker.start()
    worker.join()
    assert other[0] is not here
