"""A dedicated, freshly migrated database for a benchmark run, never the developer's own.

Migrating a new database takes 5 s or more here, and one `make bench` makes eight of them (one
per row that runs its own stack), more with repeated runs. So the migrations run once into a
template, named after a fingerprint of everything that decides the schema (the project's
migration files and the installed packages' versions), and each run's database is a copy of it:
``CREATE DATABASE … TEMPLATE`` on PostgreSQL, a file copy on SQLite. A changed migration or
package gives a new fingerprint, so a stale schema is never copied; templates of other
fingerprints are removed when a new one is made.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
from importlib import metadata
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PROJECT = "ml-connector"  # pyproject.toml's name
TEMPLATE_PREFIX = "mlconnector_bench_template_"  # PostgreSQL: + the schema fingerprint
SQLITE_TEMPLATES = BASE_DIR / "data" / "bench-templates"  # SQLite: <fingerprint>.sqlite3 here


def schema_fingerprint(base_dir: Path = BASE_DIR) -> str:
    """12 hex digits that change whenever a migration file of the project or the version of an
    installed package (Django's own apps, django-celery-beat, axes …) changes."""
    digest = hashlib.sha256()
    for path in sorted(base_dir.glob("*/migrations/*.py")) + sorted(base_dir.glob("*/*/migrations/*.py")):
        digest.update(str(path.relative_to(base_dir)).encode())
        digest.update(path.read_bytes())
    # A set, without this project's own entry: the interpreter sees ml-connector's metadata (and
    # sees some packages twice) depending on what is on sys.path, pytest's or `python -m bench`'s.
    packages = sorted({f"{dist.metadata['Name']}=={dist.version}" for dist in metadata.distributions()
                       if dist.metadata["Name"] != PROJECT})
    digest.update("\n".join(packages).encode())
    return digest.hexdigest()[:12]


def _remove_sqlite(path: Path, parts: tuple[str, ...] = ("", "-wal", "-shm")) -> None:
    """A SQLite database file and its side files (write-ahead log, shared memory), if there."""
    for suffix in parts:
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _migrate(url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "connector.settings"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE_DIR, check=True, env=env)


def _postgres_template(conn, base: str) -> str:
    """The migrated template database for this schema, made if missing. Two benches starting at
    once may both build one: each builds under a name of its own and renames it into place, and
    the loser drops its copy (the rename is atomic; the template is never seen half-migrated)."""
    template = f"{TEMPLATE_PREFIX}{schema_fingerprint()}"
    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (template,)).fetchone():
        return template
    building = f"{template}_build_{os.getpid()}"
    conn.execute(f"DROP DATABASE IF EXISTS {building} WITH (FORCE)")
    conn.execute(f"CREATE DATABASE {building}")
    _migrate(f"{base}/{building}")
    try:
        conn.execute(f"ALTER DATABASE {building} RENAME TO {template}")
    except Exception:  # another bench renamed its copy first: use that one
        conn.execute(f"DROP DATABASE IF EXISTS {building} WITH (FORCE)")
    stale = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s AND datname <> %s",
                         (f"{TEMPLATE_PREFIX}%", template)).fetchall()
    for (name,) in stale:
        if "_build_" not in name:  # another bench may be building that one right now
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return template


def _sqlite_template() -> Path:
    """The migrated template file for this schema, made if missing (built aside and renamed into
    place, as on PostgreSQL; its WAL folded in, so the one file is the whole database)."""
    folder = SQLITE_TEMPLATES
    folder.mkdir(parents=True, exist_ok=True)
    template = folder / f"{schema_fingerprint()}.sqlite3"
    if template.exists():
        return template
    building = folder / f"{template.stem}.build-{os.getpid()}.sqlite3"
    _remove_sqlite(building)  # a build a crashed bench of the same pid left
    _migrate(f"sqlite:///{building}")
    with sqlite3.connect(building) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode=DELETE")
    _remove_sqlite(building, ("-wal", "-shm"))
    os.replace(building, template)
    for other in folder.glob("*.sqlite3"):
        if other != template and ".build-" not in other.name:
            other.unlink(missing_ok=True)
    return template


def prepare_database(name: str = "mlconnector_bench", sqlite_path: Path | None = None) -> str:
    """Point DATABASE_URL at a fresh, migrated database for one run: ``name`` on the DATABASE_URL
    PostgreSQL server (dropped first, whoever is connected), else a new SQLite file; either a copy
    of the migrated template. Never the developer's own database. Returns the new URL."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        import psycopg

        base, _, _ = url.rpartition("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            template = _postgres_template(conn, base)
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        fresh = f"{base}/{name}"
    else:
        path = sqlite_path or BASE_DIR / "data" / "bench.sqlite3"
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_sqlite(path)
        shutil.copyfile(_sqlite_template(), path)
        fresh = f"sqlite:///{path}"
    os.environ["DATABASE_URL"] = fresh
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector.settings")
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
