"""Whatever a client sends, the answer is a 4xx with a reason, never a 500."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentapi.tests.factories import auth, make_agent, make_job
from tests.support.factories import make_integration

pytestmark = pytest.mark.django_db(transaction=True)

MALFORMED_BODIES = [
    b"not json", b"{", b"[1, 2", b"\xff\xfe\x00", b"NaN", b'{"max": NaN}', b'{"max": Infinity}', b"[]", b"3",
    b'"text"', b"null", b"[" * 100_000 + b"]" * 100_000, b'{"a": "\\u0000"}', b'{"a": "\\ud800"}',
    b'{"max": 1' + b"0" * 5000 + b"}", b'{"max": 1e999}', b'{"max": "10"}', b'{"max": true}', b'{"max": 10.5}',
    b'{"max": 0}', b'{"max": 101}', b'{"max": -1}', b'{"wait_seconds": 26}', b'{"wait_seconds": -1}',
    b'{"max": 1' + b"0" * 40 + b"}", b'{"max": {}}', b'{"max": []}',
]


def statuses(client, key, path, bodies, content_type="application/json"):
    return {body[:40]: client.post(path, body, content_type=content_type, **auth(key)).status_code
            for body in bodies}


def test_lease_rejects_malformed_bodies_with_400(client):
    _, key = make_agent()
    answers = statuses(client, key, "/agent/v1/jobs/lease", MALFORMED_BODIES)
    assert set(answers.values()) == {400}, answers


def test_lease_rejects_a_form_body_and_other_methods(client):
    _, key = make_agent()
    assert client.post("/agent/v1/jobs/lease", b"max=3", content_type="application/x-www-form-urlencoded",
                       **auth(key)).status_code == 400
    assert client.get("/agent/v1/jobs/lease", **auth(key)).status_code == 405


@pytest.mark.parametrize("path", ["/agent/v1/heartbeat", "/agent/v1/changes", "/agent/v1/jobs/{job}/complete",
                                  "/agent/v1/jobs/{job}/fail"])
def test_drf_endpoints_reject_malformed_bodies_with_400(client, path):
    integration = make_integration()
    _, key = make_agent(integration)
    path = path.format(job=make_job(integration).pk)
    bodies = [b for b in MALFORMED_BODIES if b"max" not in b and b"wait" not in b] + [b"{}"]
    answers = statuses(client, key, path, bodies)
    assert set(answers.values()) == {400}, answers
    assert client.post(path, b"a=1", content_type="application/x-www-form-urlencoded",
                       **auth(key)).status_code == 400


FIELD_CASES = {
    "/agent/v1/heartbeat": [
        {"agent_version": 1, "backend": "simulator"}, {"agent_version": "0.1", "backend": "x" * 51},
        {"agent_version": "0.1", "backend": None}, {"agent_version": "0.1", "backend": "sdo", "company": ["x"]},
    ],
    "/agent/v1/changes": [
        {"kind": "stock"}, {"kind": "bogus", "items": []}, {"kind": "stock", "items": {}},
        {"kind": "stock", "items": [{"stock_code": "A"}]},
        {"kind": "stock", "items": [{"stock_code": "A", "in_stock": 12}]},
        {"kind": "stock", "items": [{"stock_code": "A", "in_stock": "1e999"}]},
        {"kind": "stock", "items": [{"stock_code": "A", "in_stock": "99999999999"}]},
        {"kind": "stock", "items": [{"stock_code": "A", "in_stock": "NaN"}]},
        {"kind": "stock", "items": [{"stock_code": "A", "in_stock": "1", "modified_at": "yesterday"}]},
        {"kind": "stock", "items": [{"stock_code": "A", "in_stock": "1", "modified_at": "0001-01-01T00:00:00+05:00"}]},
        {"kind": "stock", "items": ["A"]}, {"kind": "stock", "items": [], "cursor": "x" * 101},
        {"kind": "price", "items": [{"stock_code": "A", "in_stock": "1"}]},
        {"kind": "customer", "items": [{"email": "a@b.c"}]},
        {"kind": "stock", "items": [{"stock_code": "A", "in_stock": "1"}] * 5001},
    ],
    "/agent/v1/jobs/{job}/complete": [
        {"result": {}}, {"lease_token": 5, "result": {}}, {"lease_token": "t", "result": [1]},
        {"lease_token": "t", "result": "done"},
    ],
    "/agent/v1/jobs/{job}/fail": [
        {"lease_token": "t"}, {"lease_token": "t", "code": "x" * 41}, {"lease_token": "t", "code": "internal",
                                                                      "retryable": "yes"},
    ],
}


@pytest.mark.parametrize("path", list(FIELD_CASES))
def test_invalid_fields_get_field_errors(client, path):
    integration = make_integration()
    _, key = make_agent(integration)
    url = path.format(job=make_job(integration).pk)
    for body in FIELD_CASES[path]:
        response = client.post(url, body, content_type="application/json", **auth(key))
        assert response.status_code == 400, (body, response.content[:300])
        assert isinstance(response.json(), dict) and response.json()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)
bodies = st.dictionaries(
    st.sampled_from(["kind", "items", "cursor", "agent_version", "backend", "lease_token", "result", "code",
                     "message", "retryable", "max", "wait_seconds", "company"]), json_values, max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=bodies, path=st.sampled_from(["/agent/v1/heartbeat", "/agent/v1/changes", "/agent/v1/jobs/1/complete",
                                          "/agent/v1/jobs/1/fail"]))
def test_random_bodies_never_500(agent_key_for_hypothesis, body, path):
    from django.test import Client

    response = Client().post(path, json.dumps(body), content_type="application/json",
                             **auth(agent_key_for_hypothesis))
    assert response.status_code in (200, 400, 404, 409), (body, response.content[:300])


@pytest.fixture
def agent_key_for_hypothesis(settings):
    # Sixty calls in well under a second from one agent: the throttle would rightly answer 429, and
    # this test is about the bodies.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"agent": "100000/s"}}
    return make_agent()[1]


@pytest.mark.parametrize("path", ["/agent/v1/jobs/-1/complete", "/agent/v1/jobs/abc/fail", "/agent/v1/nope",
                                  "/agent/v1/jobs/1/complete/extra"])
def test_unknown_agent_endpoints_answer_json_404(client, path):
    _, key = make_agent()
    response = client.post(path, b"{}", content_type="application/json", **auth(key))
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert "No agent API endpoint" in response.json()["detail"]


def test_schema_documents_retry_after_on_every_throttled_answer(client):
    schema = client.get("/agent/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operations = [(path, method, op) for path, ops in schema["paths"].items() for method, op in ops.items()]
    assert len(operations) >= 6
    for path, method, op in operations:
        assert "Retry-After" in op["responses"]["429"].get("headers", {}), (path, method)
