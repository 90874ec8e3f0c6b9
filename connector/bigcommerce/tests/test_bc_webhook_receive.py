"""The webhook endpoint: each accepted signature scheme, every rejection, duplicates."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from django.test import Client, override_settings

from connector.bigcommerce import webhooks
from connector.bigcommerce.signatures import SECRET_HEADER, sign_bc, sign_standard, standard_webhooks_key
from connector.models import InboundEvent, SyncRecord
from tests.support.bigcommerce import SANDBOX_SECRET
from tests.support.factories import make_integration

FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def queued(monkeypatch):
    webhooks.forget_receivers()
    sent = []
    monkeypatch.setattr(webhooks, "enqueue_event", sent.append)
    yield sent
    webhooks.forget_receivers()


@pytest.fixture
def integration():
    return make_integration()


def body_of(name="store_order_created", created_at: int | None = None) -> bytes:
    """The documented example delivery, dated now (or ``created_at``): the examples are from 2019,
    older than the replay window deliveries without a signed timestamp must be within."""
    raw = (FIXTURES / f"{name}.json").read_bytes()
    stamp = int(time.time()) if created_at is None else created_at
    return re.sub(rb'"created_at": \d+', b'"created_at": %d' % stamp, raw)


def post(integration, body: bytes, token: str | None = None, **headers):
    client = Client()
    return client.post(f"/webhooks/bigcommerce/{token or integration.webhook_token}/", data=body,
                        content_type="application/json", headers=headers)


def standard_headers(body: bytes, secret=SANDBOX_SECRET, stamp=None, msg_id="msg_1"):
    stamp = int(time.time()) if stamp is None else stamp
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp),
            "webhook-signature": sign_standard(secret, msg_id, stamp, body)}


def nothing_stored():
    return InboundEvent.objects.count() == 0 and SyncRecord.objects.count() == 0


def test_standard_webhooks_signature_is_accepted(integration, queued, django_capture_on_commit_callbacks):
    body = body_of()
    with django_capture_on_commit_callbacks(execute=True):
        response = post(integration, body, **standard_headers(body))
    assert response.status_code == 200 and response.content == b""
    event = InboundEvent.objects.get()
    assert event.signature_scheme == "standard-webhooks"
    assert event.scope == "store/order/created" and event.resource_id == "250"
    assert event.body == body.decode()
    assert queued == [event.pk]
    assert "webhook-signature" not in event.headers


def test_a_stock_delivery_is_noted_when_it_arrives_and_sends_no_task(integration, queued,
                                                                     django_capture_on_commit_callbacks):
    body = body_of("store_sku_inventory_updated")
    with django_capture_on_commit_callbacks(execute=True):
        assert post(integration, body, **standard_headers(body)).status_code == 200
    event = InboundEvent.objects.get()
    assert event.processed_at is not None and event.note == webhooks.STOCK_NOTE
    assert queued == [], "nothing for a worker to do"


def test_the_group_commit_queues_only_the_deliveries_a_worker_must_process(integration, monkeypatch,
                                                                          django_capture_on_commit_callbacks):
    handed = []
    monkeypatch.setattr(webhooks, "enqueue_events", handed.extend)
    # The writer thread's connection hygiene would close the test's transaction-bound connection.
    monkeypatch.setattr(webhooks, "fresh_connection", lambda: None)
    deliveries = []
    for name in ("store_order_created", "store_sku_inventory_updated", "store_product_inventory_updated"):
        body = body_of(name)
        checked = webhooks.admit(webhooks.receiver_for(integration.webhook_token), standard_headers(body), body)
        assert isinstance(checked, webhooks.Delivery)
        deliveries.append(checked)
    with django_capture_on_commit_callbacks(execute=True):
        outcomes = webhooks.store_batch(deliveries)
    assert [o.reason for o in outcomes] == ["stored"] * 3
    order_event = InboundEvent.objects.get(scope="store/order/created")
    assert handed == [order_event.pk] and order_event.processed_at is None
    assert InboundEvent.objects.filter(processed_at__isnull=False).count() == 2


def test_several_signatures_one_valid(integration):
    body = body_of()
    headers = standard_headers(body)
    headers["webhook-signature"] = "v1,AAAA v1,bm90LWl0 " + headers["webhook-signature"]
    assert post(integration, body, **headers).status_code == 200


def test_x_bc_signature_is_accepted(integration):
    body = body_of()
    assert post(integration, body, **{"X-BC-Signature": sign_bc(SANDBOX_SECRET, body)}).status_code == 200
    assert InboundEvent.objects.get().signature_scheme == "x-bc-signature"


def test_secret_header_is_accepted(integration):
    body = body_of()
    assert post(integration, body, **{SECRET_HEADER: integration.webhook_secret}).status_code == 200
    assert InboundEvent.objects.get().signature_scheme == "secret-header"


def test_key_derivation_matches_the_sandbox_store():
    from sandbox.bigcommerce import webhooks as sandbox_hooks

    body = b'{"scope":"x"}'
    assert standard_webhooks_key("s3cret") == sandbox_hooks.standard_webhooks_key("s3cret")
    assert sign_standard("s3cret", "m", 5, body) == sandbox_hooks.standard_webhooks_signature("s3cret", "m", 5, body)
    assert sign_bc("s3cret", body) == sandbox_hooks.x_bc_signature("s3cret", body)


@pytest.mark.parametrize("case", ["wrong secret", "stale", "future", "altered body", "missing", "bc wrong",
                                  "secret header wrong", "bad base64"])
def test_invalid_or_missing_signature_is_401_and_stores_nothing(integration, queued, case):
    body = body_of()
    now = int(time.time())
    headers = {
        "wrong secret": standard_headers(body, secret="not-the-secret"),
        "stale": standard_headers(body, stamp=now - 360),  # margin: the verifier reads the clock later
        "future": standard_headers(body, stamp=now + 360),
        "altered body": standard_headers(body),
        "missing": {},
        "bc wrong": {"X-BC-Signature": sign_bc("other", body)},
        "secret header wrong": {SECRET_HEADER: "guess"},
        "bad base64": {**standard_headers(body), "webhook-signature": "v1,@@@"},
    }[case]
    sent = body.replace(b"250", b"251") if case == "altered body" else body
    response = post(integration, sent, **headers)
    assert response.status_code == 401
    assert nothing_stored() and queued == []


def test_just_inside_the_tolerance_is_accepted(integration):
    body = body_of()
    assert post(integration, body, **standard_headers(body, stamp=int(time.time()) - 290)).status_code == 200


def test_unknown_token_is_404(integration, queued):
    body = body_of()
    assert post(integration, body, token="nope", **{SECRET_HEADER: integration.webhook_secret}).status_code == 404
    assert nothing_stored() and queued == []


def test_inactive_integration_is_404(integration):
    integration.is_active = False
    integration.save()
    body = body_of()
    assert post(integration, body, **{SECRET_HEADER: integration.webhook_secret}).status_code == 404


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"scope": "store/order/created"}',
                                  b'{"data": {"id": 1}}', b'{"scope": "", "data": {}}', b"\xff\xfe"])
def test_malformed_or_incomplete_payload_is_400(integration, queued, body):
    response = post(integration, body, **{"X-BC-Signature": sign_bc(SANDBOX_SECRET, body)})
    assert response.status_code == 400
    assert nothing_stored() and queued == []


@override_settings(WEBHOOK_MAX_BODY_BYTES=200)
def test_body_over_the_limit_is_413(integration, queued):
    payload = json.loads(body_of())
    payload["padding"] = "x" * 500
    body = json.dumps(payload).encode()
    assert post(integration, body, **{"X-BC-Signature": sign_bc(SANDBOX_SECRET, body)}).status_code == 413
    assert nothing_stored() and queued == []


def test_only_post(integration):
    assert Client().get(f"/webhooks/bigcommerce/{integration.webhook_token}/").status_code == 405


def test_duplicate_delivery_is_a_no_op(integration, queued, django_capture_on_commit_callbacks):
    body = body_of()
    with django_capture_on_commit_callbacks(execute=True):
        first = post(integration, body, **standard_headers(body, msg_id="a"))
        again = post(integration, body, **standard_headers(body, msg_id="a"))
        other_sig = post(integration, body, **{SECRET_HEADER: integration.webhook_secret})
    assert [first.status_code, again.status_code, other_sig.status_code] == [200, 200, 200]
    assert InboundEvent.objects.count() == 1
    assert len(queued) == 1


def test_same_hash_at_another_time_is_a_new_event(integration):
    payload = json.loads(body_of())
    now = int(time.time())
    for created in (now - 600, now - 10):
        payload["created_at"] = created
        body = json.dumps(payload).encode()
        assert post(integration, body, **{"X-BC-Signature": sign_bc(SANDBOX_SECRET, body)}).status_code == 200
    assert InboundEvent.objects.count() == 2


def test_dedup_without_hash_uses_scope_id_and_time():
    key = webhooks.dedup_key(7, {"scope": "store/order/updated", "data": {"id": 5}, "created_at": 9})
    assert key == "7:webhook:store/order/updated:5:9"


def test_the_hot_path_looks_the_integration_up_once(integration, django_assert_max_num_queries):
    body = body_of()
    payload = json.loads(body)
    post(integration, body, **{SECRET_HEADER: integration.webhook_secret})  # warms the cache
    payload["created_at"] += 1
    body = json.dumps(payload).encode()
    # One insert (wrapped in a savepoint by the test's transaction): no look-up any more.
    with django_assert_max_num_queries(3):
        assert post(integration, body, **{SECRET_HEADER: integration.webhook_secret}).status_code == 200
