"""Registering/repairing hooks, 'test connection', status after import, schedules, admin actions."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone

from accounts.models import Integration
from connector.bigcommerce import admin_actions, connection, hooks, schedules
from connector.bigcommerce.signatures import SECRET_HEADER
from connector.bigcommerce.status import set_order_status
from connector.services.scheduling import claim_due
from tests.support.bigcommerce import Sandbox
from tests.support.factories import make_integration, make_store

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def box():
    sandbox = Sandbox(orders=20)
    yield sandbox
    sandbox.stop()


@pytest.fixture
def integration(box):
    box.store.hooks.clear()
    return make_integration(make_store(api_base_url=box.url))


@override_settings(PUBLIC_BASE_URL="https://sync.example.com")
def test_hooks_are_created_then_left_alone(box, integration):
    report = hooks.ensure_hooks(integration, box.client())
    assert sorted(report.created) == sorted(hooks.SCOPES) and report.ok and not report.warnings
    made = list(box.store.hooks.values())
    assert {h.destination for h in made} == {f"https://sync.example.com{integration.webhook_path}"}
    assert all(h.headers == {SECRET_HEADER: integration.webhook_secret} for h in made)
    again = hooks.ensure_hooks(integration, box.client())
    assert sorted(again.unchanged) == sorted(hooks.SCOPES) and not again.created
    assert len(box.store.hooks) == len(hooks.SCOPES)
    assert box.request_violations() == []


@override_settings(PUBLIC_BASE_URL="https://sync.example.com")
def test_inventory_hooks_of_an_earlier_version_are_removed_and_others_kept(box, integration):
    """Nothing reads store-side inventory changes (stock flows from Sage), and each of our own
    stock pushes made the store send a delivery per SKU back: ours go, someone else's stay."""
    client = box.client()
    ours = f"https://sync.example.com{integration.webhook_path}"
    for scope in hooks.RETIRED_SCOPES:
        client.create_hook(scope, ours, {SECRET_HEADER: integration.webhook_secret})
    client.create_hook("store/sku/inventory/updated", "https://erp.example.com/hooks/", {})
    report = hooks.ensure_hooks(integration, client)
    assert sorted(report.removed) == sorted(hooks.RETIRED_SCOPES) and report.ok
    assert "removed (no longer used)" in report.summary()
    left = sorted((h.scope, h.destination) for h in box.store.hooks.values())
    assert left == sorted([(scope, ours) for scope in hooks.SCOPES]
                          + [("store/sku/inventory/updated", "https://erp.example.com/hooks/")])
    assert not hooks.ensure_hooks(integration, client).removed
    assert box.request_violations() == []


@override_settings(PUBLIC_BASE_URL="https://sync.example.com")
def test_deactivated_and_drifted_hooks_are_repaired_and_reported(box, integration):
    hooks.ensure_hooks(integration, box.client())
    by_scope = {h.scope: h for h in box.store.hooks.values()}
    by_scope["store/order/created"].is_active = False
    by_scope["store/order/updated"].headers = {SECRET_HEADER: "old"}
    by_scope["store/order/refund/created"].destination = f"https://old-host.example.com{integration.webhook_path}"
    report = hooks.ensure_hooks(integration, box.client())
    assert report.reactivated == ["store/order/created"]
    assert sorted(report.repaired) == ["store/order/refund/created", "store/order/updated"]
    assert "next poll" in report.summary()
    assert all(h.is_active and h.headers[SECRET_HEADER] == integration.webhook_secret
               for h in box.store.hooks.values())
    assert len(box.store.hooks) == len(hooks.SCOPES)


def test_plain_http_destination_is_warned_about_for_a_real_store_only(box, integration):
    report = hooks.ensure_hooks(integration, box.client())
    assert not report.warnings  # the sandbox on this machine delivers to http:// too: no noise on `make run`
    integration.store.api_base_url = "https://api.bigcommerce.com"  # calls still go to the sandbox's client
    report = hooks.ensure_hooks(integration, box.client())
    assert report.warnings and "https" in report.warnings[0]


def test_connection_report_when_everything_works(box, integration):
    report = connection.test_connection(integration.store, box.client())
    assert report.ok and report.reachable and report.token_valid
    assert set(report.granted) == {p[0] for p in connection.PROBES}
    assert "access token is valid" in report.text()


def test_connection_report_with_a_wrong_token(box):
    store = make_store(api_base_url=box.url, access_token="wrong")
    report = connection.test_connection(store)
    assert report.reachable and not report.token_valid and not report.ok
    assert "rejected the access token" in report.text()


def test_connection_report_with_missing_scopes(box, integration, monkeypatch):
    original = box.app.dispatch

    def forbid_inventory(request):
        from sandbox.bigcommerce.app import v3_error

        if "/v3/inventory/" in request.path or "/v3/customers" in request.path:
            return v3_error(403, "You don't have a required scope to access the endpoint")
        return original(request)

    monkeypatch.setattr(box.app, "dispatch", forbid_inventory)
    report = connection.test_connection(integration.store, box.client())
    assert report.token_valid and not report.ok
    assert set(report.missing) == {"inventory", "customers"}
    assert "store_inventory" in report.text()


def test_connection_report_when_the_store_is_unreachable():
    store = make_store(api_base_url="http://127.0.0.1:9")
    report = connection.test_connection(store)
    assert not report.reachable and "Cannot reach" in report.text()


def test_status_after_import(box, integration):
    order = next(o for o in box.store.orders.values() if o.status_id == 11) if any(
        o.status_id == 11 for o in box.store.orders.values()) else box.store.set_status(
        next(iter(box.store.orders)), 11)
    assert set_order_status(integration, order.id, client=box.client()) is None  # nothing configured
    integration.status_after_import = 10
    updated = set_order_status(integration, order.id, client=box.client())
    assert updated["status_id"] == 10 and box.store.get_order(order.id).status_id == 10
    assert set_order_status(integration, order.id, client=box.client()) is None  # already there


def test_ensure_schedules_makes_never_scheduled_integrations_due():
    fresh = make_integration()
    later = make_integration()
    later.next_poll_at = timezone.now() + dt.timedelta(hours=1)
    later.save()
    assert schedules.ensure_schedules() == {"scheduled": 1}
    fresh.refresh_from_db()
    later.refresh_from_db()
    # Never scheduled is due at the next tick, and keeps no phase of its own until then.
    assert fresh.next_poll_at is None and later.next_poll_at > timezone.now()
    assert [row.integration_id for row in claim_due(platforms=["bigcommerce"])] == [fresh.pk]


def test_integrations_created_together_do_not_poll_in_step():
    """Fifty integrations set up in one go: their first polls go out at one tick, the ones after
    are spread over the interval (not all again one interval later, ± 3 s)."""
    fleet = [make_integration(poll_interval_seconds=60) for _ in range(50)]
    schedules.ensure_schedules()
    claimed = claim_due(platforms=["bigcommerce"], limit=100)
    assert {row.integration_id for row in claimed} == {i.pk for i in fleet}
    now = timezone.now()
    following = sorted((i.next_poll_at - now).total_seconds()
                       for i in Integration.objects.filter(pk__in=[i.pk for i in fleet]))
    assert 29 <= following[0] and following[-1] <= 61 and following[-1] - following[0] > 20


class FakeAdmin:
    def __init__(self):
        self.messages = []

    def message_user(self, request, message, level=None):
        self.messages.append((level, message))


@override_settings(PUBLIC_BASE_URL="https://sync.example.com")
def test_admin_actions(box, integration):
    from types import SimpleNamespace

    from accounts.models import Integration, StoreConnection

    admin = FakeAdmin()
    operator = SimpleNamespace(user=SimpleNamespace(is_superuser=True))  # the actions check the role first
    admin_actions.register_hooks(admin, operator, Integration.objects.filter(pk=integration.pk))
    assert "created" in admin.messages[0][1] and len(box.store.hooks) == len(hooks.SCOPES)
    admin_actions.test_connection(admin, operator, StoreConnection.objects.filter(pk=integration.store_id))
    assert "access token is valid" in admin.messages[1][1]
