from __future__ import annotations

from connector.models import AuditEntry, SyncRecord
from connector.services.bulk import insert_rows
from mlcommon.http import redact


def audit(record: SyncRecord, step: str, message: str, data=None) -> AuditEntry:
    """Append one step to a record's trail. ``data`` is redacted: no secret reaches the table."""
    return AuditEntry.objects.create(record=record, step=step, message=message,
                                     data=redact(data) if data is not None else None)


def audit_many(entries: list[tuple[int, str, str, object]]) -> None:
    """Append (record id, step, message, data) steps in one INSERT; ``data`` redacted as in audit()."""
    insert_rows(AuditEntry, [
        AuditEntry(record_id=record_id, step=step, message=message, data=redact(data) if data is not None else None)
        for record_id, step, message, data in entries])
