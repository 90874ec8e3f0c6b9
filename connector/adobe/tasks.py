"""Celery tasks of the Adobe Commerce package: thin, take ids, safe to run twice."""

from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task

from connector.services.polling import active_integration, poll_once
from mlcommon.http import ApiError

logger = logging.getLogger(__name__)


@shared_task(name="connector.adobe.poll_integration", ignore_result=True)
def poll_integration(integration_id: int, due_at: str | None = None) -> str:
    from .poller import poll_integration as poll

    return poll_once(integration_id, lock_prefix="adobe-poll-lock", poll=poll, due_at=due_at)


@shared_task(name="connector.adobe.poll_due_integrations", ignore_result=True)
def poll_due_integrations() -> dict:
    """The old beat entry's task name, kept for messages already queued: every store's due polls
    are now sent by connector.dispatch_due_polls."""
    from connector.services.scheduling import dispatch_due

    return dispatch_due()


@shared_task(name="connector.adobe.backfill", ignore_result=True)
def backfill(integration_id: int, since: str, until: str | None = None, run_id: int | None = None) -> str:
    from connector.models import SyncRun

    from .poller import backfill as run_backfill

    integration = active_integration(integration_id)
    if integration is None:
        return "integration missing or switched off"
    run = SyncRun.objects.filter(pk=run_id).first() if run_id else None
    if run is not None and run.state == SyncRun.State.DONE:
        return "already done"
    return run_backfill(integration, _date(since), _date(until) if until else None, run=run).message


@shared_task(name="connector.adobe.process_webhook_event", bind=True, ignore_result=True, acks_late=True,
             max_retries=8)
def process_webhook_event(self, event_id: int) -> str:
    from connector.models import InboundEvent

    from .webhooks import process_event

    try:
        return process_event(event_id, run_here=True)
    except ApiError as error:
        InboundEvent.objects.filter(pk=event_id).update(error=str(error)[:2000])
        if error.retryable and self.request.retries < self.max_retries:
            raise self.retry(countdown=error.retry_after or min(900, 10 * 2 ** self.request.retries)) from error
        logger.warning("Adobe webhook event %s failed: %s", event_id, error)
        return f"failed: {error}"


def _date(value: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
