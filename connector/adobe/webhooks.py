"""Adobe webhook deliveries: one URL per integration, ``/webhooks/adobe/<webhook_token>/``.

Receiving (``receive``): the token finds the integration; the signature is verified before any
work (``signatures.verify``: Commerce Webhooks RSA, I/O Events RSA, or HMAC with the integration's
secret; anything else is 401); the raw delivery is stored once under its dedup key (I/O Events'
``event_id``, else Commerce's ``x-adobe-commerce-request-id``, else a hash of the body), and the
answer goes out at once. Processing (``process_event``, a Celery task) reads only *which* record
changed from the payload, fetches the full record from the store and hands it to the intake: the
payload's amounts are never trusted. A second delivery of the same event is a no-op, and so is the
poll reading the same order version later.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from decimal import Decimal

import requests
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Integration, StoreConnection
from connector.models import InboundEvent
from connector.security import check_outbound_url
from connector.services.integrations import integration_for_work
from connector.services.taskqueue import task_named

from . import signatures
from .adapter import AdobeCommerceAdapter
from .intake import take_creditmemos, take_orders

logger = logging.getLogger(__name__)
MAX_BODY = 2 * 1024 * 1024
PROCESS_EVENT_TASK = "connector.adobe.process_webhook_event"
IO_KEY_CACHE_SECONDS = 24 * 3600
COMMERCE_ACK = [{"op": "success"}]  # Commerce Webhooks wait for an operation list


@dataclass
class Outcome:
    status: int
    message: str
    body: object = None


def _integration(token: str) -> Integration | None:
    return (Integration.objects.select_related("store")
            .filter(webhook_token=token, is_active=True, store__platform=StoreConnection.Platform.ADOBE_COMMERCE)
            .first())


class KeyHostRefused(Exception):
    """settings.ADOBE_IO_KEY_HOST fails the outbound URL rules (https to a public address)."""


def io_key_host() -> str:
    """Where I/O Events public keys are fetched: Adobe's key host unless settings say otherwise (the
    sandbox serves its own keys). The same outbound rules as every URL we call: https to a public
    address, except where OUTBOUND_ALLOW_PRIVATE_HOSTS lets the demo and tests use local ones."""
    host = (settings.ADOBE_IO_KEY_HOST or signatures.IO_KEY_HOST).rstrip("/")
    try:
        check_outbound_url(host)
    except ValidationError as error:
        raise KeyHostRefused(f"the I/O Events key host {host} is refused: {' '.join(error.messages)}") from None
    return host


def fetch_io_key(path: str) -> str:
    """An Adobe I/O Events public key, from the configured key host only, cached for a day. The
    path comes from the delivery's header; ``signatures.verify`` lets only a plain absolute path
    through, so the host is always ours to choose."""
    host = io_key_host()
    key = f"adobe-io-key:{host}{path}"
    pem = cache.get(key)
    if pem is None:
        response = requests.get(f"{host}{path}", timeout=(5, 10))
        response.raise_for_status()
        pem = response.text
        cache.set(key, pem, IO_KEY_CACHE_SECONDS)
    return pem


def challenge(token: str, value: str) -> Outcome:
    """Adobe I/O Events registration: echo ``?challenge=`` for a known integration."""
    if _integration(token) is None:
        return Outcome(404, "unknown webhook token")
    return Outcome(200, "challenge", {"challenge": value})


def _what(payload: dict) -> tuple[str, str]:
    """(event name, kind: order | invoice | creditmemo | '')."""
    name = str(payload.get("type") or payload.get("eventName") or payload.get("event") or "")
    lowered = name.lower()
    if "creditmemo" in lowered:
        return name, "creditmemo"
    if "invoice" in lowered:
        return name, "invoice"
    if "order" in lowered:
        return name, "order"
    return name, ""


def _entity(payload: dict, kind: str) -> dict:
    """The record the payload names: I/O Events' data.value, or Commerce Webhooks' data.<kind>."""
    data = payload.get("data") or {}
    if isinstance(data.get("value"), dict):
        return data["value"]
    for key in (kind, "order", "invoice", "creditmemo", "result"):
        if isinstance(data.get(key), dict):
            return data[key]
    return data if isinstance(data, dict) else {}


def dedup_key(integration_id: int, headers: dict, payload: dict, body: bytes) -> str:
    event_id = payload.get("event_id") or payload.get("id") or headers.get("x-adobe-commerce-request-id")
    if not event_id:
        event_id = hashlib.sha256(body).hexdigest()
    return f"{integration_id}:adobe:webhook:{event_id}"[:255]


def receive(token: str, headers, body: bytes) -> Outcome:
    integration = _integration(token)
    if integration is None:
        return Outcome(404, "unknown webhook token")
    if len(body) > MAX_BODY:
        return Outcome(413, "delivery too large")
    store = integration.store
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    try:
        verified = signatures.verify(body, lowered, commerce_public_key=store.adobe_webhook_public_key,
                                     hmac_secret=integration.webhook_secret, io_key_fetcher=fetch_io_key)
    except signatures.SignatureRejected as error:
        return Outcome(401, str(error))
    except requests.RequestException as error:  # Adobe's key host is down: let I/O Events retry
        return Outcome(503, f"could not fetch the I/O Events public key: {error}")
    except KeyHostRefused as error:  # a configuration mistake: said plainly, retried once it is fixed
        logger.error("Adobe I/O Events delivery not verified: %s", error)
        return Outcome(503, str(error))
    try:
        payload = json.loads(body)
    except ValueError:
        return Outcome(400, "the body is not JSON")
    if not isinstance(payload, dict):
        return Outcome(400, "the body is not a JSON object")
    if verified.scheme == signatures.IO_EVENTS and store.adobe_io_client_id and \
            payload.get("recipient_client_id") not in (None, store.adobe_io_client_id):
        return Outcome(401, "the event is addressed to another client id")
    name, kind = _what(payload)
    entity = _entity(payload, kind)
    event = InboundEvent(integration=integration, source=InboundEvent.Source.WEBHOOK,
                         dedup_key=dedup_key(integration.pk, lowered, payload, body), scope=name[:100] or kind,
                         resource_id=str(entity.get("entity_id") or entity.get("id") or "")[:100],
                         headers={k: v for k, v in lowered.items() if k.startswith("x-adobe")},
                         body=body.decode("utf-8", "replace"), signature_scheme=verified.scheme)
    ack = COMMERCE_ACK if verified.scheme == signatures.COMMERCE else {"ok": True}
    try:
        with transaction.atomic():
            event.save(force_insert=True)
            transaction.on_commit(lambda: task_named(PROCESS_EVENT_TASK).delay(event.pk))
    except IntegrityError:
        return Outcome(200, "duplicate delivery", ack)  # stored already: answered, not processed twice
    return Outcome(200, "stored", ack)


def _refunded(order: dict) -> bool:
    try:
        return Decimal(str(order.get("total_refunded") or 0)) > 0
    except (ArithmeticError, ValueError):
        return False


EVENT_FIELDS = ("id", "integration_id", "processed_at", "body")


def process_event(event_id: int, adapter: AdobeCommerceAdapter | None = None, *, run_here: bool = False) -> str:
    """Fetch the full record the event names and queue the work; safe to run twice. ``run_here``
    (the worker's task): the records it creates run in this task (records.enqueue says why)."""
    # As for BigCommerce's events: the event alone, and the integration from the process's copy
    # (services.integrations), not a join of integration, store and Sage per event.
    event = InboundEvent.objects.only(*EVENT_FIELDS).filter(pk=event_id).first()
    if event is None:
        return "gone"
    if event.processed_at is not None:
        return "already processed"
    payload = json.loads(event.body)
    name, kind = _what(payload)
    entity = _entity(payload, kind)
    integration = integration_for_work(event.integration_id)
    adapter = adapter or AdobeCommerceAdapter.for_store(integration.store)
    source, reason = InboundEvent.Source.WEBHOOK, f"Adobe webhook {name}."
    if kind == "creditmemo" and entity.get("entity_id"):
        memo = adapter.fetch_refund(entity["entity_id"])
        counts = take_creditmemos(integration, [memo] if memo else [], source=source, reason=reason,
                                  run_here=run_here)
        note = f"credit memo {entity['entity_id']}: {counts['new']} new"
    elif kind in ("order", "invoice") and (entity.get("order_id") if kind == "invoice" else entity.get("entity_id")):
        # An invoice changes its order (total_paid, state): the order is what posts.
        order_id = entity["order_id"] if kind == "invoice" else entity["entity_id"]
        order = adapter.fetch_order(order_id)
        counts = take_orders(integration, [order], source=source, reason=reason, run_here=run_here)
        note = f"order {order_id}: {counts['new']} new version(s), {counts['queued']} queued"
        if counts["new"] and _refunded(order):
            # Magento saves the order with each credit memo, so this order-save delivery may be the
            # only one to arrive for a credit memo (its own webhook lost). Having taken the order's
            # new version, the poll would not read the credit memo feed for it (it reads that feed
            # when it finds an order version not yet taken, or hourly): take its memos here.
            memos = take_creditmemos(integration, adapter.order_refunds(order_id), source=source, reason=reason,
                                     run_here=run_here)
            note += f"; {memos['new']} new credit memo(s)"
    else:
        note = f"event {name!r} names no order, invoice or credit memo this connector uses; ignored"
    InboundEvent.objects.filter(pk=event.pk).update(processed_at=timezone.now(), note=note[:2000], error="")
    return note
