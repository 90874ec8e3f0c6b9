"""Store adapters by platform: the one interface the flows use to read and write a store.

    adapter = adapter_for(integration.store)     # by StoreConnection.platform
    raw = adapter.fetch_order(order_id)
    order = adapter.normalize_order(raw, paid_status_ids=...)   # a connector.commerce.StoreOrder

Each store package registers its adapter (``register``) when its Django app is ready.
"""

from .base import (
    SalesChannel,
    StoreAdapter,
    UnknownPlatform,
    adapter_class,
    adapter_for,
    register,
    registered_adapters,
)

__all__ = ["SalesChannel", "StoreAdapter", "UnknownPlatform", "adapter_for", "adapter_class", "register", "registered_adapters"]
