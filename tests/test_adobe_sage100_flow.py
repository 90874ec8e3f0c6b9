"""Adobe Commerce → Sage 100 in one process: the route (adobe_commerce, sage100) in use. The Adobe
poll against the Magento-like HTTP server (connector/adobe/tests/fake_store.py), the Sage 100 flow
handlers, and the agent's side played by the real Sage 100 operations on a simulated Sage 100
company (as tests/test_sage100_flow.py). The Sage 100 mapper reads only the neutral order, so an
Adobe order becomes one sales order equal to Magento's grand total, and a credit memo after posting
is a note on that order's record for the accountant (nothing written to Sage)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import SageConnection
from agent.simulator.sage100 import Sage100Company
from connector import routing
from connector.adobe.poller import poll_integration
from connector.models import AgentJob, SyncRecord
from connector.services.pipeline import run_record
from mappings.models import RecordLink
from tests.test_adobe_flow import SKUS, fake, setup, stock  # noqa: F401 - fixtures, used by name
from tests.test_sage100_flow import drain_agent

State = SyncRecord.State
Kind = RecordLink.Kind


@pytest.fixture
def sage100(setup):  # noqa: F811 - the Adobe fixture, made Sage 100
    SageConnection.objects.filter(pk=setup.integration.sage_id).update(edition=SageConnection.Edition.SAGE100,
                                                                      company_code="ABC")
    setup.integration.refresh_from_db()
    setup.integration.sage100_settings = {"default_ship_via": "UPS GROUND", "numbering": "W"}
    setup.integration.post_sales_orders = True
    setup.integration.save()
    company = Sage100Company.create(setup.company_path.with_name("sage100.sqlite3"))
    for sku in SKUS:
        company.set_item(sku, price="10.00", warehouses={"000": 1000})
    company.close()
    setup.company_path = company.path  # drain_agent's Sage 100 company
    return setup


def sales_orders(seed) -> list[dict]:
    company = Sage100Company(seed.company_path)
    try:
        return company.sales_orders()
    finally:
        company.close()


def run_pending(seed) -> None:
    for record in SyncRecord.objects.filter(integration=seed.integration, state=State.PENDING).order_by("pk"):
        run_record(record.pk)


def test_the_pair_is_routed_to_sales_orders_and_refund_notes(sage100):
    integration = sage100.integration
    integration.full_clean()  # an Adobe store and a Sage 100 company make a valid integration
    assert routing.order_actions(integration) == [SyncRecord.Action.POST_SALES_ORDER]
    assert routing.refund_actions(integration) == [SyncRecord.Action.NOTE_REFUND]
    # Stock goes to an Adobe store; prices not yet (the Adobe adapter has no price push).
    assert not routing.pushes_prices(integration)


def test_adobe_orders_become_sales_orders_to_the_cent_and_a_credit_memo_is_noted(sage100, fake,  # noqa: F811
                                                                                   django_capture_on_commit_callbacks):
    orders = {1001: stock(fake, 1001, "single_line"), 1002: stock(fake, 1002, "multi_line_quantity"),
              1003: stock(fake, 1003, "creditmemo_partial_item")}
    first = poll_integration(sage100.integration)
    assert first.orders["new"] == 3 and first.creditmemos["new"] == 1
    assert poll_integration(sage100.integration).orders["new"] == 0  # the overlap adds nothing
    records = SyncRecord.objects.filter(integration=sage100.integration)
    assert sorted(records.values_list("action", flat=True)) == ["note_refund", *["post_sales_order"] * 3]

    for _ in range(2):  # the credit memo's note may run before its order is posted: it waits, then notes
        run_pending(sage100)
        # The order's record reaching posted wakes its waiting refund after the commit.
        with django_capture_on_commit_callbacks(execute=True):
            drain_agent(sage100)
        SyncRecord.objects.filter(integration=sage100.integration, state=State.PENDING).update(next_attempt_at=None)
    assert AgentJob.objects.filter(op="create_sales_order").count() == 3

    saved = {o["CustomerPONo"]: o for o in sales_orders(sage100)}
    assert sorted(saved) == ["1001", "1002", "1003"]  # once each, the store order id as customer PO
    for entity_id, order in orders.items():
        sales_order = saved[str(entity_id)]
        assert sales_order["SalesOrderNo"] == f"W{entity_id:06d}"
        assert Decimal(str(sales_order["OrderTotal"])) == Decimal(str(order["grand_total"]))
        record = records.get(kind=SyncRecord.Kind.ORDER, external_id=str(entity_id))
        assert record.state == State.POSTED and record.sage_reference == f"W{entity_id:06d}", record.message
    customers = set(RecordLink.objects.filter(integration=sage100.integration, kind=Kind.CUSTOMER)
                    .values_list("sage_id", flat=True))
    assert {f"{o['ARDivisionNo']}-{o['CustomerNo']}" for o in saved.values()} == customers

    # The credit memo after posting: nothing written to Sage, the order's record marked for the accountant.
    note = records.get(action=SyncRecord.Action.NOTE_REFUND)
    assert note.state == State.SKIPPED and "noted on sales order W001003" in note.message, note.message
    marked = records.get(kind=SyncRecord.Kind.ORDER, external_id="1003")
    assert marked.message.startswith("Needs the accountant: "), marked.message
    memo = next(iter(fake.creditmemos.values()))
    assert Decimal(marked.document["reconciliation"]["refunded"]) == Decimal(str(memo["grand_total"]))
    assert marked.audit.filter(step="attention").exists()
    assert len(sales_orders(sage100)) == 3
