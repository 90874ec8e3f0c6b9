"""Set-based writes for the hot path: a page of records, a chunk of mapped orders, a batch of agent
results each cost a handful of statements instead of a handful per row."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal

from django.db import connections, models, router

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
    if not connection.features.can_return_rows_from_bulk_insert:  # SQLite older than 3.35
        return _insert_new_one_by_one(model, objs, returning)
    return _insert(model, objs, connection, conflict="ON CONFLICT DO NOTHING", returning=returning)


def insert_rows(model, objs: list) -> None:
    """INSERT of many rows as plain VALUES lists (what bulk_create does, faster: see _insert)."""
    if objs:
        _insert(model, objs, connections[router.db_for_write(model)])


def _insert(model, objs: list, connection, *, conflict: str = "", returning: tuple[str, ...] = ()) -> list[tuple]:
    """One INSERT … VALUES (…), (…) per INSERT_BATCH rows. Not bulk_create: on PostgreSQL, Django
    5.2 sends a bulk insert as UNNEST of one array per column, and psycopg escapes an array of JSON
    documents in Python, character by character (measured: two thirds of the backfill's worker
    time went there)."""
    opts = model._meta
    fields = [field for field in opts.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    table = quote(opts.db_table)
    column_list = ", ".join(quote(field.column) for field in fields)
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    tail = f" {conflict}" if conflict else ""
    if returning:
        tail += " RETURNING " + ", ".join(f"{table}.{quote(opts.get_field(name).column)}" for name in returning)
    rows: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(objs), INSERT_BATCH):
            batch = objs[start:start + INSERT_BATCH]
            values = []
            for obj in batch:
                obj._prepare_related_fields_for_save(operation_name="bulk_create")
                values.append([field.pre_save(obj, add=True) for field in fields])
            document = _rows_as_json(fields, values, connection)
            if document is not None:
                cursor.execute(f"INSERT INTO {table} ({column_list}) SELECT {column_list} "
                               f"FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb){tail}", [document])
            else:
                params = [field.get_db_prep_save(value, connection)
                          for row in values for field, value in zip(fields, row, strict=True)]
                cursor.execute(f"INSERT INTO {table} ({column_list}) "
                               f"VALUES {', '.join([row_sql] * len(batch))}{tail}", params)
            if returning:
                rows.extend(tuple(row) for row in cursor.fetchall())
    return rows


def _recordset(table: str, rows: int) -> str:
    """The rows of a JSON document as a relation PostgreSQL knows the size of. The planner takes any
    set-returning function for 100 rows, and for an UPDATE joining one or two rows to a table of some
    thousands that tipped it into reading the whole table (a hash join), a cost that grew with the
    table: in the Black Friday bench, a fifth of the updates of a record scanned every record. A
    LIMIT of the exact row count (all of them) gives the estimate, and with it the index."""
    return f"(SELECT * FROM jsonb_populate_recordset(NULL::{table}, %s::jsonb) LIMIT {int(rows)})"


class _NotJson(Exception):
    """A value with no exact JSON form: the batch is bound parameter by parameter instead."""


# Django's own field classes whose database value is the Python value itself when that is a str,
# an int or None. Exact classes, not subclasses: a subclass may transform the value on the way
# in (an encrypted field encrypts it), so it goes through get_db_prep_save like any other.
_AS_IS_FIELDS = frozenset({models.CharField, models.TextField, models.IntegerField, models.PositiveIntegerField,
                           models.SmallIntegerField, models.PositiveSmallIntegerField, models.BigIntegerField,
                           models.AutoField, models.BigAutoField, models.ForeignKey})
_AS_IS_VALUES = (str, int, type(None))


def _json_value(field, value, connection):
    """A field's value as PostgreSQL reads it back from JSON into the column's type."""
    if isinstance(field, models.JSONField):
        return value  # the document itself: jsonb_populate_recordset keeps a jsonb column's value as is
    if type(field) in _AS_IS_FIELDS and type(value) in _AS_IS_VALUES:
        return value  # what get_db_prep_save would return, without its per-value calls
    value = field.get_db_prep_save(value, connection)
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()  # full precision and offset: the column's input function parses it
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    raise _NotJson(type(value).__name__)


def _rows_as_json(fields, rows: list[list], connection) -> str | None:
    """PostgreSQL: the rows as one JSON array of objects keyed by column, for
    jsonb_populate_recordset. One short statement with one parameter, instead of a statement with a
    parameter per column and row: psycopg re-parses a statement too long for its cache on every
    call and adapts each parameter in Python (measured: more time than the database spent on the
    rows). None where a value has no exact JSON form (bytes, NaN): the caller binds them one by one.

    jsonb, not json: json_populate_recordset hands each JSON column's value over as text, which
    PostgreSQL then parses a second time into jsonb; jsonb_populate_recordset parses the document
    once and takes the values as they are (measured on a backfill page, 250 orders of 9.5 KB:
    47 ms to insert with json, 37 ms with jsonb). JSON null still becomes SQL NULL."""
    if connection.vendor != "postgresql":
        return None
    columns = [field.column for field in fields]
    try:
        return json.dumps([{column: _json_value(field, value, connection)
                            for column, field, value in zip(columns, fields, row, strict=True)} for row in rows],
                          allow_nan=False, separators=(",", ":"))
    except (_NotJson, TypeError, ValueError):
        return None


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


def update_rows(model, objs: list, fields: list[str] | tuple[str, ...], *,
                only_if: tuple[str, tuple] | None = None) -> int:
    """Write ``fields`` of each object to its row in one statement: on PostgreSQL
    UPDATE t SET f = v.f … FROM jsonb_populate_recordset(NULL::t, <rows as JSON>) AS v WHERE t.pk = v.pk,
    on SQLite 3.33 or later the same FROM (VALUES (pk, f, …), …).

    Django's bulk_update builds a CASE WHEN per field and row; resolving those expressions cost more
    Python time than the database spent on the whole batch complete. ``only_if``: (field name,
    values) the row must still have, or it is left alone (a record another process moved on).
    Returns the number of rows written."""
    if not objs:
        return 0
    connection = connections[router.db_for_write(model)]
    if connection.vendor not in ("postgresql", "sqlite") or (
            connection.vendor == "sqlite" and connection.Database.sqlite_version_info < (3, 33)):
        queryset = model._default_manager.filter(**{f"{only_if[0]}__in": only_if[1]}) if only_if else \
            model._default_manager
        return queryset.bulk_update(objs, fields)
    opts = model._meta
    pk = opts.pk
    columns = [opts.get_field(name) for name in fields]
    quote = connection.ops.quote_name
    table = quote(opts.db_table)
    condition, condition_params = "", []
    if only_if:
        guard = opts.get_field(only_if[0])
        condition = f" AND {table}.{quote(guard.column)} IN ({', '.join(['%s'] * len(only_if[1]))})"
        condition_params = [guard.get_db_prep_value(value, connection) for value in only_if[1]]
    assignments = ", ".join(f"{quote(field.column)} = v.{quote(field.column)}" for field in columns)
    if connection.vendor == "postgresql":
        written = 0
        with connection.cursor() as cursor:
            for start in range(0, len(objs), INSERT_BATCH):
                batch = objs[start:start + INSERT_BATCH]
                document = _rows_as_json([pk] + columns, [[obj.pk] + [getattr(obj, field.attname) for field in columns]
                                                          for obj in batch], connection)
                if document is None:
                    written += _update_values(batch, pk, columns, table, condition, condition_params, connection,
                                              cursor)
                    continue
                cursor.execute(f"UPDATE {table} SET {assignments} FROM {_recordset(table, len(batch))} AS v "
                               f"WHERE {table}.{quote(pk.column)} = v.{quote(pk.column)}{condition}",
                               [document, *condition_params])
                written += cursor.rowcount
        return written
    with connection.cursor() as cursor:
        return sum(_update_values(objs[start:start + INSERT_BATCH], pk, columns, table, condition, condition_params,
                                  connection, cursor) for start in range(0, len(objs), INSERT_BATCH))


def _update_values(batch: list, pk, columns: list, table: str, condition: str, condition_params: list, connection,
                   cursor) -> int:
    """update_rows with a VALUES list bound parameter by parameter (SQLite; PostgreSQL for values
    without a JSON form)."""
    quote = connection.ops.quote_name
    # PostgreSQL types the VALUES list from its first row: every value is cast to its column's type.
    cast = (lambda field: f"CAST(%s AS {field.cast_db_type(connection)})") if connection.vendor == "postgresql" \
        else (lambda field: "%s")
    row_sql = "(" + ", ".join([cast(pk)] + [cast(field) for field in columns]) + ")"
    # SQLite names a VALUES list's columns column1, column2, …; PostgreSQL takes names for them.
    if connection.vendor == "postgresql":
        names = ["pk"] + [f"c{n}" for n in range(len(columns))]
        alias = f"v ({', '.join(names)})"
    else:
        names = [f"column{n + 1}" for n in range(len(columns) + 1)]
        alias = "v"
    assignments = ", ".join(f"{quote(field.column)} = v.{name}" for field, name in zip(columns, names[1:], strict=True))
    written = 0
    per_statement = max(1, min(INSERT_BATCH, 30000 // (len(columns) + 1)))
    for start in range(0, len(batch), per_statement):
        rows = batch[start:start + per_statement]
        params = []
        for obj in rows:
            params.append(pk.get_db_prep_value(obj.pk, connection))
            params += [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in columns]
        cursor.execute(
            f"UPDATE {table} SET {assignments} FROM (VALUES {', '.join([row_sql] * len(rows))}) AS {alias} "
            f"WHERE {table}.{quote(pk.column)} = v.{names[0]}{condition}", params + condition_params)
        written += cursor.rowcount
    return written


# A bulk load refreshes the planner's statistics itself at these sizes, then each time it doubles:
# autovacuum looks at a table about once a minute, and a backfill grows a fresh table by thousands of
# rows in that time. Without statistics PostgreSQL looked records up by (integration, kind, action)
# alone and filtered 10,000 rows for the 20 order ids it was asked for (11 ms instead of 0.2 ms).
FIRST_ANALYZE_AT = 500


def analyze_due(before: int, after: int, first: int = FIRST_ANALYZE_AT) -> bool:
    """Whether a bulk load that went from ``before`` to ``after`` rows crossed a milestone
    (``first``, then every doubling of it)."""
    milestone = first
    while milestone <= after:
        if before < milestone:
            return True
        milestone *= 2
    return False


def analyze(*models_to_analyze) -> None:
    """ANALYZE the models' tables on PostgreSQL (elsewhere nothing). It takes no lock that stops
    reads or writes, and reads a bounded sample whatever the table's size."""
    connection = connections[router.db_for_write(models_to_analyze[0])]
    if connection.vendor != "postgresql":
        return
    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models_to_analyze)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {tables}")
