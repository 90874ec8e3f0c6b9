"""Schemathesis against the agent API's own OpenAPI schema (/agent/v1/schema/), in-process over
WSGI: with a valid agent key, no 5xx and every response conforms to the schema; with a wrong
key, 401 and nothing changes; a request the API refuses (4xx) creates or changes no job and
no sync record."""

from __future__ import annotations

import pytest
import schemathesis
from django.core.cache.backends.locmem import LocMemCache
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from agentapi import views as agentapi_views
from agentapi.auth import AgentRateThrottle
from connector.models import AgentJob, SyncRecord
from connector.services.jobs import queue_job
from tests.support.factories import AgentFactory


def _agent_api_schema():
    from connector.wsgi import application

    # Loaded at collection (pytest-django has set Django up by then); the schema view reads no
    # database. The lazy from_fixture loader does not work with the installed pytest.
    return schemathesis.openapi.from_wsgi("/agent/v1/schema/", application)


schema = _agent_api_schema()


@pytest.fixture
def short_long_polls(monkeypatch):
    """The lease is a long poll (wait_seconds defaults to 25): the server waits at most 0.1 s
    here, whatever was asked, so the run stays short and every request keeps its generated body."""
    real = agentapi_views.lease_when_ready

    async def capped(agent, max_jobs, wait_seconds, **kwargs):
        return await real(agent, max_jobs, min(wait_seconds, 0.1), **kwargs)

    monkeypatch.setattr(agentapi_views, "lease_when_ready", capped)


@pytest.fixture
def agent(monkeypatch, settings, short_long_polls):
    # Schemathesis sends one agent's calls far faster than the throttle allows; this test is about
    # what the API answers to each body, so the limit is set out of the way.
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"agent": "100000/s"}}
    # Likewise the wrong-key lock-out: every example sends one wrong key from the same address.
    settings.AGENT_AUTH_FAILURE_LIMIT = 1_000_000
    # A throttle count of its own per test (row ids repeat across flushed tests).
    monkeypatch.setattr(AgentRateThrottle, "cache", LocMemCache(f"fuzz-throttle-{id(monkeypatch)}", {}))
    agent = AgentFactory()
    for n in range(3):
        queue_job(agent.integration_id, "post_invoice", f"fuzz-{n}", {"n": n})
    return agent


def snapshot():
    jobs = list(AgentJob.objects.order_by("pk").values_list("pk", "state", "attempts", "lease_token", "result",
                                                            "error_code", "available_at", "updated_at"))
    records = list(SyncRecord.objects.order_by("pk").values_list("pk", "state", "updated_at"))
    return jobs, records


@pytest.mark.django_db(transaction=True)
@schema.parametrize()
@hsettings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_agent_api_conforms_to_its_schema(case, agent):
    before = snapshot()
    wrong = case.call(headers={"Authorization": "Bearer not-a-key"})
    # Schemathesis also sends methods the operation does not have (TRACE …): DRF views check the
    # key first (401), the async lease view the method (405). Never anything else.
    expected = {401} if case.method.upper() == case.operation.method.upper() else {401, 405}
    routed = str((case.path_parameters or {}).get("job_id", 0)).isdigit()
    if not routed:
        expected.add(404)  # /jobs/-1/… is no route at all (the URL converter takes digits only)
        assert wrong.status_code != 404 or wrong.json()["detail"].startswith("No agent API endpoint")
    assert wrong.status_code in expected, (case.method, case.path, wrong.status_code, wrong.text[:300])
    assert snapshot() == before
    if not routed:  # the API's JSON 404 for paths no route takes: nothing of the schema to check
        assert case.call(headers={"Authorization": f"Bearer {agent.plain_key}"}).status_code == 404
        assert snapshot() == before
        return

    # Excluded: "schema-valid request rejected". It found two real gaps, now fixed in
    # agentapi/serializers.py (required strings lacked minLength: 1; a null inside a job result);
    # what it still flags is deliberate: the parser refuses NUL and lone surrogates in strings
    # (PostgreSQL cannot store them; OpenAPI cannot say so), and POST /changes without a body.
    response = case.call_and_validate(headers={"Authorization": f"Bearer {agent.plain_key}"},
                                      excluded_checks=[positive_data_acceptance])
    assert response.status_code < 500
    if response.status_code >= 400:
        assert snapshot() == before, (case.path, response.status_code, response.text[:300])
