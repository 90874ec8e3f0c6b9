"""One poll of one integration at a time, for every store package's poll task."""

from __future__ import annotations

from collections.abc import Callable

from django.core.cache import cache

from accounts.models import Integration

# How long a poll's lock outlives a worker killed mid-poll (kill -9, OOM, a lost node): no poll of
# that integration runs meanwhile, so webhooks the store never delivered wait that long. A poll
# reads only what changed since its watermark and takes seconds; one that runs longer than this
# overlaps the next, which is harmless (records dedup). At 600 s, `make chaos` lost an order whose
# webhooks were dropped: the worker killed 4 s in held the lock past the run's settle window.
POLL_LOCK_SECONDS = 90


def active_integration(integration_id: int) -> Integration | None:
    return Integration.objects.select_related("store", "sage").filter(pk=integration_id, is_active=True).first()


def poll_once(integration_id: int, *, lock_prefix: str, poll: Callable) -> str:
    """Run ``poll(integration)`` unless the integration is gone or switched off, or a poll of it is
    already running. Two overlapping polls would be harmless (records dedup) but waste the store's
    request quota; the lock expires by itself if its worker dies mid-poll."""
    integration = active_integration(integration_id)
    if integration is None:
        return "integration missing or switched off"
    lock = f"{lock_prefix}:{integration_id}"
    if not cache.add(lock, 1, POLL_LOCK_SECONDS):
        return "a poll of this integration is already running"
    try:
        return poll(integration).message
    finally:
        cache.delete(lock)
