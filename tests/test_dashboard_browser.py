"""The accountant's morning check in a real Chromium: a day with posted, waiting, failed and
locked records shows the right counts and money and renders its chart; the SKU is mapped from
the record's own link, the failed record is re-posted with its button, Sage unlocks, the missing
order is picked up, and the day reads "Everything … reconciles"; the reconciliation downloads as
CSV and PDF; a failure e-mail arrives at a real SMTP server and its link opens the record."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
from decimal import Decimal
from email.header import decode_header, make_header
from pathlib import Path

import pytest
from django.utils import timezone

from connector.bigcommerce.client import BigCommerceClient
from connector.bigcommerce.intake import take_orders
from connector.dashboard.notify import send_notifications
from connector.models import AgentJob, InboundEvent, Notification, SyncRecord
from connector.services.jobs import fail_job, lease_jobs
from connector.services.pipeline import run_record
from demo import seed as demo
from mappings.models import ItemMapping
from tests import dashboard_seed as seeded
from tests.support.factories import MembershipFactory
from tests.test_admin_replay_browser import sign_in

pytestmark = pytest.mark.browser
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "pw-for-tests-only"
State = SyncRecord.State
SCREENSHOTS = os.environ.get("DASHBOARD_SCREENSHOTS")  # a folder: the README's pictures are made here


@pytest.fixture
def browser(monkeypatch):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not Path(CHROMIUM).exists() or shutil.which("chromium") is None:
        message = "Chromium is not installed (apt-get install -y chromium chromium-driver)"
        if os.environ.get("REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


@pytest.fixture
def smtp_server():
    """A real SMTP server (aiosmtpd) on a free port, keeping what it receives."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Keep(Message):
        def handle_message(self, message):
            received.append(message)

    with socket.socket() as probe:  # aiosmtpd checks its port by connecting: it cannot take port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    controller.received = received
    yield controller
    controller.stop()


def submit(page, selector: str) -> None:
    with page.expect_navigation(wait_until="load"):
        page.click(selector)


def count(page, day: str, key: str) -> int:
    return int(page.locator(f".mlc-card[data-day='{day}'] a[data-count='{key}']").first.inner_text())


def test_the_morning_check(live_server, browser, smtp_server, settings, tmp_path):
    day = seeded.start_store()
    try:
        _walk(live_server, browser, smtp_server, settings, tmp_path, day)
    finally:
        day.server.stop()


def _walk(live_server, browser, smtp_server, settings, tmp_path, day):
    skus = demo.sandbox_skus(seed=3)
    seed = demo.seed_demo(store_url=day.server.url, company_path=tmp_path / "company.sqlite3", skus=skus)
    demo.init_company(seed.company_path, skus, qty="1000")
    integration = seed.integration
    integration.store.timezone = seeded.ZONE
    integration.store.save(update_fields=["timezone"])
    seeded.place_orders(day)
    # Two more orders will reach the agent: Sage refuses one, and the other's customer is locked by Jane.
    day.clock.when = dt.datetime(2026, 3, 10, 20, 30, tzinfo=dt.UTC)
    failing = day.store.create_order({"currency": "GBP", "status_id": 11})
    locked = day.store.create_order({"currency": "USD", "status_id": 11})
    theirs = {ln.variant.sku for order in (failing, locked) for ln in order.lines}
    # One SKU (none of theirs) is not mapped: the orders with it wait for a mapping.
    waiting_order, sku = next((day.store.orders[i], ln.variant.sku) for i in day.posted_ids[1:]
                              for ln in day.store.orders[i].lines if ln.variant.sku not in theirs)
    ItemMapping.objects.filter(integration=integration, store_sku=sku).delete()
    seeded.sync(seed, day.server.url, day.posted_ids + [day.pending_id], day.refund_ids)
    waiting = SyncRecord.objects.get(integration=integration, kind="order", external_id=str(waiting_order.id))
    assert waiting.state == State.WAITING_MAPPING
    client = BigCommerceClient(day.server.url, demo.STORE_HASH, demo.STORE_TOKEN)
    take_orders(integration, [client.get_order(failing.id), client.get_order(locked.id)],
                source=InboundEvent.Source.POLL, reason="test")
    for record in SyncRecord.objects.filter(state=State.PENDING):
        run_record(record.pk)
    for attempt in range(3):
        for job in lease_jobs(seed.agent, 10):
            if job.record.external_id == str(failing.id) and attempt == 0:
                fail_job(seed.agent, job.pk, job.lease_token, "SAGE_REFUSED",
                         "Customer account WEBGBP is on hold.", retryable=False)
            elif job.record.external_id == str(locked.id):
                fail_job(seed.agent, job.pk, job.lease_token, "RECORD_LOCKED",
                         "customer ACMELT01 is in use by Jane", retryable=True)
        AgentJob.objects.filter(state=AgentJob.State.QUEUED).update(available_at=timezone.now())
    AgentJob.objects.filter(state=AgentJob.State.QUEUED).update(
        available_at=timezone.now() + dt.timedelta(hours=1))  # Jane is still in the record
    failed = SyncRecord.objects.get(external_id=str(failing.id), kind="order")
    assert failed.state == State.FAILED
    seeded.place_unposted(day)

    user = MembershipFactory(tenant=integration.tenant, role="accountant", user__username="anna",
                             user__email="anna@example.com", notify_failures=True).user
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    sign_in(page, live_server, user)

    # The morning check of the seeded day: counts, money and the chart.
    page.goto(f"{live_server.url}/admin/morning/?day=2026-03-10")
    key = "2026-03-10"
    states = {s: SyncRecord.objects.filter(integration=integration, kind="order", state=s).count() for s in State}
    assert count(page, key, "posted") == SyncRecord.objects.filter(integration=integration, state="posted").count()
    assert count(page, key, "waiting_mapping") == states[State.WAITING_MAPPING] >= 1
    assert count(page, key, "failed") == 1
    assert count(page, key, "busy") == 1
    assert count(page, key, "orders") == 9  # 8 paid (2 more today) + the unpaid one; the missing one is unseen
    figures = seeded.store_figures(day, exclude={day.unposted_id})
    usd = page.locator(f".mlc-card[data-day='{key}'] [data-money='sales-USD']").inner_text()
    assert Decimal(usd.replace(",", "")) == figures["USD"]["sales"]  # shown as 1,538.14
    assert page.locator(f".mlc-card[data-day='{key}'] [data-testid='attention']").count() == 1
    # A selector, not wait_for_function: that evaluates a string, which the admin's CSP refuses.
    page.locator("#mlc-chart[data-rendered='1']").wait_for()
    assert page.evaluate("Chart.getChart('mlc-chart').data.datasets.length") == 2
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "morning-check.png"), full_page=True)

    # The locked record says why, and how many times it was really tried.
    page.goto(f"{live_server.url}/admin/connector/syncrecord/?q={locked.id}")
    row = page.locator("#result_list tbody tr", has_text=str(locked.id)).first
    assert "Sage is busy — retrying" in row.inner_text()
    assert "customer ACMELT01 is in use by Jane" in row.inner_text()
    assert row.locator("td.field-tries").inner_text() == "3"
    # At 1366 px the list's columns fit: nothing scrolls sideways.
    page.goto(f"{live_server.url}/admin/connector/syncrecord/")
    refund_row = page.locator("#result_list tbody tr", has_text=f"Refund {day.refund_ids[0]}").first
    assert refund_row.locator("td.field-amount").inner_text().startswith("USD ")  # its order's currency
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    assert page.evaluate("(() => { const r = document.querySelector('#changelist .results');"
                         " return r.scrollWidth <= r.clientWidth; })()"), "the list's columns are cut off"
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "records.png"), full_page=True)
        page.emulate_media(color_scheme="dark")
        page.screenshot(path=str(Path(SCREENSHOTS) / "records-dark.png"), full_page=True)
        page.emulate_media(color_scheme="light")

    # The failure e-mail reaches a real SMTP server and links to the record.
    # pytest-django swaps in the in-memory backend; this test wants the real SMTP conversation.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_server.port
    settings.PUBLIC_BASE_URL = live_server.url
    assert send_notifications() >= 1
    assert send_notifications() == 0  # never twice
    subject = lambda m: str(make_header(decode_header(m["Subject"])))  # noqa: E731 (RFC 2047: the dash)
    mails = [m for m in smtp_server.received if str(failing.id) in subject(m)]
    assert mails, ([subject(m) for m in smtp_server.received], list(Notification.objects.values()))
    assert subject(mails[0]).startswith("Failed — needs you: Order")
    assert len(mails) == 1 and mails[0]["To"] == "anna@example.com"
    body = mails[0].get_payload(decode=True).decode() if not mails[0].is_multipart() else str(mails[0])
    link = next(word for word in body.split() if word.startswith(live_server.url))
    assert Notification.objects.filter(kind="failed", sent_at__isnull=False).count() == 1
    page.goto(link)
    assert "Failed — needs you" in page.content()
    submit(page, "button[data-fix=repost]")  # Re-post to Sage
    assert "queued to post again" in page.content()

    # The waiting record's own link opens the mapping form, pre-filled.
    page.goto(f"{live_server.url}/admin/connector/syncrecord/{waiting.pk}/change/")
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "record.png"), full_page=True)
        page.goto(f"{live_server.url}/admin/morning/unmapped-skus/")
        page.screenshot(path=str(Path(SCREENSHOTS) / "unmapped.png"), full_page=True)
        page.goto(f"{live_server.url}/admin/morning/preview/{integration.pk}/?order_id={failing.id}")
        page.screenshot(path=str(Path(SCREENSHOTS) / "preview.png"), full_page=True)
        page.goto(f"{live_server.url}/admin/connector/syncrecord/{waiting.pk}/change/")
    submit(page, "a[data-fix=map-sku]")
    assert page.input_value("#id_store_sku") == sku
    if page.locator("#id_integration").count():
        assert page.input_value("#id_integration") == str(integration.pk)
    page.fill("#id_sage_code", sku)
    submit(page, "input[name=_save]")
    assert ItemMapping.objects.filter(integration=integration, store_sku=sku).exists()

    # What the worker and the agent do next: the mapped, re-posted and unlocked records post, and
    # the missing order is picked up by the next poll.
    AgentJob.objects.filter(state=AgentJob.State.QUEUED).update(available_at=timezone.now())
    seeded.sync(seed, day.server.url, [day.unposted_id])
    for _ in range(3):
        for record in SyncRecord.objects.filter(state__in=[State.PENDING, State.WAITING_MAPPING]):
            run_record(record.pk)
        seeded.drain_agent(seed)
    assert set(SyncRecord.objects.filter(integration=integration).exclude(
        external_id=str(day.pending_id)).values_list("state", flat=True)) == {State.POSTED}

    page.goto(f"{live_server.url}/admin/morning/?day=2026-03-10")
    assert "Everything from Tuesday 10 March is in Sage and reconciles." in page.locator(
        f".mlc-card[data-day='{key}'] [data-testid='reconciles']").inner_text()

    page.goto(f"{live_server.url}/admin/morning/reconciliation/{integration.pk}/2026-03-10/")
    assert "Everything from Tuesday 10 March 2026 is in Sage and reconciles." in page.content()
    assert Decimal(page.locator("[data-currency='GBP'] [data-figure='refunds']").inner_text().replace(",", "")) == \
        seeded.store_figures(day)["GBP"]["refunds"]
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / "reconciliation.png"), full_page=True)
    with page.expect_download() as download:
        page.click("[data-testid=csv]")
    csv_path = download.value.path()
    assert "is in Sage and reconciles" in Path(csv_path).read_text()
    with page.expect_download() as download:
        page.click("[data-testid=pdf]")
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF-")
    assert download.value.suggested_filename == f"reconciliation-{integration.pk}-2026-03-10.pdf"
    page.close()
