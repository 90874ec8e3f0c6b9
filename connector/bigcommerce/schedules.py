"""When each integration polls: Integration.next_poll_at, handed out by one beat entry for every
store (connector/services/scheduling.py). Until issue 22 this module kept one django-celery-beat
PeriodicTask per BigCommerce integration; migration accounts 0010 carried those over and removed them."""

from __future__ import annotations

from accounts.models import Integration, StoreConnection
from connector.services.scheduling import poll_soon

TASK_NAME = "connector.bigcommerce.poll_integration"


def ensure_schedules() -> dict:
    """Make BigCommerce integrations that were never scheduled due at the next tick; idempotent."""
    never = Integration.objects.filter(store__platform=StoreConnection.Platform.BIGCOMMERCE, is_active=True,
                                       next_poll_at__isnull=True).values_list("pk", flat=True)
    return {"scheduled": poll_soon(list(never))}
