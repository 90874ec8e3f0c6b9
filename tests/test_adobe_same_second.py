"""An Adobe order placed and invoiced within one second (payment action "authorize and capture"):
Adobe's ``updated_at`` counts whole seconds, so a poll (or a webhook's fetch) that reads the order
between the two sees the unpaid version with the same ``updated_at`` as the paid one. The paid
version must still be taken and posted (``make chaos``'s Adobe run lost such an order before the
order's version included its state and money)."""

from __future__ import annotations

from connector.adobe.poller import poll_integration
from connector.models import SyncRecord
from tests.test_adobe_flow import fake, run_all, sage_documents, setup, stock  # noqa: F401 (fixtures)

State = SyncRecord.State


def test_an_order_paid_in_the_second_it_was_placed_posts(setup, fake):  # noqa: F811
    paid = dict(stock(fake, 1001, "single_line", updated="2026-06-01 10:00:00"))
    fake.orders[1001].update(state="new", status="pending", total_paid=0, total_invoiced=0)
    assert poll_integration(setup.integration).orders["new"] == 1
    run_all(setup)
    record = SyncRecord.objects.get(integration=setup.integration, kind="order", external_id="1001")
    assert record.state == State.SKIPPED, record.message  # not paid yet

    fake.orders[1001] = paid  # invoiced: same updated_at, to the second
    assert poll_integration(setup.integration).orders["new"] == 1
    run_all(setup)
    record.refresh_from_db()
    assert record.state == State.POSTED, record.message
    assert [d["cust_order_number"] for d in sage_documents(setup, "invoice")] == ["AC-1001"]
    # Read again, unchanged: nothing new.
    assert poll_integration(setup.integration).orders["new"] == 0
