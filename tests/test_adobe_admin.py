"""Adobe Commerce beside BigCommerce in what the accountant and the developer use: the legacy stock
push sends the whole stock item, the I/O Events key host is a checked setting, the paid-state picker
and the channel picker come from the store adapter, the backfill form is store-neutral, and
per-store-view / per-website accounts reach the Sage 50 and Sage X3 documents of Adobe orders."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connector.adobe.adapter import AdobeCommerceAdapter
from connector.adobe.client import OAUTH1, AdobeCommerceClient, OAuth1Credentials
from connector.commerce import StockLevel
from sandbox.adobe.testkit import Adobe
from tests.test_adobe_flow import fake, setup, stock  # noqa: F401  (fixtures)


@pytest.fixture
def sandbox():
    store = Adobe(orders=5, validate=True)
    yield store
    store.close()


def sandbox_adapter(sandbox: Adobe) -> AdobeCommerceAdapter:
    i = sandbox.integration
    client = AdobeCommerceClient(sandbox.root, auth=OAUTH1, store_code="default",
                                 oauth1=OAuth1Credentials(i.consumer_key, i.consumer_secret, i.access_token,
                                                          i.access_token_secret))
    client.sleep = lambda seconds: None
    return AdobeCommerceAdapter(client)


def test_legacy_stock_push_sends_the_whole_stock_item_and_validates_against_the_spec(sandbox):
    assert sandbox.control("POST", "/settings", {"msi_enabled": False}).status_code == 200
    product = next(p for p in sandbox.app.store.products.values() if p.id in sandbox.app.store.stock_items)
    before = sandbox.get(f"stockItems/{product.sku}").json()
    adapter = sandbox_adapter(sandbox)
    assert adapter.push_stock([StockLevel(product.sku, Decimal(7)), StockLevel("NO-SUCH-SKU", Decimal(1))]) \
        == {"NO-SUCH-SKU"}
    after = sandbox.get(f"stockItems/{product.sku}").json()
    assert after["qty"] == 7 and after["is_in_stock"] is True
    # Settings the push does not own come back as they were (a partial body would reset them).
    assert {k: v for k, v in after.items() if k not in ("qty", "is_in_stock", "low_stock_date")} == \
        {k: v for k, v in before.items() if k not in ("qty", "is_in_stock", "low_stock_date")}
    puts = [r for r in sandbox.app.counters if r.startswith("PUT")]
    assert puts, sandbox.app.counters  # the legacy route was the one used
    assert sandbox.control("GET", "/violations").json()["count"] == 0


# -- the I/O Events key host --------------------------------------------------------------------
@pytest.fixture
def key_host():
    """A real HTTP server serving one RSA public key at Adobe's key path shape."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    served = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            served.append(self.path)
            ok = self.path == "/prod/keys/pub-key-1.pem"
            self.send_response(200 if ok else 404)
            body = pem if ok else b"not found"
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield {"url": f"http://127.0.0.1:{httpd.server_address[1]}", "key": key, "served": served}
    httpd.shutdown()
    httpd.server_close()


def test_io_events_keys_come_from_the_configured_host_checked_like_any_outbound_url(setup, client, key_host,  # noqa: F811
                                                                                    settings):
    import base64
    import json

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    from django.core.cache import cache

    from connector.models import InboundEvent

    cache.clear()
    token = setup.integration.webhook_token
    body = json.dumps({"event_id": "io-host-1", "type": "com.adobe.commerce.observer.sales_order_save_commit_after",
                       "data": {"value": {"entity_id": 5}}}).encode()
    signature = base64.b64encode(key_host["key"].sign(body, padding.PKCS1v15(), hashes.SHA256())).decode()
    headers = {"x-adobe-digital-signature-1": signature, "x-adobe-public-key1-path": "/prod/keys/pub-key-1.pem"}

    def post():
        return client.post(f"/webhooks/adobe/{token}/", data=body, content_type="application/json", headers=headers)

    # A plain-http key host on this machine is refused where outbound URLs must be public https.
    settings.ADOBE_IO_KEY_HOST, settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = key_host["url"], False
    refused = post()
    assert refused.status_code == 503 and b"key host" in refused.content and key_host["served"] == []
    # Allowed (the demo, the tests): the key is fetched there and the delivery verifies.
    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = True
    assert post().status_code == 200
    assert key_host["served"] == ["/prod/keys/pub-key-1.pem"]
    assert InboundEvent.objects.filter(integration=setup.integration, dedup_key__contains="io-host-1").count() == 1


def test_the_default_io_key_host_is_adobes(settings):
    from connector.adobe import webhooks

    assert settings.ADOBE_IO_KEY_HOST == "https://static.adobeioevents.com"
    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = False
    assert webhooks.io_key_host() == "https://static.adobeioevents.com"


# -- the store-neutral backfill form --------------------------------------------------------------
def test_backfill_form_starts_an_adobe_run_whose_progress_shows(setup, fake, admin_client,  # noqa: F811
                                                                django_capture_on_commit_callbacks):
    from connector.adobe.tasks import backfill
    from connector.models import SyncRecord, SyncRun

    for n, shape in enumerate(("single_line", "multi_line_quantity", "creditmemo_partial_item")):
        stock(fake, 3001 + n, shape, updated=f"2026-06-0{n + 1} 10:00:00")
    changelist = "/admin/accounts/integration/"
    form = admin_client.post(changelist, {"action": "backfill_orders", "_selected_action": [setup.integration.pk]})
    assert form.status_code == 200 and b"Start backfill" in form.content and b"(Adobe Commerce)" in form.content
    wrong = admin_client.post(changelist, {"action": "backfill_orders", "_selected_action": [setup.integration.pk],
                                           "apply": "1", "since": "2026-06-10", "until": "2026-06-01"})
    assert b"The last day is before the first." in wrong.content and not SyncRun.objects.filter(
        kind=SyncRun.Kind.BACKFILL).exists()
    with django_capture_on_commit_callbacks(execute=False) as sent:
        answer = admin_client.post(changelist, {"action": "backfill_orders", "apply": "1", "since": "2026-03-01",
                                                "until": "2026-06-30", "_selected_action": [setup.integration.pk]},
                                   follow=True)
    assert "backfill of the Adobe Commerce store started" in answer.content.decode()
    run = SyncRun.objects.get(kind=SyncRun.Kind.BACKFILL, integration=setup.integration)
    assert len(sent) == 1 and run.params["since"].startswith("2026-03-01")
    # What the worker does with the message: the Adobe package's backfill task, by the run's id.
    assert "4 record(s) read" in backfill(setup.integration.pk, run.params["since"], run.params["until"], run.pk)
    run.refresh_from_db()
    assert run.state == SyncRun.State.DONE and run.total == run.seen == 4  # 3 orders, 1 credit memo
    assert SyncRecord.objects.filter(integration=setup.integration).count() == 4
    page = admin_client.get(f"/admin/connector/syncrun/{run.pk}/change/").content.decode()
    assert "4 / 4 (100 %)" in page and "from 01 Mar 2026 to 30 Jun 2026" in page
    assert '"since"' not in page and 'name="_save"' not in page  # no JSON, nothing to edit
    assert backfill(setup.integration.pk, run.params["since"], run.params["until"], run.pk) == "already done"


def test_backfill_of_a_bigcommerce_integration_goes_to_its_own_task(db, admin_client,
                                                                     django_capture_on_commit_callbacks, tmp_path,
                                                                     monkeypatch):
    from connector.models import SyncRun
    from demo import seed as demo

    seed = demo.seed_demo(store_url="http://127.0.0.1:9", company_path=tmp_path / "c.sqlite3", skus=["A"])
    sent = []

    class Task:
        def __init__(self, name):
            self.name = name

        def delay(self, *args):
            sent.append((self.name, args))

    monkeypatch.setattr("connector.flows.backfill_admin.task_named", Task)
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post("/admin/accounts/integration/", {"action": "backfill_orders", "apply": "1",
                                                            "since": "2026-05-01",
                                                            "_selected_action": [seed.integration.pk]})
    run = SyncRun.objects.get(kind=SyncRun.Kind.BACKFILL, integration=seed.integration)
    assert sent == [("connector.bigcommerce.backfill", (seed.integration.pk, run.params["since"], None, run.pk))]


# -- store views and websites as channels of the account mappings -------------------------------
def point_at_sandbox(store, sandbox: Adobe) -> None:
    i = sandbox.integration
    store.base_url = sandbox.root
    store.consumer_key, store.consumer_secret = i.consumer_key, i.consumer_secret
    store.access_token, store.access_token_secret = i.access_token, i.access_token_secret
    store.save()


def test_adobe_channels_are_websites_and_their_store_views(sandbox):
    from connector.adobe.adapter import website_channel_id
    from connector.stores import SalesChannel

    channels = sandbox_adapter(sandbox).sales_channels()
    assert SalesChannel(website_channel_id(1), "Main Website", "website") in channels
    assert SalesChannel(website_channel_id(2), "UK Website", "website") in channels
    views = {c.channel_id: c for c in channels if c.kind == "store view"}
    assert sorted(views) == [1, 2, 3]  # not the admin view 0
    assert views[2].parent_id == website_channel_id(1) and views[3].parent_id == website_channel_id(2)
    assert sandbox.control("GET", "/violations").json()["count"] == 0


def test_channel_picker_offers_the_adobe_store_views_and_websites(setup, sandbox, admin_client):  # noqa: F811
    from django.core.cache import cache

    from accounts.models import StoreConnection
    from mappings.models import AccountMapping

    cache.clear()  # the store's channels are read at most once a minute per store id
    store = setup.integration.store
    point_at_sandbox(store, sandbox)
    page = admin_client.get(f"/admin/accounts/integration/{setup.integration.pk}/change/").content.decode()
    assert "100002 — website UK Website" in page and "3 — store view" in page and "(in website UK Website)" in page
    # What the page read is kept on the connection: the mapping lookups use it without the store.
    assert {c["channel_id"] for c in StoreConnection.objects.get(pk=store.pk).sales_channels} >= {1, 2, 3, 100001,
                                                                                                  100002}
    row = AccountMapping.objects.create(integration=setup.integration, channel_id=100002, purpose="revenue",
                                        account_code="4010")
    form = admin_client.get(f"/admin/mappings/accountmapping/{row.pk}/change/").content.decode()
    assert '<option value="100002" selected>' in form and "store view" in form
    # The store cannot be read: the page still opens, from the list kept last time.
    StoreConnection.objects.filter(pk=store.pk).update(base_url="http://127.0.0.1:9")
    assert "100002 — website UK Website" in admin_client.get(
        f"/admin/accounts/integration/{setup.integration.pk}/change/").content.decode()


def _adobe_channels_snapshot(store) -> None:
    from accounts.models import StoreConnection

    StoreConnection.objects.filter(pk=store.pk).update(sales_channels=[
        {"channel_id": 100001, "name": "Main Website", "kind": "website", "parent_id": None},
        {"channel_id": 100002, "name": "UK Website", "kind": "website", "parent_id": None},
        {"channel_id": 1, "name": "Default Store View", "kind": "store view", "parent_id": 100001},
        {"channel_id": 3, "name": "UK Store View", "kind": "store view", "parent_id": 100002}])


def test_sage50_invoices_of_adobe_orders_use_their_store_view_then_website_accounts(setup, fake):  # noqa: F811
    from connector.adobe.poller import poll_integration
    from connector.models import SyncRecord
    from mappings.models import AccountMapping
    from tests.test_adobe_flow import run_all

    _adobe_channels_snapshot(setup.integration.store)
    AccountMapping.objects.bulk_create([
        AccountMapping(integration=setup.integration, channel_id=100002, purpose="revenue", account_code="4010"),
        AccountMapping(integration=setup.integration, channel_id=100002, purpose="bank", account_code="1220"),
        AccountMapping(integration=setup.integration, channel_id=3, purpose="bank", account_code="1210")])
    uk = stock(fake, 4001, "store_view_channel")  # store view 3, in the UK website
    assert uk["store_id"] == 3
    default = stock(fake, 4002, "single_line")
    assert default.get("store_id", 1) == 1
    poll_integration(setup.integration)
    run_all(setup)
    uk_record = SyncRecord.objects.get(integration=setup.integration, external_id="4001")
    default_record = SyncRecord.objects.get(integration=setup.integration, external_id="4002")
    assert uk_record.state == default_record.state == SyncRecord.State.POSTED, (uk_record.message,
                                                                                  default_record.message)

    def accounts(record) -> set[str]:
        document = record.document
        return ({str(line.get("nominal_code")) for line in document["invoice"]["lines"]}
                | {str(t.get("bank_account")) for t in document["invoice"]["tenders"]}
                | {str(r.get("bank_account")) for r in document.get("receipts") or []})

    uk, default = accounts(uk_record), accounts(default_record)
    assert {"4010", "1210"} <= uk and "1220" not in uk, uk_record.document  # the view's own over its website's
    assert not {"4010", "1210", "1220"} & default and "1200" in default, default_record.document


def test_x3_journal_entries_of_adobe_orders_use_their_store_view_then_website_accounts(setup):  # noqa: F811
    from accounts.models import SageConnection
    from connector.flows import x3
    from mappings.models import AccountMapping
    from tests.test_adobe_flow import golden

    SageConnection.objects.filter(pk=setup.integration.sage_id).update(edition=SageConnection.Edition.SAGEX3)
    integration = type(setup.integration).objects.select_related("store", "sage").get(pk=setup.integration.pk)
    _adobe_channels_snapshot(integration.store)
    AccountMapping.objects.filter(integration=integration).delete()
    defaults = {"revenue": "706000", "tax": "445710", "shipping": "708500", "discount": "709000",
                "receivable": "411000", "bank": "512000", "rounding": "658000", "gift_certificate": "419100",
                "store_credit": "419200", "handling": "708600", "wrapping": "708700", "business_partner": "WEB"}
    AccountMapping.objects.bulk_create(
        [AccountMapping(integration=integration, channel_id=0, purpose=p, account_code=c) for p, c in defaults.items()]
        + [AccountMapping(integration=integration, channel_id=100002, purpose="revenue", account_code="706UK"),
           AccountMapping(integration=integration, channel_id=100002, purpose="receivable", account_code="411UK"),
           AccountMapping(integration=integration, channel_id=3, purpose="receivable", account_code="411V3")])
    uk = {**golden("store_view_channel")["input"]["order"], "entity_id": 5001}
    main = {**golden("single_line")["input"]["order"], "entity_id": 5002}

    def accounts(order) -> set[str]:
        return {line.account for line in x3.build_entry_for_order(integration, order).lines}

    assert {"706UK", "411V3"} <= accounts(uk) and "411UK" not in accounts(uk)  # the view's own over its website's
    assert not {"706UK", "411UK", "411V3"} & accounts(main) and "706000" in accounts(main)


def test_an_adobe_credit_memo_row_shows_its_order_currency(setup, fake, admin_client):  # noqa: F811
    from connector.adobe.poller import poll_integration
    from connector.models import SyncRecord

    stock(fake, 6001, "creditmemo_partial_item")  # a GBP order and its credit memo
    poll_integration(setup.integration)
    memo = SyncRecord.objects.get(integration=setup.integration, kind=SyncRecord.Kind.REFUND)
    page = admin_client.get(f"/admin/connector/syncrecord/?q={memo.external_id}").content.decode()
    row = page[page.index('<tbody'):page.index('</tbody>')]
    assert "GBP " in row, row
