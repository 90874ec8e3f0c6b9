"""Follow-ups after a posting: the store order's status is moved to the chosen one."""

from __future__ import annotations

from connector.models import SyncRecord
from connector.services.audit import audit

from .stores import store_adapter


def mark_order_imported(record_id: int) -> None:
    record = SyncRecord.objects.select_related("integration__store").get(pk=record_id)
    status_id = record.integration.status_after_import
    if status_id is None:
        return
    store_adapter(record.integration).set_order_status(record.external_id, status_id)
    audit(record, "store_status", f"Set the store order's status to id {status_id} (imported marker).")
