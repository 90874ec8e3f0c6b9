"""TLS verification for a direct connection to a Sage server, per connection.

Three settings, in order of preference:

* a trusted certificate uploaded with the connection (``tls_ca_pem``): the server's own self-signed
  certificate (pinned: nothing else is accepted) or the merchant's CA bundle. Host names are still
  checked against the certificate;
* verification against the public CAs (the default);
* verification off, only when the accountant turned it off and gave no certificate.

``requests`` takes a trust store as a file path, so an uploaded PEM is written once to a file named
by its SHA-256 under the data folder (or the temp folder) and reused by every worker on the machine.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding


def trust_store_dir() -> Path:
    base = os.environ.get("ML_DATA_DIR") or tempfile.gettempdir()
    return Path(base) / "tls-trust"


def load_certificates(pem: str) -> list[x509.Certificate]:
    """The certificates in ``pem``; ValueError when there are none. (The connection form checks the
    text with a merchant's words when it is saved: ``accounts.certificates``.)"""
    text = (pem or "").strip()
    if "PRIVATE KEY" in text:
        raise ValueError("this is a private key, not the server's certificate")
    try:
        return x509.load_pem_x509_certificates(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"not PEM certificates ({exc})") from exc


def pem_file(pem: str) -> str:
    """The path of a file holding ``pem`` (checked first), written atomically if missing."""
    certificates = load_certificates(pem)
    text = "".join(cert.public_bytes(Encoding.PEM).decode("ascii") for cert in certificates)
    digest = hashlib.sha256(text.encode("ascii")).hexdigest()
    folder = trust_store_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}.pem"
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(text)
        os.replace(tmp, path)  # another worker writing the same file writes the same bytes
    return str(path)


class TrustSession(requests.Session):
    """A session whose ``verify`` is what the connection says. Plain ``requests`` lets the
    environment (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``) replace a session's trust store on every
    request, which would silently drop an uploaded certificate, or turn a "verify off" back on."""

    def __init__(self, verify: bool | str):
        super().__init__()
        self.verify = verify

    def request(self, method, url, **kwargs):
        kwargs.setdefault("verify", self.verify)
        return super().request(method, url, **kwargs)


def verify_setting(*, verify_tls: bool, ca_pem: str = "") -> bool | str:
    """What ``requests.Session.verify`` should be: a trust-store path, True, or False."""
    if (ca_pem or "").strip():
        return pem_file(ca_pem)
    return bool(verify_tls)


def describe(verify: bool | str) -> str:
    if verify is True:
        return "verified against the public certificate authorities"
    if verify is False:
        return "NOT verified (verification is turned off for this connection)"
    return "verified against the certificate uploaded with the connection"

