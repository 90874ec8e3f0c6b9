"""Session-wide test plumbing for every test folder (pyproject's testpaths)."""

import pytest
from django.db import connection


@pytest.fixture(scope="session", autouse=True)
def release_background_connections(django_db_setup, django_db_blocker):
    """Threads that are not the test's own keep persistent database connections by design: the
    webhook group-commit writer, and the long poll's shared pool threads (CONN_MAX_AGE, see
    agentapi/longpoll.py). Their connections are out of reach from here (Django's are per
    thread), so at the end of the session PostgreSQL is asked to end them; otherwise the test
    database cannot be dropped ("being accessed by other users") and lingers for the next run.
    Depends on django_db_setup so this teardown runs before the database is destroyed."""
    yield
    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture(autouse=True)
def no_agent_key_lockout_between_tests():
    """The wrong-agent-key lock-out counts per client address in the cache, which outlives a test:
    every test client call comes from 127.0.0.1, so one test's wrong keys must not lock the next out."""
    from agentapi.auth import unlock_address

    unlock_address("127.0.0.1")
    yield
    unlock_address("127.0.0.1")


@pytest.fixture(autouse=True)
def fresh_per_process_caches():
    """Per-process caches keyed by database id (an integration's mapping snapshot, a store's
    platform): on SQLite a rolled-back test's ids are handed out again, so the next test's
    integration could read the previous one's mappings (a random test order met it)."""
    from connector.flows import mapping_loader
    from connector.flows import stores as flow_stores

    mapping_loader._snapshots.clear()
    flow_stores._platform_of_store.clear()
    yield
