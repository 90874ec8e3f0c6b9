"""insert_new: one INSERT … ON CONFLICT DO NOTHING RETURNING for a batch, telling exactly which rows
were new (the backfill's records and the mapped orders' agent jobs rely on it)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from connector.services import bulk
from mappings.models import RecordLink
from tests.support.factories import IntegrationFactory

pytestmark = pytest.mark.django_db


def link(integration, external_id, sage_id="S"):
    return RecordLink(integration=integration, kind=RecordLink.Kind.INVOICE, external_id=external_id,
                      sage_id=sage_id, reference=f"BC-{external_id}")


def test_returns_only_the_rows_it_inserted():
    integration = IntegrationFactory()
    RecordLink.objects.create(integration=integration, kind=RecordLink.Kind.INVOICE, external_id="2",
                              sage_id="OLD", reference="BC-2")
    with CaptureQueriesContext(connection) as queries:
        rows = bulk.insert_new(RecordLink, [link(integration, n) for n in ("1", "2", "3")],
                               returning=("id", "external_id"))
    assert len(queries) == 1
    assert sorted(external for _, external in rows) == ["1", "3"]
    by_external = dict(RecordLink.objects.values_list("external_id", "id"))
    assert {external: pk for pk, external in rows} == {"1": by_external["1"], "3": by_external["3"]}
    # The existing row is left as it was.
    assert RecordLink.objects.get(external_id="2").sage_id == "OLD"


def test_a_repeated_key_in_one_batch_inserts_once():
    integration = IntegrationFactory()
    rows = bulk.insert_new(RecordLink, [link(integration, "7", "A"), link(integration, "7", "B")],
                           returning=("external_id",))
    assert rows == [("7",)]
    assert RecordLink.objects.filter(external_id="7").count() == 1


def test_batches_larger_than_one_statement(monkeypatch):
    monkeypatch.setattr(bulk, "INSERT_BATCH", 3)
    integration = IntegrationFactory()
    rows = bulk.insert_new(RecordLink, [link(integration, str(n)) for n in range(8)])
    assert len(rows) == 8 and RecordLink.objects.count() == 8


def test_without_returning_support_it_inserts_row_by_row(monkeypatch):
    # A property on SQLite (it depends on the library's version), a plain attribute elsewhere.
    monkeypatch.setattr(type(connection.features), "can_return_rows_from_bulk_insert", False)
    integration = IntegrationFactory()
    RecordLink.objects.create(integration=integration, kind=RecordLink.Kind.INVOICE, external_id="1",
                              sage_id="OLD", reference="BC-1")
    rows = bulk.insert_new(RecordLink, [link(integration, "1"), link(integration, "2")],
                           returning=("external_id",))
    assert rows == [("2",)]


def test_update_rows_writes_each_objects_values_in_one_statement():
    import datetime as dt

    from django.utils import timezone

    from connector.models import SyncRecord

    integration = IntegrationFactory()
    records = [SyncRecord.objects.create(integration=integration, kind="order", external_id=str(n),
                                         action="post_invoice") for n in range(3)]
    moment = timezone.now() - dt.timedelta(days=1)
    for n, record in enumerate(records):
        record.state = "dispatched"
        record.message = f"it's number {n}"
        record.document = {"invoice": {"n": n, "total": "1.10"}} if n else None
        record.waiting_for = ["sku:A"] * n
        record.attempts = n + 7
        record.posted_at = moment if n == 2 else None
    with CaptureQueriesContext(connection) as queries:
        written = bulk.update_rows(SyncRecord, records, ["state", "message", "document", "waiting_for", "attempts",
                                                         "posted_at"])
    assert written == 3 and len(queries) == 1
    for n, record in enumerate(SyncRecord.objects.filter(pk__in=[r.pk for r in records]).order_by("external_id")):
        assert (record.state, record.message, record.attempts) == ("dispatched", f"it's number {n}", n + 7)
        assert record.document == ({"invoice": {"n": n, "total": "1.10"}} if n else None)
        assert record.waiting_for == ["sku:A"] * n
        assert record.posted_at == (moment if n == 2 else None)


def test_update_rows_leaves_rows_that_moved_on():
    from connector.models import SyncRecord

    integration = IntegrationFactory()
    pending = SyncRecord.objects.create(integration=integration, kind="order", external_id="1", action="post_invoice")
    posted = SyncRecord.objects.create(integration=integration, kind="order", external_id="2", action="post_invoice",
                                       state="posted")
    for record in (pending, posted):
        record.state = "dispatched"
    assert bulk.update_rows(SyncRecord, [pending, posted], ["state"], only_if=("state", ("pending", "failed"))) == 1
    assert dict(SyncRecord.objects.values_list("external_id", "state")) == {"1": "dispatched", "2": "posted"}


def _awkward_entries(record):
    """Values that a JSON round trip could bend: microseconds and offsets, quotes, backslashes,
    non-ASCII, a JSON document that is a bare string, SQL NULL in a JSON column."""
    import datetime as dt

    from connector.models import AuditEntry

    moment = dt.datetime(2026, 3, 29, 1, 59, 59, 123456, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    return [
        AuditEntry(record=record, step="mapped", message='quote " back\\slash\nnew line é 漢 \t',
                   data={"nested": {"list": [1, 2.5, None, True], "money": "10.05", "text": "a\\\"b"}},
                   created_at=moment),
        AuditEntry(record=record, step="posted", message="", data="just a string", created_at=moment),
        AuditEntry(record=record, step="leased", message="no data", data=None, created_at=moment),
    ]


def _stored(record):
    from connector.models import AuditEntry

    return [(e.step, e.message, e.data, e.created_at) for e in AuditEntry.objects.filter(record=record).order_by("id")]


@pytest.mark.parametrize("write_as_json", [True, False], ids=["one-json-parameter", "bound-values"])
def test_both_write_paths_store_exactly_the_values_given(monkeypatch, write_as_json):
    """PostgreSQL takes a batch as one JSON parameter (jsonb_populate_recordset); a value without
    an exact JSON form falls back to parameters bound one by one. Either way a row reads back as
    the object it was written from."""
    from connector.models import AuditEntry, SyncRecord

    if not write_as_json:
        monkeypatch.setattr(bulk, "_rows_as_json", lambda *args: None)
    integration = IntegrationFactory()
    record = SyncRecord.objects.create(integration=integration, kind="order", external_id="1", action="post_invoice")
    entries = _awkward_entries(record)
    bulk.insert_rows(AuditEntry, entries)
    assert _stored(record) == [(e.step, e.message, e.data, e.created_at) for e in entries]
    assert AuditEntry.objects.filter(record=record, data__isnull=True).count() == 1  # SQL NULL, not JSON null

    stored = list(AuditEntry.objects.filter(record=record).order_by("id"))
    for entry in stored:
        entry.message = entry.message + " (again)"
        entry.data = {"was": entry.data}
    assert bulk.update_rows(AuditEntry, stored, ["message", "data"]) == 3
    assert [(step, message, data) for step, message, data, _ in _stored(record)] == [
        (e.step, e.message + " (again)", {"was": e.data}) for e in entries]


def test_a_value_without_a_json_form_is_bound_instead():
    from django.db import models

    from connector.models import AuditEntry

    data = AuditEntry._meta.get_field("data")
    binary = models.BinaryField()
    binary.column = "blob"
    assert bulk._rows_as_json([data], [[{"x": float("nan")}]], connection) is None
    assert bulk._rows_as_json([binary], [[b"\x00bytes"]], connection) is None
    if connection.vendor == "postgresql":
        assert bulk._rows_as_json([data], [[{"x": 1.5}]], connection) == '[{"data":{"x":1.5}}]'


def test_a_field_subclass_still_prepares_its_values():
    """Plain str and int values of Django's own fields go into the JSON as they are; a subclass
    (an encrypted field, say) may transform them, so its own preparation still runs."""
    from django.db import models

    class Shouting(models.CharField):
        def get_db_prep_save(self, value, connection):
            return str(value).upper()

    plain, shouting = models.CharField(max_length=9), Shouting(max_length=9)
    assert bulk._json_value(plain, "quiet", connection) == "quiet"
    assert bulk._json_value(shouting, "quiet", connection) == "QUIET"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the plan of PostgreSQL's statement")
def test_updating_a_few_rows_of_a_large_table_reads_them_by_key():
    # PostgreSQL takes a set-returning function for 100 rows: joined to a table of thousands, an
    # update of one row read the whole table (a hash join), a cost growing with the table.
    from connector.models import SyncRecord

    integration = IntegrationFactory()
    SyncRecord.objects.bulk_create(
        SyncRecord(integration=integration, kind="order", external_id=str(n), action="post_invoice",
                   payload={"n": n}) for n in range(3000))
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {SyncRecord._meta.db_table}")
    record = SyncRecord.objects.get(external_id="1234")
    record.message = "changed"
    with CaptureQueriesContext(connection) as queries:
        assert bulk.update_rows(SyncRecord, [record], ["message"]) == 1
    (update,) = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {update}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Seq Scan on connector_syncrecord" not in plan, plan
    assert "Index Scan" in plan, plan
    assert SyncRecord.objects.get(pk=record.pk).message == "changed"
