"""Adobe Commerce → Sage 50 end to end with real processes (demo/system.py): uvicorn web, Celery
worker and beat, the agent with the simulated Sage 50 company, and an Adobe Commerce store over
HTTP (the Magento-like server of connector/adobe/tests/fake_store.py, served from this process).

300 orders with partial invoices and credit memos (with and without invoice_id): most are in the
store when the stack starts (the beat's polls find them, every poll overlapping the last), the
rest are placed while it runs and each arrives by a signed webhook delivered twice as well as by
the poll. Every invoice and credit note must reconcile to the store to the cent, and nothing may
be posted twice."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from decimal import Decimal

import pytest
import requests

from accounts.models import StoreConnection
from connector.adobe.signatures import hmac_signature
from connector.adobe.tests.fake_store import FakeAdobe
from connector.devstack import wait_for
from connector.models import AgentJob, InboundEvent, SyncRecord, SyncRun
from demo import seed as demo
from demo.system import logs_of
from mappings.models import ItemMapping
from tests.support import stack
from tests.test_adobe_flow import POSTABLE_SHAPES, SKUS, stock

pytestmark = pytest.mark.e2e
system_factory = stack.system_factory

ORDERS = int(os.environ.get("ADOBE_E2E_ORDERS", "300"))
LIVE_ORDERS = 60
HELD_EVERY = 25  # every 25th order is only partly invoiced: held, never posted
SETTLED = (SyncRecord.State.POSTED, SyncRecord.State.SKIPPED)


def money(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def shape_of(n: int) -> str:
    return "partial_invoice_pending" if n % HELD_EVERY == HELD_EVERY - 1 else POSTABLE_SHAPES[n % len(POSTABLE_SHAPES)]


def utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def unsettled() -> dict:
    return {r.external_id: (r.kind, r.state, r.message[:200])
            for r in SyncRecord.objects.exclude(state__in=SETTLED)[:10]}


def deliver_twice(web_url: str, integration, event: dict) -> None:
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json", "x-ml-signature": hmac_signature(body, integration.webhook_secret)}
    for _ in range(2):
        answer = requests.post(f"{web_url}/webhooks/adobe/{integration.webhook_token}/", data=body, headers=headers,
                               timeout=10)
        assert answer.status_code == 200, answer.text


def test_adobe_orders_invoices_and_credit_memos_reconcile_to_the_cent_and_post_once(system_factory):
    with FakeAdobe() as fake:
        start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
        for n in range(ORDERS - LIVE_ORDERS):
            stock(fake, 5000 + n, shape_of(n), updated=utc_text(start + dt.timedelta(seconds=n)))
        system = system_factory(orders=0, kick=False, poll_interval_seconds=5)
        integration = system.integration
        store = integration.store
        store.platform = StoreConnection.Platform.ADOBE_COMMERCE
        store.base_url, store.store_code, store.adobe_auth = fake.base_url, "default", "oauth1"
        store.consumer_key, store.consumer_secret = fake.consumer_key, fake.consumer_secret
        store.access_token, store.access_token_secret = fake.token, fake.token_secret
        store.save()
        demo.ensure_poll_schedule()  # the BigCommerce poll schedule of this integration is switched off
        demo.init_company(system.company_path, SKUS, qty="100000")
        ItemMapping.objects.bulk_create([ItemMapping(integration=integration, store_sku=sku, sage_code=sku)
                                         for sku in SKUS], ignore_conflicts=True)
        type(integration).objects.filter(pk=integration.pk).update(created_at=start - dt.timedelta(minutes=1),
                                                                   poll_overlap_seconds=120)
        integration.refresh_from_db()
        # Placed while the stack runs: each by a webhook delivered twice (and by the next polls).
        for n in range(ORDERS - LIVE_ORDERS, ORDERS):
            entity_id = 5000 + n
            stock(fake, entity_id, shape_of(n), updated=utc_text(dt.datetime.now(dt.UTC)))
            deliver_twice(system.web_url, integration, {
                "event_id": f"order-{entity_id}", "type": "com.adobe.commerce.observer.sales_order_save_commit_after",
                "data": {"value": {"entity_id": entity_id}}})
            for memo_id, memo in list(fake.creditmemos.items()):
                if memo["order_id"] == entity_id:
                    deliver_twice(system.web_url, integration, {
                        "event_id": f"memo-{memo_id}",
                        "type": "com.adobe.commerce.observer.sales_order_creditmemo_save_after",
                        "data": {"value": {"entity_id": memo_id, "order_id": entity_id}}})
        held = {e for e, o in fake.orders.items() if money(o["total_paid"]) < money(o["grand_total"])}
        postable = set(fake.orders) - held
        expected = len(postable) + len(fake.creditmemos)

        def done():
            posted = SyncRecord.objects.filter(state=SyncRecord.State.POSTED).count()
            return posted >= expected and not SyncRecord.objects.exclude(state__in=SETTLED).exists()

        started = time.monotonic()
        try:
            wait_for(done, timeout=480, interval=1, what=f"{expected} postings")
        except TimeoutError:
            pytest.fail(f"not settled: {unsettled()}\n{logs_of(system)}")
        print(f"\n{len(postable)} invoices + {len(fake.creditmemos)} credit notes settled "
              f"{time.monotonic() - started:.1f} s after the last webhook")
        # One more scheduled poll over an overlapping window re-reads what is already posted.
        def order_polls():
            return [r for r in list(fake.requests) if r["path"] == "/rest/default/V1/orders"]

        def recorded_polls() -> tuple[int, int]:
            """(polls that found nothing new, polls that did): a poll that finds nothing new is
            counted in the day's roll-up row (services/polling.record_poll), not kept as a row."""
            runs = SyncRun.objects.filter(kind=SyncRun.Kind.POLL, state=SyncRun.State.DONE)
            idle = sum(run.params.get("idle_polls", 0) for run in runs.filter(params__has_key="idle_polls"))
            return idle, runs.exclude(params__has_key="idle_polls").count()

        idle_before, busy_before = recorded_polls()
        seen_polls = len(order_polls())
        # A poll's run is saved as the poll ends, after its requests: wait for the record, not the
        # request alone (which once let the check below read the poll before, a busy one).
        wait_for(lambda: len(order_polls()) > seen_polls and recorded_polls()[0] > idle_before,
                 timeout=90, interval=1, what="another scheduled poll, recorded")
        wait_for(done, timeout=60, interval=1, what="settled after the overlapping poll")
        # All read again, none new: no poll after settling found (or queued) anything.
        assert recorded_polls()[1] == busy_before, \
            SyncRun.objects.filter(kind=SyncRun.Kind.POLL).exclude(params__has_key="idle_polls").latest("pk").message

        docs = system.sage_documents()
        assert set(docs["invoice"]) == {f"AC-{e}" for e in postable}
        for entity_id in postable:
            rows = docs["invoice"][f"AC-{entity_id}"]
            assert len(rows) == 1, f"AC-{entity_id} posted {len(rows)} times"
            assert money(rows[0]["gross"]) == money(fake.orders[entity_id]["grand_total"]), entity_id
        receipts = {ref: rows for ref, rows in docs["SR"].items()}
        for entity_id in postable:
            rows = receipts.get(f"AC-{entity_id}-P", [])
            assert len(rows) == 1 and money(rows[0]["amount"]) == money(fake.orders[entity_id]["total_paid"])
        assert set(docs["credit"]) == {f"AC-{m['order_id']}-R{i}" for i, m in fake.creditmemos.items()}
        for memo_id, memo in fake.creditmemos.items():
            reference = f"AC-{memo['order_id']}-R{memo_id}"
            rows = docs["credit"][reference]
            assert len(rows) == 1, f"{reference} posted {len(rows)} times"
            assert money(rows[0]["gross"]) == money(memo["grand_total"]), reference
            assert rows[0]["against_invoice"] == docs["invoice"][f"AC-{memo['order_id']}"][0]["number"]
        for entity_id in held:
            assert f"AC-{entity_id}" not in docs["invoice"]
        # Each delivery was sent twice and stored once (the raw deliveries carry their signature scheme).
        deliveries = InboundEvent.objects.filter(source=InboundEvent.Source.WEBHOOK).exclude(signature_scheme="")
        assert deliveries.count() == LIVE_ORDERS + len([m for m in fake.creditmemos.values()
                                                            if m["order_id"] >= 5000 + ORDERS - LIVE_ORDERS])
        assert not AgentJob.objects.exclude(state=AgentJob.State.DONE).exists()
        assert SyncRecord.objects.count() == expected + len(held)
