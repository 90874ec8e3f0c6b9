"""Sales channels of an integration's store, for the account mappings.

The store adapter reads them (``sales_channels``: BigCommerce channels; Adobe store views under
their websites); ``refresh_store_channels`` keeps the list on the StoreConnection, so the channel
picker shows names and the mapping lookups know which website an Adobe store view belongs to
without calling the store while an order is mapped. A channel without accounts of its own takes
its parent's (a store view → its website), then channel 0's ("every channel").

The list is refreshed whenever an account-mapping page opens; a store view added in Adobe since
is known once that page is opened again (until then its orders use channel 0's accounts).
"""

from __future__ import annotations

import logging
from dataclasses import asdict

from django.core.cache import cache

from accounts.models import Integration, StoreConnection
from connector.stores import SalesChannel, adapter_for

logger = logging.getLogger(__name__)
EVERY_CHANNEL = (0, "0 — every channel (the default)")
REFRESH_SECONDS = 60


def refresh_store_channels(store: StoreConnection) -> list[SalesChannel]:
    """Read the store's channels through its adapter and keep them; on any failure (store down,
    no credentials yet, an adapter that cannot list them) the list last kept."""
    # Read at most once a minute per store, once, briefly: an admin page waits on it.
    if not cache.add(f"store-channels-read:{store.pk}", 1, REFRESH_SECONDS):
        return stored_channels(store)
    try:
        adapter = adapter_for(store)
        client = getattr(adapter, "client", None)  # made here: a connection without credentials raises
        if client is not None:
            client.max_attempts, client.timeout = 1, (3.0, 10.0)
        channels = list(adapter.sales_channels())
    except Exception as error:  # the page must open whatever the store says
        logger.info("could not read the sales channels of store %s: %s", store.pk, error)
        return stored_channels(store)
    rows = [asdict(channel) for channel in channels]
    if rows != store.sales_channels:
        StoreConnection.objects.filter(pk=store.pk).update(sales_channels=rows)
        store.sales_channels = rows
    return channels


def stored_channels(store: StoreConnection) -> list[SalesChannel]:
    out = []
    for row in store.sales_channels or []:
        try:
            out.append(SalesChannel(**row))
        except TypeError:
            continue
    return out


def channel_label(channel: SalesChannel, names: dict[int, str]) -> str:
    label = f"{channel.channel_id} — {channel.kind} {channel.name}"
    if channel.parent_id is not None and channel.parent_id in names:
        label += f" (in {names[channel.parent_id]})"
    return label


def channel_choices(channels: list[SalesChannel]) -> list[tuple[int, str]]:
    names = {c.channel_id: f"{c.kind} {c.name}" for c in channels}
    return [EVERY_CHANNEL] + [(c.channel_id, channel_label(c, names)) for c in channels]


def channel_parents(integration_id: int) -> dict[int, int]:
    """Channel id → the channel whose accounts it takes when it has none of its own."""
    rows = Integration.objects.filter(pk=integration_id).values_list("store__sales_channels", flat=True).first()
    return {int(row["channel_id"]): int(row["parent_id"]) for row in rows or []
            if isinstance(row, dict) and row.get("parent_id") is not None}


def with_parents(channels: dict[int, dict[str, str]], parents: dict[int, int]) -> dict[int, dict[str, str]]:
    """Per channel, {purpose: account}: its own over its parent's (channel 0 is applied later)."""
    merged = dict(channels)
    for child, parent in parents.items():
        if parent in channels:
            merged[child] = {**channels[parent], **channels.get(child, {})}
    return merged
