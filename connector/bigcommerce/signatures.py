"""Who may deliver a webhook: the three ways a BigCommerce delivery can prove it is genuine.

1. Standard Webhooks (what BigCommerce's current docs point to): ``webhook-id``,
   ``webhook-timestamp`` and ``webhook-signature`` (a space-separated list of ``v1,<base64>``),
   HMAC-SHA256 over ``"{id}.{timestamp}.{raw body}"``. The docs hand the standardwebhooks library
   ``base64(client_secret)``, which that library base64-decodes again, so the key is simply the
   client secret's UTF-8 bytes (``standard_webhooks_key``; the sandbox store signs the same way).
   The timestamp must be within 5 minutes either way, against replays.
2. ``X-BC-Signature``: HMAC-SHA256 of the raw body keyed by the client secret. The product brief
   names it but no BigCommerce source documents the encoding; the sandbox sends lowercase hex,
   and base64 is accepted too (both encode the same MAC, so this widens nothing).
3. The shared-secret header we ask BigCommerce to echo when we register the hook
   (``X-ML-Webhook-Secret: <Integration.webhook_secret>``), the long-documented way.

Every comparison is constant-time. A delivery passes when any one scheme verifies.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time

SECRET_HEADER = "X-ML-Webhook-Secret"
TOLERANCE_SECONDS = 300

SCHEME_STANDARD = "standard-webhooks"
SCHEME_BC_SIGNATURE = "x-bc-signature"
SCHEME_SECRET_HEADER = "secret-header"


def standard_webhooks_key(client_secret: str) -> bytes:
    """The one place the Standard Webhooks key is derived (see the module docstring)."""
    return client_secret.encode("utf-8")


def _standard_webhooks(headers, body: bytes, client_secret: str, now: float) -> bool:
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and stamp and signatures and client_secret):
        return False
    try:
        sent_at = int(stamp)
    except ValueError:
        return False
    if abs(now - sent_at) > TOLERANCE_SECONDS:
        return False
    signed = f"{msg_id}.{stamp}.".encode() + body
    expected = hmac.new(standard_webhooks_key(client_secret), signed, hashlib.sha256).digest()
    matched = False
    for candidate in signatures.split(" "):
        version, _, value = candidate.partition(",")
        if version != "v1" or not value:
            continue
        try:
            given = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        # No early exit: every listed signature is compared, so timing says nothing about which.
        matched |= hmac.compare_digest(given, expected)
    return matched


def _decode_mac(value: str) -> bytes | None:
    value = value.strip()
    if value.lower().startswith("sha256="):
        value = value[7:]
    if len(value) == 64:
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _bc_signature(headers, body: bytes, client_secret: str) -> bool:
    value = headers.get("X-BC-Signature")
    if not value or not client_secret:
        return False
    given = _decode_mac(value)
    expected = hmac.new(client_secret.encode("utf-8"), body, hashlib.sha256).digest()
    return given is not None and hmac.compare_digest(given, expected)


def _secret_header(headers, hook_secret: str) -> bool:
    value = headers.get(SECRET_HEADER)
    if not value or not hook_secret:
        return False
    return hmac.compare_digest(value.encode("utf-8"), hook_secret.encode("utf-8"))


def verify(headers, body: bytes, *, client_secret: str, hook_secret: str, now: float | None = None) -> str | None:
    """The name of the scheme that proved the delivery genuine, or None. ``headers`` must be
    case-insensitive (Django's request.headers is)."""
    now = time.time() if now is None else now
    if _standard_webhooks(headers, body, client_secret, now):
        return SCHEME_STANDARD
    if _bc_signature(headers, body, client_secret):
        return SCHEME_BC_SIGNATURE
    if _secret_header(headers, hook_secret):
        return SCHEME_SECRET_HEADER
    return None


def sign_standard(client_secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """A ``webhook-signature`` value, for tests and tools."""
    mac = hmac.new(standard_webhooks_key(client_secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


def sign_bc(client_secret: str, body: bytes) -> str:
    return hmac.new(client_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
