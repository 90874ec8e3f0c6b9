"""Secrets are encrypted in the database and never rendered back by admin."""

import pytest
from django.db import connection

from accounts.models import Integration, SageConnection, StoreConnection
from tests.support.factories import IntegrationFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

STORE_SECRET_VALUES = {
    "access_token": "bc-access-token-5f2c",
    "client_secret": "bc-client-secret-91aa",
    "consumer_key": "adobe-consumer-key-77",
    "consumer_secret": "adobe-consumer-secret-88",
    "access_token_secret": "adobe-token-secret-99",
    "ims_client_secret": "adobe-ims-secret-11",
}
SAGE_SECRET_VALUES = {
    "password": "x3-password-3141",
    "oauth_client_secret": "x3-oauth-secret-2718",
    "access_token": "x3-access-token-1618",
    "refresh_token": "x3-refresh-token-1414",
}


def raw_column(model, pk, column):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {model._meta.db_table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


@pytest.fixture
def integration():
    integration = IntegrationFactory()
    StoreConnection.objects.filter(pk=integration.store_id).update()  # no-op: keep factory values
    store = integration.store
    for name, value in STORE_SECRET_VALUES.items():
        setattr(store, name, value)
    store.save()
    sage = integration.sage
    for name, value in SAGE_SECRET_VALUES.items():
        setattr(sage, name, value)
    sage.save()
    return integration


def test_every_secret_column_is_ciphertext(integration):
    for name, value in STORE_SECRET_VALUES.items():
        raw = raw_column(StoreConnection, integration.store_id, name)
        assert value not in raw, name
        assert raw.startswith("gAAAA"), f"{name} is not Fernet ciphertext: {raw[:12]}"
        assert getattr(StoreConnection.objects.get(pk=integration.store_id), name) == value
    for name, value in SAGE_SECRET_VALUES.items():
        raw = raw_column(SageConnection, integration.sage_id, name)
        assert value not in raw and raw.startswith("gAAAA"), name
    webhook_secret = Integration.objects.get(pk=integration.pk).webhook_secret
    assert webhook_secret and webhook_secret not in raw_column(Integration, integration.pk, "webhook_secret")


@pytest.mark.parametrize("role", ["owner", "superuser"])
def test_admin_never_renders_a_secret(client, integration, role):
    if role == "superuser":
        user = UserFactory(is_superuser=True)
    else:
        user = MembershipFactory(tenant=integration.tenant, role="owner").user
    client.force_login(user)
    pages = [
        f"/admin/accounts/storeconnection/{integration.store_id}/change/",
        "/admin/accounts/storeconnection/",
        f"/admin/accounts/sageconnection/{integration.sage_id}/change/",
        "/admin/accounts/sageconnection/",
        f"/admin/accounts/integration/{integration.pk}/change/",
    ]
    secrets = list(STORE_SECRET_VALUES.values()) + list(SAGE_SECRET_VALUES.values()) + [
        integration.webhook_secret]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        html = response.content.decode()
        for secret in secrets:
            assert secret not in html, f"{secret} rendered on {page}"
    html = client.get(pages[0]).content.decode()
    assert "Set. Type a new value to replace it" in html


def test_blank_secret_keeps_the_stored_value_and_a_new_one_replaces_it(client, integration):
    user = MembershipFactory(tenant=integration.tenant, role="owner").user
    client.force_login(user)
    url = f"/admin/accounts/storeconnection/{integration.store_id}/change/"
    form = {
        "tenant": integration.tenant_id, "name": "Renamed", "platform": "bigcommerce", "verify_tls": "on",
        "store_hash": "abc", "api_base_url": "https://api.bigcommerce.com", "client_id": "cid",
        "access_token": "", "client_secret": "new-client-secret-42", "base_url": "", "store_code": "default",
        "adobe_auth": "", "consumer_key": "", "consumer_secret": "", "access_token_secret": "",
        "ims_client_id": "", "ims_client_secret": "", "ims_org_id": "",
    }
    response = client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    store = StoreConnection.objects.get(pk=integration.store_id)
    assert store.name == "Renamed"
    assert store.access_token == STORE_SECRET_VALUES["access_token"]
    assert store.client_secret == "new-client-secret-42"
