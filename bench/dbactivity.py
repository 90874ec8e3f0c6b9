"""What PostgreSQL did during a bench's load: for finding a stall, or a cost per order that grows
with the data a run accumulates (bench/blackfriday.py reports it under ``database_activity``).

- per table: rows read by sequential scans, index scans, rows written, and the autovacuum and
  autoanalyze runs, as differences between two snapshots of ``pg_stat_user_tables``;
- the busiest statements by total time, when the server has ``pg_stat_statements`` loaded
  (``shared_preload_libraries``; the bench does not change the server's configuration);
- the backends busy on the bench's database and those waiting on a lock (``busy_backends``, which
  bench/blackfriday.py's sampler calls every half second; ``busy_by_10s`` sums them up), so a stall
  can be told apart from a lock queue.

Nothing here runs on the embedded SQLite database: ``available()`` is False there.
"""

from __future__ import annotations

TABLE_COLUMNS = ("seq_scan", "seq_tup_read", "idx_scan", "n_tup_ins", "n_tup_upd", "n_tup_del",
                 "autovacuum_count", "autoanalyze_count")


def available() -> bool:
    from django.db import connection

    return connection.vendor == "postgresql"


def table_snapshot() -> dict[str, dict[str, int]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT relname, {', '.join(TABLE_COLUMNS)} FROM pg_stat_user_tables")
        return {name: dict(zip(TABLE_COLUMNS, (int(v or 0) for v in values), strict=True))
                for name, *values in cursor.fetchall()}


def table_activity(before: dict, after: dict, *, top: int = 8) -> list[dict]:
    """The tables that did most during the load, sequential-scan reads first: a query that reads a
    growing table from the start on every call shows here long before it shows in latency."""
    rows = []
    for name, now in after.items():
        then = before.get(name, {})
        delta = {column: now[column] - then.get(column, 0) for column in TABLE_COLUMNS}
        if any(delta.values()):
            rows.append({"table": name, **delta})
    rows.sort(key=lambda row: (-row["seq_tup_read"], -row["idx_scan"]))
    return rows[:top]


def statements_available() -> bool:
    from django.db import DatabaseError, connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
        if cursor.fetchone():
            return _readable()
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_stat_statements'")
        if not cursor.fetchone():
            return False
        try:
            with transaction.atomic():
                cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        except DatabaseError:  # not allowed to: no statement figures
            return False
        return _readable()


def _readable() -> bool:
    """The view answers only when the server preloads the library."""
    from django.db import DatabaseError, connection, transaction

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_stat_statements LIMIT 1")
    except DatabaseError:
        return False
    return True


def reset_statements() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_statements_reset()")


def top_statements(*, top: int = 12) -> list[dict]:
    """The statements of the bench's database by total execution time since the reset."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT calls, total_exec_time, rows, left(regexp_replace(query, '\\s+', ' ', 'g'), 160) "
            "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
            "WHERE d.datname = current_database() ORDER BY total_exec_time DESC LIMIT %s", [top])
        return [{"calls": calls, "total_ms": round(total, 1), "mean_ms": round(total / max(calls, 1), 3),
                 "rows": rows, "query": query} for calls, total, rows, query in cursor.fetchall()]


def busy_backends() -> tuple[int, int]:
    """(backends running a statement on this database, of them waiting on a lock)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FILTER (WHERE state = 'active'), "
                       "count(*) FILTER (WHERE state = 'active' AND wait_event_type = 'Lock') "
                       "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        active, waiting = cursor.fetchone()
        return int(active), int(waiting)


def busy_by_10s(samples: list[tuple[float, int, int]], started_at: float) -> list[dict]:
    """Per 10 s of load: the most backends busy at once and the most waiting on a lock."""
    buckets: dict[int, list[tuple[int, int]]] = {}
    for at, active, waiting in samples:
        if at >= started_at:
            buckets.setdefault(int((at - started_at) // 10), []).append((active, waiting))
    return [{"from_s": index * 10, "max_active": max(a for a, _ in values), "max_lock_waits": max(w for _, w in values)}
            for index, values in sorted(buckets.items())]
