from __future__ import annotations

from connector.http import redact
from connector.models import AuditEntry, SyncRecord


def audit(record: SyncRecord, step: str, message: str, data=None) -> AuditEntry:
    """Append one step to a record's trail. ``data`` is redacted: no secret reaches the table."""
    return AuditEntry.objects.create(record=record, step=step, message=message,
                                     data=redact(data) if data is not None else None)
