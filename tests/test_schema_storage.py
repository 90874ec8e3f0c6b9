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


@pytest.mark.skipif(connection.vendor != "postgresql", reason="TOAST compression is PostgreSQL's")
def test_large_json_columns_are_compressed_with_lz4_where_the_server_has_it():
    with connection.cursor() as cursor:
        cursor.execute("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
        if "lz4" not in (cursor.fetchone()[0] or []):
            pytest.skip("this PostgreSQL was built without lz4")
        cursor.execute("SELECT attname, attcompression FROM pg_attribute WHERE attrelid = %s::regclass"
                       " AND attname IN ('payload', 'document')", [SyncRecord._meta.db_table])
        assert dict(cursor.fetchall()) == {"payload": "l", "document": "l"}
