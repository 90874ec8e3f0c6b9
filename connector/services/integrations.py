"""The integration (with its store and Sage connections) for work that runs many times a second.

A webhook task needs the integration, its store connection and its Sage connection for every
event it processes. Loading the three joined rows through the ORM (well over a hundred columns
to compile, instantiate and decrypt) was an eighth of a worker's CPU on a busy day, for rows that
change a few times a year. Here each process keeps the last copy it loaded and checks it against
the three rows' ``updated_at`` in one small raw query before every use: a copy is never used after
any of the three rows was saved (``save()`` sets ``updated_at``; the few queryset updates of these
tables write fields this path does not read: poll times, X3 tokens, sales channels).

The copy is shared by the process's threads: callers read it and never save it.
"""

from __future__ import annotations

import threading

from django.db import connection
from django.db.models.signals import post_delete, post_save

from accounts.models import Integration, SageConnection, StoreConnection

_copies: dict[int, tuple[tuple, Integration]] = {}
_lock = threading.Lock()
MAX_COPIES = 5000  # a deployment's integrations; beyond that the cache starts over (memory bound)


def _stamp(integration_id: int) -> tuple | None:
    quote = connection.ops.quote_name
    integration, store, sage = Integration._meta, StoreConnection._meta, SageConnection._meta
    sql = (f"SELECT i.{quote('updated_at')}, s.{quote('updated_at')}, g.{quote('updated_at')} "
           f"FROM {quote(integration.db_table)} i "
           f"JOIN {quote(store.db_table)} s ON s.{quote('id')} = i.{quote('store_id')} "
           f"JOIN {quote(sage.db_table)} g ON g.{quote('id')} = i.{quote('sage_id')} "
           f"WHERE i.{quote('id')} = %s")
    with connection.cursor() as cursor:
        cursor.execute(sql, [integration_id])
        row = cursor.fetchone()
    return tuple(row) if row else None


def integration_for_work(integration_id: int) -> Integration:
    """The integration with ``store`` and ``sage`` loaded, as saved now. Read-only (see above).
    Raises Integration.DoesNotExist when it is gone."""
    stamp = _stamp(integration_id)
    if stamp is None:
        raise Integration.DoesNotExist(f"integration {integration_id} does not exist")
    hit = _copies.get(integration_id)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    integration = Integration.objects.select_related("store", "sage").get(pk=integration_id)
    # The stamp read before the load: if a save lands in between, the copy is newer than its stamp
    # and the next call loads again (never the other way round).
    with _lock:
        if len(_copies) >= MAX_COPIES:
            _copies.clear()
        _copies[integration_id] = (stamp, integration)
    return integration


def forget(**_kwargs) -> None:
    """Drop every copy: in this process a save is seen at once, whatever its timestamp (a test
    with a frozen clock writes the same ``updated_at`` twice)."""
    with _lock:
        _copies.clear()


for _model in (Integration, StoreConnection, SageConnection):
    post_save.connect(forget, sender=_model, dispatch_uid=f"integration-copies-{_model.__name__}")
    post_delete.connect(forget, sender=_model, dispatch_uid=f"integration-copies-delete-{_model.__name__}")
