"""Run one sync record through its flow and turn the outcome into a state and a message.

Flows (connector/flows/) register a handler per action. A handler fetches the store record,
maps it (pure), and dispatches the ledger document (agent job or direct HTTP). It raises a
RecordOutcome for anything the accountant must act on, and an ApiError when a remote failed.

This module imports no flow: the flows sit above the services and register their handlers when
the apps are ready (ConnectorConfig.ready imports connector.flows), in every process that has
set Django up, web and worker alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import redis.exceptions
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerError

from accounts.models import Integration, secret_fields
from connector.exceptions import RecordOutcome
from connector.models import SyncRecord
from connector.services.records import enqueue, set_state, set_states
from mlcommon.http import ApiError

logger = logging.getLogger(__name__)
State = SyncRecord.State

_handlers: dict[str, Callable[[SyncRecord], None]] = {}
_batch_handlers: dict[str, Callable[[list[SyncRecord]], list[SyncRecord]]] = {}
_mappings_changed_listeners: list[Callable[[int], None]] = []
FINISHED = (State.POSTED, State.SKIPPED, State.DISPATCHED)
# Not loaded with each record's integration: no flow reads them, and decrypting them cost a Fernet
# decryption per record of a chunk.
INTEGRATION_SECRETS = secret_fields(Integration, "integration__")
RETRY_CAP_SECONDS = 900
TRANSIENT_INFRASTRUCTURE_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, BrokerError,
                                   OperationalError, InterfaceError)


def handles(action: str):
    def register(fn):
        _handlers[action] = fn
        return fn
    return register


def handles_batch(action: str):
    """Register a handler for a chunk of records of one action (the backfill's path). It takes the
    records (loaded, runnable, their attempt counted) and returns those it leaves to the one-record
    handler; it settles each record it keeps, a record's own problem through settle()."""
    def register(fn):
        _batch_handlers[action] = fn
        return fn
    return register


def on_mappings_changed(fn: Callable[[int], None]) -> Callable[[int], None]:
    """Register ``fn(integration_id)``, called when an integration's mappings changed in bulk
    (resume_waiting): a flow that keeps the mappings in memory retires its copy there."""
    _mappings_changed_listeners.append(fn)
    return fn


def run_record(record_id: int | list[int]) -> None:
    """Run one record, or a chunk of them (records.enqueue sends chunks): one record's failure is
    its own and never stops the rest of the chunk."""
    if isinstance(record_id, list):
        _run_chunk([int(one) for one in record_id])
        return
    _run_one(int(record_id))


def _run_chunk(record_ids: list[int]) -> None:
    """Records of an action with a batch handler are mapped and dispatched together (one UPDATE,
    one INSERT of jobs, one of audit entries for the lot); the others, and any the batch handler
    leaves or cannot take, run one by one."""
    one_by_one: list[int] = []
    left: list[SyncRecord] = []
    groups: dict[tuple[int, str], list[SyncRecord]] = {}
    for record in SyncRecord.objects.select_related("integration").defer(*INTEGRATION_SECRETS) \
            .filter(pk__in=record_ids).order_by("pk"):
        if record.state in FINISHED:
            continue
        if record.action in _batch_handlers and record.integration.is_active:
            groups.setdefault((record.integration_id, record.action), []).append(record)
        else:
            one_by_one.append(record.pk)
    for (_, action), records in groups.items():
        SyncRecord.objects.filter(pk__in=[record.pk for record in records]).update(attempts=F("attempts") + 1)
        for record in records:
            record.attempts += 1
        try:
            left += _batch_handlers[action](records)
        except Exception:  # the batch's transaction is undone: each record gets its own try
            logger.exception("batch of %s %s records failed; running them one by one", len(records), action)
            one_by_one += [record.pk for record in records]
    for record in left:  # loaded and counted above
        try:
            _run_loaded(record, counted=True)
        except Exception:  # a database error mid-record: the others still run; this one is replayable
            logger.exception("record %s could not be run", record.pk)
    for one in one_by_one:
        try:
            _run_one(one)
        except Exception:
            logger.exception("record %s could not be run", one)


def _run_one(record_id: int) -> None:
    record = SyncRecord.objects.select_related("integration").defer(*INTEGRATION_SECRETS).filter(pk=record_id).first()
    if record is None or record.state in FINISHED:
        return
    _run_loaded(record)


def _run_loaded(record: SyncRecord, *, counted: bool = False) -> None:
    """Run a loaded record through its flow's handler; ``counted``: its attempt is already counted."""
    if not record.integration.is_active:
        set_state(record, State.SKIPPED, "The integration is switched off.")
        return
    handler = _handlers.get(record.action)
    if handler is None:
        set_state(record, State.FAILED, f"No flow handles '{record.action}' records; this is a bug.")
        return
    if not counted:
        SyncRecord.objects.filter(pk=record.pk).update(attempts=record.attempts + 1)
        record.attempts += 1
    try:
        handler(record)
    except Exception as error:
        settle(record, error)


def settle(record: SyncRecord, error: Exception) -> None:
    """What a handler's exception means for its record: an outcome for the accountant, a retry
    later, or a visible failure (a bug must not lose the record: it can be replayed)."""
    if isinstance(error, RecordOutcome):
        set_state(record, error.state, error.message, data=error.data, waiting_for=error.keys)
    elif isinstance(error, ApiError):
        if error.retryable:
            _retry_later(record, str(error), error.retry_after or _backoff(record.attempts))
        else:
            set_state(record, State.FAILED, f"{error}", step="failed",
                      data={"status": error.status, "body": error.body})
    elif is_transient_infrastructure(error):
        # Redis restarting, the database failing over, the broker away: nothing is wrong
        # with the record, so it is not failed (a failed record waits for a person).
        logger.warning("record %s: %s; will retry", record.pk, error)
        _retry_later(record, f"Infrastructure unavailable ({error.__class__.__name__}: {error})",
                     _backoff(record.attempts))
    else:
        logger.error("record %s failed", record.pk, exc_info=error)
        set_state(record, State.FAILED, f"Unexpected error: {error.__class__.__name__}: {error}", step="failed")


def settle_many(failures: list[tuple[SyncRecord, Exception]]) -> None:
    """settle() for the records a chunk could not map: outcomes for the accountant (most often an
    order refused on its status) in one UPDATE and one audit INSERT per state, anything else one
    by one."""
    outcomes: dict[str, list[tuple[SyncRecord, RecordOutcome]]] = {}
    for record, error in failures:
        if isinstance(error, RecordOutcome):
            record.waiting_for = error.keys
            outcomes.setdefault(error.state, []).append((record, error))
        else:
            settle(record, error)
    for state, pairs in outcomes.items():
        data = {record.pk: error.data for record, error in pairs}
        set_states([(record, error.message) for record, error in pairs], state, fields=("waiting_for",),
                   data_of=lambda record, data=data: data[record.pk])


def _backoff(attempts: int) -> float:
    return min(RETRY_CAP_SECONDS, 5 * 2 ** min(attempts, 8))


def is_transient_infrastructure(error: Exception) -> bool:
    """Errors of our own infrastructure that pass on their own: a Redis or broker connection
    lost, a database connection dropped."""
    return isinstance(error, TRANSIENT_INFRASTRUCTURE_ERRORS)


def _retry_later(record: SyncRecord, reason: str, delay: float) -> None:
    """Back to pending with a due time, and a delayed message. If the message cannot be sent (the
    broker is the thing that is down), the beat's sweeper re-sends due pending records; if even the
    state cannot be written, the record is still pending from before and the sweeper finds it."""
    try:
        with transaction.atomic():
            set_state(record, State.PENDING, f"{reason}. Retrying in {int(delay)} s.", step="retry",
                      next_attempt_at=timezone.now() + timedelta(seconds=delay))
            enqueue(record.pk, countdown=delay)
    except Exception as error:
        if not is_transient_infrastructure(error):
            raise
        logger.warning("record %s: could not schedule its retry (%s); the sweeper will", record.pk, error)


def resume_waiting(integration_id: int) -> int:
    """Re-run the integration's parked records (a mapping was saved or imported)."""
    # Bulk imports send no post_save: this is their way to retire every process's snapshot.
    for listener in _mappings_changed_listeners:
        listener(integration_id)
    ids = list(SyncRecord.objects.filter(integration_id=integration_id, state__in=(State.WAITING_MAPPING,
                                                                                    State.HELD))
               .values_list("pk", flat=True))
    if ids:
        SyncRecord.objects.filter(pk__in=ids).update(state=State.PENDING, next_attempt_at=None)
        with transaction.atomic():
            enqueue(ids)
    return len(ids)
