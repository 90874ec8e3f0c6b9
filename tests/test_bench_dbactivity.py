"""bench/dbactivity.py's arithmetic: what a table did during a load is the difference of two
snapshots, the tables that read most by sequential scan first; busy backends summed per 10 s."""

from __future__ import annotations

from bench import dbactivity


def snapshot(**tables) -> dict:
    return {name: dict(zip(dbactivity.TABLE_COLUMNS, values, strict=True)) for name, values in tables.items()}


def test_table_activity_is_the_difference_ranked_by_sequential_reads():
    before = snapshot(records=(1, 100, 5, 10, 0, 0, 0, 0), events=(0, 0, 50, 100, 0, 0, 0, 0),
                      idle=(3, 9, 1, 0, 0, 0, 0, 0))
    after = snapshot(records=(3, 2100, 25, 30, 7, 0, 0, 1), events=(0, 0, 950, 400, 300, 0, 0, 0),
                     idle=(3, 9, 1, 0, 0, 0, 0, 0), new=(1, 10, 0, 4, 0, 0, 0, 0))
    rows = dbactivity.table_activity(before, after)
    assert [row["table"] for row in rows] == ["records", "new", "events"]  # idle did nothing: left out
    assert rows[0] == {"table": "records", "seq_scan": 2, "seq_tup_read": 2000, "idx_scan": 20, "n_tup_ins": 20,
                       "n_tup_upd": 7, "n_tup_del": 0, "autovacuum_count": 0, "autoanalyze_count": 1}
    assert dbactivity.table_activity(before, after, top=1) == rows[:1]


def test_busy_backends_by_10_seconds_of_load():
    samples = [(99.0, 9, 9), (100.0, 2, 0), (105.0, 4, 1), (112.0, 1, 0), (131.0, 3, 2)]
    assert dbactivity.busy_by_10s(samples, started_at=100.0) == [
        {"from_s": 0, "max_active": 4, "max_lock_waits": 1}, {"from_s": 10, "max_active": 1, "max_lock_waits": 0},
        {"from_s": 30, "max_active": 3, "max_lock_waits": 2}]
