"""A dedicated, freshly migrated database for a benchmark run, never the developer's own."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def prepare_database(name: str = "mlconnector_bench", sqlite_path: Path | None = None) -> str:
    """Point DATABASE_URL at a fresh, migrated database for one run: ``name`` on the DATABASE_URL
    PostgreSQL server (dropped first, whoever is connected), else a new SQLite file. Never the
    developer's own database. Returns the new URL."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        import psycopg

        base, _, _ = url.rpartition("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")
        fresh = f"{base}/{name}"
    else:
        path = sqlite_path or BASE_DIR / "data" / "bench.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        fresh = f"sqlite:///{path}"
    os.environ["DATABASE_URL"] = fresh
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector.settings")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, check=True, env=os.environ)
    return fresh


def drop_database(name: str) -> None:
    """Drop a run's PostgreSQL database (prepare_database made it), whoever is still connected;
    nothing on SQLite, whose file goes with the run's folder."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return
    import psycopg
    from django.db import connections

    connections.close_all()
    base, _, _ = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def machine() -> dict:
    mem = ""
    try:
        mem = next(line.split()[1] for line in open("/proc/meminfo") if line.startswith("MemTotal"))
        mem = f"{int(mem) // 1024 // 1024} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cores": os.cpu_count(), "memory": mem, "cpu": cpu, "python": platform.python_version(),
            "platform": platform.platform(), "python_speed_s": python_speed()}


def python_speed(rounds: int = 3) -> float:
    """Seconds a fixed pure-Python workload takes here, best of ``rounds``. Lower is faster.

    Machines of the same name are not equally fast: on the same 2-core kind, the same commit has
    measured 153 and 77 orders/s on different days. A result read together with this figure says
    whether the code or the machine changed."""
    import time

    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        table: dict[int, int] = {}
        total = 0
        for n in range(1_000_000):
            table[n & 1023] = n
            total += table[(n * 7) & 1023] if (n * 7) & 1023 in table else n
        best = min(best, time.perf_counter() - started)
    return round(best, 3)
