"""The integration's page says when its store is next polled (Integration.next_poll_at, set by the
poll dispatcher), in words an accountant reads: due now, or in how long and at what time."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.admin import next_poll_in_words
from tests.support.factories import IntegrationFactory
from tests.test_admin_replay_browser import browser  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db
NOW = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)


def test_in_words(settings):
    settings.POLL_TICK_SECONDS = 5
    integration = IntegrationFactory()
    integration.next_poll_at = None
    assert next_poll_in_words(integration, NOW) == "Due now: it starts within 5 seconds"
    integration.next_poll_at = NOW - dt.timedelta(seconds=3)
    assert next_poll_in_words(integration, NOW).startswith("Due now")
    integration.next_poll_at = NOW + dt.timedelta(seconds=42)
    at = timezone.localtime(integration.next_poll_at).strftime("%H:%M:%S")
    assert next_poll_in_words(integration, NOW) == f"In 42 seconds, at {at}"
    integration.next_poll_at = NOW + dt.timedelta(minutes=10, seconds=20)
    assert next_poll_in_words(integration, NOW).startswith("In 10 minutes, at ")
    integration.is_active = False
    assert next_poll_in_words(integration, NOW) == "None: the integration is turned off"


def test_the_schedule_section_shows_it(admin_client):
    integration = IntegrationFactory()
    integration.next_poll_at = timezone.now() + dt.timedelta(minutes=30)
    integration.save(update_fields=["next_poll_at"])
    page = admin_client.get(f"/admin/accounts/integration/{integration.pk}/change/").content.decode()
    assert "Next scheduled poll" in page and "In 30 minutes, at " in page


@pytest.mark.browser
def test_an_accountant_sees_it_in_the_schedule_section(live_server, browser, tmp_path):  # noqa: F811
    import os
    from pathlib import Path

    from tests.support.factories import MembershipFactory
    from tests.test_admin_replay_browser import sign_in

    integration = IntegrationFactory()
    # Under two minutes ("In N seconds"), with room for a slow machine to sign in first.
    integration.next_poll_at = timezone.now() + dt.timedelta(seconds=110)
    integration.save(update_fields=["next_poll_at"])
    user = MembershipFactory(tenant=integration.tenant, role="accountant", user__username="nell").user
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, live_server, user)
    page.goto(f"{live_server.url}/admin/accounts/integration/{integration.pk}/change/")
    schedule = page.locator("fieldset", has_text="Next scheduled poll")
    assert "seconds, at " in schedule.locator(".field-next_poll").inner_text()
    shots = Path(os.environ.get("SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    schedule.screenshot(path=str(shots / "integration-next-poll.png"))
