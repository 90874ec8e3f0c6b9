"""The archive of each run: inbound payloads and what became of them, downloadable as JSON
and pruned after the integration's retention."""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from connector.models import InboundEvent, SyncRecord, SyncRun


def export_runs(runs) -> str:
    out = []
    for run in runs:
        events = list(run.events.values("received_at", "source", "scope", "resource_id", "body", "processed_at",
                                        "error"))
        ids = {e["resource_id"] for e in events}
        records = list(SyncRecord.objects.filter(integration_id=run.integration_id, external_id__in=ids)
                       .values("kind", "external_id", "action", "state", "message", "sage_reference", "sage_id"))
        out.append({"run": run.pk, "kind": run.kind, "state": run.state, "started_at": run.started_at,
                    "finished_at": run.finished_at, "seen": run.seen, "total": run.total, "events": events,
                    "records": records})
    return json.dumps(out, indent=1, default=str)


def prune_archives(integration) -> int:
    """Delete inbound events and runs older than the integration's retention. Records and
    their audit trails stay: they are the books' evidence, not the archive."""
    cutoff = timezone.now() - timedelta(days=integration.archive_retention_days)
    # An inbound event is also the dedup key of its delivery: keep it at least as long as the store may
    # retry (WEBHOOK_REPLAY_WINDOW_SECONDS), whatever the retention, so a retry is never taken twice.
    event_cutoff = min(cutoff, timezone.now() - timedelta(seconds=settings.WEBHOOK_REPLAY_WINDOW_SECONDS))
    deleted, _ = InboundEvent.objects.filter(integration=integration, received_at__lt=event_cutoff).delete()
    SyncRun.objects.filter(integration=integration, started_at__lt=cutoff).delete()
    return deleted
