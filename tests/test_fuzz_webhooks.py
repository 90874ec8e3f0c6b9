"""Fuzzing everything a client can send to POST /webhooks/bigcommerce/<token>/: bodies (random
bytes, non-UTF-8, JSON of every shape, too large), headers and signatures (none, garbage, valid for
another body or key, stale and future timestamps, valid). Never a 500; anything not genuinely
signed is 401 and stores nothing (a body over the size limit is 413, refused before it is read);
a signed delivery of the wrong shape is 400 and stores nothing. Both receiving paths: the Django view (test client) and the ASGI lane uvicorn uses."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from django.conf import settings
from django.test import Client
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from connector.bigcommerce import webhooks
from connector.bigcommerce.ingest_asgi import with_webhook_lane
from connector.bigcommerce.signatures import SECRET_HEADER, sign_bc, sign_standard
from connector.models import InboundEvent
from tests.support.bigcommerce import SANDBOX_SECRET
from tests.support.factories import make_integration

pytestmark = pytest.mark.django_db
FUZZ = hsettings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
payloads = st.one_of(
    json_values,
    st.fixed_dictionaries({"scope": st.one_of(st.text(max_size=120), json_values),
                           "data": st.one_of(st.dictionaries(st.text(max_size=8), json_values, max_size=3), json_values)},
                          optional={"hash": json_values, "created_at": json_values, "store_id": json_values}),
)
bodies = st.one_of(
    st.binary(max_size=600),
    payloads.map(lambda value: json.dumps(value).encode()),
    payloads.map(lambda value: json.dumps(value).encode("utf-16")),  # valid JSON, not UTF-8
    st.builds(lambda head, tail: head + tail, payloads.map(lambda v: json.dumps(v).encode()),
              st.sampled_from([b"\xff", b"\x00", b"\xc3\x28", b"}"])),
)
header_text = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
noise_headers = st.dictionaries(
    st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature", "X-BC-Signature", SECRET_HEADER,
                     "User-Agent", "X-Forwarded-For"]), header_text, max_size=5)
SIGNING = ["none", "noise", "standard", "standard-stale", "standard-future", "standard-other-key", "bc", "bc-other-body",
           "bc-base64-garbage", "secret", "secret-wrong"]
VALID = {"standard", "bc", "secret"}


def signed_headers(mode: str, body: bytes, hook_secret: str, noise: dict, msg_id: str = "msg_1") -> dict:
    now = int(time.time())
    if mode == "none":
        return {}
    if mode == "noise":
        return noise
    if mode.startswith("standard"):
        stamp = {"standard-stale": now - 600, "standard-future": now + 600}.get(mode, now)
        key = "not-the-secret" if mode == "standard-other-key" else SANDBOX_SECRET
        return {"webhook-id": msg_id, "webhook-timestamp": str(stamp),
                "webhook-signature": sign_standard(key, msg_id, stamp, body)}
    if mode == "bc":
        return {"X-BC-Signature": sign_bc(SANDBOX_SECRET, body)}
    if mode == "bc-other-body":
        return {"X-BC-Signature": sign_bc(SANDBOX_SECRET, body + b" ")}
    if mode == "bc-base64-garbage":
        return {"X-BC-Signature": "sha256=" + "A" * 43 + "@"}
    if mode == "secret":
        return {SECRET_HEADER: hook_secret}
    return {SECRET_HEADER: hook_secret[:-1] + ("x" if hook_secret[-1] != "x" else "y")}


@pytest.fixture
def integration(monkeypatch):
    webhooks.forget_receivers()
    monkeypatch.setattr(webhooks, "enqueue_event", lambda event_id: None)
    yield make_integration()
    webhooks.forget_receivers()


def check(status: int, mode: str, size: int, before: int, after: int) -> None:
    assert status != 500
    if size > settings.WEBHOOK_MAX_BODY_BYTES:
        # Refused on Content-Length, before the body is read: a signature over a body we will not
        # read cannot be checked, and reading it is the work a flood wants us to do.
        assert status == 413
        assert after == before
    elif mode not in VALID:
        assert status == 401, mode
        assert after == before
    else:
        assert status in (200, 400, 413)
        if status != 200:
            assert after == before


@FUZZ
@given(body=bodies, mode=st.sampled_from(SIGNING), noise=noise_headers,
       content_type=st.sampled_from(["application/json", "text/plain", "application/octet-stream", ""]))
@example(body=b"x" * 1_048_577, mode="bc", noise={}, content_type="application/json")
@example(body=b"x" * 1_048_577, mode="none", noise={}, content_type="application/json")
@example(body=json.dumps({"scope": "store/order/created", "data": {"id": 1}}).encode("utf-16"), mode="bc", noise={},
         content_type="application/json")
@example(body=b'{"scope": "s", "data": {}}', mode="standard-stale", noise={}, content_type="application/json")
def test_view_never_500_and_stores_only_signed_well_formed(integration, body, mode, noise, content_type):
    client = Client()
    before = InboundEvent.objects.count()
    headers = signed_headers(mode, body, integration.webhook_secret, noise)
    response = client.post(integration.webhook_path, data=body, content_type=content_type, headers=headers)
    check(response.status_code, mode, len(body), before, InboundEvent.objects.count())


@FUZZ
@given(token=st.text(st.characters(min_codepoint=33, max_codepoint=126, exclude_characters="/?#%"), max_size=40),
       body=st.binary(max_size=200))
def test_unknown_tokens_are_404_and_store_nothing(integration, token, body):
    response = Client().post(f"/webhooks/bigcommerce/{token}x/", data=body, content_type="application/json",
                             headers={"X-BC-Signature": sign_bc(SANDBOX_SECRET, body)})
    assert response.status_code == 404
    assert InboundEvent.objects.count() == 0


def lane_post(app, path: str, body: bytes, headers: dict, chunk: int) -> int:
    """One request through the ASGI lane, the body sent in ``chunk``-sized messages."""
    sent = []
    parts = [body[i:i + chunk] for i in range(0, len(body), chunk)] or [b""]

    async def receive():
        piece = parts.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(parts)}

    async def send(message):
        sent.append(message)

    raw = [(b"host", b"127.0.0.1")] + [(k.lower().encode(), v.encode("latin-1")) for k, v in headers.items()]
    scope = {"type": "http", "method": "POST", "path": path, "headers": raw, "query_string": b""}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"]


@FUZZ
@given(body=bodies, mode=st.sampled_from([m for m in SIGNING if m not in VALID]), noise=noise_headers,
       chunk=st.integers(1, 4096))
@example(body=b"x" * 1_048_577, mode="none", noise={}, chunk=65536)
def test_asgi_lane_rejects_unsigned_before_any_work(integration, body, mode, noise, chunk):
    """The lane's valid deliveries are written by its writer thread (see the burst test); here
    every request is forged, so nothing may reach the database at all."""
    webhooks.receiver_for(integration.webhook_token)  # cached now: the lane needs no database read
    app = with_webhook_lane(None)
    status = lane_post(app, integration.webhook_path, body, signed_headers(mode, body, integration.webhook_secret, noise),
                       chunk)
    expected = 413 if len(body) > settings.WEBHOOK_MAX_BODY_BYTES else 401
    assert status == expected
    assert InboundEvent.objects.count() == 0


def test_asgi_lane_leaves_other_routes_to_django():
    calls = []

    async def django_app(scope, receive, send):
        calls.append(scope["path"])

    app = with_webhook_lane(django_app)
    for method, path in [("GET", "/webhooks/bigcommerce/abc/"), ("POST", "/webhooks/bigcommerce/abc"),
                         ("POST", "/webhooks/bigcommerce/a/b/"), ("POST", "/webhooks/bigcommerce//"),
                         ("POST", "/agent/v1/heartbeat")]:
        asyncio.run(app({"type": "http", "method": method, "path": path, "headers": []}, None, None))
    assert len(calls) == 5
