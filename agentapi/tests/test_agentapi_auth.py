from datetime import timedelta

import pytest
from django.utils import timezone

from agentapi.tests.factories import auth, make_agent, make_job
from connector.models import AgentJob
from tests.support.factories import make_integration

pytestmark = pytest.mark.django_db

POST_ENDPOINTS = ["/agent/v1/heartbeat", "/agent/v1/changes", "/agent/v1/jobs/1/complete", "/agent/v1/jobs/1/fail",
                  "/agent/v1/jobs/lease"]


@pytest.mark.parametrize("path", POST_ENDPOINTS)
@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc", "Bearer mlc_not-a-key",
                                    "Bearer " + "x" * 5000])
def test_missing_or_unknown_key_is_401_with_detail(client, path, header):
    extra = {"HTTP_HOST": "127.0.0.1"}
    if header is not None:
        extra["HTTP_AUTHORIZATION"] = header
    response = client.post(path, {}, content_type="application/json", **extra)
    assert response.status_code == 401
    assert response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", [p for p in POST_ENDPOINTS if "lease" not in p])
def test_revoked_key_is_401(client, path):
    agent, key = make_agent()
    agent.revoked_at = timezone.now()
    agent.save()
    response = client.post(path, {}, content_type="application/json", **auth(key))
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_valid_key_reaches_the_view(client):
    _, key = make_agent()
    response = client.post("/agent/v1/heartbeat", {"agent_version": "0.1.0", "backend": "simulator"},
                           content_type="application/json", **auth(key))
    assert response.status_code == 200


@pytest.mark.parametrize("action, body", [
    ("complete", {"lease_token": "t", "result": {}}),
    ("fail", {"lease_token": "t", "code": "internal", "message": "x", "retryable": False}),
])
def test_another_integrations_job_is_404_and_untouched(client, action, body):
    _, key_a = make_agent(make_integration())
    other = make_integration()
    job_b = make_job(other, state=AgentJob.State.LEASED, lease_token="t",
                     lease_expires_at=timezone.now() + timedelta(seconds=60))
    response = client.post(f"/agent/v1/jobs/{job_b.pk}/{action}", body, content_type="application/json",
                           **auth(key_a))
    assert response.status_code == 404
    job_b.refresh_from_db()
    assert job_b.state == AgentJob.State.LEASED and job_b.result is None and job_b.error_code == ""


def test_huge_job_id_is_404_not_500(client):
    _, key = make_agent()
    response = client.post("/agent/v1/jobs/" + "9" * 40 + "/complete", {"lease_token": "t"},
                           content_type="application/json", **auth(key))
    assert response.status_code == 404
