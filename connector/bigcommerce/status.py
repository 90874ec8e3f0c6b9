"""After posting: mark the order on the store (Zynk's "status after import"), so the merchant
sees it was imported and anyone filtering by status does not download it again."""

from __future__ import annotations

from .client import BigCommerceClient


def set_order_status(integration, order_id: int, status_id: int | None = None,
                     client: BigCommerceClient | None = None) -> dict | None:
    """Set the order's status to ``status_id`` (default: the integration's status_after_import).
    Returns the updated order, or None when nothing is configured or it already has that status.

    The change bumps the order's date_modified, so the next poll sees a new version; the posted
    record ignores it (upsert_record does not re-process posted records)."""
    status_id = integration.status_after_import if status_id is None else status_id
    if status_id is None:
        return None
    client = client or BigCommerceClient.for_store(integration.store)
    current = client.get_order(order_id, with_lines=False)
    if int(current.get("status_id", -1)) == int(status_id):
        return None
    return client.update_order_status(order_id, status_id)
