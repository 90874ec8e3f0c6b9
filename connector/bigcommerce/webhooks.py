"""BigCommerce webhook deliveries: receive (verify, store raw, answer at once) and process.

Receiving is on the hot path (BigCommerce blocks a whole domain for minutes when fewer than 90 %
of deliveries succeed, and a busy store sends bursts), so a delivery costs a cached integration
look-up, the signature check and its share of one group-committed insert (receive_async: one
transaction and one Celery message per batch; receive: the plain one-insert path for WSGI and
the sync test client). Nothing is fetched and nothing is decided until a worker runs
``process_event``. Webhook payloads carry only scope and id, so processing always
fetches the full record, then hands it to the same intake the poller uses.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import IntegrityError, OperationalError, transaction
from django.utils import timezone

from accounts.models import Integration, StoreConnection
from connector.models import InboundEvent, SyncRecord
from connector.services.integrations import integration_for_work
from connector.services.records import settled
from connector.services.taskqueue import task_named
from mlcommon.http import NotFoundError

from .intake import actions_for, take_orders, take_refunds
from .signatures import SCHEME_STANDARD, verify

logger = logging.getLogger(__name__)

KEPT_HEADERS = ("webhook-id", "webhook-timestamp", "user-agent", "content-type")
CACHE_SECONDS = 30.0
MISS_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Receiver:
    """What the hot path needs to know about an integration; decrypted once per CACHE_SECONDS."""

    integration_id: int
    client_secret: str
    hook_secret: str
    expires: float


_cache: dict[str, Receiver | float] = {}
_cache_lock = threading.Lock()


def receiver_for(token: str) -> Receiver | None:
    now = time.monotonic()
    hit = _cache.get(token)
    if isinstance(hit, Receiver) and hit.expires > now:
        return hit
    if isinstance(hit, float) and hit > now:
        return None
    integration = (Integration.objects.select_related("store")
                   .filter(webhook_token=token, is_active=True, store__platform=StoreConnection.Platform.BIGCOMMERCE)
                   .first())
    with _cache_lock:
        if len(_cache) > 10_000:  # unknown tokens are cached briefly; don't let junk grow forever
            _cache.clear()
        if integration is None:
            _cache[token] = now + MISS_CACHE_SECONDS
            return None
        found = Receiver(integration.pk, integration.store.client_secret or "", integration.webhook_secret or "",
                         now + CACHE_SECONDS)
        _cache[token] = found
        return found


def forget_receivers() -> None:
    """Drop cached secrets (after an integration's secrets change; tests)."""
    with _cache_lock:
        _cache.clear()


def dedup_key(integration_id: int, payload: dict) -> str:
    """BigCommerce's ``hash`` is the same on every retry of one event. It is computed over the
    event data, which for most scopes is only {type, id}, so two *different* updates of one order
    can share it: ``created_at`` (fixed per event, also repeated on retries) keeps them apart."""
    created = payload.get("created_at", "")
    if payload.get("hash"):
        return f"{integration_id}:webhook:{payload['hash']}:{created}"
    data = payload.get("data") or {}
    return f"{integration_id}:webhook:{payload.get('scope')}:{data.get('id', '')}:{created}"


@dataclass
class Outcome:
    status: int
    reason: str
    event_id: int | None = None


@dataclass(frozen=True)
class Delivery:
    """A delivery that passed every check and only needs storing."""

    integration_id: int
    dedup_key: str
    scope: str
    resource_id: str
    headers: dict
    body: str
    scheme: str

    def event(self) -> InboundEvent:
        note = note_at_receipt(self.scope)
        return InboundEvent(integration_id=self.integration_id, source=InboundEvent.Source.WEBHOOK,
                            dedup_key=self.dedup_key, scope=self.scope, resource_id=self.resource_id,
                            headers=self.headers, body=self.body, signature_scheme=self.scheme,
                            processed_at=timezone.now() if note else None, note=note)


def note_at_receipt(scope: str) -> str:
    """What processing would say about a delivery that needs no fetch and queues no work (stock
    changes, scopes this connector does not use), or "" when a worker must process it. Such a
    delivery is stored already processed, with that note, and sends no task: a paid order makes
    the store send one or two inventory deliveries besides the order's own, and a task each was a
    third of the workers' tasks on a busy day for nothing but this note."""
    handler = HANDLERS.get(scope)
    if handler is None:
        return f"Scope {scope!r} is not used by this connector; ignored."
    return STOCK_NOTE if handler is _stock else ""


EVENTS_PER_MESSAGE = 50  # one Celery message per this many new events: a batch, not one task per event


# Sent by task name: this package's tasks module imports this one to process the events.
PROCESS_EVENT_TASK = "connector.bigcommerce.process_webhook_event"
PROCESS_EVENTS_TASK = "connector.bigcommerce.process_webhook_events"


def enqueue_event(event_id: int) -> None:
    task_named(PROCESS_EVENT_TASK).delay(event_id)


def enqueue_events(event_ids: list[int]) -> None:
    """One message per chunk of new events (a group commit's worth), not one per event."""
    process_webhook_event = task_named(PROCESS_EVENT_TASK)
    process_webhook_events = task_named(PROCESS_EVENTS_TASK)
    for start in range(0, len(event_ids), EVENTS_PER_MESSAGE):
        chunk = event_ids[start:start + EVENTS_PER_MESSAGE]
        if len(chunk) == 1:
            process_webhook_event.delay(chunk[0])
        else:
            process_webhook_events.delay(chunk)


def _publish(enqueue: Callable, ids) -> None:
    # After the commit: the events are durable whatever happens here. A broker outage must not
    # turn stored deliveries into 5xx answers (BigCommerce would retry, then block the domain);
    # the poller reads the same orders on its next run.
    try:
        enqueue(ids)
    except Exception:
        logger.exception("webhook events stored but not queued (the next poll picks the orders up): %s", ids)


def admit(receiver: Receiver, headers, body: bytes) -> Outcome | Delivery:
    """Every check that needs no database, in the order that does the least work for junk:
    size, then signature (nothing is parsed before it verifies), then shape."""
    if len(body) > settings.WEBHOOK_MAX_BODY_BYTES:
        return Outcome(413, "body too large")
    scheme = verify(headers, body, client_secret=receiver.client_secret, hook_secret=receiver.hook_secret)
    if scheme is None:
        return Outcome(401, "no valid signature")
    try:
        # Decoded first and strictly: json.loads(bytes) would also accept UTF-16/32, which the
        # text column could then not hold as sent.
        text = body.decode("utf-8")
        payload = json.loads(text)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return Outcome(400, "malformed JSON")
    if not (isinstance(payload, dict) and isinstance(payload.get("scope"), str) and payload["scope"]
            and isinstance(payload.get("data"), dict)):
        return Outcome(400, "scope or data missing")
    if scheme != SCHEME_STANDARD and _too_old(payload.get("created_at")):
        # These schemes sign no timestamp: a captured delivery could be sent again after its dedup
        # key is gone. Within the window the key still exists, so a replay is only a duplicate.
        return Outcome(400, "delivery older than the replay window")
    data = payload["data"]
    resource = data.get("id", data.get("product_id", ""))
    kept = {name: value for name in KEPT_HEADERS if (value := headers.get(name))}
    return Delivery(receiver.integration_id, dedup_key(receiver.integration_id, payload)[:255],
                    payload["scope"][:100], str(resource)[:100], kept, text, scheme)


def _too_old(created_at) -> bool:
    """``created_at`` (BigCommerce: Unix seconds) is older than WEBHOOK_REPLAY_WINDOW_SECONDS."""
    if isinstance(created_at, bool) or not isinstance(created_at, int | float | str):
        return False
    try:
        sent_at = float(created_at)
    except ValueError:
        return False
    return time.time() - sent_at > settings.WEBHOOK_REPLAY_WINDOW_SECONDS


def _read_checked(receiver, headers, read_body: Callable[[int], bytes], content_length: int | None):
    limit = settings.WEBHOOK_MAX_BODY_BYTES
    if content_length is not None and content_length > limit:
        return Outcome(413, "body too large")
    return admit(receiver, headers, read_body(limit + 1))


def receive(token: str, headers, read_body: Callable[[int], bytes], content_length: int | None) -> Outcome:
    """The receiving side for sync callers (WSGI, the test client): one insert per delivery."""
    receiver = receiver_for(token)
    if receiver is None:
        return Outcome(404, "unknown webhook token")
    checked = _read_checked(receiver, headers, read_body, content_length)
    if isinstance(checked, Outcome):
        return checked
    try:
        with transaction.atomic():
            event = checked.event()
            event.save(force_insert=True)
            if event.processed_at is None:
                transaction.on_commit(lambda: _publish(enqueue_event, event.pk))
    except IntegrityError:
        return Outcome(200, "duplicate")
    return Outcome(200, "stored", event.pk)


# -- the async receiving side: group commit ------------------------------------------------------

def cached_receiver(token: str) -> Receiver | None | bool:
    """The cached answer for ``token`` without touching the database; False when not cached."""
    now = time.monotonic()
    hit = _cache.get(token)
    if isinstance(hit, Receiver) and hit.expires > now:
        return hit
    if isinstance(hit, float) and hit > now:
        return None
    return False


def store_batch(deliveries: list[Delivery]) -> list[Outcome]:
    """One transaction for a whole batch: INSERT … ON CONFLICT (dedup_key) DO NOTHING RETURNING
    tells exactly which deliveries are new (PostgreSQL, SQLite ≥ 3.35), and the new ids go to the
    workers in one message per chunk after the commit. Runs on the group-commit writer thread."""
    fresh_connection()
    first: dict[str, int] = {}
    unique: list[Delivery] = []
    for index, delivery in enumerate(deliveries):
        if delivery.dedup_key not in first:  # retries inside one batch: one row, both answered
            first[delivery.dedup_key] = index
            unique.append(delivery)
    # Sorted: two processes inserting overlapping keys in different orders would each wait on the
    # other's unique-index entry (PostgreSQL: deadlock detected); in one order they just queue.
    unique.sort(key=lambda d: d.dedup_key)
    for attempt in range(3):
        try:
            with transaction.atomic():
                events = [d.event() for d in unique]
                inserted = _insert_ignoring_duplicates(events)
                new_ids = sorted(inserted[e.dedup_key] for e in events
                                 if e.dedup_key in inserted and e.processed_at is None)
                if new_ids:
                    transaction.on_commit(partial(_publish, enqueue_events, new_ids))
            break
        except OperationalError:  # deadlock/serialization victim, or SQLite busy past its timeout
            if attempt == 2:
                raise
            logger.warning("webhook batch of %d rolled back; retrying", len(unique), exc_info=True)
            time.sleep(0.01 * (attempt + 1))
    outcomes = []
    for index, delivery in enumerate(deliveries):
        event_id = inserted.get(delivery.dedup_key) if first[delivery.dedup_key] == index else None
        outcomes.append(Outcome(200, "stored", event_id) if event_id else Outcome(200, "duplicate"))
    return outcomes


def _insert_ignoring_duplicates(events: list[InboundEvent]) -> dict[str, int]:
    """{dedup_key: id} of the rows this statement inserted. Columns come from the model, so a
    field added later is written with its default like any ORM insert."""
    from django.db import connection

    meta = InboundEvent._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    rows, params = [], []
    for event in events:
        rows.append("(" + ", ".join(["%s"] * len(fields)) + ")")
        params += [field.get_db_prep_save(field.pre_save(event, True), connection) for field in fields]
    sql = (f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
           f"VALUES {', '.join(rows)} ON CONFLICT ({quote('dedup_key')}) DO NOTHING "
           f"RETURNING {quote(meta.pk.column)}, {quote('dedup_key')}")
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {key: pk for pk, key in cursor.fetchall()}


_last_hygiene = 0.0


def fresh_connection() -> None:
    """The writer thread's persistent connection gets what Django gives request threads at each
    request start: dropped when too old or broken (at most once a second: it may cost a ping)."""
    global _last_hygiene
    now = time.monotonic()
    if now - _last_hygiene >= 1.0:
        from django.db import close_old_connections

        close_old_connections()
        _last_hygiene = now


def _lookup(token: str) -> Receiver | None:
    fresh_connection()
    return receiver_for(token)


_group_commit = None
_group_commit_lock = threading.Lock()


def group_commit():
    global _group_commit
    if _group_commit is None:
        from connector.webhook_batcher import GroupCommit

        with _group_commit_lock:
            if _group_commit is None:
                _group_commit = GroupCommit(store_batch, name="webhook-writer")
    return _group_commit


async def receive_async(token: str, headers, read_body: Callable[[int], bytes],
                        content_length: int | None) -> Outcome:
    """The receiving side for an ASGI server: the same checks on the event loop, then the row
    joins the current group commit; answered once its batch committed."""
    receiver = cached_receiver(token)
    if receiver is False:
        receiver = await group_commit().run(_lookup, token)
    if receiver is None:
        return Outcome(404, "unknown webhook token")
    checked = _read_checked(receiver, headers, read_body, content_length)
    if isinstance(checked, Outcome):
        return checked
    return await group_commit().submit(checked)


# -- processing (on a worker) -------------------------------------------------------------------

def _order(integration, client, event, payload, run_here: bool = False) -> str:
    order_id = int(payload["data"]["id"])
    if settled(integration.pk, SyncRecord.Kind.ORDER, str(order_id), actions_for(integration)):
        return f"Order {order_id} is already in Sage; a change to it needs nothing there (not read)."
    try:
        order = client.get_order(order_id)
    except NotFoundError:
        return f"Order {order_id} no longer exists on the store."
    counts = take_orders(integration, [order], source=InboundEvent.Source.WEBHOOK,
                         reason=f"Webhook {payload['scope']}.", run_here=run_here)
    return f"Order {order_id}: {counts['queued']} record(s) queued."


def _refund(integration, client, event, payload, run_here: bool = False) -> str:
    order_id = int(payload["data"]["id"])
    refunds = client.order_refunds(order_id)
    counts = take_refunds(integration, refunds, source=InboundEvent.Source.WEBHOOK,
                          reason=f"Webhook {payload['scope']}.", run_here=run_here)
    return f"Order {order_id}: {len(refunds)} refund(s) read, {counts['queued']} record(s) queued."


STOCK_NOTE = "Inventory change noted; stock is pushed from Sage on its own schedule."


def _stock(integration, client, event, payload, run_here: bool = False) -> str:
    # The stock flow pushes Sage's levels to the store; a store-side change is only worth a note
    # until that flow wants to react (e.g. re-push when someone edits stock by hand). Deliveries
    # are normally noted when they arrive (note_at_receipt); this answers one stored otherwise.
    return STOCK_NOTE


HANDLERS: dict[str, Callable] = {
    "store/order/created": _order,
    "store/order/updated": _order,
    "store/order/statusUpdated": _order,
    "store/order/refund/created": _refund,
    "store/product/inventory/updated": _stock,
    "store/sku/inventory/updated": _stock,
    "store/product/inventory/order/updated": _stock,
    "store/sku/inventory/order/updated": _stock,
}


# Scopes whose processing is "read the order as it is now": one read answers them all.
ORDER_SCOPES = ("store/order/created", "store/order/updated", "store/order/statusUpdated")
MAX_COVERED = 100


def _covered_by_read(event: InboundEvent) -> list[int]:
    """Other unprocessed deliveries about the same order that are already stored. The order is
    read after this look-up, so that read sees whatever they announced (a store sends the
    webhook after the change): they need no read of their own. A new paid order arrives as
    created + statusUpdated (+ updated) within milliseconds; without this each one read the
    order and ran the intake again, two or three times the work for one change. Ids, not
    times: a row visible now was committed before the read, whichever web node's clock
    stamped it. A delivery stored after the look-up is processed on its own, as before."""
    return list(InboundEvent.objects.filter(
        integration_id=event.integration_id, scope__in=ORDER_SCOPES, resource_id=event.resource_id,
        processed_at__isnull=True).exclude(pk=event.pk).values_list("pk", flat=True)[:MAX_COVERED])


EVENT_FIELDS = ("id", "integration_id", "processed_at", "body", "scope", "resource_id")


def process_event(event_id: int, client=None, *, run_here: bool = False) -> str:
    """Fetch what the event points at and queue the work. Safe to run twice: a processed event is
    skipped, and the intake dedups order versions and refunds. ``run_here`` (the worker's tasks):
    the records it creates run in this task (records.enqueue says why)."""
    # The event alone first: about half the events a worker picks up were already answered by
    # another event's order read (_covered_by_read), and building the joined integration + store +
    # Sage query was a fifth of a worker's CPU under load; only an event with work to do pays it.
    event = InboundEvent.objects.only(*EVENT_FIELDS).filter(pk=event_id).first()
    if event is None:
        return "gone"
    if event.processed_at is not None:
        return "already processed"
    event.integration = integration_for_work(event.integration_id)
    payload = json.loads(event.body)
    handler = HANDLERS.get(payload.get("scope", ""))
    covered: list[int] = []
    if handler is None:
        message = f"Scope {payload.get('scope')!r} is not used by this connector; ignored."
        logger.info("webhook event %s: %s", event_id, message)
    else:
        if client is None:
            from .client import BigCommerceClient

            client = BigCommerceClient.for_store(event.integration.store)
        if handler is _order and event.resource_id:
            covered = _covered_by_read(event)
        message = handler(event.integration, client, event, payload, run_here=run_here)
        logger.info("webhook event %s (%s): %s", event_id, event.scope, message)
    now = timezone.now()
    InboundEvent.objects.filter(pk=event_id).update(processed_at=now, error="")
    if covered:
        # Only once the read and the intake succeeded: if they raise, these stay unprocessed
        # and their own tasks do the work.
        InboundEvent.objects.filter(pk__in=covered, processed_at__isnull=True).update(
            processed_at=now, error="", note=f"Answered by the order read for event {event_id} (received earlier).")
    return message
