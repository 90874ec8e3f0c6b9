"""The store-neutral half of intake: fetched store records (order versions, refunds, credit memos)
become inbound events, the dedup point, then one sync record per action of the integration's route.

Each store's ``intake`` module says how its records are named and versioned (``RecordShape``); the
poll, the backfill and webhook processing of that store all come through ``take``, so what a
webhook already brought in is a no-op when the overlapping poll reads it again, and the other way
round.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from connector.models import InboundEvent
from connector.services.bulk import insert_new
from connector.services.records import enqueue, upsert_records


@dataclass(frozen=True)
class RecordShape:
    """How one store names a kind of record."""

    kind: str  # SyncRecord.Kind
    id_field: str  # the record's id in the store's JSON ("id", "entity_id")
    event_key: Callable[[int, dict], str]  # (integration id, record) → the inbound event's dedup key
    version_of: Callable[[dict], str]  # the version that a sync record keeps as source_version
    payload_of: Callable[[dict], dict]  # what a sync record keeps of it
    skip: Callable[[dict], bool] = lambda record: False  # stored as seen, but nothing to post (yet)


def take(integration, records: Iterable[dict], shape: RecordShape, *, actions: list[str], source: str, reason: str,
         run=None, run_here: bool = False) -> dict:
    """Store each record version once and queue the records that need processing. ``run_here``:
    the queued records run in this process right after the commit (records.enqueue).
    Returns counters: seen, new, queued."""
    records = [r for r in records if isinstance(r, dict) and r.get(shape.id_field) is not None]
    counts = {"seen": len(records), "new": 0, "queued": 0}
    if not records:
        return counts
    now = timezone.now()
    keys = [shape.event_key(integration.pk, record) for record in records]
    events = [InboundEvent(integration_id=integration.pk, source=source, dedup_key=key, scope=shape.kind,
                           resource_id=str(record[shape.id_field]), run=run, received_at=now, processed_at=now)
              for key, record in zip(keys, records, strict=True)]
    with transaction.atomic():
        # INSERT … ON CONFLICT DO NOTHING RETURNING: the unique dedup key decides, so of two
        # processes reading the same version only one takes it.
        new = {key for (key,) in insert_new(InboundEvent, events, returning=("dedup_key",))}
        fresh = [record for key, record in zip(keys, records, strict=True) if key in new]
        counts["new"] = len(fresh)
        postable = [(str(record[shape.id_field]), shape.version_of(record), shape.payload_of(record))
                    for record in fresh if not shape.skip(record)]
        queue: list[int] = []
        for action in actions:
            queue += upsert_records(integration.pk, shape.kind, action, postable, reason=reason)
        counts["queued"] = len(queue)
        if queue:
            enqueue(queue, here=run_here)
    return counts

