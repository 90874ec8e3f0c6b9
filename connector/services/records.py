"""Sync records: creation (idempotent under races), state changes with audit, replay."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from connector.models import SyncRecord
from connector.services.audit import audit, audit_many
from connector.services.bulk import insert_new, update_rows
from connector.services.taskqueue import task_named

State = SyncRecord.State


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
    return queue


# Records per task message when many are queued at once (backfill, poll pages). One message per
# record capped the backfill at the broker's delivery rate (the filesystem broker hands a worker one
# message per polling interval, 0.1 s: ten records a second whatever the worker's speed); a chunk
# costs one delivery and its records still run one by one, each in its own transactions.
ENQUEUE_CHUNK = 20


def chunks(ids: list[int], size: int = ENQUEUE_CHUNK) -> list[list[int]]:
    return [ids[start:start + size] for start in range(0, len(ids), size)]


def enqueue(record_ids, countdown: float | None = None) -> None:
    """Process records on a worker once the current transaction commits. Several ids travel as
    lists in process_record's argument (run_record takes an id or a list of ids)."""
    process_record = task_named("connector.process_record")
    ids = [record_ids] if isinstance(record_ids, int) else list(record_ids)

    def send():
        for chunk in chunks(ids):
            argument = chunk[0] if len(chunk) == 1 else chunk
            if countdown:
                process_record.apply_async((argument,), countdown=countdown)
            else:
                process_record.delay(argument)

    transaction.on_commit(send)


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


def replay(records, *, user=None, refetch: bool = True) -> int:
    """Queue records again. Posting stays exactly-once: links and agent jobs are unique, and the
    agent looks every reference up in Sage before it creates anything."""
    ids = []
    who = f" by {user}" if user else ""
    for record in records:
        if record.state == State.POSTED:
            continue
        changes = {"state": State.PENDING, "updated_at": timezone.now(), "next_attempt_at": None}
        if refetch:
            changes["payload"] = None  # the flow fetches the store record again
        SyncRecord.objects.filter(pk=record.pk).update(**changes)
        audit(record, "replay", f"Replay requested{who} ({'re-fetching the source' if refetch else 'stored payload'}).",
              {"refetch": refetch})
        ids.append(record.pk)
    enqueue(ids)
    return len(ids)
