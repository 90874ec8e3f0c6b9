"""BigCommerce → Sage 50 flow in one process: the flow handlers against an in-process sandbox
store, and the agent's side played by the real job operations on a simulated Sage company,
leased and completed through connector.services.jobs (what the agent API does)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from agent.backends.simulator import SimulatorBackend
from agent.operations import execute
from agent.simulator.company import SimCompany
from connector.bigcommerce.client import BigCommerceClient
from connector.bigcommerce.intake import take_refunds
from connector.models import AgentJob, InboundEvent, SyncRecord
from connector.services import records
from connector.services.jobs import complete_job, lease_jobs
from connector.services.pipeline import resume_waiting, run_record
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
    seed = demo.seed_demo(store_url=store_server.url, company_path=tmp_path / "company.sqlite3", skus=skus)
    demo.init_company(seed.company_path, skus, qty="1000")
    return seed


def store(server):
    return server.app.store


def drain_agent(seed, max_rounds: int = 20) -> list[AgentJob]:
    """Play the agent: lease, run the real operation on the simulated company, complete."""
    backend = SimulatorBackend(str(seed.company_path))
    done = []
    try:
        for _ in range(max_rounds):
            jobs = lease_jobs(seed.agent, 10)
            if not jobs:
                return done
            backend.connect()
            for job in jobs:
                # Over HTTP the result arrives as JSON: Decimals become strings.
                result = json.loads(json.dumps(execute(backend, job.op, job.payload), default=str))
                answer = complete_job(seed.agent, job.pk, job.lease_token, result)
                assert answer.status == 200, answer.detail
                done.append(job)
            backend.disconnect()
    finally:
        backend.disconnect()
    raise AssertionError("the agent never ran out of jobs")


def company(seed) -> SimCompany:
    return SimCompany(seed.company_path)


def order_record(seed, order_id) -> SyncRecord:
    record, _ = upsert_record(seed.integration.pk, SyncRecord.Kind.ORDER, str(order_id),
                              SyncRecord.Action.POST_INVOICE, reason="test")
    return record


def card_paid_order(server, *, customer=True):
    for order in store(server).orders.values():
        if order.status_id in CARD_PAID and order.card_amount > 0 and bool(order.customer_id) == customer \
                and not order.gift_certificate_amount and not order.store_credit_amount:
            return order
    raise AssertionError("the sandbox seed has no such order")


def docs(seed, kind, reference) -> list[dict]:
    c = company(seed)
    try:
        return [d for d in c.invoices(kind) if d["cust_order_number"] == reference]
    finally:
        c.close()


def test_invoice_then_receipt_then_posted_with_links(setup, store_server):
    order = card_paid_order(store_server)
    record = order_record(setup, order.id)
    run_record(record.pk)
    record.refresh_from_db()
    assert record.state == State.DISPATCHED, record.message
    jobs = drain_agent(setup)
    # The receipt travels in the invoice's job: one job, one lease, one result for the order.
    assert [j.op for j in jobs] == ["create_sales_invoice"]
    assert [p["reference"] for p in jobs[0].payload["payments"]] == [f"BC-{order.id}-P"]
    record.refresh_from_db()
    assert record.state == State.POSTED, record.message
    assert record.message == f"Posted as Sage invoice {record.sage_id} with its receipt(s)."
    invoices = docs(setup, "invoice", f"BC-{order.id}")
    assert len(invoices) == 1
    assert Decimal(invoices[0]["gross"]) == order.figures.total_inc
    assert record.sage_id == str(invoices[0]["number"])
    links = dict(RecordLink.objects.filter(integration=setup.integration).values_list("kind", "external_id"))
    assert links[Kind.INVOICE] == str(order.id)
    assert links[Kind.RECEIPT] == f"BC-{order.id}-P"
    c = company(setup)
    try:
        receipts = [p for p in c.payments("SR") if p["inv_ref"] == f"BC-{order.id}-P"]
    finally:
        c.close()
    assert len(receipts) == 1 and Decimal(receipts[0]["amount"]) == order.card_amount


def run_invoice_job(seed, result_of) -> AgentJob:
    """Lease the one invoice job and complete it with ``result_of(backend, job)``'s result."""
    [job] = lease_jobs(seed.agent, 10)
    backend = SimulatorBackend(str(seed.company_path))
    backend.connect()
    try:
        result = json.loads(json.dumps(result_of(backend, job), default=str))
    finally:
        backend.disconnect()
    assert complete_job(seed.agent, job.pk, job.lease_token, result).status == 200
    return job


def test_an_agent_that_predates_payments_in_the_job_gets_the_receipt_as_a_job_of_its_own(setup, store_server):
    """An older agent reads the invoice and ignores its "payments": its result names no receipt,
    so the server queues the receipt as before, and the order is posted once it is done."""
    from agent.operations import create_sales_invoice

    order = card_paid_order(store_server)
    record = order_record(setup, order.id)
    run_record(record.pk)
    run_invoice_job(setup, lambda backend, job: create_sales_invoice(backend, job.payload))
    record.refresh_from_db()
    assert record.state == State.DISPATCHED and record.sage_id, record.message
    assert "its 1 receipt(s) follow" in record.audit.filter(step="posted").get().message
    jobs = drain_agent(setup)
    assert [(j.op, j.reference) for j in jobs] == [("create_receipt", f"BC-{order.id}-P")]
    record.refresh_from_db()
    assert record.state == State.POSTED, record.message
    assert RecordLink.objects.filter(kind=Kind.RECEIPT, external_id=f"BC-{order.id}-P").exists()


def test_a_receipt_sage_refuses_beside_its_invoice_is_queued_alone_and_fails_the_record_with_the_reason(
        setup, store_server):
    order = card_paid_order(store_server)
    record = order_record(setup, order.id)
    run_record(record.pk)

    def refused_receipt(backend, job):
        payments = [{**payment, "bank_account": "9999"} for payment in job.payload["payments"]]
        return execute(backend, job.op, {**job.payload, "payments": payments})

    original = SimulatorBackend.create_receipt

    def no_such_bank(self, spec):
        if spec.bank_nominal == "9999":
            from agent.errors import SageValidationError
            raise SageValidationError("bank account 9999 is not in the chart of accounts")
        return original(self, spec)

    SimulatorBackend.create_receipt = no_such_bank
    try:
        job = run_invoice_job(setup, refused_receipt)
        record.refresh_from_db()
        # The invoice is linked and its number kept; the refusal is on the trail; the receipt waits alone.
        assert record.state == State.DISPATCHED and record.sage_id
        assert RecordLink.objects.filter(kind=Kind.INVOICE, external_id=str(order.id)).exists()
        refusal = record.audit.get(step="agent_error")
        assert "bank account 9999" in refusal.message and "queued again" in refusal.message
        receipt_job = AgentJob.objects.get(op="create_receipt", reference=f"BC-{order.id}-P")
        assert receipt_job.depends_on_id == job.pk and receipt_job.payload["bank_account"] != "9999"
        # Sage refuses it again on its own: the record fails with Sage's reason, for a person.
        [leased] = lease_jobs(setup.agent, 10)
        from connector.services.jobs import fail_job
        fail_job(setup.agent, leased.pk, leased.lease_token, "validation", "bank account 1210 is closed", False)
    finally:
        SimulatorBackend.create_receipt = original
    record.refresh_from_db()
    assert record.state == State.FAILED and "bank account 1210 is closed" in record.message
    # The accountant fixes it in Sage and replays the record: the invoice is not posted again, the
    # failed receipt job goes back to the queue with the fresh document, and the order is posted.
    assert replay([record]) == 1
    run_record(record.pk)
    assert [(j.op, j.reference) for j in drain_agent(setup)] == [("create_receipt", f"BC-{order.id}-P")]
    record.refresh_from_db()
    assert record.state == State.POSTED, record.message
    assert len(docs(setup, "invoice", f"BC-{order.id}")) == 1
    c = company(setup)
    try:
        assert len([p for p in c.payments("SR") if p["inv_ref"] == f"BC-{order.id}-P"]) == 1
    finally:
        c.close()


def test_missing_sku_waits_with_a_message_then_resumes_and_posts_once(setup, store_server):
    order = card_paid_order(store_server)
    sku = order.lines[0].variant.sku
    ItemMapping.objects.filter(integration=setup.integration, store_sku=sku).delete()
    record = order_record(setup, order.id)
    run_record(record.pk)
    record.refresh_from_db()
    assert record.state == State.WAITING_MAPPING
    assert sku in record.message
    assert "item mapping" in record.message.lower() or "Mappings" in record.message, record.message
    assert not AgentJob.objects.exists()

    ItemMapping.objects.create(integration=setup.integration, store_sku=sku, sage_code=sku)
    assert resume_waiting(setup.integration.pk) == 1  # what the mapping's post_save task runs
    run_record(record.pk)
    drain_agent(setup)
    record.refresh_from_db()
    assert record.state == State.POSTED, record.message
    # Running it again (a duplicate task, a replay) changes nothing.
    run_record(record.pk)
    assert replay([record]) == 0
    assert drain_agent(setup) == []
    assert len(docs(setup, "invoice", f"BC-{order.id}")) == 1
    assert AgentJob.objects.filter(op="create_sales_invoice").count() == 1


def test_refund_becomes_credit_note_against_the_invoice_and_refund_payment(setup, store_server, monkeypatch,
                                                                          django_capture_on_commit_callbacks):
    refund = next(r for r in store(store_server).refunds.values()
                  if store(store_server).orders[r.order_id].card_amount > 0
                  and not store(store_server).orders[r.order_id].gift_certificate_amount
                  and not store(store_server).orders[r.order_id].store_credit_amount)
    client = BigCommerceClient(store_server.url, demo.STORE_HASH, demo.STORE_TOKEN)
    refunds = client.order_refunds(refund.order_id)
    take_refunds(setup.integration, refunds, source=InboundEvent.Source.POLL, reason="test")
    refund_record = SyncRecord.objects.get(kind=SyncRecord.Kind.REFUND, external_id=str(refund.id))
    # Before the invoice exists the credit note waits for it, without a retry (and queues the order).
    run_record(refund_record.pk)
    refund_record.refresh_from_db()
    assert refund_record.state == State.WAITING_ORDER, refund_record.message
    assert f"Waiting for order {refund.order_id} to reach Sage 50" in refund_record.message
    assert refund_record.next_attempt_at is None and refund_record.waiting_for == [f"order:{refund.order_id}"]
    order_rec = SyncRecord.objects.get(kind=SyncRecord.Kind.ORDER, external_id=str(refund.order_id))
    woken = []
    monkeypatch.setattr(records, "enqueue", lambda ids, countdown=None: woken.extend(ids))
    with django_capture_on_commit_callbacks(execute=True):
        run_record(order_rec.pk)
        drain_agent(setup)
    # The order's posting woke it: pending again, sent to a worker once.
    refund_record.refresh_from_db()
    assert refund_record.state == State.PENDING and woken == [refund_record.pk], refund_record.message
    run_record(refund_record.pk)
    drain_agent(setup)
    refund_record.refresh_from_db()
    assert refund_record.state == State.POSTED, refund_record.message
    invoice = docs(setup, "invoice", f"BC-{refund.order_id}")[0]
    credits = docs(setup, "credit", f"BC-{refund.order_id}-R{refund.id}")
    assert len(credits) == 1
    assert Decimal(credits[0]["gross"]) == refund.total_amount
    assert credits[0]["against_invoice"] == invoice["number"]
    c = company(setup)
    try:
        paid_back = [p for p in c.payments("SP") if p["inv_ref"].startswith(f"BC-{refund.order_id}-R{refund.id}-P")]
    finally:
        c.close()
    assert sum(Decimal(p["amount"]) for p in paid_back) == refund.total_amount
    assert RecordLink.objects.filter(kind=Kind.CREDIT_NOTE, external_id=str(refund.id)).count() == 1
    assert RecordLink.objects.filter(kind=Kind.REFUND_PAYMENT).count() == len(paid_back)


def test_concurrent_orders_from_one_email_make_one_customer(setup, store_server):
    sandbox = store(store_server)
    customer = next(iter(sandbox.customers.values()))
    first = sandbox.create_order({"customer": customer.id, "status_id": 11, "gift_certificate": False,
                                  "store_credit": False, "currency": "GBP"})
    second = sandbox.create_order({"customer": customer.id, "status_id": 11, "gift_certificate": False,
                                   "store_credit": False, "currency": "GBP"})
    a, b = order_record(setup, first.id), order_record(setup, second.id)
    run_record(a.pk)
    run_record(b.pk)  # both mapped before either reached Sage: neither knows the account yet
    drain_agent(setup)
    for record in (a, b):
        record.refresh_from_db()
        assert record.state == State.POSTED, record.message
    # Linked by the store's customer id and by email, in the order's currency: both to one account.
    links = RecordLink.objects.filter(kind=Kind.CUSTOMER, external_id__in=[
        f"id:{customer.id}|{a.document['invoice']['currency']}",
        f"{customer.email.lower()}|{a.document['invoice']['currency']}"])
    assert links.count() == 2 and len({link.sage_id for link in links}) == 1
    c = company(setup)
    try:
        same = [x for x in c.customers() if (x.get("email") or "").lower() == customer.email.lower()]
    finally:
        c.close()
    assert len(same) == 1
    accounts = {docs(setup, "invoice", f"BC-{o.id}")[0]["account_ref"] for o in (first, second)}
    assert accounts == {same[0]["account_ref"]}


def test_two_currencies_from_one_email_land_on_two_accounts_each_in_its_currency(setup, store_server):
    sandbox = store(store_server)
    customer = next(iter(sandbox.customers.values()))
    orders = [sandbox.create_order({"customer": customer.id, "status_id": 11, "gift_certificate": False,
                                    "store_credit": False, "currency": currency}) for currency in ("GBP", "EUR")]
    records = [order_record(setup, order.id) for order in orders]
    for record in records:
        run_record(record.pk)
    drain_agent(setup)
    for record in records:
        record.refresh_from_db()
        assert record.state == State.POSTED, record.message
    c = company(setup)
    try:
        accounts = {x["account_ref"]: x for x in c.customers() if (x.get("email") or "").lower() == customer.email.lower()}
    finally:
        c.close()
    assert len(accounts) == 2
    for order, currency in zip(orders, ("GBP", "EUR"), strict=True):
        invoice = docs(setup, "invoice", f"BC-{order.id}")[0]
        assert invoice["currency"] == currency
        assert accounts[invoice["account_ref"]]["currency"] == currency


def test_sim_company_refuses_an_invoice_in_another_currency_than_its_account(tmp_path):
    from agent.errors import SageValidationError
    from agent.simulator.company import SimCompany

    c = SimCompany.create(tmp_path / "co.db")
    try:
        c.add_customer("SMITHJ01", "John Smith", "john@example.com", currency="GBP")
        session = c.login("T")
        with pytest.raises(SageValidationError, match="is in GBP; a invoice in EUR cannot be posted"):
            session.post_document("invoice", {"account_ref": "SMITHJ01", "currency": "EUR"},
                                  [{"qty": "1", "unit_price": "1", "net": "1", "tax": "0", "tax_code": 0}])
        assert session.find_customer(email="john@example.com", currency="EUR") is None
        assert session.find_customer(email="john@example.com", currency="GBP")["account_ref"] == "SMITHJ01"
        session.logout()
    finally:
        c.close()
