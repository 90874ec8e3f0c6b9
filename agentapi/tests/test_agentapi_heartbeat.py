import pytest
from django.test import override_settings

from accounts.models import Agent
from agentapi.tests.factories import auth, make_agent, make_integration

pytestmark = pytest.mark.django_db

BEAT = {"agent_version": "0.1.0", "backend": "sdo", "sage_edition": "sage50uk", "sage_version": "32.1",
        "company": "DEMO"}


def test_heartbeat_records_the_agent_and_answers_config(client):
    integration = make_integration()
    integration.stock_quantity = "in_stock"
    integration.save()
    agent, key = make_agent(integration)
    response = client.post("/agent/v1/heartbeat", BEAT, content_type="application/json", **auth(key))
    assert response.status_code == 200
    body = response.json()
    assert body["agent_id"] == agent.pk and body["integration_id"] == integration.pk and body["server_time"]
    assert body["config"] == {"lease_wait_seconds": 25, "max_jobs": 100, "poll_changes_seconds": 60,
                              "stock_quantity": "in_stock",
                              "cursors": {"stock": None, "price": None, "customer": None}}
    agent.refresh_from_db()
    assert agent.is_online
    assert (agent.agent_version, agent.backend, agent.sage_edition, agent.sage_version, agent.company) == (
        "0.1.0", "sdo", "sage50uk", "32.1", "DEMO")


@pytest.mark.django_db(transaction=True)  # the lease view reads the agent from another thread
def test_throttled_per_agent_with_retry_after(client):
    _, key = make_agent()
    _, other_key = make_agent()
    rest = {"DEFAULT_THROTTLE_RATES": {"agent": "3/min"}}
    from django.conf import settings

    with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, **rest}):
        codes = [client.post("/agent/v1/heartbeat", BEAT, content_type="application/json", **auth(key)).status_code
                 for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        throttled = client.post("/agent/v1/changes", {}, content_type="application/json", **auth(key))
        assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
        lease = client.post("/agent/v1/jobs/lease", {"wait_seconds": 0}, content_type="application/json",
                            **auth(key))
        assert lease.status_code == 429 and int(lease["Retry-After"]) > 0 and lease.json()["detail"]
        # another agent has its own budget
        assert client.post("/agent/v1/heartbeat", BEAT, content_type="application/json",
                           **auth(other_key)).status_code == 200
    assert Agent.objects.count() == 2
