"""A user of tenant A cannot see or edit tenant B's rows in admin: lists, change pages by URL,
and foreign-key dropdowns."""

import pytest

from connector.models import SyncRecord
from tests.support.factories import IntegrationFactory, ItemMappingFactory, MembershipFactory, TenantFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_tenants():
    a, b = TenantFactory(name="Alpha Ltd", slug="alpha"), TenantFactory(name="Beta Ltd", slug="beta")
    ia = IntegrationFactory(tenant=a, name="Alpha shop", store__name="Alpha store", sage__name="Alpha books")
    ib = IntegrationFactory(tenant=b, name="Beta shop", store__name="Beta store", sage__name="Beta books")
    ItemMappingFactory(integration=ia, store_sku="ALPHA-SKU", sage_code="ALPHA1")
    mb = ItemMappingFactory(integration=ib, store_sku="BETA-SKU", sage_code="BETA1")
    ra = SyncRecord.objects.create(integration=ia, kind="order", external_id="1001", action="post_invoice")
    rb = SyncRecord.objects.create(integration=ib, kind="order", external_id="2002", action="post_invoice")
    user = MembershipFactory(tenant=a, role="owner").user
    return {"a": ia, "b": ib, "mapping_b": mb, "record_a": ra, "record_b": rb, "user": user}


def test_lists_show_only_own_tenant(client, two_tenants):
    client.force_login(two_tenants["user"])
    checks = {
        "/admin/accounts/storeconnection/": ("Alpha store", "Beta store"),
        "/admin/accounts/sageconnection/": ("Alpha books", "Beta books"),
        "/admin/accounts/integration/": ("Alpha shop", "Beta shop"),
        "/admin/mappings/itemmapping/": ("ALPHA-SKU", "BETA-SKU"),
        "/admin/connector/syncrecord/": ("1001", "2002"),
    }
    for url, (mine, theirs) in checks.items():
        html = client.get(url).content.decode()
        assert mine in html, url
        assert theirs not in html, url


def test_change_pages_by_url_are_refused(client, two_tenants):
    client.force_login(two_tenants["user"])
    b = two_tenants["b"]
    urls = [
        f"/admin/accounts/storeconnection/{b.store_id}/change/",
        f"/admin/accounts/sageconnection/{b.sage_id}/change/",
        f"/admin/accounts/integration/{b.pk}/change/",
        f"/admin/mappings/itemmapping/{two_tenants['mapping_b'].pk}/change/",
        f"/admin/connector/syncrecord/{two_tenants['record_b'].pk}/change/",
    ]
    for url in urls:
        response = client.get(url)
        # Django admin answers a row outside the queryset with a redirect to the index.
        assert response.status_code in (302, 404), url
        assert b"Beta" not in response.content
        assert client.post(url, {"name": "hijacked"}).status_code in (302, 403, 404)
    b.refresh_from_db()
    assert b.name == "Beta shop"


def test_foreign_key_dropdowns_offer_only_own_rows(client, two_tenants):
    client.force_login(two_tenants["user"])
    html = client.get("/admin/mappings/itemmapping/add/").content.decode()
    assert "Alpha shop" in html and "Beta shop" not in html
    html = client.get("/admin/accounts/integration/add/").content.decode()
    assert "Alpha store" in html and "Beta store" not in html
    assert "Alpha books" in html and "Beta books" not in html
    assert "Beta Ltd" not in html


def test_posting_another_tenants_id_in_a_form_is_rejected(client, two_tenants):
    client.force_login(two_tenants["user"])
    response = client.post("/admin/mappings/itemmapping/add/", {
        "integration": two_tenants["b"].pk, "store_sku": "SNEAKY", "sage_code": "X", "description": ""})
    assert response.status_code == 200  # the form is shown again with an error
    assert "Select a valid choice" in response.content.decode()
    from mappings.models import ItemMapping

    assert not ItemMapping.objects.filter(store_sku="SNEAKY").exists()


def test_viewer_can_look_but_not_change(client, two_tenants):
    viewer = MembershipFactory(tenant=two_tenants["a"].tenant, role="viewer").user
    client.force_login(viewer)
    assert client.get("/admin/mappings/itemmapping/").status_code == 200
    assert client.get("/admin/mappings/itemmapping/add/").status_code == 403
