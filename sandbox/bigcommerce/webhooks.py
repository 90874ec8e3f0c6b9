"""Webhook deliveries from the sandbox store: thin payloads, signed three ways, on a background thread.

Signatures (all sent on every delivery, so a receiver may check any of them):

1. The hook's custom ``headers`` exactly as registered through ``/v3/hooks`` (BigCommerce's
   long-documented way of authenticating callbacks).
2. Standard Webhooks: ``webhook-id``, ``webhook-timestamp`` and
   ``webhook-signature: v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>``. BigCommerce's docs
   (https-webhook-overview) tell receivers to hand the standardwebhooks library
   ``base64(client_secret)``; that library base64-decodes its secret, so the HMAC key is simply the
   client secret's UTF-8 bytes. See ``standard_webhooks_key``.
3. ``X-BC-Signature``: lowercase hex HMAC-SHA256 of the raw body keyed by the client secret. No
   official BigCommerce source documents this header (reference/bigcommerce.md §9); it is sent
   because the product brief names it. Hex was chosen; see ``x_bc_signature``.

Delivery model: each event goes to every active hook whose scope matches. A failed attempt is
retried ``max_attempts`` times with ``retry_delay`` between attempts (BigCommerce retries for ~48 h);
after ``deactivate_after`` consecutive failed attempts the hook is set ``is_active: false``, as
BigCommerce does at the end of its retry schedule. Faults: ``webhook_drop_rate`` silently loses a
delivery; ``webhook_repeat`` sends each delivery that many times (same ``webhook-id`` and ``hash``);
``webhook_duplicate_rate`` sends that share of deliveries one extra time (a retry of a delivery the
receiver already acknowledged, as BigCommerce sends when an answer is slow).
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
import urllib.request
import uuid

from .store import BigCommerceStore


def standard_webhooks_key(client_secret: str) -> bytes:
    """HMAC key for Standard Webhooks signatures: the client secret's UTF-8 bytes.

    Equivalently, a receiver using the standardwebhooks library passes
    ``standard_webhooks_secret(client_secret)`` (the library strips ``whsec_`` and base64-decodes)."""
    return client_secret.encode("utf-8")


def standard_webhooks_secret(client_secret: str) -> str:
    return "whsec_" + base64.b64encode(standard_webhooks_key(client_secret)).decode("ascii")


def standard_webhooks_signature(client_secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(standard_webhooks_key(client_secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def x_bc_signature(client_secret: str, body: bytes) -> str:
    return hmac.new(client_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def build_payload(scope: str, store: BigCommerceStore, data: dict, created_at: int) -> dict:
    # `hash` is BigCommerce's unkeyed SHA-1 of the event data: a dedupe key, not authentication.
    digest = hashlib.sha1(json.dumps({"scope": scope, "data": data}, sort_keys=True).encode()).hexdigest()
    return {"scope": scope, "store_id": store.store_id, "data": data, "hash": digest,
            "created_at": created_at, "producer": f"stores/{store.store_hash}"}


class WebhookDispatcher:
    def __init__(self, store: BigCommerceStore, client_secret: str, faults, seed: int = 1,
                 retry_delay: float = 0.2, max_attempts: int = 3, timeout: float = 5.0):
        self.store = store
        self.client_secret = client_secret
        self.faults = faults
        self.rng = random.Random(seed)
        self.retry_delay = retry_delay
        self.max_attempts = max_attempts
        self.timeout = timeout
        self.queue: queue.Queue = queue.Queue()
        self.deliveries: list[dict] = []  # one entry per HTTP attempt (and per dropped delivery)
        self.lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self.lock)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="bc-webhooks", daemon=True)
        self.thread.start()
        store.listeners.append(self.on_event)

    def on_event(self, scope: str, data: dict) -> None:
        with self.lock:
            self._pending += 1
        self.queue.put((scope, data, int(self.store.clock())))

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

    def _fan_out(self, scope: str, data: dict, created_at: int) -> None:
        with self.store.lock:
            hooks = [h for h in self.store.hooks.values() if h.is_active and h.matches(scope)]
        payload = build_payload(scope, self.store, data, created_at)
        body = json.dumps(payload).encode("utf-8")
        for hook in hooks:
            msg_id = f"msg_{uuid.UUID(int=self.rng.getrandbits(128)).hex}"
            if self.faults.webhook_drop_rate and self.rng.random() < self.faults.webhook_drop_rate:
                self._record(hook, scope, msg_id, 0, None, "dropped", payload)
                continue
            copies = max(1, int(self.faults.webhook_repeat))
            if self.faults.webhook_duplicate_rate and self.rng.random() < self.faults.webhook_duplicate_rate:
                copies += 1
            for copy in range(copies):
                self._deliver(hook, scope, msg_id, body, payload, copy)

    def _deliver(self, hook, scope: str, msg_id: str, body: bytes, payload: dict, copy: int) -> None:
        for attempt in range(1, self.max_attempts + 1):
            if not hook.is_active:
                return
            timestamp = int(time.time())
            headers = {"Content-Type": "application/json", "User-Agent": "BigCommerce-Sandbox-Webhooks/1.0"}
            headers.update(hook.headers or {})
            headers["webhook-id"] = msg_id
            headers["webhook-timestamp"] = str(timestamp)
            headers["webhook-signature"] = standard_webhooks_signature(self.client_secret, msg_id, timestamp, body)
            headers["X-BC-Signature"] = x_bc_signature(self.client_secret, body)
            request = urllib.request.Request(hook.destination, data=body, headers=headers, method="POST")
            status = None
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except (urllib.error.URLError, OSError, TimeoutError):
                status = None
            ok = status is not None and 200 <= status < 300
            self._record(hook, scope, msg_id, attempt, status, "delivered" if ok else "failed", payload, copy)
            with self.store.lock:
                if ok:
                    hook.consecutive_failures = 0
                    return
                hook.consecutive_failures += 1
                if hook.consecutive_failures >= int(self.faults.webhook_deactivate_after):
                    hook.is_active = False
                    hook.updated_at = int(self.store.clock())
                    return
            if attempt < self.max_attempts:
                time.sleep(self.retry_delay)

    def _record(self, hook, scope, msg_id, attempt, status, outcome, payload, copy: int = 0) -> None:
        with self.lock:
            self.deliveries.append({
                "hook_id": hook.id, "scope": scope, "destination": hook.destination, "webhook_id": msg_id,
                "attempt": attempt, "copy": copy, "status": status, "outcome": outcome,
                "hash": payload["hash"], "data": payload["data"], "at": time.time(),
            })
