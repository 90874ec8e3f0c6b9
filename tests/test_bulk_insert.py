"""insert_new: one INSERT … ON CONFLICT DO NOTHING RETURNING for a batch, telling exactly which rows
were new (the backfill's records and the mapped orders' agent jobs rely on it)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from connector.services import bulk
from mappings.models import RecordLink
from tests.factories import IntegrationFactory

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
