"""Issue 16, items 7-10: brute force is slowed, the agent refuses plain http and its key stays off
the command line, production settings pass `check --deploy`, and webhooks have a replay window."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone

from accounts.models import Agent
from connector.bigcommerce import webhooks
from connector.bigcommerce.signatures import SECRET_HEADER, sign_bc, sign_standard
from connector.models import InboundEvent
from tests.security_world import build_world
from tests.support.bigcommerce import SANDBOX_SECRET
from tests.support.factories import AgentFactory, UserFactory, make_integration

BASE_DIR = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db


# -- 7. brute force --------------------------------------------------------------------------------

def _heartbeat(client, key):
    return client.post("/agent/v1/heartbeat", data=json.dumps({"agent_version": "1", "backend": "simulator"}),
                       content_type="application/json", headers={"Authorization": f"Bearer {key}"})


@override_settings(AGENT_AUTH_FAILURE_LIMIT=20)
def test_wrong_agent_keys_lock_the_address_out_until_lifted():
    agent = AgentFactory()
    client = Client()
    answers = [_heartbeat(client, f"mlc_guess{n}").status_code for n in range(30)]
    assert answers[:20] == [401] * 20
    assert set(answers[20:]) == {429}
    # Locked out means locked out: the right key gains nothing from this address now ...
    locked = _heartbeat(client, agent.plain_key)
    assert locked.status_code == 429 and int(locked["Retry-After"]) > 0
    assert "Too many wrong agent keys" in locked.json()["detail"]
    lease = client.post("/agent/v1/jobs/lease", data=json.dumps({"max": 1, "wait_seconds": 0}),
                        content_type="application/json", headers={"Authorization": f"Bearer {agent.plain_key}"})
    assert lease.status_code == 429
    # ... another address is not affected ...
    assert _heartbeat(Client(REMOTE_ADDR="10.1.2.3"), agent.plain_key).status_code == 200
    # ... a tenant owner may not see the lock-outs (an address is no one tenant's data) ...
    owner = build_world().owner
    owner_client = Client(REMOTE_ADDR="10.9.9.9")
    owner_client.force_login(owner)
    assert owner_client.get("/admin/accounts/agent/lockouts/").status_code == 403
    # ... and the operator sees the lock-out in admin and lifts it.
    operator = UserFactory(username="operator", is_superuser=True)
    admin_client = Client(REMOTE_ADDR="10.9.9.9")
    admin_client.force_login(operator)
    assert "Key lock-outs" in admin_client.get("/admin/accounts/agent/").content.decode()
    page = admin_client.get("/admin/accounts/agent/lockouts/").content.decode()
    assert "<td>127.0.0.1</td>" in page
    assert admin_client.post("/admin/accounts/agent/lockouts/", {"address": "127.0.0.1"}).status_code == 302
    assert "No address is locked out" in admin_client.get("/admin/accounts/agent/lockouts/").content.decode()
    assert _heartbeat(client, agent.plain_key).status_code == 200


def test_agent_unlock_command(settings):
    settings.AGENT_AUTH_FAILURE_LIMIT = 3
    client = Client()
    for n in range(3):
        _heartbeat(client, f"mlc_guess{n}")
    agent = AgentFactory()
    assert _heartbeat(client, agent.plain_key).status_code == 429
    call_command("agent_unlock", "127.0.0.1")
    assert _heartbeat(client, agent.plain_key).status_code == 200


def _login(client, username, password):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def test_admin_logins_are_locked_out_and_an_operator_can_see_and_lift_it(settings):
    UserFactory(username="bookkeeper", password="right-password-1")
    operator = UserFactory(username="operator", is_superuser=True, password="operator-password-1")
    client = Client()
    for n in range(settings.AXES_FAILURE_LIMIT):
        response = _login(client, "bookkeeper", f"wrong-{n}")
        assert response.status_code in (200, 429)
    locked = _login(client, "bookkeeper", "right-password-1")
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    # The operator (from another address) sees the lock-out in admin and lifts it.
    admin_client = Client(REMOTE_ADDR="10.9.9.9")
    admin_client.force_login(operator)
    listing = admin_client.get("/admin/axes/accessattempt/").content.decode()
    assert "127.0.0.1" in listing and "bookkeeper" in listing
    from axes.models import AccessAttempt

    attempt = AccessAttempt.objects.get(ip_address="127.0.0.1")
    response = admin_client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert _login(client, "bookkeeper", "right-password-1").status_code == 302


# -- 8. the agent and plain http -------------------------------------------------------------------

def test_agent_client_refuses_plain_http_except_to_loopback(monkeypatch):
    from agent.client import ALLOW_HTTP_ENV, AgentClient, InsecureServerUrl

    monkeypatch.delenv(ALLOW_HTTP_ENV, raising=False)
    for url in ("http://10.0.0.2:8000", "http://connector.example.com", "ftp://connector.example.com"):
        with pytest.raises(InsecureServerUrl):
            AgentClient(url, "mlc_key")
    for url in ("https://connector.example.com", "http://127.0.0.1:8000", "http://localhost:8000",
                "http://[::1]:8000"):
        AgentClient(url, "mlc_key")
    AgentClient("http://10.0.0.2:8000", "mlc_key", allow_plain_http=True)  # the flag, for tests


def test_agent_command_refuses_plain_http_before_sending_anything(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "ML_AGENT_ALLOW_PLAIN_HTTP"}
    env["ML_AGENT_KEY"] = "mlc_secret_key"
    result = subprocess.run([sys.executable, "-m", "agent", "run", "--server", "http://10.255.255.1:8000",
                             "--backend", "simulator", "--company", str(tmp_path / "c.json"), "--once"],
                            cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 64, result.stderr
    assert "refusing plain http" in result.stderr


@pytest.mark.django_db(transaction=True)
def test_agent_over_loopback_http_still_works(live_server):
    from agent.client import AgentClient

    agent = AgentFactory()
    client = AgentClient(live_server.url, agent.plain_key)
    answer = client.heartbeat({"agent_version": "1", "backend": "simulator"})
    assert isinstance(answer, dict)
    Agent.objects.get(pk=agent.pk, last_heartbeat_at__isnull=False)


def test_start_hint_never_puts_the_key_on_the_command_line(client):
    world = build_world()
    client.force_login(world.owner)
    response = client.post("/admin/accounts/agent/add/", {"tenant": world.alpha.pk,
                                                          "integration": world.integration_a.pk, "name": "Till 2"})
    assert response.status_code == 200
    html = response.content.decode()
    key = Agent.objects.get(name="Till 2").key_prefix
    assert key in html  # the key is shown once ...
    assert "--key" not in html.replace("Never pass the key with <code>--key</code>", "")  # ... never as an argument
    assert "agent.toml" in html and "ML_AGENT_KEY" in html


# -- 9. production settings ------------------------------------------------------------------------

def _production_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "SECRET_KEY", "DATABASE_URL")}
    env.update({"DEBUG": "0", "SECRET_KEY": "k" * 10 + "Zq8-vT3_pR6wX1yB4nM7cF0hJ2sD5gL9aE" + "u7Wq3Rt6Yp",
                "FIELD_ENCRYPTION_KEY": "QjzfgpyqSdvdvoJKUyU5ri1lfj2v1rYnX0I3jvtWr6Y=", "ML_DATA_DIR": str(tmp_path),
                "PUBLIC_BASE_URL": "https://connector.example.com", "ALLOWED_HOSTS": "connector.example.com",
                "CELERY_BROKER_URL": "filesystem://", "COORDINATION_REDIS_URL": ""})
    env.update(extra)
    return env


def test_production_settings_pass_check_deploy(tmp_path):
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=BASE_DIR, env=_production_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize("weak", ["short-key", "django-insecure-" + "x1y2z3" * 10, "ab" * 30])
def test_a_weak_secret_key_is_refused_at_start(tmp_path, weak):
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=BASE_DIR,
                            env=_production_env(tmp_path, SECRET_KEY=weak), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode != 0
    assert "SECRET_KEY is too weak" in result.stderr


def test_admin_pages_carry_a_content_security_policy(client):
    response = client.get("/admin/login/")
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy and "'unsafe-inline'" not in \
        policy.split("script-src")[1].split(";")[0]


# -- 10. webhook replay window ---------------------------------------------------------------------

def _delivery(created_at: int) -> bytes:
    return json.dumps({"scope": "store/order/created", "store_id": "1", "data": {"type": "order", "id": 77},
                       "hash": "abc", "created_at": created_at, "producer": "stores/x"}).encode()


def _post(integration, body, **headers):
    return Client().post(f"/webhooks/bigcommerce/{integration.webhook_token}/", data=body,
                         content_type="application/json", headers=headers)


@pytest.fixture
def hook_integration(monkeypatch):
    webhooks.forget_receivers()
    monkeypatch.setattr(webhooks, "enqueue_event", lambda event_id: None)
    yield make_integration()
    webhooks.forget_receivers()


def test_untimestamped_deliveries_older_than_the_window_are_refused(hook_integration, settings):
    stale = int(time.time()) - settings.WEBHOOK_REPLAY_WINDOW_SECONDS - 60
    body = _delivery(stale)
    assert _post(hook_integration, body, **{"X-BC-Signature": sign_bc(SANDBOX_SECRET, body)}).status_code == 400
    assert _post(hook_integration, body, **{SECRET_HEADER: hook_integration.webhook_secret}).status_code == 400
    assert not InboundEvent.objects.exists()
    fresh = _delivery(int(time.time()) - 3600)
    assert _post(hook_integration, fresh, **{"X-BC-Signature": sign_bc(SANDBOX_SECRET, fresh)}).status_code == 200
    # Standard Webhooks signs its own timestamp, which is what counts there.
    stamp = int(time.time())
    headers = {"webhook-id": "m1", "webhook-timestamp": str(stamp),
               "webhook-signature": sign_standard(SANDBOX_SECRET, "m1", stamp, body)}
    assert _post(hook_integration, body, **headers).status_code == 200


def test_dedup_keys_outlive_a_short_archive_retention(hook_integration, settings):
    from connector.services.archive import prune_archives

    hook_integration.archive_retention_days = 0
    hook_integration.save()
    body = _delivery(int(time.time()) - 3600)
    headers = {"X-BC-Signature": sign_bc(SANDBOX_SECRET, body)}
    assert _post(hook_integration, body, **headers).status_code == 200
    InboundEvent.objects.update(received_at=timezone.now() - timedelta(hours=2))
    prune_archives(hook_integration)
    assert InboundEvent.objects.count() == 1  # still inside the replay window: kept
    assert _post(hook_integration, body, **headers).status_code == 200
    assert InboundEvent.objects.count() == 1  # the retry was recognised as a duplicate
    InboundEvent.objects.update(received_at=timezone.now() - timedelta(
        seconds=settings.WEBHOOK_REPLAY_WINDOW_SECONDS + 60))
    prune_archives(hook_integration)
    assert InboundEvent.objects.count() == 0
