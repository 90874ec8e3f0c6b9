"""The lease long poll against a real uvicorn process."""

import json
import os
import secrets
import threading
import time
import urllib.request

import pytest
from django.test import override_settings

from accounts.models import Agent, Integration, hash_agent_key
from agentapi.tests.factories import make_agent
from agentapi.tests.processes import (
    env_for_test_database,
    free_port,
    log_tail,
    running_process,
    thread_count,
    uvicorn_command,
    wait_until_idle,
)
from bench.idle_agents import IdlePolls
from connector.services.jobs import queue_job
from tests.support.factories import make_integration

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# A Redis database of this test's own (it deletes throttle keys there); TEST_REDIS_URL moves it
# when several suites share one Redis server, as they do when developers run suites side by side.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


def redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping())
    except Exception:
        return False


needs_redis = pytest.mark.skipif(not redis_up(), reason="no Redis on 127.0.0.1:6379")


def start_server(redis_url: str = ""):
    port = free_port()
    # DB_CONN_MAX_AGE as in production: each thread of the small shared pool keeps one connection.
    env = env_for_test_database(COORDINATION_REDIS_URL=redis_url, AGENT_THROTTLE_RATE="600/min",
                                DB_CONN_MAX_AGE="60")
    return port, running_process(uvicorn_command(port), ready_url=f"http://127.0.0.1:{port}/agent/v1/schema/",
                                 env=env)


def lease_in_background(port: int, key: str, wait_seconds: int = 25) -> dict:
    outcome: dict = {}

    def call():
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/agent/v1/jobs/lease", method="POST",
            data=json.dumps({"max": 5, "wait_seconds": wait_seconds}).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=40) as response:
            outcome["body"] = json.loads(response.read())
        outcome["at"] = time.monotonic()

    outcome["thread"] = threading.Thread(target=call, daemon=True)
    outcome["thread"].start()
    return outcome


@pytest.mark.parametrize("redis_url", ["", pytest.param(REDIS_URL, marks=needs_redis)], ids=["embedded", "redis"])
def test_job_created_during_a_long_poll_is_leased_within_a_second(redis_url):
    integration = make_integration()
    _, key = make_agent(integration)
    port, server = start_server(redis_url)
    with server as proc, override_settings(COORDINATION_REDIS_URL=redis_url):
        poll = lease_in_background(port, key)
        time.sleep(1.2)  # the poll is waiting in the server now
        assert "body" not in poll
        queue_job(integration.pk, "create_sales_invoice", "BC-1001", {"reference": "BC-1001"})
        queued_at = time.monotonic()
        poll["thread"].join(5)
        assert "body" in poll, log_tail(proc)
        latency = poll["at"] - queued_at
        assert [job["reference"] for job in poll["body"]["jobs"]] == ["BC-1001"]
        assert latency < 1.0, latency
        print(f"handover latency ({'redis' if redis_url else 'embedded'}): {latency * 1000:.0f} ms")


# CI holds 300 (a loaded 2-core CI box must get every poll through inside one 25 s window);
# `ML_IDLE_AGENTS=1000` (and `make bench`) runs the full thousand.
AGENTS = int(os.environ.get("ML_IDLE_AGENTS", "300"))


def make_many_agents(count: int) -> list[tuple[int, str]]:
    """count integrations with one agent each, in bulk; returns (integration id, key)."""
    first = make_integration()
    integrations = Integration.objects.bulk_create([
        Integration(tenant=first.tenant, name=f"Bulk {n}", store=first.store, sage=first.sage,
                    webhook_token=secrets.token_urlsafe(16), webhook_secret="s") for n in range(count)])
    keys = [f"mlc_e2e_{n}_{secrets.token_urlsafe(8)}" for n in range(count)]
    Agent.objects.bulk_create([
        Agent(tenant=first.tenant, integration=integration, name=f"agent {n}", key_prefix=key[:12],
              key_hash=hash_agent_key(key)) for n, (integration, key) in enumerate(zip(integrations, keys, strict=True))])
    ids = list(Integration.objects.filter(name__startswith="Bulk ").order_by("id").values_list("id", flat=True))
    return list(zip(ids, keys, strict=True))


def count_throttle_keys(redis) -> int:
    return sum(1 for _ in redis.scan_iter("*throttle_agent_*", count=1000))


@needs_redis
def test_one_process_holds_many_idle_agents_and_hands_a_job_over_fast():
    agents = make_many_agents(AGENTS)
    target = AGENTS // 2
    target_integration, _ = agents[target]
    import redis as redis_lib

    redis = redis_lib.Redis.from_url(REDIS_URL)
    for key in redis.scan_iter("*throttle_agent_*"):  # this Redis database is this test's own
        redis.delete(key)
    port, server = start_server(REDIS_URL)
    with server as proc, override_settings(COORDINATION_REDIS_URL=REDIS_URL):
        polls = IdlePolls(port, [key for _, key in agents])
        started = time.monotonic()
        polls.start()
        try:
            assert polls.sent.wait(20), "could not open the connections"
            # Every poll that got past authentication has left its throttle key in Redis: when all
            # of them are there, the server holds them all.
            deadline = time.monotonic() + 22
            while time.monotonic() < deadline and count_throttle_keys(redis) < AGENTS:
                time.sleep(0.2)
            assert count_throttle_keys(redis) == AGENTS, log_tail(proc)
            settled = wait_until_idle(proc.pid, timeout=3)
            assert polls.answers == {}, {i: a[1][:200] for i, a in list(polls.answers.items())[:3]}
            threads = thread_count(proc.pid)
            queue_job(target_integration, "create_sales_invoice", "BC-4242", {"reference": "BC-4242"})
            queued_at = time.monotonic()
            deadline = queued_at + 5
            while target not in polls.answers and time.monotonic() < deadline:
                time.sleep(0.01)
            assert target in polls.answers, log_tail(proc)
            answered_at, raw = polls.answers[target]
            latency = answered_at - queued_at
            assert raw.startswith(b"HTTP/1.1 200"), raw[:300]
            assert b'"reference":"BC-4242"' in raw.replace(b" ", b"")
            time.sleep(0.3)
            still_waiting = AGENTS - len(polls.answers)
            assert still_waiting == AGENTS - 1, {i: a[1][:200] for i, a in list(polls.answers.items())[:3]}
            assert time.monotonic() - started < 25  # all of it inside one long poll window
            assert latency < 1.0, latency
            assert proc.poll() is None
            print(f"{AGENTS} idle polls held {queued_at - started:.1f} s after start (idle after {settled:.1f} s "
                  f"more); server threads {threads}; handover {latency * 1000:.0f} ms; "
                  f"still waiting {still_waiting}")
        finally:
            polls.close()
