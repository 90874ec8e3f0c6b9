"""Sync records: creation (idempotent under races), state changes with audit, replay."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from connector.exceptions import order_key
from connector.models import SyncRecord
from connector.services.audit import audit, audit_many
from connector.services.bulk import insert_new, update_rows
from connector.services.taskqueue import task_named

State = SyncRecord.State
logger = logging.getLogger(__name__)


def upsert_record(integration_id: int, kind: str, external_id: str, action: str, *,
                  source_version: str = "", payload=None, reason: str = "") -> tuple[SyncRecord, bool]:
    """Make sure the record exists and say whether it needs (re)processing.

    Returns (record, should_process). A posted record is re-processed only when the store
    record changed since (``source_version``, e.g. date_modified) and its flow cares; the
    unique constraint settles two webhooks and a poll racing to create the same record.
    """
    external_id = str(external_id)
    try:
        with transaction.atomic():
            record = SyncRecord.objects.create(
                integration_id=integration_id, kind=kind, external_id=external_id, action=action,
                source_version=source_version, payload=payload,
            )
            audit(record, "received", reason or "Record created.")
            return record, True
    except IntegrityError:
        record = SyncRecord.objects.get(integration_id=integration_id, kind=kind, external_id=external_id,
                                        action=action)
    if record.state in (State.POSTED, State.SKIPPED, State.DISPATCHED):
        if record.state == State.SKIPPED and source_version and source_version != record.source_version:
            # A skipped order (e.g. still pending payment) may have become postable.
            SyncRecord.objects.filter(pk=record.pk).update(state=State.PENDING, source_version=source_version)
            record.refresh_from_db()
            audit(record, "received", f"Store record changed ({reason or 'update'}); re-evaluating.")
            if record.kind == SyncRecord.Kind.ORDER:
                _order_reopened([record])
            return record, True
        return record, False
    if source_version and source_version != record.source_version:
        SyncRecord.objects.filter(pk=record.pk).update(source_version=source_version)
    return record, record.state in (State.PENDING, State.FAILED, State.WAITING_MAPPING, State.HELD)


def upsert_records(integration_id: int, kind: str, action: str, items: list[tuple[str, str, object]], *,
                   reason: str = "") -> list[int]:
    """upsert_record for a page of store records, ``items`` being (external id, source version,
    payload): the new ones cost one INSERT and one audit INSERT for the whole page; records that
    already existed (a webhook or an earlier poll brought them) get upsert_record's own rules.
    Returns the ids of the records to process."""
    latest = {str(external_id): (version, payload) for external_id, version, payload in items}
    created = dict((external_id, pk) for pk, external_id in insert_new(
        SyncRecord, [SyncRecord(integration_id=integration_id, kind=kind, external_id=external_id, action=action,
                                source_version=version, payload=payload)
                     for external_id, (version, payload) in latest.items()],
        returning=("id", "external_id")))
    audit_many([(pk, "received", reason or "Record created.", None) for pk in created.values()])
    queue = list(created.values())
    for external_id, (version, payload) in latest.items():
        if external_id in created:
            continue
        record, should = upsert_record(integration_id, kind, external_id, action, source_version=version,
                                       payload=payload, reason=reason)
        if should:
            if record.payload != payload:  # an existing record waiting to (re)try: newest version
                SyncRecord.objects.filter(pk=record.pk).update(payload=payload)
            queue.append(record.pk)
        elif record.state == State.WAITING_ORDER and payload is not None and record.payload != payload:
            # A refund waiting for its order is not run again (its order's posting wakes it), but
            # it is credited from the store's newest version.
            SyncRecord.objects.filter(pk=record.pk).update(payload=payload)
    return queue


# States in which a new version of the store record changes nothing (upsert_record's rule): the
# record is in the ledger, or on its way there.
SETTLED_STATES = (State.POSTED, State.DISPATCHED)


def settled(integration_id: int, kind: str, external_id: str, actions: list[str]) -> bool:
    """Whether every one of ``actions`` already has a record for this store record in a settled
    state, so reading the store record again could not queue anything (upsert_record leaves
    posted and dispatched records alone whatever the version). The store's echo of our own
    status write-back (statusUpdated + updated, each perhaps delivered twice) is the common case:
    without this, every echo cost a store API call and an intake pass for nothing."""
    if not actions:
        return False
    found = set(SyncRecord.objects.filter(integration_id=integration_id, kind=kind, external_id=str(external_id),
                                          action__in=actions, state__in=SETTLED_STATES)
                .values_list("action", flat=True))
    return found >= set(actions)


# Records per task message when many are queued at once (backfill, poll pages). One message per
# record capped the backfill at the broker's delivery rate (the filesystem broker hands a worker one
# message per polling interval, 0.1 s: ten records a second whatever the worker's speed); a chunk
# costs one delivery and its records still run one by one, each in its own transactions.
ENQUEUE_CHUNK = 20


def chunks(ids: list[int], size: int = ENQUEUE_CHUNK) -> list[list[int]]:
    return [ids[start:start + size] for start in range(0, len(ids), size)]


def enqueue(record_ids, countdown: float | None = None, *, here: bool = False) -> None:
    """Process records on a worker once the current transaction commits. Several ids travel as
    lists in process_record's argument (run_record takes an id or a list of ids).

    ``here``: the caller is a worker task with nothing else to do for these records (a webhook's
    order read), so run them in this task right after the commit instead of sending a message:
    one broker round trip and one wait in the queue fewer between a paid order and its Sage job,
    the whole of that stage on a busy day. If running them raises, they are sent as usual. If the
    process dies meanwhile, the records stay pending and the sweeper sends them, as it does for a
    message lost between the commit and the broker."""
    process_record = task_named("connector.process_record")
    ids = [record_ids] if isinstance(record_ids, int) else list(record_ids)

    def run_here():
        try:
            process_record.run(ids[0] if len(ids) == 1 else ids)  # the task's body, in this task
        except Exception:  # noqa: BLE001 - handed to a worker, which runs (and records) it as always
            logger.warning("records %s: running them after the intake failed; sent to a worker", ids,
                           exc_info=True)
            send()

    def send():
        for chunk in chunks(ids):
            argument = chunk[0] if len(chunk) == 1 else chunk
            if countdown:
                process_record.apply_async((argument,), countdown=countdown)
            else:
                process_record.delay(argument)

    transaction.on_commit(run_here if here and not countdown else send)


# The row's big JSON values: the store record and the ledger document. A state change that does
# not carry them leaves them alone: re-sending them made PostgreSQL write (and re-TOAST) kilobytes
# per transition, and it wrote back a stale copy over a payload stored by a queryset update.
BULKY_FIELDS = ("payload", "document")
_STATE_FIELDS = [field.name for field in SyncRecord._meta.concrete_fields
                 if not field.primary_key and field.name not in BULKY_FIELDS]


def set_state(record: SyncRecord, state: str, message: str, *, step: str | None = None, data=None,
              **fields) -> SyncRecord:
    record.state = state
    record.message = message
    for name, value in fields.items():
        setattr(record, name, value)
    if state == State.POSTED and record.posted_at is None:
        record.posted_at = timezone.now()
    record.save(update_fields=_STATE_FIELDS + [name for name in BULKY_FIELDS if name in fields])
    audit(record, step or state, message, data)
    _follow_orders([record], state, parked="waiting_for" in fields)
    return record


def set_states(changes: list[tuple[SyncRecord, str]], state: str, *, step: str | None = None,
               fields: tuple[str, ...] = (), data_of=None, only_from: tuple[str, ...] = ()) -> None:
    """set_state for many records in one UPDATE and one audit INSERT. ``changes``: (record, message);
    ``fields``: the other columns the caller changed on the records; ``data_of(record)``: the audit
    entry's data. ``only_from``: states the row must still be in (a record another process moved on
    meanwhile, say posted by a fast agent, is not put back)."""
    if not changes:
        return
    now = timezone.now()
    for record, message in changes:
        record.state = state
        record.message = message
        record.updated_at = now
        if state == State.POSTED and record.posted_at is None:
            record.posted_at = now
    update_rows(SyncRecord, [record for record, _ in changes],
                sorted({"state", "message", "updated_at", "posted_at", *fields}),
                only_if=("state", only_from) if only_from else None)
    audit_many([(record.pk, step or state, message, data_of(record) if data_of else None)
                for record, message in changes])
    _follow_orders([record for record, _ in changes], state, parked="waiting_for" in fields)


def replay(records, *, user=None, refetch: bool = True) -> int:
    """Queue records again. Posting stays exactly-once: links and agent jobs are unique, and the
    agent looks every reference up in Sage before it creates anything."""
    ids, reopened = [], []
    who = f" by {user}" if user else ""
    for record in records:
        if record.state == State.POSTED:
            continue
        if record.state == State.SKIPPED and record.kind == SyncRecord.Kind.ORDER:
            reopened.append(record)
        changes = {"state": State.PENDING, "updated_at": timezone.now(), "next_attempt_at": None}
        if refetch:
            changes["payload"] = None  # the flow fetches the store record again
        SyncRecord.objects.filter(pk=record.pk).update(**changes)
        audit(record, "replay", f"Replay requested{who} ({'re-fetching the source' if refetch else 'stored payload'}).",
              {"refetch": refetch})
        ids.append(record.pk)
    enqueue(ids)
    _order_reopened(reopened)  # the refunds skipped with the order wait for it again
    return len(ids)


# -- refunds waiting for their order ------------------------------------------------------------
#
# A refund is credited against its order's ledger document, so it cannot post before its order.
# While the order's record is pending, held, waiting for a mapping or failed, the refund's flow
# raises WaitingForOrder: the refund's record waits in WAITING_ORDER with the order's key in
# waiting_for, and nothing runs for it (no retry timer, no polling). If the order was skipped, the
# flow raises OrderNotPosted: the refund is skipped, saying why, and keeps the key. Every state
# change is written here (set_state, set_states), so here is where they are woken:
#   - an order's record reaching POSTED or SKIPPED wakes the refunds waiting for it (the refund's
#     flow then credits it, or records that its order was skipped);
#   - an order re-opened after being skipped (upsert_record, replay) wakes the refunds skipped
#     with it (they wait for it again);
#   - a refund parking looks at its order once more.
# The race: the refund's worker reads its order as "not posted" and parks, while another worker
# posts the order and looks for refunds waiting for it. Had each looked inside its own
# transaction, each could miss the other's write (not committed yet), and the refund would wait
# forever. So each side looks only once its own write is committed (transaction.on_commit): of the
# two commits, the later one's look sees the earlier one's write, so at least one side wakes the
# refund. A wake is a conditional UPDATE from the parked state: when both sides see it, one of
# them sends the record to a worker. A wake lost anyway (the database gone between the commit and
# the look) is found by the sweeper's backstop, wake_stranded_refunds.

ORDER_SETTLED = (State.POSTED, State.SKIPPED)
_ORDER_PREFIX = order_key("")


def order_waited_for(waiting_for) -> str | None:
    """The order id a refund waits for (its ``waiting_for`` key), or None."""
    for key in waiting_for or []:
        if isinstance(key, str) and key.startswith(_ORDER_PREFIX):
            return key[len(_ORDER_PREFIX):]
    return None


def _follow_orders(records: list[SyncRecord], state: str, *, parked: bool) -> None:
    """The hooks of the section's comment, run once the caller's transaction commits. Reads only
    loaded fields (a record loaded without its kind is not one of these)."""
    if state in ORDER_SETTLED:
        orders = [(record.integration_id, record.external_id) for record in records
                  if record.__dict__.get("kind") == SyncRecord.Kind.ORDER]
        if orders:
            transaction.on_commit(lambda: wake_refunds_of(orders, state=State.WAITING_ORDER,
                                                          why=_order_settled_why(state)), robust=True)
    if parked and state in (State.WAITING_ORDER, State.SKIPPED):
        waiting = [(record.pk, record.integration_id, order_id, state) for record in records
                   if record.__dict__.get("kind") == SyncRecord.Kind.REFUND
                   and (order_id := order_waited_for(record.__dict__.get("waiting_for")))]
        if waiting:
            transaction.on_commit(lambda: _look_again(waiting), robust=True)


def _order_settled_why(state: str) -> str:
    return "was posted" if state == State.POSTED else "was skipped"


def _order_reopened(orders: list[SyncRecord]) -> None:
    if orders:
        pairs = [(order.integration_id, order.external_id) for order in orders]
        transaction.on_commit(lambda: wake_refunds_of(pairs, state=State.SKIPPED, why="is being looked at again"),
                              robust=True)


def wake_refunds_of(orders: list[tuple[int, str]], *, state: str, why: str) -> list[int]:
    """Wake the refunds in ``state`` (WAITING_ORDER, or SKIPPED with their order) whose order is
    one of ``orders`` ((integration id, order id)). One query per integration finds them (the
    (integration, state) index; typically none)."""
    keys: dict[int, set[str]] = {}
    for integration_id, order_id in orders:
        keys.setdefault(integration_id, set()).add(str(order_id))
    found = []
    for integration_id, order_ids in keys.items():
        for pk, waiting_for in SyncRecord.objects.filter(integration_id=integration_id, state=state,
                                                         kind=SyncRecord.Kind.REFUND).values_list("pk", "waiting_for"):
            order_id = order_waited_for(waiting_for)
            if order_id in order_ids:
                found.append((pk, state, order_id))
    return _wake(found, why)


def _look_again(waiting: list[tuple[int, int, str, str]]) -> None:
    """A refund just parked (record id, integration id, order id, state): its order's record, read
    now that the parking is committed, may have moved meanwhile."""
    for pk, integration_id, order_id, state in waiting:
        states = set(SyncRecord.objects.filter(integration_id=integration_id, kind=SyncRecord.Kind.ORDER,
                                               external_id=order_id).values_list("state", flat=True))
        if state == State.WAITING_ORDER and states & set(ORDER_SETTLED):
            _wake([(pk, state, order_id)], _order_settled_why(State.POSTED if State.POSTED in states
                                                               else State.SKIPPED))
        elif state == State.SKIPPED and states and State.SKIPPED not in states:
            _wake([(pk, state, order_id)], "is being looked at again")


def _wake(found: list[tuple[int, str, str]], why: str) -> list[int]:
    """Back to pending and to a worker, each record only if still in the state it was found in (of
    two wakers, one wins; a record another process moved on is left alone)."""
    woken = []
    now = timezone.now()
    for pk, state, order_id in found:
        message = f"Its order {order_id} {why}; running the refund again."
        if SyncRecord.objects.filter(pk=pk, state=state).update(state=State.PENDING, message=message,
                                                                next_attempt_at=None, updated_at=now):
            woken.append((pk, message))
    if woken:
        audit_many([(pk, "resumed", message, None) for pk, message in woken])
        enqueue([pk for pk, _ in woken])
    return [pk for pk, _ in woken]


def wake_stranded_refunds(stale, limit: int = 1000) -> int:
    """The sweeper's backstop: refunds waiting since before ``stale`` whose order has posted or
    was skipped (a wake lost between a commit and its look). Two queries, whatever the number of
    refunds waiting; nothing is re-run while their orders still wait."""
    waiting = [(pk, integration_id, order_waited_for(waiting_for)) for pk, integration_id, waiting_for in
               SyncRecord.objects.filter(state=State.WAITING_ORDER, updated_at__lt=stale)
               .values_list("pk", "integration_id", "waiting_for")[:limit]]
    waiting = [(pk, integration_id, order_id) for pk, integration_id, order_id in waiting if order_id]
    if not waiting:
        return 0
    settled = {}
    for integration_id, external_id, state in SyncRecord.objects.filter(
            kind=SyncRecord.Kind.ORDER, state__in=ORDER_SETTLED,
            integration_id__in={integration_id for _, integration_id, _ in waiting},
            external_id__in={order_id for _, _, order_id in waiting}).values_list("integration_id", "external_id",
                                                                                 "state"):
        settled[(integration_id, external_id)] = state
    found = [(pk, State.WAITING_ORDER, order_id) for pk, integration_id, order_id in waiting
             if (integration_id, order_id) in settled]
    return len(_wake(found, "reached its final state"))
