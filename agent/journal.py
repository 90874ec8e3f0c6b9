"""The agent's local journal of Sage writes (SQLite), the bridge across crashes.

For each write job: ``started`` before the Sage call, ``written`` (with the result) right after
it, ``acknowledged`` once the server accepted ``complete``. A job leased again whose entry is
``written`` is completed with the stored result without touching Sage. A crash *between* the Sage
write and ``written`` leaves ``started``; that case is covered by the look-up by reference every
create does first, so the rerun finds the document instead of posting a second one.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

STARTED = "started"
WRITTEN = "written"
ACKNOWLEDGED = "acknowledged"


@dataclass
class JournalEntry:
    job_id: int
    op: str
    reference: str
    state: str
    sage_id: str | None
    result: dict | None
    runs: int
    lease_token: str | None = None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class Journal:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=15)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL: in WAL mode a commit is durable once SQLite's write() returns, across a crash or
        # kill of the agent (the case the journal is for: Sage wrote, the server has not heard). It
        # is not fsynced until a checkpoint, so a power cut may forget the last rows; a job whose
        # "written" row was lost reruns and the look-up by reference that every create does first
        # finds the document (existed=true), so nothing is posted twice. FULL cost an fsync per
        # Sage write: measured, a third of the agent's time in a backfill.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS entries (job_id INTEGER PRIMARY KEY, op TEXT NOT NULL, reference TEXT,"
            " state TEXT NOT NULL, sage_id TEXT, result TEXT, runs INTEGER NOT NULL DEFAULT 0, lease_token TEXT,"
            " started_at TEXT, written_at TEXT, acknowledged_at TEXT)")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get(self, job_id: int) -> JournalEntry | None:
        with self._lock:
            row = self._db.execute("SELECT job_id, op, reference, state, sage_id, result, runs, lease_token"
                                   " FROM entries WHERE job_id = ?", (job_id,)).fetchone()
        if row is None:
            return None
        return JournalEntry(row[0], row[1], row[2] or "", row[3], row[4], json.loads(row[5]) if row[5] else None,
                            row[6], row[7])

    def started(self, job_id: int, op: str, reference: str, lease_token: str | None = None) -> None:
        self.started_many([(job_id, op, reference, lease_token)])

    def started_many(self, jobs: list[tuple[int, str, str, str | None]]) -> None:
        """(job id, op, reference, lease token) of jobs about to touch Sage, in one transaction (one
        fsync for a leased batch rather than one per job)."""
        if not jobs:
            return
        now = _now()
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO entries (job_id, op, reference, state, runs, lease_token, started_at)"
                    " VALUES (?, ?, ?, ?, 1, ?, ?)"
                    " ON CONFLICT (job_id) DO UPDATE SET state = excluded.state, runs = runs + 1,"
                    " lease_token = excluded.lease_token, started_at = excluded.started_at",
                    [(job_id, op, reference, STARTED, token, now) for job_id, op, reference, token in jobs])
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def written(self, job_id: int, sage_id: str | None, result: dict) -> None:
        with self._lock:
            self._db.execute("UPDATE entries SET state = ?, sage_id = ?, result = ?, written_at = ? WHERE job_id = ?",
                             (WRITTEN, sage_id, json.dumps(result), _now(), job_id))

    def acknowledged(self, *job_ids: int) -> None:
        """The server has these results (one statement, one fsync, for a batch complete's jobs)."""
        if not job_ids:
            return
        with self._lock:
            self._db.execute(f"UPDATE entries SET state = ?, acknowledged_at = ? WHERE job_id IN "
                             f"({', '.join('?' * len(job_ids))})", (ACKNOWLEDGED, _now(), *job_ids))

    def pending_acknowledgement(self) -> list[JournalEntry]:
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT job_id FROM entries WHERE state = ? ORDER BY job_id",
                                                  (WRITTEN,)).fetchall()]
        return [self.get(i) for i in ids]

    def entries(self) -> list[JournalEntry]:
        with self._lock:
            ids = [r[0] for r in self._db.execute("SELECT job_id FROM entries ORDER BY job_id").fetchall()]
        return [self.get(i) for i in ids]
