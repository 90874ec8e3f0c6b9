"""Set-based writes for the hot path: a page of records, a chunk of mapped orders, a batch of agent
results each cost a handful of statements instead of a handful per row."""

from __future__ import annotations

from django.db import connections, router

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
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    tail = f" {conflict}" if conflict else ""
    if returning:
        tail += " RETURNING " + ", ".join(f"{table}.{quote(opts.get_field(name).column)}" for name in returning)
    rows: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(objs), INSERT_BATCH):
            batch = objs[start:start + INSERT_BATCH]
            params = []
            for obj in batch:
                obj._prepare_related_fields_for_save(operation_name="bulk_create")
                params += [field.get_db_prep_save(field.pre_save(obj, add=True), connection) for field in fields]
            cursor.execute(f"INSERT INTO {table} ({', '.join(quote(field.column) for field in fields)}) "
                           f"VALUES {', '.join([row_sql] * len(batch))}{tail}", params)
            if returning:
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


def update_rows(model, objs: list, fields: list[str] | tuple[str, ...], *,
                only_if: tuple[str, tuple] | None = None) -> int:
    """Write ``fields`` of each object to its row in one statement:
    UPDATE t SET f = v.f … FROM (VALUES (pk, f, …), …) AS v WHERE t.pk = v.pk (SQLite 3.33 or later).

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
    with connection.cursor() as cursor:
        for start in range(0, len(objs), per_statement):
            batch = objs[start:start + per_statement]
            params = []
            for obj in batch:
                params.append(pk.get_db_prep_value(obj.pk, connection))
                params += [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in columns]
            condition = ""
            if only_if:
                guard = opts.get_field(only_if[0])
                condition = f" AND {table}.{quote(guard.column)} IN ({', '.join(['%s'] * len(only_if[1]))})"
                params += [guard.get_db_prep_value(value, connection) for value in only_if[1]]
            cursor.execute(
                f"UPDATE {table} SET {assignments} FROM (VALUES {', '.join([row_sql] * len(batch))}) AS {alias} "
                f"WHERE {table}.{quote(pk.column)} = v.{names[0]}{condition}", params)
            written += cursor.rowcount
    return written
