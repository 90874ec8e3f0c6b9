"""Per-store quota: headers on every response, 429 at the wall, storms, and the premature-retry log."""

from __future__ import annotations

import time

from sandbox.bigcommerce.ratelimit import RateLimiter

HEADERS = ("X-Rate-Limit-Requests-Left", "X-Rate-Limit-Requests-Quota", "X-Rate-Limit-Time-Window-Ms",
           "X-Rate-Limit-Time-Reset-Ms")


def test_headers_count_down_and_429_at_the_wall(make_bc):
    bc = make_bc(orders=5, faults={"quota": 5, "window_ms": 400})
    lefts = []
    for _ in range(5):
        r = bc.get("/v2/orders/count")
        assert r.status_code == 200 and all(h in r.headers for h in HEADERS)
        assert r.headers["X-Rate-Limit-Requests-Quota"] == "5" and r.headers["X-Rate-Limit-Time-Window-Ms"] == "400"
        lefts.append(int(r.headers["X-Rate-Limit-Requests-Left"]))
    assert lefts == [4, 3, 2, 1, 0]
    limited = bc.get("/v3/hooks")
    assert limited.status_code == 429
    reset_ms = int(limited.headers["X-Rate-Limit-Time-Reset-Ms"])
    assert 0 < reset_ms <= 400 and limited.headers["X-Rate-Limit-Requests-Left"] == "0"
    assert bc.get("/v3/hooks").status_code == 429  # too early: recorded as premature
    time.sleep(reset_ms / 1000 + 0.05)
    assert bc.get("/v3/hooks").status_code == 200  # after the reset
    summary = bc.control("GET", "/ratelimit").json()["summary"]
    assert summary["rate_limited"] == 2 and summary["premature"] == 1 and summary["max_early_ms"] > 0


def test_well_behaved_client_has_no_premature_requests(make_bc):
    bc = make_bc(orders=5, faults={"quota": 3, "window_ms": 300})
    for _ in range(8):
        r = bc.get("/v2/orders/count")
        if r.status_code == 429:
            time.sleep(int(r.headers["X-Rate-Limit-Time-Reset-Ms"]) / 1000 + 0.02)
    summary = bc.control("GET", "/counters").json()["rate_limit"]
    assert summary["rate_limited"] >= 1 and summary["premature"] == 0


def test_rate_limit_storm_set_at_run_time(make_bc):
    bc = make_bc(orders=5)
    assert bc.control("POST", "/faults", {"rate_limit_storm": 0.3}).status_code == 200
    r = bc.get("/v2/orders/count")
    assert r.status_code == 429 and 0 < int(r.headers["X-Rate-Limit-Time-Reset-Ms"]) <= 300
    assert int(r.headers["X-Retry-After"]) >= 1
    time.sleep(0.35)
    assert bc.get("/v2/orders/count").status_code == 200


def test_window_rolls_over_with_a_fake_clock():
    now = [100.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert [limiter.consume(2, 1000).allowed for _ in range(3)] == [True, True, False]
    now[0] += 0.5
    assert limiter.consume(2, 1000).reset_ms == 500  # still blocked, and this one came 500 ms early
    now[0] += 0.5
    assert limiter.consume(2, 1000).allowed
    assert limiter.summary() == {"requests": 5, "rate_limited": 2, "premature": 1, "max_early_ms": 500}
