"""Polling (the source of truth; webhooks only make it faster) and backfill for Adobe Commerce.

Orders and credit memos by ``updated_at`` watermark (SyncCursor streams ``adobe_orders`` and
``adobe_creditmemos``). Each poll reads the fixed window [watermark - overlap, now] sorted by
entity_id ASC: a record updated while we page leaves the window and comes back in the next poll's
(overlapping) one; re-reads are deduplicated on (entity_id, updated_at). The backfill reads a
created_at range the same way and records its progress on its SyncRun.

The credit memo feed is read only when the orders read found a new order version (saving a credit
memo saves its order in the same transaction, moving the order's updated_at), and otherwise at
least every REFUND_POLL_MAX_SECONDS: an idle poll is one API call (services.polling.side_feed_due,
the rule the BigCommerce refunds feed follows). Invoices are not polled as a feed: an invoice also
saves its order, and an order's invoices are fetched by order when it is processed.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.utils import timezone

from connector.models import InboundEvent, SyncCursor, SyncRun
from connector.services.polling import record_poll, side_feed_due

from .adapter import AdobeCommerceAdapter
from .client import Filter, date_text
from .intake import take_creditmemos, take_orders
from .normalize import parse_date

logger = logging.getLogger(__name__)
ORDERS_STREAM, MEMOS_STREAM = "adobe_orders", "adobe_creditmemos"
Source = InboundEvent.Source


@dataclass
class PollResult:
    orders: dict
    creditmemos: dict
    api_calls: int

    @property
    def message(self) -> str:
        return (f"orders: {self.orders['seen']} read, {self.orders['new']} new, {self.orders['queued']} queued; "
                f"credit memos: {self.creditmemos['seen']} read, {self.creditmemos['new']} new; "
                f"{self.api_calls} API call(s)")


def adapter_for(integration) -> AdobeCommerceAdapter:
    return AdobeCommerceAdapter.for_store(integration.store)


def _cursor(integration, stream: str) -> dt.datetime:
    row = SyncCursor.objects.filter(integration=integration, stream=stream).first()
    moment = parse_date(row.value) if row and row.value else None
    return moment or integration.created_at  # older records are the backfill's


def _save_cursor(integration, stream: str, moment: dt.datetime) -> None:
    SyncCursor.objects.update_or_create(integration=integration, stream=stream,
                                        defaults={"value": moment.astimezone(dt.UTC).isoformat()})


def _stream(integration, adapter, stream, read, take, now) -> dict:
    watermark = _cursor(integration, stream)
    since = watermark - dt.timedelta(seconds=integration.poll_overlap_seconds)
    newest, totals, page = watermark, {"seen": 0, "new": 0, "queued": 0}, []

    def flush():
        counts = take(integration, page, source=Source.POLL, reason="Found by the scheduled poll.")
        for key in totals:
            totals[key] += counts[key]
        page.clear()

    for record in read(since, now):
        page.append(record)
        stamp = parse_date(record.get("updated_at"))
        if stamp and stamp > newest:
            newest = stamp
        if len(page) >= 300:
            flush()
    flush()
    # Never past "now": a record committed later with an earlier updated_at is the overlap's.
    _save_cursor(integration, stream, min(newest, now))
    return totals


def poll_integration(integration, adapter: AdobeCommerceAdapter | None = None) -> PollResult:
    adapter = adapter or adapter_for(integration)
    before = adapter.request_count
    started_at = timezone.now()
    now = started_at.replace(microsecond=0)
    try:
        orders = _stream(integration, adapter, ORDERS_STREAM, adapter.changed_orders, take_orders, now)
        memos = (_stream(integration, adapter, MEMOS_STREAM, adapter.changed_refunds, take_creditmemos, now)
                 if side_feed_due(integration, MEMOS_STREAM, orders_changed=bool(orders["new"]), now=started_at)
                 else {"seen": 0, "new": 0, "queued": 0})
    except Exception as error:
        record_poll(integration, started_at=started_at, seen=0, new=0, succeeded=0, state=SyncRun.State.FAILED,
                    api_calls=adapter.request_count - before, message=f"Poll failed: {error}")
        raise
    result = PollResult(orders=orders, creditmemos=memos, api_calls=adapter.request_count - before)
    # A poll that found nothing new joins the day's roll-up row (services/polling.py).
    record_poll(integration, started_at=started_at, seen=orders["seen"] + memos["seen"],
                new=orders["new"] + memos["new"], succeeded=orders["new"] + memos["new"],
                api_calls=result.api_calls, message=result.message)
    return result


def backfill(integration, since: dt.datetime, until: dt.datetime | None = None, run: SyncRun | None = None,
             adapter: AdobeCommerceAdapter | None = None) -> SyncRun:
    """Every order created in [since, until] and its credit memos, 300 a call, progress on the run:
    ``total`` is the two searches' match counts, ``seen`` grows after every page (what the Sync
    runs list shows as "120 / 480 (25 %)"). A second run over the same range is harmless (dedup)."""
    adapter = adapter or adapter_for(integration)
    until = until or timezone.now()
    run = run or SyncRun.objects.create(integration=integration, kind=SyncRun.Kind.BACKFILL,
                                        params={"since": since.isoformat(), "until": until.isoformat()})
    SyncRun.objects.filter(pk=run.pk).update(state=SyncRun.State.RUNNING, total=None, progress_at=timezone.now())
    before = adapter.request_count
    window = [[Filter("created_at", date_text(since), "gteq")], [Filter("created_at", date_text(until), "lteq")]]
    progress = {"seen": 0, "new": 0, "total": 0}

    def counted(total: int) -> None:
        progress["total"] += total
        SyncRun.objects.filter(pk=run.pk).update(total=progress["total"])

    def take_page(take, page: list[dict]) -> None:
        counts = take(integration, page, source=Source.BACKFILL, reason=f"Found by backfill run #{run.pk}.", run=run)
        progress["seen"] += counts["seen"]
        progress["new"] += counts["new"]
        SyncRun.objects.filter(pk=run.pk).update(seen=progress["seen"], succeeded=progress["new"],
                                                 progress_at=timezone.now(), api_calls=adapter.request_count - before)

    for path, take in (("/V1/orders", take_orders), ("/V1/creditmemos", take_creditmemos)):
        page: list[dict] = []
        for record in adapter.client.search(path, window, on_total=counted):
            page.append(record)
            if len(page) >= 300:
                take_page(take, page)
                page = []
        if page:
            take_page(take, page)
    seen, new, calls = progress["seen"], progress["new"], adapter.request_count - before
    SyncRun.objects.filter(pk=run.pk).update(
        state=SyncRun.State.DONE, seen=seen, succeeded=new, api_calls=calls, finished_at=timezone.now(),
        message=f"{seen} record(s) read, {new} new, {calls} API call(s) "
                f"({calls / seen if seen else 0:.4f} per record)")
    run.refresh_from_db()
    return run
