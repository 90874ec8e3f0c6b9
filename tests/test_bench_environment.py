"""bench/environment.py: each run's database is a copy of one migrated template per schema, so a
`make bench` migrates once instead of once per row, and never copies a stale schema."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from bench import environment


def project(tmp_path: Path) -> Path:
    migrations = tmp_path / "shop" / "migrations"
    migrations.mkdir(parents=True)
    (migrations / "0001_initial.py").write_text("operations = []\n")
    return tmp_path


def test_the_fingerprint_follows_the_migrations_and_the_installed_packages(tmp_path, monkeypatch):
    base = project(tmp_path)
    first = environment.schema_fingerprint(base)
    assert environment.schema_fingerprint(base) == first  # stable: the template is reused

    (base / "shop" / "migrations" / "0002_price.py").write_text("operations = ['add price']\n")
    second = environment.schema_fingerprint(base)
    assert second != first  # a new migration: a new template

    (base / "shop" / "migrations" / "0002_price.py").write_text("operations = ['add price', 'index']\n")
    assert environment.schema_fingerprint(base) != second  # an edited one too

    class Dist:
        metadata = {"Name": "django-celery-beat"}
        version = "99.0"

    current = environment.schema_fingerprint(base)
    real = environment.metadata.distributions
    monkeypatch.setattr(environment.metadata, "distributions", lambda: [*real(), Dist()])
    assert environment.schema_fingerprint(base) != current  # a package upgrade may bring migrations


def test_sqlite_runs_get_copies_of_one_migrated_template(tmp_path, monkeypatch):
    monkeypatch.setattr(environment, "SQLITE_TEMPLATES", tmp_path / "templates")
    monkeypatch.setenv("DATABASE_URL", "")
    migrations = []
    real_migrate = environment._migrate
    monkeypatch.setattr(environment, "_migrate", lambda url: (migrations.append(url), real_migrate(url)))
    stale = tmp_path / "templates" / "000000000000.sqlite3"
    stale.parent.mkdir()
    stale.write_bytes(b"a template of an older schema")

    first = environment.prepare_database(sqlite_path=tmp_path / "run1" / "bench.sqlite3")
    second = environment.prepare_database(sqlite_path=tmp_path / "run2" / "bench.sqlite3")

    assert len(migrations) == 1  # migrated once, copied twice
    assert first.endswith("run1/bench.sqlite3") and os.environ["DATABASE_URL"] == second
    assert not stale.exists()  # the older schema's template is removed
    from django.db.migrations.loader import MigrationLoader

    expected = {(app, name) for app, name in MigrationLoader(None, ignore_no_migrations=True).disk_migrations}
    for run in ("run1", "run2"):
        with sqlite3.connect(tmp_path / run / "bench.sqlite3") as conn:
            applied = set(conn.execute("SELECT app, name FROM django_migrations"))
        assert applied == expected  # every migration of the code, nothing else
    # A run writes to its own copy, never to the template or another run's database.
    with sqlite3.connect(tmp_path / "run1" / "bench.sqlite3") as conn:
        conn.execute("INSERT INTO accounts_tenant (name, slug, created_at) VALUES ('Run one', 'run-one', '2026-12-06')")
    for other in (tmp_path / "run2" / "bench.sqlite3", *(tmp_path / "templates").glob("*.sqlite3")):
        with sqlite3.connect(other) as conn:
            assert conn.execute("SELECT count(*) FROM accounts_tenant").fetchone() == (0,)


@pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"), reason="needs PostgreSQL")
def test_postgresql_runs_are_created_from_the_template(monkeypatch):
    import psycopg

    url = os.environ["DATABASE_URL"]
    monkeypatch.setenv("DATABASE_URL", url)  # prepare_database points it at the new database
    base = url.rpartition("/")[0]
    name = f"mlconnector_bench_envtest_{os.getpid()}"
    fresh = environment.prepare_database(name)
    try:
        assert fresh == f"{base}/{name}"
        with psycopg.connect(f"{base}/postgres") as conn:
            templates = [row[0] for row in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (f"{environment.TEMPLATE_PREFIX}%",))]
        # One template: this schema's (a concurrent bench may be building one under a _build_ name).
        assert [name for name in templates if "_build_" not in name] == \
            [f"{environment.TEMPLATE_PREFIX}{environment.schema_fingerprint()}"]
        with psycopg.connect(fresh) as conn:
            assert conn.execute("SELECT count(*) FROM django_migrations").fetchone()[0] > 50
    finally:
        environment.drop_database(name)
