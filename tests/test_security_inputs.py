"""Issue 16, items 5 and 6: outbound URLs are not a probe, and CSV in and out is safe."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from accounts.models import SageConnection, StoreConnection
from mappings.models import ItemMapping
from tests.security_world import STORE_TOKEN, action, build_world, messages_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_world()


# -- 5. outbound URLs ------------------------------------------------------------------------------

def _store_form(store, **changes):
    data = {"tenant": store.tenant_id, "name": store.name, "platform": store.platform, "verify_tls": "on",
            "store_hash": store.store_hash, "api_base_url": store.api_base_url, "client_id": store.client_id,
            "access_token": "", "client_secret": "", "base_url": "", "store_code": "default", "adobe_auth": "",
            "consumer_key": "", "consumer_secret": "", "access_token_secret": "", "ims_client_id": "",
            "ims_client_secret": "", "ims_org_id": ""}
    data.update(changes)
    return data


@override_settings(OUTBOUND_ALLOW_PRIVATE_HOSTS=False)
@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "https://127.0.0.1", "https://169.254.169.254/latest",
                                 "https://10.0.0.5", "https://192.168.1.10:8443", "https://[::1]/",
                                 "https://localhost/", "http://93.184.216.34"])
def test_store_api_url_must_be_https_to_a_public_address(client, world, url):
    client.force_login(world.owner)
    store = world.store_a
    response = client.post(f"/admin/accounts/storeconnection/{store.pk}/change/",
                           _store_form(store, api_base_url=url, access_token="new-token"))
    assert response.status_code == 200  # the form again
    assert "errorlist" in response.content.decode()
    store.refresh_from_db()
    assert store.api_base_url == "https://api.bigcommerce.com"


@override_settings(OUTBOUND_ALLOW_PRIVATE_HOSTS=False)
def test_a_new_host_needs_the_secret_typed_again(client, world):
    client.force_login(world.owner)
    store = world.store_a
    url = f"/admin/accounts/storeconnection/{store.pk}/change/"
    response = client.post(url, _store_form(store, api_base_url="https://93.184.216.34"))
    assert "The host of" in response.content.decode() and "enter this again" in response.content.decode()
    store.refresh_from_db()
    assert store.api_base_url == "https://api.bigcommerce.com" and store.access_token == STORE_TOKEN
    response = client.post(url, _store_form(store, api_base_url="https://93.184.216.34", access_token="typed-again"))
    assert response.status_code == 302
    store.refresh_from_db()
    assert store.api_base_url == "https://93.184.216.34" and store.access_token == "typed-again"
    # The same host, another path: nothing to type again.
    response = client.post(url, _store_form(store, api_base_url="https://93.184.216.34/v2-proxy"))
    assert response.status_code == 302


@override_settings(OUTBOUND_ALLOW_PRIVATE_HOSTS=False)
def test_sage_server_and_token_urls_are_checked(client, world):
    client.force_login(world.owner)
    sage = world.sage_a
    data = {"tenant": sage.tenant_id, "name": sage.name, "edition": sage.edition, "transport": sage.transport,
            "verify_tls": "on", "company_path": "", "company_code": "", "server_url": "https://x3.example.com",
            "folder": "SEED", "username": "admin", "password": "", "x3_auth": "oauth", "oauth_client_id": "c",
            "oauth_client_secret": "", "oauth_token_url": "https://169.254.169.254/token", "access_token": "",
            "refresh_token": "", "x3_rest_class": "GACCENTRY", "x3_rest_representation": "GACCENTRY",
            "x3_graphql_endpoint": "", "x3_graphql_mutation": ""}
    response = client.post(f"/admin/accounts/sageconnection/{sage.pk}/change/", data)
    assert response.status_code == 200 and "internal address" in response.content.decode()
    assert SageConnection.objects.get(pk=sage.pk).oauth_token_url == ""


@override_settings(OUTBOUND_ALLOW_PRIVATE_HOSTS=False)
def test_test_connection_refuses_a_stored_internal_url(client, world, monkeypatch):
    from connector.bigcommerce import connection

    sent = []
    monkeypatch.setattr(connection, "test_connection", lambda store, *a: sent.append(store))
    StoreConnection.objects.filter(pk=world.store_a.pk).update(api_base_url="http://169.254.169.254")
    client.force_login(world.accountant)
    response = action(client, "/admin/accounts/storeconnection/", "test_connection", world.store_a.pk)
    assert sent == []
    assert any("not tested" in m for m in messages_of(response))


def test_demo_and_tests_may_use_local_urls(client, world):
    # DEBUG (the demo, the test suite) allows the local emulators.
    client.force_login(world.owner)
    store = world.store_a
    response = client.post(f"/admin/accounts/storeconnection/{store.pk}/change/",
                           _store_form(store, api_base_url="http://127.0.0.1:8765", access_token="t"))
    assert response.status_code == 302


# -- 6. CSV in and out -----------------------------------------------------------------------------

def _upload(content: bytes, name="mappings.csv"):
    return SimpleUploadedFile(name, content, content_type="text/csv")


def _import(client, integration, content: bytes):
    return client.post("/admin/mappings/itemmapping/import-csv/",
                       {"integration": integration.pk, "csv_file": _upload(content)})


def test_export_neutralises_formula_cells(client, world):
    ItemMapping.objects.create(integration=world.integration_a, store_sku="=HYPERLINK(\"http://x\")",
                               sage_code="+1", description="@SUM(A1)")
    ItemMapping.objects.create(integration=world.integration_a, store_sku="-2", sage_code="\tX",
                               description="\rY")
    client.force_login(world.viewer)  # exporting is reading
    pks = ItemMapping.objects.filter(integration=world.integration_a).values_list("pk", flat=True)
    response = action(client, "/admin/mappings/itemmapping/", "export_csv", *pks)
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    cells = [cell for row in rows[1:] for cell in row if cell]
    assert cells and all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in cells), cells
    assert "'=HYPERLINK(\"http://x\")" in cells and "'\tX" in cells


def test_exported_file_imports_back_unchanged(client, world):
    ItemMapping.objects.create(integration=world.integration_a, store_sku="-SKU", sage_code="=CODE")
    client.force_login(world.accountant)
    pks = ItemMapping.objects.filter(integration=world.integration_a).values_list("pk", flat=True)
    exported = action(client, "/admin/mappings/itemmapping/", "export_csv", *pks).content
    ItemMapping.objects.filter(store_sku="-SKU").update(sage_code="CHANGED")
    assert _import(client, world.integration_a, exported).status_code == 302
    assert ItemMapping.objects.get(store_sku="-SKU").sage_code == "=CODE"


def test_import_works_and_resumes(client, world):
    client.force_login(world.accountant)
    response = _import(client, world.integration_a, b"store_sku,sage_code,description\nNEW-1,N1,New\nALPHA-SKU,A2,\n")
    assert response.status_code == 302
    assert ItemMapping.objects.get(store_sku="NEW-1").sage_code == "N1"
    assert ItemMapping.objects.get(store_sku="ALPHA-SKU").sage_code == "A2"


@pytest.mark.parametrize(("content", "says"), [
    (b"store_sku,sage_code\nOK-1,C1\n" + b"X" * 140_000 + b",C2\n", "not valid CSV"),  # over csv's field limit
    (b"store_sku,sage_code\nOK-1,C1\nNUL\x00,C2\n", "NUL bytes"),
    (b"store_sku,sage_code\nOK-1,C1\n\xff\xfe\xfa,C2\n", "not UTF-8"),
    (b"store_sku,sage_code\nOK-1,C1\n,C2\n", "nothing was imported"),  # one bad row: none imported
    (b"sku,code\nOK-1,C1\n", "header row must name"),
])
def test_bad_files_give_a_form_error_and_import_nothing(client, world, content, says):
    client.force_login(world.accountant)
    response = _import(client, world.integration_a, content)
    assert response.status_code == 200
    assert says in response.content.decode()
    assert not ItemMapping.objects.filter(store_sku="OK-1").exists()


@override_settings(MAPPINGS_CSV_MAX_BYTES=1000)
def test_upload_size_is_capped(client, world):
    client.force_login(world.accountant)
    response = _import(client, world.integration_a, b"store_sku,sage_code\n" + b"SKU-1,C1\n" * 200)
    assert response.status_code == 200 and "limit is 1,000" in response.content.decode()
    assert not ItemMapping.objects.filter(store_sku="SKU-1").exists()


@override_settings(MAPPINGS_CSV_MAX_ROWS=5)
def test_upload_rows_are_capped(client, world):
    client.force_login(world.accountant)
    rows = b"".join(b"SKU-%d,C%d\n" % (n, n) for n in range(6))
    response = _import(client, world.integration_a, b"store_sku,sage_code\n" + rows)
    assert response.status_code == 200 and "more than 5 rows" in response.content.decode()
    assert not ItemMapping.objects.filter(store_sku="SKU-1").exists()


def test_import_checks_role_and_tenant(client, world):
    for who in ("viewer", "accountant_a_viewer_b"):
        client.force_login(getattr(world, who))
        target = world.integration_a if who == "viewer" else world.integration_b
        response = _import(client, target, b"store_sku,sage_code\nSNEAKY,X\n")
        assert response.status_code in (200, 302)
    assert not ItemMapping.objects.filter(store_sku="SNEAKY").exists()
    client.force_login(world.owner)
    html = client.get("/admin/mappings/itemmapping/import-csv/").content.decode()
    assert "Alpha shop" in html and "Beta shop" not in html
