"""Celery tasks: thin wrappers that take ids, re-load state and call a service.

Every task is safe to run twice (acks_late redelivers a task whose worker died): the services
they call are idempotent through unique constraints and look-ups by reference.
"""

from __future__ import annotations

import socket

from celery import shared_task
from django.utils import timezone

from connector.models import ServiceHeartbeat


@shared_task(name="connector.worker_heartbeat", ignore_result=True)
def worker_heartbeat(source: str = "worker") -> str:
    """Beat sends it every 30 s; the admin index shows how long ago a worker ran it."""
    detail = f"{socket.gethostname()}"
    ServiceHeartbeat.objects.update_or_create(name=source, defaults={"beat_at": timezone.now(), "detail": detail})
    return detail


@shared_task(name="connector.process_record", bind=True, ignore_result=True, acks_late=True,
             max_retries=None)
def process_record(self, record_id: int | list[int]) -> None:
    from connector.services.pipeline import run_record

    run_record(record_id)


@shared_task(name="connector.resume_waiting_records", ignore_result=True)
def resume_waiting_records(integration_id: int) -> int:
    from connector.services.pipeline import resume_waiting

    return resume_waiting(integration_id)


@shared_task(name="connector.set_store_order_status", bind=True, ignore_result=True, acks_late=True,
             max_retries=8, retry_backoff=True)
def set_store_order_status(self, record_id: int) -> None:
    """Zynk's marker: after posting, move the store order to the integration's chosen status."""
    from connector.flows.followups import mark_order_imported

    mark_order_imported(record_id)


@shared_task(name="connector.push_stock", ignore_result=True, acks_late=True)
def push_stock(integration_id: int) -> None:
    from accounts.models import Integration
    from connector.flows.stock import push_stock as push

    integration = Integration.objects.select_related("store").get(pk=integration_id)
    if integration.is_active and integration.push_stock:
        push(integration)


@shared_task(name="connector.sage100_reconcile", ignore_result=True, acks_late=True)
def sage100_reconcile(record_id: int) -> None:
    """Read the store's captured payments and refunds for a posted Sage 100 sales order."""
    from connector.flows.sage100 import reconcile

    reconcile(record_id)


@shared_task(name="connector.push_prices", ignore_result=True, acks_late=True)
def push_prices(integration_id: int) -> None:
    from accounts.models import Integration
    from connector.flows.stock import push_prices as push
    from connector.routing import pushes_prices

    integration = Integration.objects.select_related("store", "sage").get(pk=integration_id)
    if integration.is_active and integration.push_stock and pushes_prices(integration):
        push(integration)


@shared_task(name="connector.dispatch_due_polls", ignore_result=True)
def dispatch_due_polls() -> dict:
    """Beat tick: send the polls of every store's integrations that are due (services/scheduling.py)."""
    from connector.services.scheduling import dispatch_due

    return dispatch_due()


@shared_task(name="connector.push_due_stock", ignore_result=True)
def push_due_stock() -> list[int]:
    """Beat tick: push stock for integrations whose stock interval elapsed since their last push."""
    from datetime import timedelta

    from django.db.models import Max
    from django.db.models.functions import Coalesce

    from accounts.models import Integration
    from connector.models import SyncRun

    now = timezone.now()
    # finished_at: a day's pushes with nothing to push share one roll-up row that started at the first.
    last = dict(SyncRun.objects.filter(kind=SyncRun.Kind.STOCK_PUSH).values("integration_id")
                .annotate(at=Max(Coalesce("finished_at", "started_at"))).values_list("integration_id", "at"))
    due = []
    for integration_id, every in Integration.objects.filter(is_active=True, push_stock=True).values_list(
            "pk", "stock_push_interval_seconds"):
        at = last.get(integration_id)
        if at is None or now - at >= timedelta(seconds=every):
            due.append(integration_id)
            push_stock.delay(integration_id)
    return due


@shared_task(name="connector.prune_archives", ignore_result=True)
def prune_archives() -> int:
    from accounts.models import Integration
    from connector.services.archive import prune_archives as prune

    return sum(prune(integration) for integration in Integration.objects.all())


@shared_task(name="connector.sweep_lost_work", ignore_result=True)
def sweep_lost_work() -> dict:
    """Beat tick: re-send records and webhook events whose Celery message was lost."""
    from connector.services.sweeper import sweep

    return sweep()


@shared_task(name="connector.dashboard.send_notifications", ignore_result=True)
def send_notifications() -> int:
    """Beat, every minute: the e-mails that are due (failures, agents offline, daily digest)."""
    from connector.dashboard.notify import send_notifications as send

    return send()
