"""BigCommerce → Sage 100 flow in one process: the flow handlers against an in-process sandbox
store, and the agent's side played by the real Sage 100 operations on a simulated Sage 100
company, leased and completed through connector.services.jobs (what the agent API does)."""

from __future__ import annotations

import json
import sys
import types
from decimal import Decimal

import pytest

from accounts.models import SageConnection
from agent.backends.sage100sim import Sage100SimulatorBackend
from agent.operations import execute
from agent.simulator.sage100 import Sage100Company
from connector.models import AgentJob, SyncRecord
from connector.sage100.transport import PostResult
from connector.services import records
from connector.services.jobs import complete_job, lease_jobs
from connector.services.pipeline import run_record
from connector.services.records import replay, upsert_record
from demo import seed as demo
from mappings.models import ItemMapping, RecordLink
from sandbox.bigcommerce.app import build_app
from sandbox.httpserver import SandboxServer

State = SyncRecord.State
Kind = RecordLink.Kind
CARD_PAID = {2, 3, 8, 9, 10, 11}


@pytest.fixture(scope="module")
def store_server():
    app = build_app(store_hash=demo.STORE_HASH, token=demo.STORE_TOKEN, client_id=demo.CLIENT_ID,
                    client_secret=demo.CLIENT_SECRET, orders=60, seed=1, faults={"quota": 100000})
    server = SandboxServer(app).start()
    yield server
    server.stop()


@pytest.fixture
def setup(db, store_server, tmp_path):
    skus = demo.sandbox_skus()
    seed = demo.seed_demo(store_url=store_server.url, company_path=tmp_path / "abc.sqlite3", skus=skus)
    SageConnection.objects.filter(pk=seed.integration.sage_id).update(edition=SageConnection.Edition.SAGE100,
                                                                      company_code="ABC")
    seed.integration.refresh_from_db()
    seed.integration.sage100_settings = {"default_ship_via": "UPS GROUND", "numbering": "W"}
    seed.integration.save()
    company = Sage100Company.create(seed.company_path)
    for sku in skus:
        company.set_item(sku, price="10.00", warehouses={"000": 1000})
    company.close()
    return seed


def drain_agent(seed, max_rounds: int = 20) -> list[AgentJob]:
    backend = Sage100SimulatorBackend(str(seed.company_path))
    done = []
    try:
        for _ in range(max_rounds):
            jobs = lease_jobs(seed.agent, 10)
            if not jobs:
                return done
            with backend.session():
                for job in jobs:
                    result = json.loads(json.dumps(execute(backend, job.op, job.payload), default=str))
                    assert complete_job(seed.agent, job.pk, job.lease_token, result).status == 200
                    done.append(job)
    finally:
        backend.close()
    raise AssertionError("the agent never ran out of jobs")


def paid_orders(server, n=1, *, email=None):
    found = [order for order in server.app.store.orders.values()
             if order.status_id in CARD_PAID and order.card_amount > 0 and order.customer_id
             and (email is None or order.billing["email"].lower() == email)]
    assert len(found) >= n, "the sandbox seed has no such order"
    return found[:n]


def record_for(seed, order_id) -> SyncRecord:
    record, _ = upsert_record(seed.integration.pk, SyncRecord.Kind.ORDER, str(order_id),
                              SyncRecord.Action.POST_SALES_ORDER, reason="test")
    return record


def sales_orders(seed) -> list[dict]:
    company = Sage100Company(seed.company_path)
    try:
        return company.sales_orders()
    finally:
        company.close()


def test_order_becomes_one_sales_order_with_its_links(setup, store_server):
    [order] = paid_orders(store_server)
    record = record_for(setup, order.id)
    run_record(record.pk)
    record.refresh_from_db()
    assert record.state == State.DISPATCHED, record.message
    number = f"W{order.id:06d}"
    assert record.sage_reference == number
    assert [job.op for job in drain_agent(setup)] == ["create_sales_order"]
    record.refresh_from_db()
    assert record.state == State.POSTED, record.message
    assert record.message.startswith(f"Posted as Sage 100 sales order {number} for customer 01-W")
    [saved] = sales_orders(setup)
    assert saved["SalesOrderNo"] == number and saved["CustomerPONo"] == str(order.id)
    assert Decimal(saved["OrderTotal"]) == order.figures.total_inc
    links = dict(RecordLink.objects.filter(integration=setup.integration).values_list("kind", "sage_id"))
    assert links[Kind.SALES_ORDER] == number
    assert links[Kind.CUSTOMER] == f"{saved['ARDivisionNo']}-{saved['CustomerNo']}"

    # A replay re-maps and re-queues; the agent finds the order by its SalesOrderNo.
    replay(SyncRecord.objects.filter(pk=record.pk), refetch=False)
    run_record(record.pk)
    drain_agent(setup)
    record.refresh_from_db()
    assert record.state == State.POSTED
    assert len(sales_orders(setup)) == 1


def test_second_order_of_a_buyer_uses_the_linked_customer(setup, store_server):
    orders = [o for o in store_server.app.store.orders.values()
              if o.status_id in CARD_PAID and o.card_amount > 0 and o.customer_id]
    by_email = {}
    for o in orders:
        by_email.setdefault(o.billing["email"].lower(), []).append(o)
    pair = next(v for v in by_email.values() if len(v) >= 2)[:2]
    for o in pair:
        run_record(record_for(setup, o.id).pk)
        drain_agent(setup)
    saved = sales_orders(setup)
    assert len(saved) == 2 and len({(s["ARDivisionNo"], s["CustomerNo"]) for s in saved}) == 1
    second = AgentJob.objects.get(reference=f"W{pair[1].id:06d}")
    assert second.payload["customer_no"] == saved[0]["CustomerNo"]  # from the record link, not the email


def test_an_unmapped_item_waits_for_its_mapping(setup, store_server):
    [order] = paid_orders(store_server)
    ItemMapping.objects.filter(integration=setup.integration).delete()
    record = record_for(setup, order.id)
    run_record(record.pk)
    record.refresh_from_db()
    assert record.state == State.WAITING_MAPPING
    assert "has no Sage 100 item code" in record.message


def test_the_soap_transport_posts_directly(setup, store_server, monkeypatch):
    """The eBusiness client is SAGE100SOAP's; here a stand-in with its interface records the call."""
    calls = []

    def post_sales_order(connection, document):
        calls.append((connection.company_code, document.sales_order_no))
        return PostResult(sales_order_no=document.sales_order_no, ar_division_no="01", customer_no="ABF",
                          existed=False, customer_created=True, order_total=document.store_total)

    monkeypatch.setitem(sys.modules, "connector.sage100.ebusiness",
                        types.SimpleNamespace(post_sales_order=post_sales_order))
    SageConnection.objects.filter(pk=setup.integration.sage_id).update(
        transport=SageConnection.Transport.EBUSINESS_SOAP)
    [order] = paid_orders(store_server)
    record = record_for(setup, order.id)
    run_record(record.pk)
    record.refresh_from_db()
    assert record.state == State.POSTED, record.message
    assert calls == [("ABC", f"W{order.id:06d}")]
    assert AgentJob.objects.count() == 0
    assert RecordLink.objects.get(integration=setup.integration, kind=Kind.CUSTOMER).sage_id == "01-ABF"


def test_bad_settings_fail_the_record_with_the_reason(setup, store_server):
    setup.integration.sage100_settings = {"tax_mode": "vat"}
    setup.integration.save()
    [order] = paid_orders(store_server)
    record = record_for(setup, order.id)
    run_record(record.pk)
    record.refresh_from_db()
    assert record.state == State.FAILED and "tax_mode must be" in record.message


def test_reconciliation_reads_the_store_s_payments_beside_the_sales_order(setup, store_server):
    from connector.flows.sage100 import reconcile

    [order] = paid_orders(store_server)
    record = record_for(setup, order.id)
    run_record(record.pk)
    drain_agent(setup)
    reconcile(record.pk)
    record.refresh_from_db()
    view = record.document["reconciliation"]
    assert Decimal(view["captured"]) == order.card_amount and view["refunds"] == []
    assert view["gateways"] and not record.message.startswith("Needs the accountant")
    assert record.audit.filter(step="reconciled").exists()


def test_a_refund_after_posting_marks_the_sales_order_s_record(setup, store_server, monkeypatch,
                                                               django_capture_on_commit_callbacks):
    from connector.bigcommerce.client import BigCommerceClient
    from connector.bigcommerce.intake import take_refunds
    from connector.models import InboundEvent

    client = BigCommerceClient(store_server.url, demo.STORE_HASH, demo.STORE_TOKEN)
    posted, waiting = paid_orders(store_server, 2)
    order_record = record_for(setup, posted.id)
    run_record(order_record.pk)
    drain_agent(setup)
    refunds = [store_server.app.store.create_refund(order.id, kind="item") for order in (posted, waiting)]
    for order in (posted, waiting):
        take_refunds(setup.integration, client.order_refunds(order.id), source=InboundEvent.Source.POLL,
                     reason="test")
    after, before = (SyncRecord.objects.get(kind=SyncRecord.Kind.REFUND, external_id=str(r.id)) for r in refunds)
    assert after.action == SyncRecord.Action.NOTE_REFUND

    run_record(after.pk)
    after.refresh_from_db()
    order_record.refresh_from_db()
    assert after.state == State.SKIPPED and "noted on sales order" in after.message, after.message
    assert order_record.state == State.POSTED
    assert order_record.message.startswith("Needs the accountant: ")
    assert Decimal(order_record.document["reconciliation"]["refunded"]) == refunds[0].total_amount
    assert order_record.audit.filter(step="attention").exists()
    assert len(sales_orders(setup)) == 1  # nothing written to Sage for the refund

    # A refund of an order not posted yet waits for its sales order, without a retry timer (and
    # queues the order); the order's posting wakes it, and it is noted then.
    run_record(before.pk)
    before.refresh_from_db()
    assert before.state == State.WAITING_ORDER and "Waiting for order" in before.message, before.message
    assert "to reach Sage 100" in before.message and before.next_attempt_at is None
    waiting_order = SyncRecord.objects.get(kind=SyncRecord.Kind.ORDER, external_id=str(waiting.id))
    woken = []
    monkeypatch.setattr(records, "enqueue", lambda ids, countdown=None: woken.extend(ids))
    with django_capture_on_commit_callbacks(execute=True):
        run_record(waiting_order.pk)
        drain_agent(setup)
    before.refresh_from_db()
    assert woken == [before.pk] and before.state == State.PENDING, before.message
    run_record(before.pk)
    before.refresh_from_db()
    assert before.state == State.SKIPPED and "noted on sales order" in before.message, before.message
    assert before.waiting_for == []
