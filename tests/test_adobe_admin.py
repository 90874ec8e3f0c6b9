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
        stock(fake, 3001 + n, shape, updated="2026-06-0%d 10:00:00" % (n + 1))
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
    assert "4 / 4 (100 %)" in page
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
