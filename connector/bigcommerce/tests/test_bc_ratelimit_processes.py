"""Several worker PROCESSES sharing one store's quota through Redis, against the sandbox store:
no 429 in steady state, and after a 429 storm nobody calls before the announced reset."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from tests.support.bigcommerce import REDIS_URL, Sandbox, hammer, redis_or_skip, unique_prefix

WORKERS = 4


def run_workers(box, key, seconds, workers=WORKERS):
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=hammer, args=(box.url, REDIS_URL, key, seconds, results)) for _ in range(workers)]
    for proc in procs:
        proc.start()
    outcomes = [results.get(timeout=seconds + 120) for _ in procs]
    for proc in procs:
        proc.join(timeout=30)
    return outcomes


def steady_state(quota, window_ms, seconds):
    redis = redis_or_skip()
    key = unique_prefix() + ":budget"
    box = Sandbox(orders=1, validate=False, faults={"quota": quota, "window_ms": window_ms})
    try:
        outcomes = run_workers(box, key, seconds)
        summary = box.app.limiter.summary()
    finally:
        box.stop()
        redis.delete(key)
    ok = sum(o[0] for o in outcomes)
    return ok, outcomes, summary


def test_processes_share_the_budget_with_zero_429s():
    # The real 150 / 30 s shape scaled down 15x in time so the test sees several windows quickly.
    ok, outcomes, summary = steady_state(quota=150, window_ms=2000, seconds=4)
    print(f"\n{WORKERS} processes, 150 per 2 s: {ok} calls, {summary}")
    assert summary["rate_limited"] == 0 and all(o[1] == 0 for o in outcomes)
    assert ok >= 2 * (150 - 3), "the processes used more than one window's quota, so they crossed windows"
    assert all(o[0] > 0 for o in outcomes), "every process got a share"


@pytest.mark.e2e
def test_processes_at_150_per_30_seconds_with_zero_429s():
    ok, outcomes, summary = steady_state(quota=150, window_ms=30000, seconds=40)
    print(f"\n{WORKERS} processes, 150 per 30 s: {ok} calls, {summary}")
    assert summary["rate_limited"] == 0
    assert ok >= 2 * (150 - 3)


def test_a_429_storm_holds_every_process_until_the_reset():
    redis = redis_or_skip()
    key = unique_prefix() + ":budget"
    box = Sandbox(orders=1, validate=False, faults={"quota": 1_000_000, "window_ms": 30000})
    try:
        ctx = multiprocessing.get_context("spawn")
        results = ctx.Queue()
        procs = [ctx.Process(target=hammer, args=(box.url, REDIS_URL, key, 4.5, results)) for _ in range(WORKERS)]
        for proc in procs:
            proc.start()
        deadline = time.monotonic() + 30
        while len(box.app.limiter.log) < 100 and time.monotonic() < deadline:  # the workers are calling
            time.sleep(0.05)
        box.app.faults.update({"rate_limit_storm": 1.5})
        outcomes = [results.get(timeout=120) for _ in procs]
        for proc in procs:
            proc.join(timeout=30)
        summary = box.app.limiter.summary()
        log = list(box.app.limiter.log)
    finally:
        box.stop()
        redis.delete(key)
    limited = sum(o[1] for o in outcomes)
    print(f"\nstorm: {summary}, 429s seen by workers: {limited}")
    # Only requests already on the wire when the first 429 came back can hit the storm; after
    # that every process waits for the announced reset.
    assert 1 <= summary["rate_limited"] <= WORKERS
    assert summary["premature"] <= WORKERS - 1
    after = [e for e in log if e["at"] > max(x["at"] for x in log if x["limited"])]
    assert after and not any(e["limited"] or e["premature"] for e in after)
    assert sum(o[0] for o in outcomes) > 0
