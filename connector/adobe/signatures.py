"""Who sent an Adobe webhook delivery: checked before any work is done (pure, no Django).

* Adobe Commerce Webhooks: ``x-adobe-commerce-webhook-signature``, base64 RSA-SHA256 (PKCS#1 v1.5)
  with the key pair the merchant generated in Admin (Stores › Configuration › Adobe Services ›
  Webhooks › Digital Signature); the merchant pastes the PEM public key into our connection. The
  signed bytes are the base64 of the raw body (Adobe's own verification examples); the raw body is
  also accepted, since the module's source is not public.
* Adobe I/O Events: ``x-adobe-digital-signature-1`` / ``-2``, RSA-SHA256 over the raw body, with
  public keys at ``x-adobe-public-key1-path`` / ``-2-path`` on Adobe's key host (fetched from that
  host only, cached). Either valid signature is enough.
* HMAC-SHA256 of the raw body with the integration's own webhook secret (``x-ml-signature`` or the
  legacy I/O Events ``x-adobe-signature``), base64 or hex: the variant the product brief promises.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

COMMERCE_HEADER = "x-adobe-commerce-webhook-signature"
IO_HEADERS = (("x-adobe-digital-signature-1", "x-adobe-public-key1-path"),
              ("x-adobe-digital-signature-2", "x-adobe-public-key2-path"))
HMAC_HEADERS = ("x-ml-signature", "x-adobe-signature")
IO_KEY_HOST = "https://static.adobeioevents.com"

COMMERCE, IO_EVENTS, HMAC_SCHEME = "adobe_commerce_rsa", "adobe_io_events", "hmac_sha256"


class SignatureRejected(Exception):
    pass


@dataclass(frozen=True)
class Verified:
    scheme: str


def _lower(headers: Mapping) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureRejected("the signature is not base64") from None


def _rsa_ok(public_key_pem: str, signature: bytes, message: bytes) -> bool:
    try:
        key = serialization.load_pem_public_key(public_key_pem.strip().encode())
    except ValueError:
        raise SignatureRejected("the stored public key is not a PEM public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureRejected("the stored public key is not an RSA key")
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        return True
    except InvalidSignature:
        return False


def verify(raw_body: bytes, headers: Mapping, *, commerce_public_key: str = "", hmac_secret: str = "",
           io_key_fetcher: Callable[[str], str] | None = None) -> Verified:
    """Which scheme signed this delivery; raises SignatureRejected (→ 401) for anything else."""
    h = _lower(headers)
    if COMMERCE_HEADER in h:
        if not commerce_public_key:
            raise SignatureRejected("a Commerce Webhooks signature came, but no public key is set on the connection")
        signature = _b64(h[COMMERCE_HEADER])
        if _rsa_ok(commerce_public_key, signature, base64.b64encode(raw_body)) or \
                _rsa_ok(commerce_public_key, signature, raw_body):
            return Verified(COMMERCE)
        raise SignatureRejected("the Commerce Webhooks signature does not match the public key")
    if any(sig in h for sig, _ in IO_HEADERS):
        if io_key_fetcher is None:
            raise SignatureRejected("Adobe I/O Events signatures cannot be checked here")
        for sig_header, path_header in IO_HEADERS:
            if sig_header in h and h.get(path_header):
                path = h[path_header]
                if not path.startswith("/") or "//" in path or ".." in path:
                    continue  # only a path on Adobe's own key host
                if _rsa_ok(io_key_fetcher(path), _b64(h[sig_header]), raw_body):
                    return Verified(IO_EVENTS)
        raise SignatureRejected("neither Adobe I/O Events digital signature is valid")
    for name in HMAC_HEADERS:
        if name in h:
            if not hmac_secret:
                raise SignatureRejected("an HMAC signature came, but the integration has no webhook secret")
            digest = hmac.new(hmac_secret.encode(), raw_body, hashlib.sha256).digest()
            given = h[name].strip().removeprefix("sha256=")
            if hmac.compare_digest(given, base64.b64encode(digest).decode()) or \
                    hmac.compare_digest(given.lower(), digest.hex()):
                return Verified(HMAC_SCHEME)
            raise SignatureRejected("the HMAC-SHA256 signature does not match the integration's webhook secret")
    raise SignatureRejected("the delivery carries no Adobe signature")


def hmac_signature(raw_body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()).decode()
