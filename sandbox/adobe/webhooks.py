"""Push deliveries from the sandbox Adobe Commerce, in the three shapes the connector accepts.

``commerce`` — Adobe Commerce Webhooks (module ``magento/commerce-webhooks``): a synchronous-style
POST of ``{"eventName": "observer.<event>", "data": {"order"|"invoice"|"creditmemo": {...}}}`` with
``x-adobe-commerce-request-id`` and, the Digital Signature setting being on, the header
``x-adobe-commerce-webhook-signature``: base64 RSA-SHA256 (PKCS#1 v1.5) over **the base64 encoding
of the raw body** (reference/adobe-commerce.md §6a). The key pair is made at start; the public key
(the PEM the merchant pastes into our admin) is at ``GET /__sandbox__/webhooks/public-key`` and in
``/__sandbox__/info``. The receiver's answer is recorded (``[{"op": "success"}]`` expected).

``io_events`` — Adobe I/O Events webhook deliveries: registration first sends
``GET <url>?challenge=<uuid>`` and the subscription is only active if the answer echoes it (plain
text or ``{"challenge": …}``); each CloudEvents 1.0 POST (``type`` ``com.adobe.commerce.<event code>``,
``recipient_client_id``, ``event_id``) carries ``x-adobe-digital-signature-1`` and ``-2`` (base64
RSA-SHA256 over the raw body, each with its own key) and ``x-adobe-public-key1-path`` /
``-2-path``, paths on this sandbox (``/prod/keys/pub-key-N.pem``, also under
``/__sandbox__/io-events/keys/``) where the PEMs are served, as Adobe's key host serves them. Retries carry ``x-adobe-retry-count``.

``hmac`` — the product brief's shared-secret variant: the Commerce Webhooks body with
``x-adobe-signature`` = base64 HMAC-SHA256 of the raw body keyed with the subscription's secret
(the legacy I/O Events header scheme).

Payloads are thin on purpose (ids, number, state, ``updated_at``): receivers must fetch the record.
Faults: ``webhook_drop_rate`` loses a delivery silently, ``webhook_repeat`` sends each one N times
(same ids). Failed attempts are retried ``max_attempts`` times ``retry_delay`` apart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import queue
import random
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .models import CreditMemo, Invoice, Order, stamp

# Store event -> (Commerce Webhooks hook name, I/O Events event code)
EVENT_NAMES = {
    "order_placed": ("observer.sales_order_place_after", "observer.sales_order_save_commit_after"),
    "order_saved": ("observer.sales_order_save_after", "observer.sales_order_save_commit_after"),
    "invoice_saved": ("observer.sales_order_invoice_save_after", "observer.sales_order_invoice_save_after"),
    "creditmemo_saved": ("observer.sales_order_creditmemo_save_after", "observer.sales_order_creditmemo_save_after"),
}
KINDS = ("commerce", "io_events", "hmac")
# Where the I/O Events public keys are served, relative to the sandbox root: the same shape as the
# paths Adobe's key host uses (``/prod/keys/pub-key-….pem``), so a receiver whose key host is
# configurable can point it at the sandbox unchanged.
IO_KEY_PREFIX = "/prod/keys/"


def _pem(private_key) -> str:
    return private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def rsa_sign(private_key, data: bytes) -> str:
    return base64.b64encode(private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())).decode()


def commerce_signature(private_key, body: bytes) -> str:
    """``x-adobe-commerce-webhook-signature``: RSA-SHA256 over base64(body)."""
    return rsa_sign(private_key, base64.b64encode(body))


def hmac_signature(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class KeyRing:
    """The Commerce Webhooks key pair and the two I/O Events signing keys."""

    def __init__(self, commerce_private_pem: bytes | None = None):
        if commerce_private_pem:
            self.commerce = serialization.load_pem_private_key(commerce_private_pem, password=None)
        else:
            self.commerce = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.io = {f"pub-key-{n}.pem": rsa.generate_private_key(public_exponent=65537, key_size=2048)
                   for n in (1, 2)}

    def commerce_public_pem(self) -> str:
        return _pem(self.commerce)

    def io_public_pem(self, name: str) -> str | None:
        key = self.io.get(name)
        return _pem(key) if key else None


@dataclass
class Subscription:
    id: int
    kind: str
    url: str
    events: list[str] = field(default_factory=lambda: ["*"])
    secret: str = ""
    client_id: str = "sandbox-io-client"
    status: str = "active"  # active | verification_failed

    def wants(self, name: str) -> bool:
        return "*" in self.events or name in self.events

    def as_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "url": self.url, "events": self.events,
                "client_id": self.client_id, "status": self.status}


def thin(event: str, record) -> tuple[str, dict]:
    """The payload object for a record: (key in ``data``, fields)."""
    if isinstance(record, Order):
        return "order", {"entity_id": record.entity_id, "increment_id": record.increment_id, "state": record.state,
                         "status": record.status, "store_id": record.store.id,
                         "updated_at": stamp(record.updated_at), "customer_email": record.customer_email}
    if isinstance(record, Invoice):
        return "invoice", {"entity_id": record.entity_id, "increment_id": record.increment_id,
                           "order_id": record.order_id, "state": record.state, "store_id": record.store_id,
                           "updated_at": stamp(record.updated_at)}
    if isinstance(record, CreditMemo):
        return "creditmemo", {"entity_id": record.entity_id, "increment_id": record.increment_id,
                              "order_id": record.order_id, "invoice_id": record.invoice_id, "state": record.state,
                              "store_id": record.store_id, "updated_at": stamp(record.updated_at)}
    raise TypeError(f"no webhook payload for {type(record).__name__}")


class WebhookDispatcher:
    def __init__(self, store, faults, seed: int = 1, retry_delay: float = 0.2, max_attempts: int = 3,
                 timeout: float = 5.0, hmac_secret: str = "sandbox-webhook-secret",
                 commerce_private_pem: bytes | None = None, key_base_url: str = ""):
        self.store = store
        self.faults = faults
        self.rng = random.Random(seed)
        self.retry_delay = retry_delay
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.hmac_secret = hmac_secret
        self.keys = KeyRing(commerce_private_pem)
        self.key_base_url = key_base_url
        self.subscriptions: list[Subscription] = []
        self.deliveries: list[dict] = []
        self.lock = threading.Lock()
        self.queue: queue.Queue = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition(self.lock)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="adobe-webhooks", daemon=True)
        self.thread.start()
        store.listeners.append(self.on_event)

    # -- subscriptions ---------------------------------------------------------------------------
    def subscribe(self, spec: dict) -> Subscription:
        kind = spec.get("kind")
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        url = str(spec.get("url") or "")
        if not url.startswith(("http://", "https://")):
            raise ValueError("url must be an http(s) URL")
        events = spec.get("events") or ["*"]
        with self.lock:
            sub = Subscription(len(self.subscriptions) + 1, kind, url, list(events),
                               secret=str(spec.get("secret") or self.hmac_secret),
                               client_id=str(spec.get("client_id") or "sandbox-io-client"))
        if kind == "io_events" and not self._challenge(sub):
            sub.status = "verification_failed"
        with self.lock:
            self.subscriptions.append(sub)
        return sub

    def _challenge(self, sub: Subscription) -> bool:
        challenge = str(uuid.UUID(int=self.rng.getrandbits(128)))
        sep = "&" if "?" in sub.url else "?"
        try:
            with urllib.request.urlopen(f"{sub.url}{sep}challenge={urllib.parse.quote(challenge)}",
                                        timeout=self.timeout) as response:
                text = response.read().decode("utf-8", "replace").strip()
        except (urllib.error.URLError, OSError, TimeoutError):
            return False
        if text == challenge:
            return True
        try:
            return json.loads(text).get("challenge") == challenge
        except (ValueError, AttributeError):
            return False

    # -- events ----------------------------------------------------------------------------------
    def on_event(self, event: str, record) -> None:
        if event not in EVENT_NAMES:
            return
        key, data = thin(event, record)
        with self.lock:
            self._pending += 1
        self.queue.put((event, key, data, getattr(record, "store", None)))

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every queued event has been delivered (or dropped). For tests."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def stop(self) -> None:
        self._stop.set()
        self.queue.put(None)

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self.queue.get()
            if item is None:
                break
            try:
                self._fan_out(*item)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _fan_out(self, event: str, key: str, data: dict, view) -> None:
        hook_name, event_code = EVENT_NAMES[event]
        with self.lock:
            subs = [s for s in self.subscriptions if s.status == "active"]
        for sub in subs:
            name = event_code if sub.kind == "io_events" else hook_name
            if not sub.wants(name):
                continue
            delivery_id = str(uuid.UUID(int=self.rng.getrandbits(128)))
            if sub.kind == "io_events":
                body = self._cloud_event(sub, event_code, key, data, delivery_id)
            else:
                body = json.dumps({"eventName": hook_name, "data": {key: data}}).encode()
            if self.faults.webhook_drop_rate and self.rng.random() < self.faults.webhook_drop_rate:
                self._record(sub, name, delivery_id, 0, None, "dropped", data)
                continue
            for copy in range(max(1, int(self.faults.webhook_repeat))):
                self._deliver(sub, name, delivery_id, body, data, copy)

    def _cloud_event(self, sub: Subscription, code: str, key: str, data: dict, delivery_id: str) -> bytes:
        view_id = data.get("store_id", 1)
        envelope = {
            "specversion": "1.0", "id": delivery_id, "source": "urn:uuid:sandbox-commerce-provider",
            "type": f"com.adobe.commerce.{code}", "datacontenttype": "application/json",
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"), "event_id": delivery_id,
            "recipient_client_id": sub.client_id,
            "data": {"key": delivery_id, "value": data, "source": "sandbox.sandbox_commerce",
                     "_metadata": {"commerceEdition": "Adobe Commerce", "commerceVersion": "2.4.8",
                                   "eventsClientVersion": "1.12.0", "storeId": str(view_id),
                                   "websiteId": str(self.store.views[view_id].website_id),
                                   "storeGroupId": str(self.store.views[view_id].group_id)}},
        }
        return json.dumps(envelope).encode()

    def headers_for(self, sub: Subscription, body: bytes, delivery_id: str, attempt: int) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "User-Agent": "Adobe-Commerce-Sandbox/2.4.8"}
        if sub.kind == "commerce":
            headers["x-adobe-commerce-request-id"] = delivery_id
            headers["x-adobe-commerce-webhook-signature"] = commerce_signature(self.keys.commerce, body)
        elif sub.kind == "hmac":
            headers["x-adobe-commerce-request-id"] = delivery_id
            headers["x-adobe-signature"] = hmac_signature(sub.secret, body)
        else:
            headers["x-adobe-event-id"] = delivery_id
            for n in (1, 2):
                name = f"pub-key-{n}.pem"
                headers[f"x-adobe-digital-signature-{n}"] = rsa_sign(self.keys.io[name], body)
                headers[f"x-adobe-public-key{n}-path"] = f"{IO_KEY_PREFIX}{name}"
            if attempt > 1:
                headers["x-adobe-retry-count"] = str(attempt - 1)
        return headers

    def _deliver(self, sub: Subscription, name: str, delivery_id: str, body: bytes, data: dict, copy: int) -> None:
        for attempt in range(1, self.max_attempts + 1):
            headers = self.headers_for(sub, body, delivery_id, attempt)
            request = urllib.request.Request(sub.url, data=body, headers=headers, method="POST")
            status, answer = None, None
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    status = response.status
                    answer = response.read(2000).decode("utf-8", "replace")
            except urllib.error.HTTPError as exc:
                status = exc.code
            except (urllib.error.URLError, OSError, TimeoutError):
                status = None
            ok = status is not None and 200 <= status < 300
            self._record(sub, name, delivery_id, attempt, status, "delivered" if ok else "failed", data, copy,
                         answer)
            if ok:
                return
            if attempt < self.max_attempts:
                time.sleep(self.retry_delay)

    def _record(self, sub, name, delivery_id, attempt, status, outcome, data, copy: int = 0, answer=None) -> None:
        with self.lock:
            self.deliveries.append({"subscription": sub.id, "kind": sub.kind, "event": name, "id": delivery_id,
                                    "attempt": attempt, "copy": copy, "status": status, "outcome": outcome,
                                    "answer": answer, "data": data, "at": time.time()})
