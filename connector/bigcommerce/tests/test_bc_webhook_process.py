"""Processing stored webhook events per scope, from the official sample payloads, against the
sandbox store (the payload is thin: the worker must fetch the order or its refunds)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.bigcommerce.intake import actions_for
from connector.bigcommerce.webhooks import process_event
from connector.models import InboundEvent, SyncRecord
from mlcommon.http import RetryableError
from tests.support.bigcommerce import Sandbox
from tests.support.factories import make_integration, make_store

FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def box():
    sandbox = Sandbox(orders=200, validate=False)  # ids 100..299: the samples' order 250 exists
    yield sandbox
    sandbox.stop()


@pytest.fixture
def integration(box):
    return make_integration(make_store(api_base_url=box.url), edition="sage50uk")


def stored(integration, name, **change) -> InboundEvent:
    payload = json.loads((FIXTURES / f"{name}.json").read_text())
    payload.update(change)
    return InboundEvent.objects.create(integration=integration, source="webhook", dedup_key=f"k-{name}-{change}",
                                       scope=payload["scope"], body=json.dumps(payload))


@pytest.mark.parametrize("name", ["store_order_created", "store_order_updated", "store_order_statusUpdated"])
def test_order_scopes_fetch_the_order_and_queue_its_record(integration, box, name):
    box.store.get_order(250).status_id = 11  # a real, paid order (not an abandoned checkout)
    event = stored(integration, name)
    message = process_event(event.pk, client=box.client())
    record = SyncRecord.objects.get(integration=integration, kind="order", external_id="250")
    assert record.action == "post_invoice" and record.state == "pending"
    assert record.payload["id"] == 250 and record.payload["consignments"], "lines came with the order"
    assert record.source_version == record.payload["date_modified"]
    event.refresh_from_db()
    assert event.processed_at is not None and "queued" in message
    # Run twice (acks_late redelivery): nothing new.
    assert process_event(event.pk, client=box.client()) == "already processed"
    assert SyncRecord.objects.filter(integration=integration).count() == 1


def test_a_second_event_for_the_same_order_version_is_deduped(integration, box):
    box.store.get_order(250).status_id = 11
    process_event(stored(integration, "store_order_created").pk, client=box.client())
    process_event(stored(integration, "store_order_updated").pk, client=box.client())
    assert InboundEvent.objects.filter(dedup_key__contains=":poll:order:250:").count() == 1
    assert SyncRecord.objects.filter(integration=integration).count() == 1


def test_refund_created_queues_each_refund_of_the_order(integration, box):
    order = box.store.get_order(250)
    order.status_id = 10
    refund = box.store.create_refund(250, kind="partial") if not [r for r in box.store.refunds.values()
                                                                 if r.order_id == 250] else None
    expected = {str(r.id) for r in box.store.refunds.values() if r.order_id == 250}
    assert expected and (refund is None or str(refund.id) in expected)
    process_event(stored(integration, "store_order_refund_created").pk, client=box.client())
    records = SyncRecord.objects.filter(integration=integration, kind="refund")
    assert {r.external_id for r in records} == expected
    assert all(r.action == "post_credit_note" and r.payload["order_id"] == 250 for r in records)


def about(integration, name: str, order_id: int) -> InboundEvent:
    """A stored delivery of sample ``name`` for ``order_id``, with the resource id the receiver sets."""
    event = stored(integration, name, data={"type": "order", "id": order_id})
    InboundEvent.objects.filter(pk=event.pk).update(resource_id=str(order_id))
    event.refresh_from_db()
    return event


def test_deliveries_already_stored_for_the_order_are_answered_by_one_read(integration, box):
    for order_id in (250, 251):
        box.store.get_order(order_id).status_id = 11
    created, status, other = (about(integration, "store_order_created", 250),
                              about(integration, "store_order_statusUpdated", 250),
                              about(integration, "store_order_created", 251))
    reads = box.calls("GET /v2/orders/{id}")
    process_event(created.pk, client=box.client())
    status.refresh_from_db()
    other.refresh_from_db()
    assert status.processed_at is not None and str(created.pk) in status.note
    assert other.processed_at is None, "another order's delivery is not answered by this read"
    assert process_event(status.pk, client=box.client()) == "already processed"
    assert box.calls("GET /v2/orders/{id}") == reads + 1
    assert SyncRecord.objects.filter(integration=integration, external_id="250").count() == 1
    # A delivery stored after the read is processed on its own.
    later = about(integration, "store_order_updated", 250)
    process_event(later.pk, client=box.client())
    assert box.calls("GET /v2/orders/{id}") == reads + 2


@pytest.mark.parametrize("state, read", [("posted", False), ("dispatched", False), ("skipped", True),
                                         ("held", True), ("failed", True)])
def test_an_order_already_in_sage_is_not_read_again(integration, box, state, read):
    """The store echoes our own status write-back (statusUpdated + updated): for an order whose
    every record is posted or on its way, a read could change nothing, so none is made. A skipped,
    held or failed order may have become postable: that one is read."""
    box.store.get_order(250).status_id = 11
    process_event(about(integration, "store_order_created", 250).pk, client=box.client())
    SyncRecord.objects.filter(integration=integration, external_id="250").update(state=state)
    reads = box.calls("GET /v2/orders/{id}")
    message = process_event(about(integration, "store_order_statusUpdated", 250).pk, client=box.client())
    assert box.calls("GET /v2/orders/{id}") == reads + read
    assert ("already in Sage" in message) is not read
    assert SyncRecord.objects.get(integration=integration, external_id="250").state == state


class FailingRead:
    def get_order(self, order_id, **kwargs):
        raise RetryableError("store unavailable", status=503)


def test_a_failed_read_leaves_the_other_deliveries_to_their_own_tasks(integration, box):
    created, status = (about(integration, "store_order_created", 250),
                       about(integration, "store_order_statusUpdated", 250))
    with pytest.raises(RetryableError):
        process_event(created.pk, client=FailingRead())
    status.refresh_from_db()
    created.refresh_from_db()
    assert status.processed_at is None and created.processed_at is None


@pytest.mark.parametrize("name", ["store_product_inventory_updated", "store_sku_inventory_updated",
                                  "store_product_inventory_order_updated", "store_sku_inventory_order_updated"])
def test_inventory_scopes_are_noted_only(integration, box, name):
    event = stored(integration, name)
    before = dict(box.app.counters)
    message = process_event(event.pk, client=box.client())
    assert "noted" in message
    assert box.app.counters == before, "no store call for a stock note"
    event.refresh_from_db()
    assert event.processed_at is not None and SyncRecord.objects.count() == 0


@pytest.mark.parametrize("name", ["store_customer_created", "store_product_updated", "store_order_archived"])
def test_unknown_scopes_are_logged_and_marked_processed(integration, box, name):
    event = stored(integration, name)
    assert "ignored" in process_event(event.pk, client=box.client())
    event.refresh_from_db()
    assert event.processed_at is not None and SyncRecord.objects.count() == 0


def test_a_deleted_order_is_not_an_error(integration, box):
    event = stored(integration, "store_order_updated", data={"type": "order", "id": 999999})
    assert "no longer exists" in process_event(event.pk, client=box.client())


@pytest.mark.parametrize("edition,gl,expected", [("sage50us", False, ["post_invoice"]),
                                                 ("sage50uk", False, ["post_invoice"]),
                                                 ("sagex3", True, ["post_journal"]),
                                                 ("sagex3", False, []),
                                                 ("sage100", False, ["post_sales_order"])])
def test_actions_for_each_sage_edition(edition, gl, expected):
    integration = make_integration(edition=edition, post_gl_entries=gl)
    assert actions_for(integration) == expected
