"""A small threaded HTTP server base shared by every sandbox emulator.

The emulators (BigCommerce, Sage X3, Sage 100 SOAP) are product code: `make run` and the
end-to-end tests talk to them over real HTTP. This module gives them routing, JSON helpers
and the fault knobs they all share (added latency, a 5xx rate), settable at start and at run
time through ``POST /__sandbox__/faults``. Emulator-specific faults (429 storms, dropped
webhooks, expired tokens) live in the emulator and are set through the same endpoint.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class DropConnection(Exception):  # noqa: N818 - a signal to the handler, not an error
    """Raised by a handler: close the connection without writing any answer (a server that applied
    the call and then died, or a proxy that dropped the connection mid-answer)."""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # named groups from the route
    raw_query: str = ""  # the query string as sent (OAuth 1.0a signatures are computed over it)

    def json(self):
        if not self.body:
            return None
        return json.loads(self.body.decode("utf-8"))

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass
class Response:
    status: int = 200
    body: object = None  # dict/list -> JSON, bytes/str -> as is, None -> empty
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, default=str).encode("utf-8")


Handler = Callable[[Request], Response]


@dataclass
class Faults:
    """Fault knobs common to every emulator. Emulators may subclass to add their own."""

    latency_ms: int = 0
    error_rate: float = 0.0  # share of requests answered 503

    def update(self, values: dict) -> None:
        for key, value in values.items():
            if not hasattr(self, key):
                raise KeyError(key)
            current = getattr(self, key)
            setattr(self, key, type(current)(value) if current is not None else value)

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class SandboxApp:
    """Routes requests to handlers; subclasses register routes in ``__init__``."""

    name = "sandbox"

    def __init__(self, faults: Faults | None = None, seed: int = 1):
        self.routes: list[tuple[str, re.Pattern, Handler]] = []
        self.faults = faults or Faults()
        self.random = random.Random(seed)
        self.lock = threading.RLock()
        self.request_log: list[tuple[str, str]] = []  # (method, path?query) of every API call
        self.route("GET", r"/__sandbox__/faults", self._get_faults)
        self.route("POST", r"/__sandbox__/faults", self._set_faults)
        self.route("GET", r"/__sandbox__/requests", self._get_requests)

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(f"^{pattern}$"), handler))

    # -- control endpoints -------------------------------------------------------------
    def _get_faults(self, request: Request) -> Response:
        return Response(200, self.faults.as_dict())

    def _set_faults(self, request: Request) -> Response:
        try:
            self.faults.update(request.json() or {})
        except (KeyError, ValueError, TypeError) as exc:
            return Response(400, {"error": f"unknown or invalid fault knob: {exc}"})
        return Response(200, self.faults.as_dict())

    def _get_requests(self, request: Request) -> Response:
        with self.lock:
            return Response(200, {"count": len(self.request_log), "requests": self.request_log[-1000:]})

    # -- dispatch ------------------------------------------------------------------------
    def pre_dispatch(self, request: Request) -> Response | None:
        """Hook for emulator-wide checks (auth, quotas). Return a Response to short-circuit."""
        return None

    def dispatch(self, request: Request) -> Response:
        is_control = request.path.startswith("/__sandbox__/")
        if not is_control:
            with self.lock:
                self.request_log.append((request.method, request.path))
            if self.faults.latency_ms:
                time.sleep(self.faults.latency_ms / 1000)
            if self.faults.error_rate and self.random.random() < self.faults.error_rate:
                return Response(503, {"status": 503, "title": "Service Unavailable (injected)"})
            short = self.pre_dispatch(request)
            if short is not None:
                return short
        allowed = False
        for method, pattern, handler in self.routes:
            match = pattern.match(request.path)
            if not match:
                continue
            if method != request.method:
                allowed = True
                continue
            request.params = match.groupdict()
            return handler(request)
        if allowed:
            return Response(405, {"status": 405, "title": "Method Not Allowed"})
        return Response(404, {"status": 404, "title": "The requested resource was not found."})


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, a keep-alive client waits for
    # the delayed ACK (~40 ms per request on Linux loopback).
    disable_nagle_algorithm = True
    app: SandboxApp

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass

    def _handle(self):
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            raw_query=parts.query,
        )
        try:
            response = self.app.dispatch(request)
        except DropConnection:
            self.close_connection = True  # nothing written: the client reads EOF where the answer was
            return
        except json.JSONDecodeError:
            response = Response(400, {"status": 400, "title": "Malformed JSON body"})
        payload = response.encode()
        self.send_response(response.status)
        if payload or response.status != 204:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _handle


class SandboxServer:
    """Runs a SandboxApp on a real socket, in a background thread or in the foreground."""

    def __init__(self, app: SandboxApp, host: str = "127.0.0.1", port: int = 0):
        handler = type("BoundHandler", (_RequestHandler,), {"app": app})
        self.app = app
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> SandboxServer:
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=self.app.name, daemon=True)
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
