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
