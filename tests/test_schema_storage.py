"""How the hot tables are stored: what the throughput measurements rely on."""

from __future__ import annotations

import pytest
from django.db import connection

from connector.models import SyncRecord

pytestmark = pytest.mark.django_db


def _index_columns(table: str) -> list[list[str]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return [c["columns"] for c in constraints.values() if c["index"] or c["unique"]]


def test_a_state_change_touches_few_indexes():
    # Every state change of a record writes an entry in each index of the row (state is indexed,
    # so the update is never HOT): no index duplicates another's leading column.
    columns = _index_columns(SyncRecord._meta.db_table)
    assert ["integration_id"] not in columns
    assert columns.count(["state"]) == 1
    assert ["integration_id"] not in _index_columns("connector_agentjob")


def test_the_lease_has_an_index_over_the_jobs_still_to_do_in_lease_order():
    # A plain index scan of it marks the dead entries that queued → leased → done leaves behind,
    # where the bitmap scan of the (integration, state, available_at) index visited them every time.
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, "connector_agentjob")
    assert constraints["agent_job_to_lease"]["columns"] == ["integration_id", "priority", "id"]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_get_expr(indpred, indrelid) FROM pg_index "
                           "WHERE indexrelid = 'agent_job_to_lease'::regclass")
            predicate = cursor.fetchone()[0]
        assert "queued" in predicate and "leased" in predicate and "done" not in predicate


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TOAST compression is PostgreSQL's")
def test_large_json_columns_are_compressed_with_lz4_where_the_server_has_it():
    with connection.cursor() as cursor:
        cursor.execute("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
        if "lz4" not in (cursor.fetchone()[0] or []):
            pytest.skip("this PostgreSQL was built without lz4")
        cursor.execute("SELECT attname, attcompression FROM pg_attribute WHERE attrelid = %s::regclass"
                       " AND attname IN ('payload', 'document')", [SyncRecord._meta.db_table])
        assert dict(cursor.fetchall()) == {"payload": "l", "document": "l"}
