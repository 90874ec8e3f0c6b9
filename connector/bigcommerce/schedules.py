"""When each integration polls: one django-celery-beat PeriodicTask per integration (editable
in the admin), kept in step with Integration.poll_interval_seconds by ``ensure_schedules``.
``due_integrations`` is the alternative single-beat-entry form: poll whoever's interval elapsed."""

from __future__ import annotations

import datetime as dt
import json

from django.db.models import Max
from django.utils import timezone

from accounts.models import Integration, StoreConnection
from connector.models import SyncRun

TASK_NAME = "connector.bigcommerce.poll_integration"
PREFIX = "BigCommerce poll: integration "


def _bigcommerce_integrations():
    return Integration.objects.filter(store__platform=StoreConnection.Platform.BIGCOMMERCE)


def ensure_schedules() -> dict:
    """Create or update one PeriodicTask per BigCommerce integration; idempotent. Tasks of
    integrations that no longer exist are disabled, not deleted (their history stays visible)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    counts = {"created": 0, "updated": 0, "unchanged": 0, "disabled": 0}
    names = set()
    for integration in _bigcommerce_integrations():
        every = max(30, int(integration.poll_interval_seconds or 300))
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
        name = f"{PREFIX}{integration.pk}"
        names.add(name)
        wanted = {"task": TASK_NAME, "interval": interval, "args": json.dumps([integration.pk]),
                  "enabled": integration.is_active}
        task = PeriodicTask.objects.filter(name=name).first()
        if task is None:
            PeriodicTask.objects.create(name=name, **wanted)
            counts["created"] += 1
        elif any(getattr(task, k) != v for k, v in wanted.items()):
            for key, value in wanted.items():
                setattr(task, key, value)
            task.save()
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    for task in PeriodicTask.objects.filter(name__startswith=PREFIX, enabled=True).exclude(name__in=names):
        task.enabled = False
        task.save()
        counts["disabled"] += 1
    return counts


def due_integrations(now: dt.datetime | None = None) -> list[int]:
    now = now or timezone.now()
    last = dict(SyncRun.objects.filter(kind=SyncRun.Kind.POLL).values("integration_id")
                .annotate(at=Max("started_at")).values_list("integration_id", "at"))
    due = []
    for integration_id, interval in _bigcommerce_integrations().filter(is_active=True).values_list(
            "pk", "poll_interval_seconds"):
        at = last.get(integration_id)
        if at is None or (now - at).total_seconds() >= interval:
            due.append(integration_id)
    return due
