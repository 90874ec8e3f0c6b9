"""The routing table decides what each record becomes, and an integration whose store and Sage
have no route between them is refused when it is saved (not failed record by record)."""

from __future__ import annotations

import pytest
from django import forms
from django.core.exceptions import ValidationError

from accounts.models import Integration, SageConnection
from connector import routing
from connector.bigcommerce.intake import actions_for, refund_actions_for
from tests.support.factories import (
    IntegrationFactory,
    SageConnectionFactory,
    StoreConnectionFactory,
    TenantFactory,
)

pytestmark = pytest.mark.django_db


def test_every_routed_action_has_a_handler():
    from connector.services.pipeline import _handlers

    actions = {r.action for route in routing.ROUTES.values() for r in route.orders + route.refunds}
    assert actions <= set(_handlers)


@pytest.mark.parametrize("edition,flags,orders,refunds", [
    ("sage50uk", {}, ["post_invoice"], ["post_credit_note"]),
    ("sage50us", {"post_refunds": False}, ["post_invoice"], []),
    ("sagex3", {"post_gl_entries": True}, ["post_journal"], ["post_journal"]),
    ("sagex3", {"post_gl_entries": False}, [], []),
    ("sage100", {}, ["post_sales_order"], ["note_refund"]),
    ("sage100", {"post_sales_orders": False}, [], []),
])
def test_actions_come_from_the_route_and_the_integration_s_switches(edition, flags, orders, refunds):
    integration = IntegrationFactory(sage=SageConnectionFactory(edition=edition), **flags)
    assert (actions_for(integration), refund_actions_for(integration)) == (orders, refunds)


def test_an_unrouted_pair_is_refused_when_saved_with_what_to_do(monkeypatch):
    # Every pair the choices allow has a route today: take one away to see the refusal.
    monkeypatch.delitem(routing.ROUTES, ("adobe_commerce", "sage100"))
    tenant = TenantFactory()
    store = StoreConnectionFactory(tenant=tenant, name="Outdoor shop", platform="adobe_commerce")
    sage = SageConnectionFactory(tenant=tenant, name="Head office", edition=SageConnection.Edition.SAGE100)
    integration = Integration(tenant=tenant, name="Shop to Sage 100", store=store, sage=sage)
    with pytest.raises(ValidationError) as caught:
        integration.full_clean()
    message = " ".join(caught.value.message_dict["sage"])
    assert "cannot post to Head office (Sage 100) yet" in message
    assert "bigcommerce → sagex3" in message and "bigcommerce → sage100" in message

    form_class = forms.modelform_factory(Integration, fields=["tenant", "name", "store", "sage"])
    form = form_class(data={"tenant": tenant.pk, "name": "Shop to Sage 100", "store": store.pk, "sage": sage.pk})
    assert not form.is_valid()
    assert "cannot post to" in form.errors["sage"][0]
    assert not Integration.objects.filter(name="Shop to Sage 100").exists()


@pytest.mark.parametrize("edition", ["sagex3", "sage100"])
def test_routed_pairs_pass_validation(edition):
    integration = IntegrationFactory(sage=SageConnectionFactory(edition=edition))
    integration.full_clean()


@pytest.mark.parametrize(("edition", "expected"), [("sage100", True), ("sage50uk", False), ("sage50us", False),
                                                   ("sagex3", False)])
def test_only_sage100_pushes_prices_to_the_store(edition, expected):
    assert routing.pushes_prices(IntegrationFactory(sage=SageConnectionFactory(edition=edition))) is expected
