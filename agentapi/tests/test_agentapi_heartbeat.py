import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from accounts.models import Agent
from agentapi import auth as auth_module
from agentapi.auth import parse_rate, throttle_wait
from agentapi.tests.factories import auth, make_agent
from tests.support.factories import make_integration

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
                              "stock_quantity": "in_stock", "price_level": "",
                              "cursors": {"stock": None, "price": None, "customer": None}}
    agent.refresh_from_db()
    assert agent.is_online
    assert (agent.agent_version, agent.backend, agent.sage_edition, agent.sage_version, agent.company) == (
        "0.1.0", "sdo", "sage50uk", "32.1", "DEMO")


@pytest.mark.django_db(transaction=True)  # the lease view reads the agent from another thread
def test_throttled_per_agent_with_retry_after(client, monkeypatch):
    _, key = make_agent()
    _, other_key = make_agent()
    clock = FrozenClock(60 * 1_000_000 + 15.5)  # 15.5 s into a minute's window
    monkeypatch.setattr(auth_module.time, "time", clock)
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
        assert int(throttled["Retry-After"]) == 45  # the rest of the window
        # another agent has its own budget
        assert client.post("/agent/v1/heartbeat", BEAT, content_type="application/json",
                           **auth(other_key)).status_code == 200
        clock.now += 44.6  # the next window: the agent may call again
        assert client.post("/agent/v1/heartbeat", BEAT, content_type="application/json",
                           **auth(key)).status_code == 200
    assert Agent.objects.count() == 2


class FrozenClock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_default_rate_lets_a_busy_agent_through_and_stops_a_runaway_one(monkeypatch):
    """The default sized for the agent at full speed: about 20 calls a second on the 370
    documents/s pipeline bench (batched leases and results), where 600/min once throttled it."""
    agent, _ = make_agent()
    clock = FrozenClock(1_000_000.0)
    monkeypatch.setattr(auth_module.time, "time", clock)
    answers = []
    for _ in range(60):  # one second of a loop calling 60 times a second
        answers.append(throttle_wait(agent))
        clock.now += 1 / 60
    allowed = [wait is None for wait in answers]
    assert all(allowed[:20])  # a busy agent's second
    assert allowed.count(False) >= 60 - 51  # at most one window's 50 and the first call of the next
    first_refused = answers[allowed.index(False)]
    assert 0 < first_refused <= 1


@pytest.mark.parametrize(("rate", "parsed"), [("50/s", (50, 1)), ("600/min", (600, 60)), ("10000/hour", (10000, 3600))])
def test_rates_read_as_calls_per_window(rate, parsed):
    assert parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", ["50", "fast/s", "50/fortnight", ""])
def test_a_mistyped_rate_says_how_to_write_it(rate):
    with pytest.raises(ImproperlyConfigured, match="AGENT_THROTTLE_RATE"):
        parse_rate(rate)


DOCTOR = {"ok": False, "checked_at": "2026-12-05T21:00:00+00:00", "checks": 9,
          "problems": ["Stock code SKU-9 is mapped to a store product but is not in this Sage company."]}


def test_heartbeat_keeps_the_last_self_check(client):
    agent, key = make_agent()
    response = client.post("/agent/v1/heartbeat", {**BEAT, "doctor": DOCTOR}, content_type="application/json",
                           **auth(key))
    assert response.status_code == 200
    assert "mapped_codes" not in response.json()["config"]
    agent.refresh_from_db()
    assert (agent.doctor_ok, agent.doctor_checks, agent.doctor_problems) == (False, 9, DOCTOR["problems"])
    assert agent.doctor_checked_at.isoformat() == "2026-12-05T21:00:00+00:00"
    # a heartbeat without a result leaves the last one in place
    client.post("/agent/v1/heartbeat", BEAT, content_type="application/json", **auth(key))
    agent.refresh_from_db()
    assert agent.doctor_ok is False and agent.doctor_problems == DOCTOR["problems"]


@pytest.mark.parametrize("doctor", [
    {**DOCTOR, "ok": "yes"}, {**DOCTOR, "problems": "broken"}, {**DOCTOR, "checks": -1},
    {**DOCTOR, "problems": ["x"] * 51}, {"ok": True}])
def test_a_malformed_self_check_is_a_400_not_a_500(client, doctor):
    _, key = make_agent()
    response = client.post("/agent/v1/heartbeat", {**BEAT, "doctor": doctor}, content_type="application/json",
                           **auth(key))
    assert response.status_code == 400 and "doctor" in response.json()


def test_the_doctor_gets_the_codes_the_mappings_name(client):
    from mappings.models import AccountMapping, ItemMapping, PaymentMethodMapping, TaxMapping

    integration = make_integration()
    AccountMapping.objects.create(integration=integration, purpose="revenue", account_code="4000")
    AccountMapping.objects.create(integration=integration, channel_id=2, channel_name="Web", purpose="shipping",
                                  account_code="4905")
    PaymentMethodMapping.objects.create(integration=integration, store_method="Credit Card", bank_account="1200")
    TaxMapping.objects.create(integration=integration, store_tax_class="Default", sage_tax_code="T1")
    ItemMapping.objects.create(integration=integration, store_sku="ABC", sage_code="SKU-1")
    _, key = make_agent(integration)
    response = client.post("/agent/v1/heartbeat", {**BEAT, "include_mapped_codes": True},
                           content_type="application/json", **auth(key))
    assert response.json()["config"]["mapped_codes"] == {
        "nominal": {"4000": "Sales revenue", "4905": "Shipping revenue (channel Web)"}, "bank": ["1200"],
        "tax": ["T1"], "stock": ["SKU-1"]}


def test_admin_shows_the_self_check_in_plain_words(client):
    from tests.support.factories import MembershipFactory

    agent, key = make_agent()
    client.force_login(MembershipFactory(tenant=agent.tenant, role="owner").user)
    page = client.get(f"/admin/accounts/agent/{agent.pk}/change/").content.decode()
    assert "Not run yet" in page and "python -m agent doctor" in page
    client.post("/agent/v1/heartbeat", {**BEAT, "doctor": {**DOCTOR, "problems": ["Nominal code <4906> is missing"]}},
                content_type="application/json", **auth(key))
    page = client.get(f"/admin/accounts/agent/{agent.pk}/change/").content.decode()
    assert "1 problem(s) found on" in page and "<li>Nominal code &lt;4906&gt; is missing</li>" in page
    assert '"problems"' not in page  # no raw JSON
    listing = client.get("/admin/accounts/agent/").content.decode()
    assert "1 problem(s)" in listing
    client.post("/agent/v1/heartbeat", {**BEAT, "doctor": {**DOCTOR, "ok": True, "problems": []}},
                content_type="application/json", **auth(key))
    page = client.get(f"/admin/accounts/agent/{agent.pk}/change/").content.decode()
    assert "all 9 checks in order" in page
