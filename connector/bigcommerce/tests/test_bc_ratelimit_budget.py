"""The shared request budget's rules, run against both backends (in-process and Redis/Lua)."""

from __future__ import annotations

import pytest

from connector.bigcommerce.ratelimit import (
    NO_HEADER_429_BASE_MS,
    PROBE_TTL_MS,
    BudgetState,
    Headers,
    LocalBudget,
    RedisBudget,
)
from tests.support.bigcommerce import redis_or_skip, unique_prefix

T0 = 1_700_000_000_000


@pytest.fixture(params=["local", "redis"])
def budget(request):
    if request.param == "local":
        yield LocalBudget(floor=3)
        return
    client = redis_or_skip()
    key = unique_prefix() + ":budget"
    yield RedisBudget(client, key, floor=3)
    client.delete(key)


def ok(left, reset_ms=20_000):
    return Headers(200, left=left, reset_ms=reset_ms, quota=150, window_ms=30_000)


def test_first_request_probes_and_others_wait_for_its_headers(budget):
    assert budget.reserve(T0) == 0  # the probe
    wait = budget.reserve(T0 + 1)
    assert 0 < wait <= 50  # someone else is probing: look again shortly
    budget.observe(T0 + 10, ok(149))
    assert budget.reserve(T0 + 11) == 0


def test_slots_are_counted_down_to_the_floor_then_wait_for_reset(budget):
    budget.reserve(T0)
    budget.observe(T0, ok(10, reset_ms=5_000))  # window resets at T0 + 5000
    granted = sum(1 for _ in range(20) if budget.reserve(T0 + 100) == 0)
    assert granted == 7  # 10 left, 3 kept for the other apps on the store
    wait = budget.reserve(T0 + 100)
    assert wait == 4_900
    # After the reset nothing is known: one probe again.
    assert budget.reserve(T0 + 5_000) == 0
    assert budget.reserve(T0 + 5_001) > 0


def test_headers_lower_the_count_but_never_raise_it_within_a_window(budget):
    budget.reserve(T0)
    budget.observe(T0, ok(100, reset_ms=20_000))
    budget.observe(T0 + 50, ok(40, reset_ms=19_950))  # another app used 60
    budget.observe(T0 + 60, ok(90, reset_ms=19_940))  # a late answer from before
    granted = sum(1 for _ in range(100) if budget.reserve(T0 + 100) == 0)
    assert granted == 37


def test_a_new_window_replaces_the_count(budget):
    budget.reserve(T0)
    budget.observe(T0, ok(5, reset_ms=1_000))
    budget.observe(T0 + 1_200, ok(149, reset_ms=29_800))
    assert sum(1 for _ in range(200) if budget.reserve(T0 + 1_300) == 0) == 146


def test_429_with_headers_blocks_everyone_until_the_reset(budget):
    budget.reserve(T0)
    budget.observe(T0, ok(100))
    budget.observe(T0 + 10, Headers(429, left=0, reset_ms=7_000))
    wait = budget.reserve(T0 + 20)
    assert 6_990 <= wait <= 6_990 + 250  # jitter spreads the wake-ups
    assert budget.reserve(T0 + 7_300) == 0  # the probe of the new window


def test_429_without_headers_backs_off_longer_and_grows(budget):
    budget.reserve(T0)
    budget.observe(T0, Headers(429))
    first = budget.reserve(T0 + 1)
    assert NO_HEADER_429_BASE_MS - 1 <= first <= NO_HEADER_429_BASE_MS + 5_000
    later = T0 + first + 1
    assert budget.reserve(later) == 0
    budget.observe(later, Headers(429))
    assert budget.reserve(later + 1) >= 2 * NO_HEADER_429_BASE_MS - 1


def test_a_lost_probe_frees_the_window_after_its_ttl(budget):
    assert budget.reserve(T0) == 0
    assert budget.reserve(T0 + PROBE_TTL_MS - 1) > 0
    assert budget.reserve(T0 + PROBE_TTL_MS) == 0


def test_acquire_sleeps_until_granted_and_gives_up_after_max_wait():
    budget = LocalBudget()
    clock = [T0 / 1000]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        clock[0] += seconds

    budget.reserve(T0)
    budget.observe(T0, Headers(429, left=0, reset_ms=2_000))
    waited = budget.acquire(clock=lambda: clock[0], sleep=sleep)
    assert 2.0 <= waited < 2.5 and slept
    budget.observe(int(clock[0] * 1000), Headers(429))
    budget.max_wait_seconds = 5
    from mlcommon.http import RateLimitedError

    with pytest.raises(RateLimitedError):
        budget.acquire(clock=lambda: clock[0], sleep=sleep)


def test_state_is_the_same_in_both_backends():
    client = redis_or_skip()
    key = unique_prefix() + ":twin"
    shared = RedisBudget(client, key)
    local = BudgetState()
    steps = [("r", T0), ("o", T0 + 5, ok(50, 9_000)), ("r", T0 + 6), ("r", T0 + 7),
             ("o", T0 + 8, ok(30, 8_990)), ("r", T0 + 9), ("o", T0 + 10, Headers(429, left=0, reset_ms=500))]
    for step in steps:
        if step[0] == "r":
            assert shared.reserve(step[1]) == local.reserve(step[1])
        else:
            shared.observe(step[1], step[2])
            local.observe(step[1], step[2])
    mirrored = shared.state()
    assert (mirrored.left, mirrored.reset_at, mirrored.strikes) == (local.left, local.reset_at, local.strikes)
    client.delete(key)


def test_redis_budget_keeps_working_in_process_while_redis_is_unreachable(caplog):
    """A Redis restart must not fail store calls (the chaos run once lost a record this way):
    the budget falls back to this process's own, and still honours the store's 429."""
    import socket
    import time

    from connector.bigcommerce.ratelimit import _redis

    with socket.socket() as probe:  # a port with nothing listening on it: a real refused connection
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    down = RedisBudget(_redis(f"redis://127.0.0.1:{port}/0"), "unreachable:budget", floor=3)
    assert down.reserve(T0) == 0  # the fallback's probe
    down.observe(T0 + 10, ok(149))
    assert down.reserve(T0 + 11) == 0
    down.observe(T0 + 20, Headers(429, left=0, reset_ms=4_000, quota=150, window_ms=30_000))
    assert down.reserve(T0 + 21) >= 3_000  # the 429's reset is respected without Redis
    assert "unreachable" in caplog.text
    assert time.monotonic() - started < 2, "each call waited out redis-py's retries"
