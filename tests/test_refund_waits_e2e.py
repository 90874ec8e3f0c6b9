"""A refund whose order is not in Sage waits for it, with real processes (demo/system.py: uvicorn
web, Celery worker and beat, the agent with the simulated Sage 50 company) and an Adobe Commerce
store over HTTP (connector/adobe/tests/fake_store.py), found by the beat's overlapping polls.

Two orders with a credit memo each: one waits for a SKU mapping, its memo waits for the order
("Waiting for order … to reach Sage 50"); the other is only partly invoiced (skipped), its memo is
skipped saying so. While they wait, polls come and go and neither memo runs again. Then the
accountant maps the SKU and the store invoices the rest: both orders post, and each memo follows
its order by itself, credited once against its invoice, to the cent."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from accounts.models import StoreConnection
from connector.adobe.tests.fake_store import FakeAdobe
from connector.devstack import wait_for
from connector.models import AuditEntry, SyncRecord, SyncRun
from demo import seed as demo
from demo.system import logs_of
from mappings.models import ItemMapping
from tests.support import stack
from tests.test_adobe_flow import SKUS, stock

pytestmark = pytest.mark.e2e
system_factory = stack.system_factory
State = SyncRecord.State
UNMAPPED, PARTLY_INVOICED = 7001, 7002
UNMAPPED_MEMO, PARTIAL_MEMO = "70011", "70021"  # stock(): memo id = order id × 10 + n


def utc_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def record(kind: str, external_id) -> SyncRecord | None:
    return SyncRecord.objects.filter(kind=kind, external_id=str(external_id)).first()


def state_of(kind: str, external_id) -> str | None:
    found = record(kind, external_id)
    return found.state if found else None


def done_polls() -> int:
    """Polls finished: a poll that found something has a row of its own; one that found nothing new
    is counted in its integration's roll-up row of the day (params["idle_polls"])."""
    runs = SyncRun.objects.filter(kind=SyncRun.Kind.POLL, state=SyncRun.State.DONE)
    return sum(run.params.get("idle_polls", 1) for run in runs.only("params"))


def test_refunds_wait_for_their_orders_and_follow_them_into_sage(system_factory):
    with FakeAdobe() as fake:
        start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        stock(fake, UNMAPPED, "creditmemo_offline_no_invoice", updated=utc_text(start))  # LANTERN-01
        partial = stock(fake, PARTLY_INVOICED, "creditmemo_partial_item", updated=utc_text(start))  # MUG-WHT
        grand_total = Decimal(str(partial["grand_total"]))
        partial["total_paid"] = Decimal("10.00")  # the first of two invoices: the order waits for the rest
        system = system_factory(orders=0, kick=False, poll_interval_seconds=5)
        integration = system.integration
        store = integration.store
        store.platform = StoreConnection.Platform.ADOBE_COMMERCE
        store.base_url, store.store_code, store.adobe_auth = fake.base_url, "default", "oauth1"
        store.consumer_key, store.consumer_secret = fake.consumer_key, fake.consumer_secret
        store.access_token, store.access_token_secret = fake.token, fake.token_secret
        store.save()
        demo.init_company(system.company_path, SKUS, qty="1000")
        ItemMapping.objects.bulk_create([ItemMapping(integration=integration, store_sku=sku, sage_code=sku)
                                         for sku in SKUS if sku != "LANTERN-01"], ignore_conflicts=True)
        type(integration).objects.filter(pk=integration.pk).update(
            created_at=start - dt.timedelta(minutes=1), poll_overlap_seconds=120, same_code_fallback=False)
        demo.ensure_poll_schedule()

        def parked():
            return (state_of("order", UNMAPPED) == State.WAITING_MAPPING
                    and state_of("refund", UNMAPPED_MEMO) == State.WAITING_ORDER
                    and state_of("order", PARTLY_INVOICED) == State.SKIPPED
                    and state_of("refund", PARTIAL_MEMO) == State.SKIPPED)

        try:
            wait_for(parked, timeout=180, interval=0.5, what="the orders held and their memos waiting")
        except TimeoutError:
            pytest.fail(f"{list(SyncRecord.objects.values_list('external_id', 'state', 'message'))}\n"
                        f"{logs_of(system)}")
        waiting, skipped = record("refund", UNMAPPED_MEMO), record("refund", PARTIAL_MEMO)
        assert f"Waiting for order {UNMAPPED} to reach Sage 50" in waiting.message, waiting.message
        assert f"Order {PARTLY_INVOICED} was not posted to Sage 50" in skipped.message, skipped.message
        assert "partial invoicing" in skipped.message
        # Waiting costs nothing: polls read both memos again (overlap), and neither runs again.
        polls = done_polls()
        wait_for(lambda: done_polls() >= polls + 2, timeout=120, interval=0.5, what="two more polls")
        for memo, was in ((UNMAPPED_MEMO, waiting), (PARTIAL_MEMO, skipped)):
            now = record("refund", memo)
            assert (now.state, now.attempts, now.next_attempt_at) == (was.state, was.attempts, None), now.message
            assert was.attempts <= 2

        # The accountant maps the SKU (its post_save resumes the order); the store invoices the rest.
        ItemMapping.objects.create(integration=integration, store_sku="LANTERN-01", sage_code="LANTERN-01")
        partial["total_paid"] = grand_total
        partial["updated_at"] = utc_text(dt.datetime.now(dt.UTC))

        def all_posted():
            return all(state_of(kind, i) == State.POSTED for kind, i in (
                ("order", UNMAPPED), ("refund", UNMAPPED_MEMO), ("order", PARTLY_INVOICED), ("refund", PARTIAL_MEMO)))

        try:
            wait_for(all_posted, timeout=180, interval=0.5, what="both orders and their memos posted")
        except TimeoutError:
            pytest.fail(f"{list(SyncRecord.objects.values_list('external_id', 'state', 'message'))}\n"
                        f"{logs_of(system)}")
        docs = system.sage_documents()
        for order_id, memo_id in ((UNMAPPED, UNMAPPED_MEMO), (PARTLY_INVOICED, PARTIAL_MEMO)):
            invoices = docs["invoice"][f"AC-{order_id}"]
            credits = docs["credit"][f"AC-{order_id}-R{memo_id}"]
            assert len(invoices) == 1 and len(credits) == 1
            assert credits[0]["against_invoice"] == invoices[0]["number"]
            memo = fake.creditmemos[int(memo_id)]
            assert Decimal(str(credits[0]["gross"])) == Decimal(str(memo["grand_total"])).quantize(Decimal("0.01"))
            # Woken once by its order, not retried: the trail says so.
            assert AuditEntry.objects.filter(record=record("refund", memo_id), step="resumed").count() >= 1
        assert Decimal(str(docs["invoice"][f"AC-{PARTLY_INVOICED}"][0]["gross"])) == grand_total
