"""The emulator on a real socket, plain HTTP or HTTPS with a (self-signed) certificate."""

from __future__ import annotations

import socketserver
import ssl
import sys

from sandbox.httpserver import SandboxServer

from .app import SERVICE_PATH, EBusinessSandboxApp


class EBusinessServer(SandboxServer):
    """``cert_path``/``key_path`` given: TLS on the listening socket. The handshake runs in the
    request's own thread (``do_handshake_on_connect=False``), so a client that never finishes one
    cannot stall the accept loop."""

    def __init__(self, app: EBusinessSandboxApp, host: str = "127.0.0.1", port: int = 0, *,
                 cert_path: str | None = None, key_path: str | None = None):
        super().__init__(app, host=host, port=port)
        self.tls = bool(cert_path)
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(cert_path, key_path)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True,
                                                    do_handshake_on_connect=False)
            self.httpd.handle_error = self._handle_error
        app.https = self.tls

    def _handle_error(self, request, client_address) -> None:
        # A client that does not trust the certificate hangs up mid-handshake: expected here, not a
        # traceback on stderr.
        error = sys.exc_info()[1]
        if isinstance(error, ssl.SSLError | ConnectionError):
            return
        socketserver.BaseServer.handle_error(self.httpd, request, client_address)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    @property
    def service_url(self) -> str:
        return self.url + SERVICE_PATH
