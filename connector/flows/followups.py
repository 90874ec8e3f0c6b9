"""Follow-ups after a posting: the store order's status is moved to the chosen one, and (Adobe
Commerce) an order comment names the Sage invoice."""

from __future__ import annotations

from connector.models import SyncRecord
from connector.services.audit import audit

from .stores import store_adapter


def mark_order_imported(record_id: int) -> None:
    record = SyncRecord.objects.select_related("integration__store").get(pk=record_id)
    if record.integration.store_comment_after_posting and record.sage_id:
        adapter = store_adapter(record.integration)
        note_posted = getattr(adapter, "note_posted", None)  # stores that keep order comments (Adobe Commerce)
        if note_posted is not None:
            note_posted(record.external_id, record.sage_id)
            audit(record, "store_comment", f"Added an order comment with Sage invoice {record.sage_id}.")
    status_id = record.integration.status_after_import
    if status_id is None:
        return
    store_adapter(record.integration).set_order_status(record.external_id, status_id)
    audit(record, "store_status", f"Set the store order's status to id {status_id} (imported marker).")
