"""The per-process wake-up hub (connector/services/wakeup.py), without a database."""

import asyncio
import os
import time

import pytest
from django.test import override_settings

from connector.services import wakeup


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_sweep_wakes_only_integrations_with_ready_jobs(monkeypatch):
    monkeypatch.setattr(wakeup, "SWEEP_SECONDS_WITHOUT_REDIS", 0.05)
    asked = []

    async def ready(ids):
        asked.append(sorted(ids))
        return {2}

    async def scenario():
        hub = wakeup.JobWaiters(ready)
        with hub.waiting(1) as one, hub.waiting(2) as two, hub.waiting(2) as two_again:
            await asyncio.wait_for(two.wait(), 1)
            assert two_again.is_set() and not one.is_set()
            assert hub.waiter_count == 3
        assert hub.waiting_integrations == [] and hub.waiter_count == 0
        await asyncio.sleep(0.15)
        return hub

    hub = run(scenario())
    assert asked and all(ids == [1, 2] for ids in asked)  # one query for all waiters
    assert hub._sweeper.done()  # stops when nobody waits


def test_a_failing_sweep_keeps_sweeping(monkeypatch):
    monkeypatch.setattr(wakeup, "SWEEP_SECONDS_WITHOUT_REDIS", 0.02)
    calls = []

    async def flaky(ids):
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("database went away")
        return set(ids)

    async def scenario():
        hub = wakeup.JobWaiters(flaky)
        with hub.waiting(5) as event:
            await asyncio.wait_for(event.wait(), 1)

    run(scenario())
    assert len(calls) >= 3


def test_channel_names_round_trip():
    assert wakeup._integration_ids_from([wakeup.channel_for(12).encode(), "mlc:jobs:x", b"other:3", None]) == [12]


def _redis_available(url):
    try:
        import redis

        return redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except Exception:
        return False


REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")  # see test_agentapi_e2e_longpoll


@pytest.mark.skipif(not _redis_available(REDIS_URL), reason="no Redis on 127.0.0.1:6379")
def test_redis_publish_wakes_a_waiter_at_once_over_one_subscription(monkeypatch):
    monkeypatch.setattr(wakeup, "SWEEP_SECONDS_WITH_REDIS", 30)  # only the publish can wake it in time

    async def nothing_ready(ids):
        return set()

    async def scenario():
        hub = wakeup.JobWaiters(nothing_ready, REDIS_URL)
        events = []
        with hub.waiting(41) as target:
            for n in range(200):
                events.append(hub.waiting(1000 + n))
            waiting = [cm.__enter__() for cm in events]
            for _ in range(100):
                if hub.redis_connected:
                    break
                await asyncio.sleep(0.02)
            assert hub.redis_connected
            started = time.monotonic()
            with override_settings(COORDINATION_REDIS_URL=REDIS_URL):
                await asyncio.to_thread(wakeup.notify_jobs_available, 41)
            await asyncio.wait_for(target.wait(), 1)
            latency = time.monotonic() - started
            assert not any(event.is_set() for event in waiting)
            for cm in events:
                cm.__exit__(None, None, None)
        hub._listener.cancel()
        return latency

    assert run(scenario()) < 0.5
