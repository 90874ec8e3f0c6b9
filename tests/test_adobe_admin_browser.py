"""An accountant in a real Chromium on an Adobe Commerce integration: the Orders section offers
Adobe's order states (not BigCommerce's statuses), the channel picker offers the store's websites
and store views, and "Backfill orders from a date range…" starts a run whose progress page shows
what was read. Screenshots go to $SCREENSHOT_DIR (default: the test's tmp folder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from connector.models import SyncRecord, SyncRun
from sandbox.adobe.testkit import Adobe
from tests.support.factories import MembershipFactory
from tests.test_admin_replay_browser import browser, sign_in, submit  # noqa: F401  (fixture)
from tests.test_adobe_admin import point_at_sandbox
from tests.test_adobe_flow import fake, setup  # noqa: F401  (fixtures)

pytestmark = pytest.mark.browser


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def sandbox():
    store = Adobe(orders=40)
    yield store
    store.close()


def test_accountant_backfills_an_adobe_store_and_maps_a_website(live_server, browser, setup, sandbox,  # noqa: F811
                                                                 shots):
    from django.core.cache import cache

    from connector.adobe.tasks import backfill

    cache.clear()  # the store's channels are read at most once a minute per store id
    integration = setup.integration
    point_at_sandbox(integration.store, sandbox)
    user = MembershipFactory(tenant=integration.tenant, role="accountant", user__username="ada").user
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, live_server, user)

    # The integration: Adobe's order states to tick, and the store's channels to map.
    page.goto(f"{live_server.url}/admin/accounts/integration/{integration.pk}/change/")
    orders = page.locator("fieldset", has_text="Statuses that count as paid")
    assert orders.locator("input[name=paid_status_ids][value=processing]").count() == 1
    assert orders.locator("input[name=paid_status_ids][value='11']").count() == 0  # no BigCommerce status
    assert "Processing (processing), Complete (complete), Closed (closed)" in orders.inner_text()
    assert page.locator("#id_status_after_import").is_disabled()
    page.locator("fieldset", has_text="Statuses that count as paid").screenshot(path=str(shots / "adobe-paid-states.png"))
    page.click("text=Add another account for a sales channel")
    picker = page.locator("select[name='account_mappings-0-channel_id']")
    options = picker.locator("option").all_inner_texts()
    assert "100002 — website UK Website" in options and any(o.startswith("3 — store view") for o in options)
    picker.select_option("100002")
    page.select_option("select[name='account_mappings-0-purpose']", "revenue")
    page.fill("input[name='account_mappings-0-account_code']", "4010")
    page.locator(".inline-group").last.screenshot(path=str(shots / "adobe-channel-picker.png"))
    submit(page, "input[name=_continue]")
    assert "was changed successfully" in page.content(), page.locator(".errornote, .errorlist").all_inner_texts()
    row = integration.account_mappings.get(channel_id=100002)
    assert (row.purpose, row.account_code, row.channel_name) == ("revenue", "4010", "UK Website")

    # The backfill form, from the integrations list.
    page.goto(f"{live_server.url}/admin/accounts/integration/")
    page.locator("#result_list tbody tr", has_text=str(integration)).locator("input.action-select").check()
    page.select_option("select[name=action]", "backfill_orders")
    submit(page, "button[name=index]")
    assert "(Adobe Commerce)" in page.content()
    page.fill("#id_since", "2025-01-01")
    page.screenshot(path=str(shots / "adobe-backfill-form.png"), full_page=True)
    submit(page, "input[name=apply]")
    assert "backfill of the Adobe Commerce store started" in page.content()
    page.screenshot(path=str(shots / "adobe-backfill-started.png"), full_page=True)
    run = SyncRun.objects.get(integration=integration, kind=SyncRun.Kind.BACKFILL)
    # What a worker does with the run's message.
    backfill(integration.pk, run.params["since"], run.params["until"], run.pk)
    run.refresh_from_db()
    assert run.state == SyncRun.State.DONE and run.total and run.seen == run.total
    with page.expect_navigation(wait_until="load"):
        page.click("text=follow its progress")
    body = page.locator("#content").inner_text()
    assert f"{run.seen} / {run.total} (100 %)" in body
    assert SyncRecord.objects.filter(integration=integration).count() >= 40
    page.screenshot(path=str(shots / "adobe-backfill-progress.png"), full_page=True)

    # The mapping's own form offers the same channels; a new integration offers each store's statuses.
    page.goto(f"{live_server.url}/admin/mappings/accountmapping/{row.pk}/change/")
    assert page.locator("#id_channel_id option:checked").inner_text() == "100002 — website UK Website"
    page.screenshot(path=str(shots / "adobe-account-mapping.png"), full_page=True)
    page.goto(f"{live_server.url}/admin/accounts/integration/add/")
    paid = page.locator("fieldset", has_text="Statuses that count as paid")
    assert "Adobe Commerce" in paid.inner_text() and "BigCommerce" in paid.inner_text()
    paid.screenshot(path=str(shots / "new-integration-statuses.png"))
    page.close()
