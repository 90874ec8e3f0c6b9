"""The Adobe Commerce client against a real HTTP server that checks requests as Magento does
(``fake_store``): OAuth 1.0a HMAC-SHA256 with the query in the signature, the bearer opt-in and its
misleading 401, clock skew, IMS tokens (expiry, revocation), searchCriteria paging, 429, TLS
settings, stock batches; and every request the client sent validates against the shipped specs."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from types import SimpleNamespace

import pytest

from connector.adobe.adapter import AdobeCommerceAdapter
from connector.adobe.client import (
    BEARER,
    IMS,
    OAUTH1,
    AdobeCommerceClient,
    Filter,
    ImsToken,
    OAuth1Credentials,
    search_params,
    signature_base_string,
)
from connector.adobe.connection import check_connection
from connector.commerce import StockLevel
from mlcommon.http import AuthError, PermanentError

from .fake_store import FakeAdobe
from .spec_contract import violations


def _order(entity_id: int, updated: str = "2026-03-02 10:00:00") -> dict:
    return {"entity_id": entity_id, "increment_id": f"{entity_id:09d}", "state": "processing", "grand_total": 12,
            "base_grand_total": 12, "customer_email": "a@example.com", "items": [{"sku": "MUG-WHT"}],
            "updated_at": updated, "created_at": updated}


@pytest.fixture
def fake():
    with FakeAdobe() as store:
        yield store


@pytest.fixture
def accs():
    with FakeAdobe(accs=True) as store:
        yield store


def paas(fake: FakeAdobe, auth=OAUTH1, **overrides) -> AdobeCommerceClient:
    creds = OAuth1Credentials(fake.consumer_key, fake.consumer_secret, fake.token, fake.token_secret)
    if overrides:
        creds = OAuth1Credentials(**{**creds.__dict__, **overrides})
    client = AdobeCommerceClient(fake.base_url, auth=auth, store_code="default", oauth1=creds)
    client.sleep = lambda seconds: None
    return client


def cloud(fake: FakeAdobe) -> AdobeCommerceClient:
    ims = ImsToken(fake.ims_client_id, fake.ims_secret, fake.ims_org, token_url=f"{fake.root}/ims/token/v3")
    client = AdobeCommerceClient(fake.base_url, auth=IMS, store_code="default", ims=ims)
    client.sleep = lambda seconds: None
    return client


def test_base_string_is_rfc5849s_example():
    # RFC 5849 §3.4.1.1: query, form body and oauth parameters, encoded twice where it says so.
    oauth = {"oauth_consumer_key": "9djdj82h48djs9d2", "oauth_token": "kkk9d7dh3k39sjv7",
             "oauth_signature_method": "HMAC-SHA1", "oauth_timestamp": "137131201", "oauth_nonce": "7d8f3e4a"}
    got = signature_base_string("POST", "http://Example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b", oauth,
                                extra=[("c2", ""), ("a3", "2 q")])
    assert got == ("POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D"
                   "%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26"
                   "oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7")


def test_signed_search_with_brackets_in_the_query_is_accepted(fake):
    for n in range(1, 6):
        fake.orders[n] = _order(n, f"2026-03-0{n} 10:00:00")
    client = paas(fake)
    found = list(client.changed("/V1/orders", dt.datetime(2026, 3, 2, tzinfo=dt.UTC),
                                dt.datetime(2026, 3, 4, 23, 0, tzinfo=dt.UTC)))
    assert [o["entity_id"] for o in found] == [2, 3, 4]
    request = fake.requests[-1]
    assert request["headers"]["Authorization"].startswith("OAuth ")
    assert 'oauth_signature_method="HMAC-SHA256"' in request["headers"]["Authorization"]
    query = dict(request["query"])
    assert query["searchCriteria[pageSize]"] == "300"
    assert query["searchCriteria[sortOrders][0][direction]"] == "ASC"
    assert client.get_order(3)["entity_id"] == 3


def test_a_wrong_secret_is_explained_as_a_signature_problem(fake):
    with pytest.raises(AuthError) as caught:
        paas(fake, consumer_secret="wrong").get_order(1)
    assert "signature is invalid" in str(caught.value)
    assert "base URL's scheme and host" in str(caught.value)


def test_clock_skew_is_named(fake):
    fake.clock_offset = 3600
    with pytest.raises(AuthError) as caught:
        paas(fake).get_order(1)
    assert "Clock skew" in str(caught.value) and "NTP" in str(caught.value)


def test_bearer_refused_by_2_4_4_is_explained_as_the_setting_not_acl(fake):
    fake.orders[1] = _order(1)
    with pytest.raises(AuthError) as caught:
        paas(fake, auth=BEARER).get_order(1)
    text = str(caught.value)
    assert "Magento_Sales::sales" in text  # the resource filled into Magento's template
    assert "not an ACL problem" in text and "enable_integration_as_bearer" in text
    fake.bearer_enabled = True
    assert paas(fake, auth=BEARER).get_order(1)["entity_id"] == 1
    assert fake.requests[-1]["headers"]["Authorization"] == f"Bearer {fake.token}"


def test_the_same_401_under_oauth_is_an_acl_problem(fake):
    with pytest.raises(AuthError) as caught:
        paas(fake, access_token="other").get_order(1)
    assert "lacks an API permission" in str(caught.value)


def test_page_size_is_capped_and_paging_stops_on_total_count(fake):
    for n in range(1, 651):
        fake.orders[n] = _order(n)
    client = paas(fake)
    ids = [o["entity_id"] for o in client.search("/V1/orders", fields="items[entity_id]")]
    assert ids == list(range(1, 651))
    pages = fake.requests[-3:]
    assert len(fake.requests) == 3  # 300 + 300 + 50: no call past the last page
    assert [dict(r["query"])["searchCriteria[currentPage]"] for r in pages] == ["1", "2", "3"]
    assert all(dict(r["query"])["fields"] == "items[entity_id],total_count" for r in pages)
    with pytest.raises(ValueError):
        search_params(page_size=301)
    with pytest.raises(ValueError):
        search_params(sort=[("entity_id", "")])


def test_page_size_error_from_the_store_is_permanent_and_readable(fake):
    client = paas(fake)
    with pytest.raises(PermanentError) as caught:
        client.get("/V1/orders", params=[("searchCriteria[pageSize]", 500)])
    assert "Maximum SearchCriteria pageSize is 300" in str(caught.value)


def test_429_is_retried_after_retry_after(fake):
    fake.orders[1] = _order(1)
    fake.throttle_next = 2
    client = paas(fake)
    slept = []
    client.sleep = slept.append
    assert client.get_order(1)["entity_id"] == 1
    assert slept == [0.0, 0.0]


def test_ims_token_headers_expiry_and_one_refresh_on_401(accs):
    accs.orders[1] = _order(1)
    client = cloud(accs)
    assert client.get_order(1)["entity_id"] == 1
    headers = accs.requests[-1]["headers"]
    assert headers["x-api-key"] == accs.ims_client_id and headers["x-gw-ims-org-id"] == accs.ims_org
    assert headers["Store"] == "default"
    assert accs.requests[-1]["path"] == "/tenant42/V1/orders/1"  # no /rest, no store code in the path
    client.get_order(1)
    assert client.ims.fetched == 1  # reused while valid
    client.ims.expires_at = time.time() + 60  # within the refresh margin
    client.get_order(1)
    assert client.ims.fetched == 2
    accs.revoke_ims = True
    assert client.get_order(1)["entity_id"] == 1
    assert client.ims.fetched == 3


def test_bad_ims_credentials_say_what_to_check(accs):
    client = cloud(accs)
    client.ims.client_secret = "wrong"
    with pytest.raises(PermanentError) as caught:
        client.get_order(1)
    assert "Developer Console" in str(caught.value)


def test_tls_settings_per_connection():
    store = SimpleNamespace(adobe_auth="oauth1", consumer_key="a", consumer_secret="b", access_token="c",
                            access_token_secret="d", ims_client_id="", ims_client_secret="", ims_org_id="",
                            base_url="https://shop.example", store_code="default", verify_tls=False,
                            tls_ca_bundle="", ims_token_url="")
    assert AdobeCommerceClient.for_store(store).session.verify is False
    store.verify_tls, store.tls_ca_bundle = True, "/etc/ssl/private-ca.pem"
    assert AdobeCommerceClient.for_store(store).session.verify == "/etc/ssl/private-ca.pem"
    store.tls_ca_bundle = ""
    assert AdobeCommerceClient.for_store(store).session.verify is True


def test_stock_push_batches_source_items_and_finds_unknown_skus(fake):
    adapter = AdobeCommerceAdapter(paas(fake))
    levels = [StockLevel(f"SKU-{n}", Decimal(n)) for n in range(8)] + [StockLevel("UNKNOWN-1", Decimal(3))]
    assert adapter.push_stock(levels) == {"UNKNOWN-1"}
    assert fake.source_items["SKU-5"] == {"sku": "SKU-5", "source_code": "default", "quantity": 5, "status": 1}
    assert fake.source_items["SKU-0"]["status"] == 0


def test_stock_push_skips_unknown_skus_in_a_constant_number_of_calls(fake):
    """100 SKUs the catalog lacks beside 10 it has: the refused batch, one product search for its
    SKUs, the batch again without the unknown ones; not one split per unknown SKU."""
    adapter = AdobeCommerceAdapter(paas(fake))
    unknown = [StockLevel(f"UNKNOWN-{n}", Decimal(1)) for n in range(100)]
    known = [StockLevel(f"SKU-{n}", Decimal(n + 1)) for n in range(10)]
    assert adapter.push_stock(unknown + known) == {level.sku for level in unknown}
    assert adapter.request_count == 3 and fake.product_searches == 1
    assert sorted(fake.source_items) == sorted(level.sku for level in known)
    [search] = [r for r in fake.requests if r["path"].endswith("/V1/products")]
    assert dict(search["query"])["fields"] == "items[sku],total_count"


def test_order_comment_after_posting(fake):
    AdobeCommerceAdapter(paas(fake)).note_posted(7, "INV-1001")
    assert fake.comments == [(7, {"comment": "Posted to Sage as invoice INV-1001.", "is_customer_notified": 0,
                                  "is_visible_on_front": 0, "parent_id": 7})]


def test_test_connection_names_clock_skew(fake):
    fake.clock_offset = 3600
    report = check_connection(None, client=paas(fake))
    assert not report.ok and "Clock skew" in report.message
    fake.clock_offset = 0
    assert check_connection(None, client=paas(fake)).ok


def test_every_request_the_client_sent_validates_against_the_specs(fake, accs):
    for n in range(1, 4):
        fake.orders[n] = _order(n)
        accs.orders[n] = _order(n)
    for store, client, spec in ((fake, paas(fake), "admin-schema-2.4.9.yaml"),
                                (accs, cloud(accs), "accs-schema.yaml")):
        adapter = AdobeCommerceAdapter(client)
        list(adapter.changed_orders(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), dt.datetime(2026, 12, 1, tzinfo=dt.UTC)))
        list(adapter.changed_refunds(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
        adapter.fetch_order(1)
        adapter.order_payments(1)
        adapter.order_refunds(1)
        adapter.fetch_refund(5)
        adapter.note_posted(1, "INV-1")
        adapter.push_stock([StockLevel("SKU-1", Decimal(4))])
        list(client.search("/V1/invoices", [[Filter("order_id", 1), Filter("order_id", 2)]],
                           fields="items[entity_id,order_id]"))
        assert len(store.requests) >= 9
        problems = []
        for request in store.requests:
            path = request["path"].removeprefix("/rest/default").removeprefix("/tenant42")
            problems += violations(spec, request["method"], path, request["query"], request["body"])
        assert problems == []
