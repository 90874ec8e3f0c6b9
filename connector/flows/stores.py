"""The store adapter of an integration, without loading its store connection for every record.

A flow maps stored records far more often than it calls the store, and a record's integration is
loaded without its store (its credentials are encrypted columns). The platform of a store
connection is fixed when it is created, so it is read once per store and process; the store row
itself is read only when the adapter first calls the store.
"""

from __future__ import annotations

from accounts.models import StoreConnection
from connector.stores import StoreAdapter, adapter_class

_platform_of_store: dict[int, str] = {}


def store_adapter(integration) -> StoreAdapter:
    platform = _platform_of_store.get(integration.store_id)
    if platform is None:
        if "store" in integration._state.fields_cache:
            platform = integration.store.platform
        else:
            platform = StoreConnection.objects.filter(pk=integration.store_id).values_list(
                "platform", flat=True).first()
        _platform_of_store[integration.store_id] = platform
    return adapter_class(platform).for_store(lambda: integration.store)
