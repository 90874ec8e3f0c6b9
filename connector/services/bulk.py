"""Set-based writes for the hot path: a page of records, a chunk of mapped orders, a batch of agent
results each cost a handful of statements instead of a handful per row."""

from __future__ import annotations

from django.db import connections, router
from django.db.models import sql
from django.db.models.constants import OnConflict

# Rows per INSERT: well under PostgreSQL's 65,535 bind parameters and SQLite's 32,766 for the widest
# model written here (a sync record, 16 columns).
INSERT_BATCH = 500


def insert_new(model, objs: list, returning: tuple[str, ...] = ("id",)) -> list[tuple]:
    """INSERT … ON CONFLICT DO NOTHING RETURNING ``returning``: the rows this statement inserted,
    and only those. The unique constraint decides, not a look-up before the insert, so two
    processes racing on the same key cannot both believe they created it (bulk_create with
    ignore_conflicts cannot say which rows were new). The order of the returned rows is not that
    of ``objs``: return a key column to match them up."""
    if not objs:
        return []
    connection = connections[router.db_for_write(model)]
    opts = model._meta
    returning_fields = [opts.get_field(name) for name in returning]
    if not connection.features.can_return_rows_from_bulk_insert:  # SQLite older than 3.35
        return _insert_new_one_by_one(model, objs, returning)
    fields = [field for field in opts.concrete_fields if not field.primary_key]
    rows: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(objs), INSERT_BATCH):
            batch = objs[start:start + INSERT_BATCH]
            for obj in batch:
                obj._prepare_related_fields_for_save(operation_name="bulk_create")
            query = sql.InsertQuery(model, on_conflict=OnConflict.IGNORE)
            query.insert_values(fields, batch)
            compiler = query.get_compiler(connection=connection)
            compiler.returning_fields = returning_fields
            for statement, params in compiler.as_sql():
                cursor.execute(statement, params)
                rows.extend(tuple(row) for row in cursor.fetchall())
    return rows


def _insert_new_one_by_one(model, objs: list, returning: tuple[str, ...]) -> list[tuple]:
    from django.db import IntegrityError, transaction

    rows = []
    for obj in objs:
        try:
            with transaction.atomic():
                obj.save(force_insert=True)
        except IntegrityError:
            continue
        rows.append(tuple(getattr(obj, name) for name in returning))
    return rows
