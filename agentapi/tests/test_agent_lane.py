"""The ASGI lane for lease and batch complete (agentapi/lane.py), driven as uvicorn drives the web
process: connector.asgi's composed application, called with scope/receive/send. Every answer must
equal Django's own for the same request (status, headers, body), and whatever the lane does not
take must reach Django unchanged. Whether Django saw a request: its handler sends request_started,
the lane does not. The lease and complete work runs on other threads: transactional_db."""

from __future__ import annotations

import asyncio
import json
import os
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_started
from django.utils import timezone

from agentapi import auth
from agentapi.lane import with_agent_lane
from agentapi.tests.factories import make_agent, make_job
from connector.models import AgentJob, AuditEntry
from tests.support.factories import make_integration

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = "/agent/v1/jobs/lease"
COMPLETE = "/agent/v1/jobs/complete"
ADDRESS = "10.20.30.40"


def _composed():
    """connector.asgi's applications. Importing it sets DB_POOL for the web process; put back."""
    before = os.environ.get("DB_POOL")
    from connector.asgi import application, django_application
    if before is None:
        os.environ.pop("DB_POOL", None)
    else:
        os.environ["DB_POOL"] = before
    return SimpleNamespace(lane=application, django=django_application)


@pytest.fixture(scope="module")
def apps():
    return _composed()


@pytest.fixture(autouse=True)
def no_lockout_of_our_address():
    auth.unlock_address(ADDRESS)
    yield
    auth.unlock_address(ADDRESS)


@pytest.fixture
def frozen_clock(monkeypatch):
    """The throttle and lock-out windows at one instant, so Retry-After is the same on both paths."""
    monkeypatch.setattr(auth, "time", SimpleNamespace(time=lambda: 1_800_000_000.25))


@contextmanager
def django_requests():
    """Counts the requests Django's handler served (it sends request_started; the lane does not)."""
    seen = []

    def count(**kwargs):
        seen.append(kwargs)

    request_started.connect(count, weak=False)
    try:
        yield seen
    finally:
        request_started.disconnect(count)


def call(app, path: str, body: bytes = b"", headers: dict | None = None, *, method: str = "POST",
         content_length: bool = True, scheme: str = "http", disconnect: bool = False):
    """One request; (status, headers as a lower-cased dict, body). After the body, receive()
    waits until the application stops listening, or says the client went away (``disconnect``)."""
    sent = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        if pending:
            return pending.pop()
        if disconnect:
            return {"type": "http.disconnect"}
        await asyncio.Event().wait()  # the client stays: never returns, cancelled by the application

    async def send(message):
        sent.append(message)

    raw = {"host": "127.0.0.1", **(headers or {})}
    if content_length and method == "POST":
        raw["content-length"] = str(len(body))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": scheme,
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in raw.items()],
             "client": (ADDRESS, 51000), "server": ("127.0.0.1", 8000)}
    asyncio.run(app(scope, receive, send))
    if not sent:
        return None
    start = sent[0]
    answer_headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start["headers"]}
    return start["status"], answer_headers, b"".join(m.get("body", b"") for m in sent[1:])


def agent_headers(key: str, **extra) -> dict:
    return {"authorization": f"Bearer {key}", "content-type": "application/json", "accept": "application/json",
            **extra}


def as_json(value) -> bytes:
    return json.dumps(value).encode()


def same_on_both_paths(apps, path: str, body: bytes, headers: dict, *, prepare=lambda: None):
    """The answer through Django alone and through the lane (``prepare`` resets state before each);
    asserts they are equal, and that Django served only the first. Returns the lane's answer."""
    prepare()
    with django_requests() as seen:
        by_django = call(apps.django, path, body, headers)
    assert len(seen) == 1
    prepare()
    with django_requests() as seen:
        by_lane = call(apps.lane, path, body, headers)
    assert seen == [], "the lane handed this request to Django"
    assert by_lane == by_django
    return by_lane


@pytest.fixture
def agent_key():
    integration = make_integration()
    agent, key = make_agent(integration)
    return SimpleNamespace(integration=integration, agent=agent, key=key)


def test_lease_through_the_lane_returns_a_job_with_django_headers(apps, agent_key):
    job = make_job(agent_key.integration)
    with django_requests() as seen:
        status, headers, body = call(apps.lane, LEASE, as_json({"wait_seconds": 0}), agent_headers(agent_key.key))
    assert seen == []
    assert status == 200
    leased = json.loads(body)["jobs"]
    assert [j["id"] for j in leased] == [job.pk] and leased[0]["lease_token"]
    job.refresh_from_db()
    assert job.state == AgentJob.State.LEASED and job.lease_token == leased[0]["lease_token"]
    # The same headers Django sends for a leased job (the bodies differ only in the job and its token).
    make_job(agent_key.integration)
    django_status, django_headers, _ = call(apps.django, LEASE, as_json({"wait_seconds": 0}),
                                            agent_headers(agent_key.key))
    assert django_status == 200
    assert {k: v for k, v in headers.items() if k != "content-length"} == {
        k: v for k, v in django_headers.items() if k != "content-length"}
    assert headers["content-type"] == "application/json" and headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY" and "referrer-policy" in headers
    assert "cross-origin-opener-policy" in headers


def test_lease_with_no_job_and_no_wait_is_empty(apps, agent_key):
    status, _, body = same_on_both_paths(apps, LEASE, as_json({"wait_seconds": 0}), agent_headers(agent_key.key))
    assert status == 200 and json.loads(body) == {"jobs": []}


@pytest.mark.parametrize("path", [LEASE, COMPLETE])
def test_wrong_missing_and_revoked_keys_are_401(apps, agent_key, path):
    body = as_json({"wait_seconds": 0} if path == LEASE else {"jobs": []})
    status, headers, answer = same_on_both_paths(apps, path, body, agent_headers("not-a-key"))
    assert status == 401 and headers["www-authenticate"] == 'Bearer realm="agent"'
    assert json.loads(answer) == {"detail": auth.INVALID}
    status, _, answer = same_on_both_paths(apps, path, body, {"content-type": "application/json"})
    assert status == 401 and json.loads(answer) == {"detail": auth.MISSING}
    agent_key.agent.revoked_at = timezone.now()
    agent_key.agent.save(update_fields=["revoked_at"])
    status, headers, answer = same_on_both_paths(apps, path, body, agent_headers(agent_key.key))
    assert status == 401 and headers["www-authenticate"] and json.loads(answer) == {"detail": auth.REVOKED}


@pytest.mark.parametrize("path", [LEASE, COMPLETE])
def test_wrong_keys_lock_the_address_out_with_429(apps, agent_key, path, settings, frozen_clock):
    settings.AGENT_AUTH_FAILURE_LIMIT = 1
    call(apps.lane, path, b"{}", agent_headers("not-a-key"))
    status, headers, answer = same_on_both_paths(apps, path, b"{}", agent_headers(agent_key.key))
    assert status == 429 and int(headers["retry-after"]) > 0
    assert ADDRESS in json.loads(answer)["detail"]


@pytest.mark.parametrize("path", [LEASE, COMPLETE])
@pytest.mark.parametrize("body", [b"{bad", b'{"a": NaN}', b"x=1&y=2", b'{"s": "\\u0000"}', b"[1"])
def test_malformed_bodies_are_400_with_the_same_detail(apps, agent_key, path, body):
    status, headers, answer = same_on_both_paths(apps, path, body, agent_headers(agent_key.key))
    assert status == 400 and headers["content-type"] == "application/json"
    assert "detail" in json.loads(answer)


@pytest.mark.parametrize(("path", "body"), [
    (LEASE, {"max": 0}), (LEASE, {"wait_seconds": "soon"}), (LEASE, []),
    (COMPLETE, {}), (COMPLETE, {"jobs": []}), (COMPLETE, {"jobs": [{"id": "x", "lease_token": ""}]}),
])
def test_invalid_bodies_are_400_with_the_same_field_errors(apps, agent_key, path, body):
    status, _, answer = same_on_both_paths(apps, path, as_json(body), agent_headers(agent_key.key))
    assert status == 400 and json.loads(answer)


@pytest.mark.parametrize("path", [LEASE, COMPLETE])
def test_a_throttled_agent_gets_429_and_retry_after(apps, agent_key, path, settings, frozen_clock):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"agent": "1/min"}}
    body = as_json({"wait_seconds": 0} if path == LEASE else {"jobs": []})
    call(apps.lane, path, body, agent_headers(agent_key.key))  # the minute's one call
    status, headers, answer = same_on_both_paths(apps, path, body, agent_headers(agent_key.key))
    assert status == 429 and headers["retry-after"] == "60"
    assert "throttled" in json.loads(answer)["detail"]


def test_complete_batch_through_the_lane_completes_the_job(apps, agent_key):
    job = make_job(agent_key.integration)
    _, _, leased = call(apps.lane, LEASE, as_json({"wait_seconds": 0}), agent_headers(agent_key.key))
    token = json.loads(leased)["jobs"][0]["lease_token"]
    result = {"invoice_number": "1042", "existed": False, "gross_total": "12.00"}
    body = as_json({"jobs": [{"id": job.pk, "lease_token": token, "result": result}]})
    with django_requests() as seen:
        status, headers, answer = call(apps.lane, COMPLETE, body, agent_headers(agent_key.key))
    assert seen == []
    assert status == 200
    assert json.loads(answer) == {"jobs": [{"id": job.pk, "status": 200, "state": "done", "detail": ""}]}
    job.refresh_from_db()
    assert job.state == AgentJob.State.DONE and job.result == result
    assert AuditEntry.objects.filter(record=job.record, step="agent_result").count() == 1
    # Django answers the same request again (complete is idempotent) with the same headers.
    django_status, django_headers, django_answer = call(apps.django, COMPLETE, body, agent_headers(agent_key.key))
    assert django_status == 200 and json.loads(django_answer)["jobs"][0]["state"] == "done"
    assert {k: v for k, v in headers.items() if k != "content-length"} == {
        k: v for k, v in django_headers.items() if k != "content-length"}
    assert headers["allow"] == "POST, OPTIONS" and headers["vary"] == "Accept"


def test_complete_with_a_stale_lease_token_is_409_inside_a_200(apps, agent_key):
    job = make_job(agent_key.integration)
    call(apps.lane, LEASE, as_json({"wait_seconds": 0}), agent_headers(agent_key.key))
    body = as_json({"jobs": [{"id": job.pk, "lease_token": "not-the-token", "result": {"x": 1}},
                             {"id": 2**31, "lease_token": "t", "result": {}}]})
    status, _, answer = same_on_both_paths(apps, COMPLETE, body, agent_headers(agent_key.key))
    assert status == 200
    items = json.loads(answer)["jobs"]
    assert items[0] == {"id": job.pk, "status": 409, "state": "leased", "detail": "lease token is stale"}
    assert items[1]["status"] == 404
    job.refresh_from_db()
    assert job.state == AgentJob.State.LEASED


@pytest.mark.parametrize("path", [LEASE, COMPLETE])
def test_a_bad_host_is_django_s_400(apps, agent_key, path):
    headers = {**agent_headers(agent_key.key), "host": "evil.example"}
    with django_requests() as seen:
        by_lane = call(apps.lane, path, b"{}", headers)
    assert len(seen) == 1  # Django answers it (and logs DisallowedHost), as before the lane
    assert by_lane[0] == 400 and by_lane == call(apps.django, path, b"{}", headers)


@pytest.mark.parametrize(("method", "path"), [
    ("GET", LEASE), ("GET", COMPLETE), ("PUT", LEASE), ("OPTIONS", COMPLETE),
    ("POST", LEASE + "/"), ("POST", COMPLETE + "/"), ("POST", "/agent/v1/heartbeat"), ("POST", "/agent/v1/jobs/1/complete"),
])
def test_other_methods_and_paths_go_to_django(apps, agent_key, method, path):
    with django_requests() as seen:
        status, headers, body = call(apps.lane, path, b"{}", agent_headers(agent_key.key), method=method)
    assert len(seen) == 1
    if (method, path) == ("GET", LEASE):
        assert status == 405 and headers["allow"] == "POST"
        assert json.loads(body) == {"detail": 'Method "GET" not allowed.'}


@pytest.mark.parametrize("path", [LEASE, COMPLETE])
def test_bodies_the_lane_cannot_answer_like_django_go_to_django(apps, agent_key, path, settings):
    # No Content-Length (DRF then reads no body at all), or over DATA_UPLOAD_MAX_MEMORY_SIZE.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64
    for body, content_length in ((as_json({"wait_seconds": 0}), False),
                                 (as_json({"wait_seconds": 0, "pad": "x" * 100}), True)):
        with django_requests() as seen:
            by_lane = call(apps.lane, path, body, agent_headers(agent_key.key), content_length=content_length)
        assert len(seen) == 1
        assert by_lane == call(apps.django, path, body, agent_headers(agent_key.key), content_length=content_length)


def test_complete_for_a_browser_goes_to_drf(apps, agent_key):
    """Accept: text/html gets DRF's browsable API, ``indent=`` a pretty body: the view answers those."""
    for accept in ("text/html", "application/json; indent=4", "image/png"):
        with django_requests() as seen:
            call(apps.lane, COMPLETE, b"{}", agent_headers(agent_key.key, accept=accept))
        assert len(seen) == 1


def test_with_ssl_redirect_plain_http_goes_to_django_s_redirect(agent_key, settings):
    settings.SECURE_SSL_REDIRECT = True
    app = with_agent_lane(ASGIHandler())  # middleware read the setting when the handler was made
    with django_requests() as seen:
        status, headers, _ = call(app, LEASE, b"{}", agent_headers(agent_key.key))
    assert len(seen) == 1 and status == 301 and headers["location"].startswith("https://")
    with django_requests() as seen:
        status, _, body = call(app, LEASE, as_json({"wait_seconds": 0}), agent_headers(agent_key.key),
                               scheme="https")
    assert seen == [] and status == 200 and json.loads(body) == {"jobs": []}


def test_a_client_that_goes_away_during_the_long_poll_gets_nothing_and_leases_nothing(apps, agent_key):
    with django_requests() as seen:
        answer = call(apps.lane, LEASE, as_json({"wait_seconds": 20}), agent_headers(agent_key.key), disconnect=True)
    assert seen == [] and answer is None
    job = make_job(agent_key.integration)
    job.refresh_from_db()
    assert job.state == AgentJob.State.QUEUED


def test_the_client_address_behind_a_trusted_proxy_is_django_s(apps, agent_key, settings, frozen_clock):
    """The lock-out counts per client_ip(): with a trusted proxy, X-Forwarded-For's address on both paths."""
    settings.TRUSTED_PROXY_COUNT = 1
    settings.AGENT_AUTH_FAILURE_LIMIT = 1
    forwarded = "203.0.113.9"
    try:
        call(apps.lane, LEASE, b"{}", agent_headers("not-a-key", **{"x-forwarded-for": f"198.51.100.1, {forwarded}"}))
        status, _, answer = same_on_both_paths(apps, COMPLETE, b"{}",
                                               agent_headers(agent_key.key, **{"x-forwarded-for": forwarded}))
        assert status == 429 and forwarded in json.loads(answer)["detail"]
    finally:
        auth.unlock_address(forwarded)
