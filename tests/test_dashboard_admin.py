"""The admin tidied for its users, the dry-run preview per edition, the dashboard's tenant
isolation, and the notifications' rules (the real SMTP delivery is in the browser test)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import SageConnection
from connector.dashboard.notify import send_notifications
from connector.models import AgentJob, InboundEvent, Notification, StockLevel, SyncRecord, SyncRun
from connector.services.pipeline import run_record
from connector.services.records import upsert_record
from demo import seed as demo
from mappings.models import ItemMapping
from sandbox.bigcommerce.app import build_app
from sandbox.httpserver import SandboxServer
from tests.support.factories import AgentFactory, IntegrationFactory, MembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def store_server():
    app = build_app(store_hash=demo.STORE_HASH, token=demo.STORE_TOKEN, client_id=demo.CLIENT_ID,
                    client_secret=demo.CLIENT_SECRET, orders=20, seed=1, faults={"quota": 100000})
    server = SandboxServer(app).start()
    yield server
    server.stop()


def login(client, integration, role):
    user = MembershipFactory(tenant=integration.tenant, role=role).user
    client.force_login(user)
    return user


def test_system_section_is_for_owners_only(client):
    integration = IntegrationFactory()
    login(client, integration, "accountant")
    html = client.get("/admin/").content.decode()
    assert "Sync records" in html and "Inbound events" not in html and "Sync cursors" not in html
    assert ">System<" not in html
    client.logout()
    login(client, integration, "owner")
    html = client.get("/admin/").content.decode()
    assert ">System<" in html and "Inbound events" in html and "Record links" in html
    assert 'href="/admin/morning/"><strong>Morning check</strong>' in html  # the way in, on the index


def test_integration_statuses_are_picked_by_name(client):
    integration = IntegrationFactory()
    login(client, integration, "owner")
    html = client.get(f"/admin/accounts/integration/{integration.pk}/change/").content.decode()
    assert 'type="checkbox" name="paid_status_ids" value="11"' in html and "Awaiting Fulfillment (11)" in html
    assert '<select name="status_after_import"' in html and "Leave the order&#x27;s status as it is" in html


def test_a_backfill_says_how_many_posted_and_how_many_were_skipped(client):
    integration = IntegrationFactory()
    run = SyncRun.objects.create(integration=integration, kind="backfill", state="done", seen=3, succeeded=3)
    for order_id, state in (("1", "posted"), ("2", "posted"), ("3", "skipped")):
        InboundEvent.objects.create(integration=integration, source="backfill", dedup_key=f"k{order_id}",
                                    scope="order", resource_id=order_id, run=run)
        record, _ = upsert_record(integration.pk, "order", order_id, "post_invoice", reason="test")
        SyncRecord.objects.filter(pk=record.pk).update(state=state)
    login(client, integration, "owner")
    assert "posted 2 · skipped 1" in client.get("/admin/connector/syncrun/").content.decode()


def test_idle_polls_are_hidden_and_records_and_jobs_are_read_only(client):
    integration = IntegrationFactory()
    SyncRun.objects.create(integration=integration, kind="poll", state="done", seen=0)
    busy = SyncRun.objects.create(integration=integration, kind="poll", state="done", seen=3, succeeded=3)
    login(client, integration, "owner")
    html = client.get("/admin/connector/syncrun/").content.decode()
    assert html.count('class="field-__str__"') == 1 and f"#{busy.pk}" in html
    assert client.get("/admin/connector/syncrun/?idle=show").content.decode().count('class="field-__str__"') == 2
    record, _ = upsert_record(integration.pk, "order", "100", "post_invoice", reason="test")
    page = client.get(f"/admin/connector/syncrecord/{record.pk}/change/").content.decode()
    assert 'name="_save"' not in page and 'name="next_attempt_at"' not in page
    job = AgentJob.objects.create(integration=integration, record=record, op="create_sales_invoice",
                                  reference="BC-100")
    assert 'name="_save"' not in client.get(f"/admin/connector/agentjob/{job.pk}/change/").content.decode()
    assert client.post(f"/admin/connector/agentjob/{job.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AgentJob.objects.filter(pk=job.pk).exists()


def test_dashboard_pages_stay_inside_the_tenant(client):
    mine, theirs = IntegrationFactory(), IntegrationFactory()
    login(client, mine, "viewer")
    assert client.get("/admin/morning/").status_code == 200
    assert client.get(f"/admin/morning/reconciliation/{theirs.pk}/2026-03-10/").status_code == 403
    assert client.get(f"/admin/morning/preview/{theirs.pk}/").status_code == 403
    assert client.get(f"/admin/morning/reconciliation/{mine.pk}/not-a-day/").status_code == 404
    record, _ = upsert_record(mine.pk, "order", "100", "post_invoice", reason="test")
    SyncRecord.objects.filter(pk=record.pk).update(state="failed")
    assert client.post(f"/admin/morning/records/{record.pk}/repost/").status_code == 403  # a viewer looks only
    assert client.get("/admin/morning/").status_code == 200


def test_preview_offers_only_the_integrations_own_edition(client, store_server, tmp_path):
    seed = demo.seed_demo(store_url=store_server.url, company_path=tmp_path / "c.sqlite3", skus=demo.sandbox_skus())
    order = next(o for o in store_server.app.store.orders.values() if o.status_id in (2, 10, 11))
    login(client, seed.integration, "accountant")
    html = client.get(f"/admin/morning/preview/{seed.integration.pk}/?order_id={order.id}").content.decode()
    assert f"Sales invoice BC-{order.id}" in html and "Show the JSON" not in html
    assert "journal" not in html.lower()  # no X3 preview on a Sage 50 integration
    assert SyncRecord.objects.count() == 0 and AgentJob.objects.count() == 0  # nothing posted or queued
    sage100 = IntegrationFactory(tenant=seed.integration.tenant, sage__edition=SageConnection.Edition.SAGE100)
    html = client.get(f"/admin/morning/preview/{sage100.pk}/?order_id={order.id}").content.decode()
    assert "A preview is not available for Sage 100 yet" in html
    html = client.get(f"/admin/morning/preview/{seed.integration.pk}/?order_id=abc").content.decode()
    assert "Enter a whole number" in html


def test_record_page_reads_like_an_invoice_with_the_json_behind_a_toggle(client, store_server, tmp_path):
    seed = demo.seed_demo(store_url=store_server.url, company_path=tmp_path / "c.sqlite3", skus=demo.sandbox_skus())
    order = next(o for o in store_server.app.store.orders.values() if o.status_id in (2, 10, 11))
    record, _ = upsert_record(seed.integration.pk, "order", str(order.id), "post_invoice", reason="test")
    run_record(record.pk)
    login(client, seed.integration, "accountant")
    html = client.get(f"/admin/connector/syncrecord/{record.pk}/change/").content.decode()
    assert "Sent — waiting for Sage" in html
    assert "<summary>Show the JSON</summary>" in html and "Unit net" in html and order.lines[0].variant.sku in html
    listing = client.get("/admin/connector/syncrecord/").content.decode()
    assert f"{order.currency} {order.figures.total_inc:,.2f}" in listing
    first = order.billing["first_name"]
    assert first in listing


def test_notifications_are_opt_in_once_each_and_link_back(settings):
    settings.EMAIL_HOST = "smtp.example.com"  # the in-memory backend of the tests delivers
    settings.PUBLIC_BASE_URL = "https://connector.example.com"
    integration = IntegrationFactory()
    keen = MembershipFactory(tenant=integration.tenant, user__email="keen@example.com", notify_failures=True,
                             notify_agent_offline=True, agent_offline_minutes=10, daily_digest=True)
    MembershipFactory(tenant=integration.tenant, user__email="quiet@example.com")
    record, _ = upsert_record(integration.pk, "order", "100", "post_invoice", reason="test")
    SyncRecord.objects.filter(pk=record.pk).update(state="failed", message="Sage refused it.")
    agent = AgentFactory(tenant=integration.tenant, integration=integration)
    agent.last_heartbeat_at = timezone.now() - dt.timedelta(minutes=30)
    agent.save()
    settings.DAILY_DIGEST_HOUR = 0
    morning = timezone.now()
    integration.store.platform = "adobe_commerce"  # not asked (yet): the digest uses the stored orders
    integration.store.save()
    assert send_notifications(now=morning) == 3, list(Notification.objects.values("kind", "error"))
    assert send_notifications(now=morning) == 0
    assert {m.to[0] for m in mail.outbox} == {keen.user.email}
    by_kind = {n.kind: n for n in Notification.objects.all()}
    assert set(by_kind) == {"failed", "agent_offline", "digest"}
    failed = next(m for m in mail.outbox if m.subject.startswith("Failed — needs you"))
    assert f"https://connector.example.com/admin/connector/syncrecord/{record.pk}/change/" in failed.body
    digest = next(m for m in mail.outbox if m.subject.startswith("Daily Sage check"))
    yesterday = (morning - dt.timedelta(days=1)).date().isoformat()
    assert f"/admin/morning/reconciliation/{integration.pk}/{yesterday}/" in digest.body


def test_bulk_map_skus_from_the_list_of_unmapped_skus(client):
    integration = IntegrationFactory()
    blocked = []
    for order_id, keys in (("100", ["item:ABC-1"]), ("101", ["item:ABC-1", "item:XYZ-9"])):
        record, _ = upsert_record(integration.pk, "order", order_id, "post_invoice", reason="test")
        SyncRecord.objects.filter(pk=record.pk).update(state="waiting_mapping", waiting_for=keys)
        blocked.append(record)
    StockLevel.objects.create(integration=integration, sku="ABC-1-SAGE")
    login(client, integration, "accountant")
    html = client.get("/admin/morning/unmapped-skus/").content.decode()
    assert "<code>ABC-1</code>" in html and "<code>XYZ-9</code>" in html and "2: " in html
    assert "<option value=\"ABC-1-SAGE\">" in html  # the codes the agent reported are offered
    response = client.post("/admin/morning/unmapped-skus/", {"sku_0": "ABC-1", "code_0": "ABC-1-SAGE",
                                                              "sku_1": "XYZ-9", "code_1": ""})
    assert response.status_code == 302
    assert list(ItemMapping.objects.values_list("store_sku", "sage_code")) == [("ABC-1", "ABC-1-SAGE")]


def test_mapping_form_is_prefilled_offers_reported_codes_and_catches_a_typo(client):
    integration = IntegrationFactory()
    StockLevel.objects.create(integration=integration, sku="MUG-BLUE")
    login(client, integration, "accountant")
    url = f"/admin/mappings/itemmapping/add/?integration={integration.pk}&store_sku=SKU-0002-BLUE-S"
    html = client.get(url).content.decode()
    assert 'value="SKU-0002-BLUE-S"' in html and "<option value='MUG-BLUE'>" in html
    response = client.post(url, {"integration": integration.pk, "store_sku": "SKU-0002-BLUE-S",
                                 "sage_code": "MUG-BLEU", "description": ""})
    assert response.status_code == 200 and "Sage has no stock code &#x27;MUG-BLEU&#x27;" in response.content.decode()
    assert not ItemMapping.objects.exists()
    response = client.post(url, {"integration": integration.pk, "store_sku": "SKU-0002-BLUE-S",
                                 "sage_code": "MUG-BLUE", "description": ""})
    assert response.status_code == 302 and ItemMapping.objects.get().sage_code == "MUG-BLUE"


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_state_colours_meet_wcag_aa_in_light_and_dark_mode():
    css = (Path(__file__).resolve().parent.parent / "connector/static/dashboard/dashboard.css").read_text()
    blocks = re.findall(r"(:root|html\[data-theme=\"(?:dark|light)\"\])\s*\{([^}]*)\}", css)
    assert len(blocks) >= 3
    for _selector, body in blocks:
        colours = dict(re.findall(r"--mlc-([a-z]+-(?:fg|bg)):\s*(#[0-9a-f]{6})", body))
        states = {name[:-3] for name in colours}
        assert states == {"posted", "busy", "mapping", "failed", "waiting"}
        for state in states:
            ratio = _contrast(colours[f"{state}-fg"], colours[f"{state}-bg"])
            assert ratio >= 4.5, (state, ratio)


def test_demo_order_links_to_the_port_make_run_serves_on(settings, tmp_path):
    from demo.management.commands.demo_order import running_admin_url
    from demo.management.commands.runstack import RUNNING_STACK_FILE

    settings.DATA_DIR = tmp_path
    assert running_admin_url() is None  # no stack running: PUBLIC_BASE_URL is used
    (tmp_path / RUNNING_STACK_FILE).write_text('{"admin": "http://127.0.0.1:8765"}')
    assert running_admin_url() == "http://127.0.0.1:8765"
