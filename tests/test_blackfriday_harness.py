"""The Black Friday bench's harness at its smallest, as real processes: two stores in one sandbox
process, two web nodes, two worker nodes, beat, an agent per store with its simulated Sage 50
company; paid orders with duplicate deliveries and refunds for ten seconds. Everything placed
ends in its store's Sage company once (bench/blackfriday.py does the work; the latency targets
are the bench's business, not this test's)."""

from __future__ import annotations

import pytest

from bench import blackfriday

pytestmark = pytest.mark.e2e


def test_two_stores_for_ten_seconds_post_everything_once(process_env, tmp_path):
    fleet = blackfriday.start_black_friday(process_env, tmp_path, stores=2, duplicate_share=0.3)
    try:
        result = blackfriday.run_load(fleet, rate_per_s=4, duration_s=10, refund_share=0.25, drain_timeout_s=180)
    finally:
        fleet.stop()
    summary = {k: result[k] for k in ("settled", "orders_placed", "refunds_placed", "duplicate_deliveries",
                                      "duplicates", "lost", "cent_differences", "stuck", "problems",
                                      "webhook_to_posted_s", "load_errors")}
    assert result["settled"], summary
    assert result["orders_placed"] == 40 and not result["load_errors"], summary
    assert result["refunds_placed"] >= 1, summary
    assert result["duplicate_deliveries"] >= 1, "the store really sent deliveries twice"
    assert result["duplicates"] == 0 and result["lost"] == 0, summary
    assert result["cent_differences"] == 0 and result["stuck"] == 0, summary
    # Every placed order and refund was timed from its webhook to its posting.
    assert result["orders_measured"] == 40 and result["orders_without_webhook"] == 0, summary
    assert result["refunds_measured"] == result["refunds_placed"], summary
    assert result["backlog_empty_after_s"] is not None, "the backlog went back to zero"
    # What the database did, on PostgreSQL: the busiest tables (which ones lead depends on the
    # run; bench.dbactivity's own test checks the ranking), and backends sampled.
    activity = result["database_activity"]
    if result["database"] == "postgresql":
        assert activity["tables"] and all({"table", "seq_tup_read", "idx_scan", "n_tup_ins"} <= set(row)
                                          for row in activity["tables"]), activity
        assert sum(row["idx_scan"] + row["n_tup_ins"] + row["n_tup_upd"] for row in activity["tables"]) > 0
        assert activity["backends_by_10s"] and activity["statements"], activity
    else:
        assert activity == {}

