"""A refund whose order is not in the ledger yet waits (no retry timer, no polling) and resumes by
itself when its order's record posts; if the order is skipped, the refund says so, and comes back
if the order is looked at again. The engine's hooks (connector.services.records), every store and
every ledger: the flows only raise WaitingForOrder / OrderNotPosted."""

from datetime import timedelta

import pytest
from django.utils import timezone

from connector import exceptions as outcomes
from connector.models import SyncRecord
from connector.services import records, sweeper
from connector.services.pipeline import settle
from connector.services.records import replay, set_state, set_states, upsert_record
from tests.support.factories import IntegrationFactory

State = SyncRecord.State
pytestmark = pytest.mark.django_db


@pytest.fixture
def woken(monkeypatch):
    """The records the hooks send to a worker (enqueue, as run after the commit)."""
    sent = []
    monkeypatch.setattr(records, "enqueue", lambda ids, countdown=None: sent.extend(ids))
    return sent


def make(integration, kind, external_id, state=State.PENDING, **fields):
    action = SyncRecord.Action.POST_INVOICE if kind == "order" else SyncRecord.Action.POST_CREDIT_NOTE
    record = SyncRecord.objects.create(integration=integration, kind=kind, external_id=external_id, action=action,
                                       state=state, **fields)
    return SyncRecord.objects.get(pk=record.pk)


def park(refund, order_id):
    settle(refund, outcomes.WaitingForOrder(f"Waiting for order {order_id} to reach Sage 50.", order_id=order_id))


def test_a_parked_refund_has_no_retry_and_its_order_posting_wakes_it_once(woken, django_capture_on_commit_callbacks):
    integration = IntegrationFactory()
    order = make(integration, "order", "100000123", State.HELD)
    refund = make(integration, "refund", "77", payload={"order_id": "100000123"})
    other = make(integration, "refund", "78", payload={"order_id": "999"})
    with django_capture_on_commit_callbacks(execute=True):
        park(refund, "100000123")
        park(other, "999")
    refund.refresh_from_db()
    assert refund.state == State.WAITING_ORDER and refund.next_attempt_at is None and woken == []
    assert refund.waiting_for == ["order:100000123"]
    # Nothing picks a waiting refund up: not the sweeper (it re-sends pending records only)...
    SyncRecord.objects.filter(pk=refund.pk).update(updated_at=timezone.now() - timedelta(hours=1))
    assert sweeper.sweep(force=True)["records"] == 0
    # ...nor the poll bringing the same credit memo again.
    assert upsert_record(integration.pk, "refund", "77", SyncRecord.Action.POST_CREDIT_NOTE)[1] is False

    with django_capture_on_commit_callbacks(execute=True):
        set_state(order, State.POSTED, "Posted as Sage invoice 42.")
    refund.refresh_from_db()
    assert woken == [refund.pk] and refund.state == State.PENDING
    assert "Its order 100000123 was posted" in refund.message
    assert refund.audit.filter(step="resumed").count() == 1
    assert SyncRecord.objects.get(pk=other.pk).state == State.WAITING_ORDER  # another order's refund waits on


def test_batch_posting_wakes_the_refunds_of_every_order_in_it(woken, django_capture_on_commit_callbacks):
    integration = IntegrationFactory()
    orders = [make(integration, "order", str(n), State.DISPATCHED) for n in (1, 2, 3)]
    refunds = [make(integration, "refund", f"R{n}") for n in (1, 2)]
    with django_capture_on_commit_callbacks(execute=True):
        park(refunds[0], "1")
        park(refunds[1], "3")
        set_states([(orders[0], "posted"), (orders[2], "posted")], State.POSTED)
    assert sorted(woken) == sorted(r.pk for r in refunds)


def test_the_race_a_refund_parking_after_its_order_posted_wakes_itself(woken, django_capture_on_commit_callbacks):
    """The refund's worker read the order before it posted; the order's worker looked for waiting
    refunds before the refund parked: the refund's own look after its commit finds the order posted."""
    integration = IntegrationFactory()
    order = make(integration, "order", "5", State.PENDING)
    refund = make(integration, "refund", "50")
    set_state(order, State.POSTED, "Posted.")  # its wake ran (callbacks not executed here: nothing to find)
    with django_capture_on_commit_callbacks(execute=True):
        park(refund, "5")
    refund.refresh_from_db()
    assert refund.state == State.PENDING and woken == [refund.pk]


def test_only_one_of_two_wakers_sends_the_refund(woken, django_capture_on_commit_callbacks):
    integration = IntegrationFactory()
    make(integration, "order", "5", State.POSTED)
    refund = make(integration, "refund", "50")
    park(refund, "5")
    assert records.wake_refunds_of([(integration.pk, "5")], state=State.WAITING_ORDER, why="was posted") == [refund.pk]
    assert records.wake_refunds_of([(integration.pk, "5")], state=State.WAITING_ORDER, why="was posted") == []
    assert woken == [refund.pk]


def test_a_skipped_order_skips_its_refund_which_comes_back_if_the_order_is_looked_at_again(
        woken, django_capture_on_commit_callbacks):
    integration = IntegrationFactory()
    order = make(integration, "order", "9", State.PENDING, source_version="v1")
    refund = make(integration, "refund", "90")
    with django_capture_on_commit_callbacks(execute=True):
        park(refund, "9")
        settle(order, outcomes.NotPostable("only 10.00 of 20.00 is invoiced and paid so far"))
    refund.refresh_from_db()
    assert woken == [refund.pk] and "Its order 9 was skipped" in refund.message
    woken.clear()
    # Its flow runs again and finds the order skipped: the refund is skipped, saying so.
    with django_capture_on_commit_callbacks(execute=True):
        settle(refund, outcomes.OrderNotPosted("Order 9 was not posted to Sage 50 (partial invoicing).", order_id="9"))
    refund.refresh_from_db()
    assert refund.state == State.SKIPPED and refund.waiting_for == ["order:9"] and woken == []
    # The store's order changed (fully invoiced now): the order is re-evaluated, the refund with it.
    with django_capture_on_commit_callbacks(execute=True):
        upsert_record(integration.pk, "order", "9", SyncRecord.Action.POST_INVOICE, source_version="v2")
    refund.refresh_from_db()
    assert refund.state == State.PENDING and woken == [refund.pk]
    assert "Its order 9 is being looked at again" in refund.message


def test_replaying_a_skipped_order_brings_its_skipped_refunds_back(woken, django_capture_on_commit_callbacks):
    integration = IntegrationFactory()
    order = make(integration, "order", "9", State.SKIPPED)
    refund = make(integration, "refund", "90")
    plain = make(integration, "refund", "91", State.SKIPPED)  # skipped for its own reason: stays
    settle(refund, outcomes.OrderNotPosted("Order 9 was not posted.", order_id="9"))
    with django_capture_on_commit_callbacks(execute=True):
        replay([order])
    assert woken == [order.pk, refund.pk]  # the order itself, then its refund
    assert SyncRecord.objects.get(pk=refund.pk).state == State.PENDING
    assert SyncRecord.objects.get(pk=plain.pk).state == State.SKIPPED


def test_the_sweeper_backstop_wakes_a_refund_whose_wake_was_lost(woken):
    integration = IntegrationFactory()
    make(integration, "order", "5", State.POSTED)
    make(integration, "order", "6", State.HELD)
    lost = make(integration, "refund", "50")
    still = make(integration, "refund", "60")
    park(lost, "5")  # callbacks not run: as if the process died between the commit and the look
    park(still, "6")
    SyncRecord.objects.filter(pk__in=[lost.pk, still.pk]).update(updated_at=timezone.now() - timedelta(hours=1))
    assert sweeper.sweep(force=True)["refunds"] == 1
    assert woken == [lost.pk]
    assert SyncRecord.objects.get(pk=still.pk).state == State.WAITING_ORDER
