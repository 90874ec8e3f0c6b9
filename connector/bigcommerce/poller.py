"""Incremental polling (the source of truth; webhooks only make things faster) and backfill.

Orders: watermark on ``date_modified`` (SyncCursor stream 'orders'). Each poll re-reads
``poll_overlap_seconds`` behind it, because the store can commit a change with a date_modified
that is already behind a poll that just ran. Paging is *keyset* on the date rather than
page numbers: an order modified while we page moves to the end of the sort and would shift
every later order one place to the left, so a plain page 2 could skip one. Instead each next
page asks again from the last date seen (inclusive, so the boundary second is re-read and
deduped). Dedup is by order id + date_modified (InboundEvent.dedup_key).

Refunds: watermark on ``created`` (stream 'refunds') via the store-wide refunds feed.

Backfill: keyset on ``id`` within a date_created range; ids never move, so it reads each order
once: 250 orders with their lines per call.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from django.db import DatabaseError
from django.utils import timezone

from connector.models import AgentJob, InboundEvent, SyncCursor, SyncRecord, SyncRun
from connector.services.bulk import analyze, analyze_due
from connector.services.polling import record_poll, side_feed_due
from mappings.models import RecordLink

from .client import V2_MAX_LIMIT, BigCommerceClient
from .formats import parse_any_date, parse_rfc2822
from .intake import take_orders, take_refunds

logger = logging.getLogger(__name__)
ORDERS_STREAM = "orders"
REFUNDS_STREAM = "refunds"
Source = InboundEvent.Source


def client_for(integration, **kwargs) -> BigCommerceClient:
    return BigCommerceClient.for_store(integration.store, **kwargs)


def _cursor(integration, stream: str) -> dt.datetime:
    return _read_cursor(integration, stream)[0]


def _read_cursor(integration, stream: str) -> tuple[dt.datetime, bool]:
    """The watermark, and whether it is saved."""
    row = SyncCursor.objects.filter(integration=integration, stream=stream).first()
    moment = parse_any_date(row.value) if row and row.value else None
    # A new integration starts where it was created; older orders are the backfill's job.
    return moment or integration.created_at, moment is not None


def _save_cursor(integration, stream: str, moment: dt.datetime) -> None:
    SyncCursor.objects.update_or_create(integration=integration, stream=stream,
                                        defaults={"value": moment.astimezone(dt.UTC).isoformat()})


def poll_orders(integration, client: BigCommerceClient | None = None, *, limit: int = V2_MAX_LIMIT) -> dict:
    client = client or client_for(integration)
    watermark, saved = _read_cursor(integration, ORDERS_STREAM)
    since = watermark - dt.timedelta(seconds=integration.poll_overlap_seconds)
    newest = watermark
    totals = {"seen": 0, "new": 0, "queued": 0, "pages": 0}
    page = 1
    while True:
        orders = client.list_orders(client.order_filters(modified_since=since), page=page, limit=limit,
                                    sort="date_modified:asc")
        totals["pages"] += 1
        counts = take_orders(integration, orders, source=Source.POLL, reason="Found by the scheduled poll.")
        for key in ("seen", "new", "queued"):
            totals[key] += counts[key]
        stamps = [parse_rfc2822(o.get("date_modified")) for o in orders]
        stamps = [s for s in stamps if s]
        if stamps:
            newest = max(newest, max(stamps))
        if len(orders) < limit:
            break
        last = max(stamps) if stamps else since
        if last > since:
            since, page = last, 1
        else:  # a whole page within one second: step through that second by page number
            page += 1
    if newest != watermark or not saved:  # an idle poll leaves a saved watermark as it is: one write less
        _save_cursor(integration, ORDERS_STREAM, newest)
    totals["watermark"] = newest.isoformat()
    return totals


def poll_refunds(integration, client: BigCommerceClient | None = None) -> dict:
    client = client or client_for(integration)
    watermark = _cursor(integration, REFUNDS_STREAM)
    since = watermark - dt.timedelta(seconds=integration.poll_overlap_seconds)
    refunds = list(client.iter_refunds(created_since=since))
    counts = take_refunds(integration, refunds, source=Source.POLL, reason="Found by the scheduled poll.")
    stamps = [parse_any_date(r.get("created")) for r in refunds]
    newest = max([watermark, *[s for s in stamps if s]])
    _save_cursor(integration, REFUNDS_STREAM, newest)
    return {**counts, "watermark": newest.isoformat()}


def poll_integration(integration, client: BigCommerceClient | None = None) -> SyncRun:
    """One poll of orders and refunds, recorded as a SyncRun (polls that found nothing are rolled
    up into one row a day: connector.services.polling.record_poll)."""
    client = client or client_for(integration)
    started_at = timezone.now()
    calls_before = client.request_count
    try:
        orders = poll_orders(integration, client)
        refunds = (poll_refunds(integration, client) if _refunds_due(integration, orders, started_at)
                   else {"seen": 0, "queued": 0})
    except Exception as error:
        record_poll(integration, started_at=started_at, seen=0, new=0, succeeded=0, state=SyncRun.State.FAILED,
                    api_calls=client.request_count - calls_before, message=f"Poll failed: {error}")
        raise
    return record_poll(
        integration, started_at=started_at, seen=orders["seen"] + refunds["seen"],
        new=orders["new"] + refunds.get("new", refunds["queued"]),
        succeeded=orders["queued"] + refunds["queued"], api_calls=client.request_count - calls_before,
        message=f"{orders['seen']} order versions read ({orders['new']} new, {orders['queued']} queued), "
                f"{refunds['seen']} refunds read ({refunds['queued']} queued).")


def _refunds_due(integration, orders: dict, now: dt.datetime) -> bool:
    """The refunds feed is read when the orders read found an order version, or hourly
    (services.polling.side_feed_due); a refund still arrives within seconds by its webhook."""
    return _wants_refunds(integration) and side_feed_due(integration, REFUNDS_STREAM,
                                                         orders_changed=bool(orders["new"]), now=now)


def _wants_refunds(integration) -> bool:
    from .intake import refund_actions_for

    return bool(refund_actions_for(integration))


def _refresh_statistics() -> None:
    """The tables a backfill grows, re-analyzed as it grows them (bulk.analyze_due)."""
    try:
        analyze(SyncRecord, InboundEvent, AgentJob, RecordLink)
    except DatabaseError as error:  # only the planner's estimates are at stake: the backfill goes on
        logger.warning("could not refresh the statistics during a backfill: %s", error)


def _finish(run: SyncRun, state: str, api_calls: int, message: str) -> None:
    run.state = state
    run.api_calls = api_calls
    run.message = message
    run.finished_at = timezone.now()
    run.save()


def _save_progress(run: SyncRun) -> bool:
    """Save a page's progress, if the run is still this worker's. The sweeper hands a stalled run to
    another worker by moving its progress_at; the worker it was taken from (slow, not dead after
    all) then finds its own progress_at gone and stops, so one worker at a time carries a run on."""
    now = timezone.now()
    saved = SyncRun.objects.filter(pk=run.pk, progress_at=run.progress_at).update(
        total=run.total, seen=run.seen, succeeded=run.succeeded, params=run.params, api_calls=run.api_calls,
        progress_at=now)
    if saved:
        run.progress_at = now
    return bool(saved)


def start_backfill(integration, since: dt.datetime, until: dt.datetime | None = None) -> SyncRun:
    return SyncRun.objects.create(integration=integration, kind=SyncRun.Kind.BACKFILL,
                                  params={"since": since.isoformat(), "until": until.isoformat() if until else None})


def backfill(integration, since: dt.datetime, until: dt.datetime | None = None, *, run: SyncRun | None = None,
             client: BigCommerceClient | None = None, progress: Callable[[SyncRun], None] | None = None,
             limit: int = V2_MAX_LIMIT, include_refunds: bool = True) -> SyncRun:
    """Read every order created in [since, until] and queue what it needs. Resumable: the run's
    params keep the last order id done, and a second run is harmless (dedup)."""
    client = client or client_for(integration)
    run = run or start_backfill(integration, since, until)
    calls_before = client.request_count - run.api_calls  # a resumed run keeps counting
    filters = client.order_filters(created_since=since, created_until=until)
    last_id = int((run.params or {}).get("last_id") or 0)
    try:
        if run.total is None:
            run.total = client.count_orders(filters)
        while True:
            orders = client.list_orders({**filters, "min_id": last_id + 1}, page=1, limit=limit, sort="id:asc")
            counts = take_orders(integration, orders, source=Source.BACKFILL,
                                 reason=f"Found by backfill run #{run.pk}.", run=run)
            if analyze_due(run.seen, run.seen + counts["seen"]):
                _refresh_statistics()
            run.seen += counts["seen"]
            run.succeeded += counts["queued"]
            if orders:
                last_id = max(int(o["id"]) for o in orders)
            run.params = {**(run.params or {}), "last_id": last_id}
            run.api_calls = client.request_count - calls_before
            if not _save_progress(run):
                logger.warning("backfill run #%s was handed to another worker; this one stops", run.pk)
                return run
            if progress:
                progress(run)
            if len(orders) < limit:
                break
        if include_refunds and _wants_refunds(integration):
            refunds = [r for r in client.iter_refunds(created_since=since, created_until=until)]
            counts = take_refunds(integration, refunds, source=Source.BACKFILL,
                                  reason=f"Found by backfill run #{run.pk}.", run=run)
            run.succeeded += counts["queued"]
    except Exception as error:
        _finish(run, SyncRun.State.FAILED, client.request_count - calls_before,
                f"Backfill stopped after {run.seen} orders: {error}. Run it again to resume.")
        raise
    _finish(run, SyncRun.State.DONE, client.request_count - calls_before,
            f"{run.seen} orders read, {run.succeeded} records queued.")
    if progress:
        progress(run)
    return run
