"""Issue 16, items 1-4: secrets are write-only, every admin write and action checks the role in the
tenant it touches, users of two tenants act with the role of the tenant being written, and no
other tenant's names leak through list filters. Real requests through the Django test client."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType

from accounts.models import Agent, Integration, Membership
from connector.models import SyncRun
from mappings.models import ItemMapping
from tests.security_world import ALL_SECRETS, action, build_world, messages_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_world()


@pytest.fixture
def no_tasks(monkeypatch):
    """Record what the actions would queue instead of sending it to a broker."""
    from connector.bigcommerce import tasks
    from connector.services import records

    sent = []
    monkeypatch.setattr(tasks.poll_integration, "delay", lambda *a: sent.append(("poll", a)))
    monkeypatch.setattr(tasks.backfill, "delay", lambda *a: sent.append(("backfill", a)))
    monkeypatch.setattr(records, "enqueue", lambda ids: sent.append(("replay", tuple(ids))))
    return sent


def _assert_no_secret(html: str, where: str):
    for secret in ALL_SECRETS:
        assert secret not in html, f"{secret} shown on {where}"


# -- 1. secrets are write-only -------------------------------------------------------------------

@pytest.mark.parametrize("who", ["owner", "accountant", "viewer", "accountant_a_viewer_b", "owner_a_viewer_b"])
def test_secrets_never_shown_on_any_page(client, world, who):
    client.force_login(getattr(world, who))
    for model, pk in (("storeconnection", world.store_a.pk), ("sageconnection", world.sage_a.pk),
                      ("integration", world.integration_a.pk)):
        LogEntry.objects.create(user_id=world.owner.pk, content_type=ContentType.objects.get(
            app_label="accounts", model=model), object_id=str(pk), object_repr="x", action_flag=CHANGE,
            change_message="changed")
        for page in ("change", "history", "delete"):
            url = f"/admin/accounts/{model}/{pk}/{page}/"
            response = client.get(url)
            assert response.status_code in (200, 403), url
            _assert_no_secret(response.content.decode(), url)
        listing = client.get(f"/admin/accounts/{model}/")
        _assert_no_secret(listing.content.decode(), model)


def test_read_only_pages_say_set_or_not_set(client, world):
    client.force_login(world.viewer)
    html = client.get(f"/admin/accounts/sageconnection/{world.sage_a.pk}/change/").content.decode()
    assert '<div class="readonly">set</div>' in html
    html = client.get(f"/admin/accounts/storeconnection/{world.store_a.pk}/change/").content.decode()
    assert '<div class="readonly">set</div>' in html  # the BigCommerce token
    assert '<div class="readonly">not set</div>' in html  # the Adobe secrets of a BigCommerce store


def test_run_archive_export_holds_no_secret(client, world):
    run = SyncRun.objects.create(integration=world.integration_a, kind="poll")
    client.force_login(world.viewer)
    response = client.post("/admin/connector/syncrun/", {"action": "download_archive",
                                                        "_selected_action": [run.pk], "index": "0"})
    assert response.status_code == 200
    _assert_no_secret(response.content.decode(), "run archive")


# -- 2. every admin action and write checks the role ------------------------------------------------

def test_viewer_and_accountant_cannot_revoke_agents_owner_can(client, world):
    for who in ("viewer", "accountant"):
        client.force_login(getattr(world, who))
        response = action(client, "/admin/accounts/agent/", "revoke", world.agent_a.pk)
        assert response.status_code == 200
        world.agent_a.refresh_from_db()
        assert world.agent_a.revoked_at is None, who
    client.force_login(world.owner)
    action(client, "/admin/accounts/agent/", "revoke", world.agent_a.pk)
    world.agent_a.refresh_from_db()
    assert world.agent_a.revoked_at is not None


def test_a_refused_action_says_why(client, world):
    # Accountant in Alpha (so the action is offered) selecting Beta's agent row is impossible (the
    # row is not in their list); the owner of Alpha who is a viewer in Beta sees Beta's agents and
    # is told in words why revoking Beta's is refused.
    client.force_login(world.owner_a_viewer_b)
    response = action(client, "/admin/accounts/agent/", "revoke", world.agent_b.pk)
    assert response.status_code == 200
    text = " ".join(messages_of(response))
    assert "Only an owner can revoke agents (you are a viewer in Beta Ltd)" in text
    world.agent_b.refresh_from_db()
    assert world.agent_b.revoked_at is None


def test_viewer_cannot_poll_backfill_register_hooks_or_test_the_connection(client, world, no_tasks, monkeypatch):
    from connector.bigcommerce import connection, hooks

    called = []
    monkeypatch.setattr(hooks, "ensure_hooks", lambda integration: called.append("hooks"))
    monkeypatch.setattr(connection, "test_connection", lambda store, *a: called.append("test"))
    client.force_login(world.viewer)
    pk = world.integration_a.pk
    for name in ("poll_now", "register_hooks", "test_connection"):
        assert action(client, "/admin/accounts/integration/", name, pk).status_code == 200
    action(client, "/admin/accounts/integration/", "backfill_orders", pk, apply="1", since="2026-01-01")
    assert action(client, "/admin/accounts/storeconnection/", "test_connection", world.store_a.pk).status_code == 200
    assert no_tasks == [] and called == []
    assert not SyncRun.objects.exists()


def test_accountant_may_poll_and_backfill_but_not_register_hooks(client, world, no_tasks, monkeypatch):
    from connector.bigcommerce import hooks

    called = []
    monkeypatch.setattr(hooks, "ensure_hooks", lambda integration: called.append("hooks"))
    client.force_login(world.accountant)
    pk = world.integration_a.pk
    action(client, "/admin/accounts/integration/", "poll_now", pk)
    response = action(client, "/admin/accounts/integration/", "register_hooks", pk)
    assert called == []
    assert [kind for kind, _ in no_tasks] == ["poll"]
    assert response.status_code == 200


def test_viewer_cannot_replay_add_change_delete_or_import(client, world, no_tasks):
    client.force_login(world.viewer)
    action(client, "/admin/connector/syncrecord/", "replay_selected", world.record_a.pk)
    world.record_a.refresh_from_db()
    assert world.record_a.state == "failed" and no_tasks == []
    assert client.get("/admin/mappings/itemmapping/add/").status_code == 403
    mapping = ItemMapping.objects.get(store_sku="ALPHA-SKU")
    assert client.post(f"/admin/mappings/itemmapping/{mapping.pk}/change/", {
        "integration": world.integration_a.pk, "store_sku": "ALPHA-SKU", "sage_code": "HACKED"}).status_code == 403
    assert client.post(f"/admin/mappings/itemmapping/{mapping.pk}/delete/", {"post": "yes"}).status_code == 403
    response = client.get("/admin/mappings/itemmapping/import-csv/", follow=True)
    assert "Only an owner or an accountant can change mappings" in " ".join(messages_of(response))
    mapping.refresh_from_db()
    assert mapping.sage_code == "ALPHA1"


def test_accountant_cannot_change_connections_or_members(client, world):
    client.force_login(world.accountant)
    assert client.get("/admin/accounts/storeconnection/add/").status_code == 403
    assert client.get("/admin/accounts/agent/add/").status_code == 403
    assert client.get("/admin/accounts/membership/add/").status_code == 403
    assert client.post(f"/admin/accounts/storeconnection/{world.store_a.pk}/change/",
                       {"name": "renamed"}).status_code == 403


# -- 3. users of two tenants act with the role of the tenant being written -------------------------

def _integration_form(world, tenant, name="New shop", store=None, sage=None):
    integration = world.integration_b if tenant == world.beta else world.integration_a
    return {"tenant": tenant.pk, "name": name, "store": (store or integration.store).pk,
            "sage": (sage or integration.sage).pk, "is_active": "on", "poll_interval_seconds": 300,
            "poll_overlap_seconds": 300, "stock_push_interval_seconds": 300, "paid_status_ids": [],
            "customer_strategy": "match_or_create", "without_email": "web_sales", "currency_accounts": "per_currency", "default_tax_code": "T1", "rounding_tolerance": "0",
            "stock_quantity": "available", "x3_refund_style": "negative", "x3_gl_date_rule": "order_date",
            "archive_retention_days": 90, "webhook_secret": "",
            "account_mappings-TOTAL_FORMS": 0, "account_mappings-INITIAL_FORMS": 0}


def test_accountant_in_a_viewer_in_b_cannot_create_an_integration_in_b(client, world):
    client.force_login(world.accountant_a_viewer_b)
    add_page = client.get("/admin/accounts/integration/add/").content.decode()
    assert "Beta Ltd" not in add_page and "Beta store" not in add_page
    response = client.post("/admin/accounts/integration/add/", _integration_form(world, world.beta))
    assert response.status_code == 200  # the form again, with the error
    assert not Integration.objects.filter(name="New shop").exists()
    # In Alpha it works: the form itself is right.
    response = client.post("/admin/accounts/integration/add/", _integration_form(world, world.alpha))
    assert Integration.objects.filter(name="New shop", tenant=world.alpha).exists(), response.content[:2000]


def test_accountant_in_a_viewer_in_b_cannot_move_a_integration_to_b(client, world):
    client.force_login(world.accountant_a_viewer_b)
    form = _integration_form(world, world.beta, name="Alpha shop", store=world.integration_b.store,
                             sage=world.integration_b.sage)
    client.post(f"/admin/accounts/integration/{world.integration_a.pk}/change/", form)
    world.integration_a.refresh_from_db()
    assert world.integration_a.tenant == world.alpha


def test_accountant_in_a_viewer_in_b_cannot_replay_or_import_into_b(client, world, no_tasks):
    client.force_login(world.accountant_a_viewer_b)
    response = action(client, "/admin/connector/syncrecord/", "replay_selected", world.record_b.pk)
    assert "Only an owner or an accountant can replay records (you are a viewer in Beta Ltd)" in \
        " ".join(messages_of(response))
    world.record_b.refresh_from_db()
    assert world.record_b.state == "failed" and no_tasks == []
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("m.csv", b"store_sku,sage_code\nSNEAKY,X1\n", content_type="text/csv")
    response = client.post("/admin/mappings/itemmapping/import-csv/",
                           {"integration": world.integration_b.pk, "csv_file": upload})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not ItemMapping.objects.filter(store_sku="SNEAKY").exists()
    # Replaying Alpha's own record is fine.
    action(client, "/admin/connector/syncrecord/", "replay_selected", world.record_a.pk)
    assert no_tasks == [("replay", (world.record_a.pk,))]


def test_owner_of_a_viewer_in_b_cannot_make_owners_or_agents_in_b(client, world):
    client.force_login(world.owner_a_viewer_b)
    client.post("/admin/accounts/membership/add/", {"tenant": world.beta.pk, "user": world.outsider.pk,
                                                    "role": "owner"})
    client.post("/admin/accounts/membership/add/", {"tenant": world.beta.pk, "user": world.owner_a_viewer_b.pk,
                                                    "role": "owner"})
    assert not Membership.objects.filter(tenant=world.beta, role="owner").exists()
    membership_b = Membership.objects.get(tenant=world.beta, user=world.outsider)
    client.post(f"/admin/accounts/membership/{membership_b.pk}/change/",
                {"tenant": world.beta.pk, "user": world.outsider.pk, "role": "owner"})
    membership_b.refresh_from_db()
    assert membership_b.role == "viewer"
    before = Agent.objects.count()
    response = client.post("/admin/accounts/agent/add/", {"tenant": world.beta.pk, "integration":
                                                          world.integration_b.pk, "name": "sneaky"})
    assert Agent.objects.count() == before and b"mlc_" not in response.content
    # An agent in Alpha pointing at Beta's integration is refused too.
    client.post("/admin/accounts/agent/add/", {"tenant": world.alpha.pk, "integration": world.integration_b.pk,
                                               "name": "sneaky"})
    assert not Agent.objects.filter(name="sneaky").exists()
    # The forms offer Alpha only.
    html = client.get("/admin/accounts/agent/add/").content.decode()
    assert "Beta Ltd" not in html and "Beta shop" not in html
    html = client.get("/admin/accounts/membership/add/").content.decode()
    assert "Beta Ltd" not in html and "beta_viewer" not in html


# -- 4. list filters name no other tenant ----------------------------------------------------------

@pytest.mark.parametrize("url", ["/admin/mappings/itemmapping/", "/admin/connector/syncrecord/",
                                 "/admin/accounts/integration/", "/admin/accounts/membership/",
                                 "/admin/accounts/agent/", "/admin/accounts/storeconnection/",
                                 "/admin/connector/agentjob/", "/admin/mappings/taxmapping/"])
def test_list_filters_name_only_own_tenants(client, world, url):
    client.force_login(world.owner)
    html = client.get(url).content.decode()
    assert "Beta Ltd" not in html and "Beta shop" not in html, url


def test_bulk_delete_of_another_tenants_rows_is_refused(client, world):
    client.force_login(world.accountant_a_viewer_b)
    beta_mapping = ItemMapping.objects.get(store_sku="BETA-SKU")
    response = action(client, "/admin/mappings/itemmapping/", "delete_selected", beta_mapping.pk, post="yes")
    assert response.status_code in (200, 403)
    assert ItemMapping.objects.filter(pk=beta_mapping.pk).exists()
    alpha_mapping = ItemMapping.objects.get(store_sku="ALPHA-SKU")
    action(client, "/admin/mappings/itemmapping/", "delete_selected", alpha_mapping.pk, post="yes")
    assert not ItemMapping.objects.filter(pk=alpha_mapping.pk).exists()
