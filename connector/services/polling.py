"""One poll of one integration at a time, for every store package's poll task, and the record of
each poll (SyncRun), where polls that found nothing are rolled up instead of kept one by one."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from contextvars import ContextVar

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from accounts.models import Integration
from connector.models import SyncCursor, SyncRun

logger = logging.getLogger(__name__)
# How long a poll's lock outlives a worker killed mid-poll (kill -9, OOM, a lost node): no poll of
# that integration runs meanwhile, so webhooks the store never delivered wait that long. A poll
# reads only what changed since its watermark and takes seconds; one that runs longer than this
# overlaps the next, which is harmless (records dedup). At 600 s, `make chaos` lost an order whose
# webhooks were dropped: the worker killed 4 s in held the lock past the run's settle window.
POLL_LOCK_SECONDS = 90
LATE_SECONDS = 10  # a scheduled poll that starts later than this after it was due counts as late
# How late the poll running in this task started after it was due (None: not a scheduled poll, e.g.
# "Poll the store now"). Set by poll_once, read by record_poll: the pollers' signature stays poll(integration).
_lateness: ContextVar[float | None] = ContextVar("poll_lateness", default=None)


def active_integration(integration_id: int) -> Integration | None:
    return Integration.objects.select_related("store", "sage").filter(pk=integration_id, is_active=True).first()


def poll_once(integration_id: int, *, lock_prefix: str, poll: Callable, due_at: str | None = None) -> str:
    """Run ``poll(integration)`` unless the integration is gone or switched off, or a poll of it is
    already running. Two overlapping polls would be harmless (records dedup) but waste the store's
    request quota; the lock expires by itself if its worker dies mid-poll. ``due_at``: when the
    scheduler (services/scheduling.py) meant this poll to start, to record how late it started."""
    late = _late_seconds(due_at)
    integration = active_integration(integration_id)
    if integration is None:
        return "integration missing or switched off"
    lock = f"{lock_prefix}:{integration_id}"
    if not cache.add(lock, 1, POLL_LOCK_SECONDS):
        return "a poll of this integration is already running"
    token = _lateness.set(late)
    try:
        return poll(integration).message
    finally:
        _lateness.reset(token)
        cache.delete(lock)


def side_feed_due(integration, stream: str, *, orders_changed: bool, now: dt.datetime) -> bool:
    """Whether a poll reads a side feed (BigCommerce refunds, Adobe credit memos) this time. A
    refund or credit memo changes its order (BigCommerce: status and payment status; Magento's
    CreditmemoService saves the order's total_refunded and state in the same transaction, which
    moves its updated_at), so the orders read already tells us when one may have appeared: read
    the side feed when that read found a new order version, and otherwise at least every
    REFUND_POLL_MAX_SECONDS as a safety net (a change that did not touch its order, a version the
    webhook took first). An idle poll then costs one API call, not two. ``stream``: the side
    feed's SyncCursor, whose updated_at says when it was last read (saving it stamps it)."""
    if orders_changed:
        return True
    row = SyncCursor.objects.filter(integration=integration, stream=stream).only("updated_at").first()
    return row is None or (now - row.updated_at).total_seconds() >= settings.REFUND_POLL_MAX_SECONDS


def _late_seconds(due_at: str | None) -> float | None:
    if not due_at:
        return None
    try:
        moment = dt.datetime.fromisoformat(due_at)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return max(0.0, (timezone.now() - moment).total_seconds())


def record_poll(integration, *, started_at: dt.datetime, seen: int, new: int, succeeded: int, api_calls: int,
                message: str, state: str = SyncRun.State.DONE) -> SyncRun:
    """Save one poll's SyncRun. A poll that found nothing new (done; nothing read, or only order
    versions already taken, re-read by the overlap window) is added to the
    integration's roll-up row of the day instead of a row of its own: 2,000 integrations polling
    each minute would otherwise add 2.9 million rows a day that nobody reads (the admin hides them).
    The roll-up keeps how many polls found nothing that day, how many started late, the latest
    one and their API calls; the archive prune deletes it after the retention, like any run."""
    late = _lateness.get()
    now = timezone.now()
    if state == SyncRun.State.DONE and not new:
        return roll_up_idle(integration, SyncRun.Kind.POLL, started_at=started_at, finished_at=now,
                            api_calls=api_calls, late=late)
    params = {"late_seconds": round(late, 1)} if late is not None else {}
    return SyncRun.objects.create(integration=integration, kind=SyncRun.Kind.POLL, state=state, seen=seen,
                                  succeeded=succeeded, api_calls=api_calls, message=message, params=params,
                                  started_at=started_at, finished_at=now)


IDLE_WORDING = {SyncRun.Kind.POLL: "poll(s) found nothing new",
                SyncRun.Kind.STOCK_PUSH: "stock push(es) had nothing to push"}


def roll_up_idle(integration, kind: str, *, started_at, finished_at, api_calls: int = 0,
                 late: float | None = None) -> SyncRun:
    """Count a run that did nothing (a poll that found nothing new, a stock push with nothing
    changed) in the integration's roll-up row of that kind and UTC day, made by its first one."""
    day = started_at.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    run = (SyncRun.objects.filter(integration=integration, kind=kind, state=SyncRun.State.DONE,
                                  seen=0, started_at__gte=day, started_at__lt=day + dt.timedelta(days=1),
                                  params__has_key="idle_polls")
           .only("pk", "params", "api_calls", "started_at").first())
    if run is None:
        params = {"idle_polls": 0, "late_polls": 0, "max_late_seconds": 0.0, "scheduled_polls": 0}
        run = SyncRun(integration=integration, kind=kind, state=SyncRun.State.DONE, seen=0,
                      params=params, started_at=started_at, api_calls=0)
    params = dict(run.params)
    params["idle_polls"] = params.get("idle_polls", 0) + 1
    if late is not None:
        params["scheduled_polls"] = params.get("scheduled_polls", 0) + 1
        params["max_late_seconds"] = round(max(params.get("max_late_seconds", 0.0), late), 1)
        if late > LATE_SECONDS:
            params["late_polls"] = params.get("late_polls", 0) + 1
    params["last_poll_at"] = finished_at.isoformat()
    run.params = params
    run.api_calls = (run.api_calls or 0) + api_calls
    run.finished_at = finished_at
    run.message = (f"{params['idle_polls']} {IDLE_WORDING.get(kind, 'run(s) did nothing')} since "
                   f"{run.started_at.astimezone(dt.UTC):%H:%M} UTC (last at {finished_at.astimezone(dt.UTC):%H:%M:%S}).")
    if run.pk is None:
        run.save()
    else:
        SyncRun.objects.filter(pk=run.pk).update(params=run.params, api_calls=run.api_calls,
                                                 finished_at=run.finished_at, message=run.message)
    return run
