"""An accountant in a real Chromium sees a refund waiting for its order: the record list's state
filter offers "Waiting for its order", and the refund says which order it waits for and why."""

from __future__ import annotations

import pytest

from connector import exceptions as outcomes
from connector.models import SyncRecord
from connector.services.pipeline import settle
from tests.support.factories import IntegrationFactory, MembershipFactory
from tests.test_admin_replay_browser import browser, sign_in, submit  # noqa: F401 (fixture)

pytestmark = pytest.mark.browser


def test_a_waiting_refund_reads_as_waiting_for_its_order(live_server, browser, tmp_path):  # noqa: F811
    integration = IntegrationFactory()
    SyncRecord.objects.create(integration=integration, kind="order", external_id="100000123",
                              action=SyncRecord.Action.POST_INVOICE, state=SyncRecord.State.HELD,
                              message="AC-100000123 is held: the store total is 59.99, the invoice 59.98.")
    refund = SyncRecord.objects.create(integration=integration, kind="refund", external_id="77",
                                       action=SyncRecord.Action.POST_CREDIT_NOTE)
    settle(refund, outcomes.WaitingForOrder(
        "Waiting for order 100000123 to reach Sage 50: the order is held (AC-100000123 is held: the store "
        "total is 59.99, the invoice 59.98.). Refund 77 is credited by itself as soon as the order posts.",
        order_id="100000123"))
    user = MembershipFactory(tenant=integration.tenant, role="accountant", user__username="alice").user

    page = browser.new_page(viewport={"width": 1400, "height": 900})
    sign_in(page, live_server, user)
    page.goto(f"{live_server.url}/admin/connector/syncrecord/?state__exact=waiting_order")
    row = page.locator("#result_list tbody tr", has_text="Waiting for order 100000123")
    assert row.count() == 1
    assert "Waiting for its order" in page.content()
    page.screenshot(path=str(tmp_path / "waiting-refund-list.png"), full_page=True)
    page.goto(f"{live_server.url}/admin/connector/syncrecord/{refund.pk}/change/")
    text = page.inner_text("body")
    assert "Waiting for order 100000123 to reach Sage 50" in text and "held" in text
    page.screenshot(path=str(tmp_path / "waiting-refund.png"), full_page=True)
    # What to do: open the order (the thing to fix); the list shows it, held, with its reason.
    with page.expect_navigation(wait_until="load"):
        page.click("a[data-fix=open-order]")
    row = page.locator("#result_list tbody tr", has_text="100000123")
    assert row.count() == 1 and "held" in row.inner_text().lower(), row.inner_text()
    print(f"screenshots in {tmp_path}")
