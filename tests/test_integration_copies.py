"""integration_for_work: one small query per use while nothing changed, a fresh load after any save."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Integration, StoreConnection
from connector.services import integrations
from tests.support.factories import make_integration

pytestmark = pytest.mark.django_db


def _load(integration_id: int):
    with CaptureQueriesContext(connection) as queries:
        got = integrations.integration_for_work(integration_id)
    return got, len(queries)


def test_a_copy_is_reused_until_a_row_changes():
    integration = make_integration()
    first, queries = _load(integration.pk)
    assert queries == 2 and first.store.pk == integration.store_id and first.sage.pk == integration.sage_id
    again, queries = _load(integration.pk)
    assert again is first and queries == 1  # the stamp only

    # A change written behind the ORM's back (another process, a queryset update): the store's
    # timestamp moves, so the copy is not used again.
    StoreConnection.objects.filter(pk=integration.store_id).update(
        store_hash="moved", updated_at=first.store.updated_at + dt.timedelta(seconds=1))
    fresh, queries = _load(integration.pk)
    assert fresh is not first and fresh.store.store_hash == "moved" and queries == 2


def test_a_save_in_this_process_is_seen_at_once_even_with_the_same_timestamp():
    integration = make_integration()
    first, _ = _load(integration.pk)
    stamp = first.updated_at
    row = Integration.objects.get(pk=integration.pk)
    row.poll_interval_seconds = 123
    row.save()  # post_save drops the copies, whatever updated_at says
    Integration.objects.filter(pk=integration.pk).update(updated_at=stamp)
    fresh, queries = _load(integration.pk)
    assert fresh is not first and fresh.poll_interval_seconds == 123 and queries == 2


def test_a_missing_integration_raises():
    with pytest.raises(Integration.DoesNotExist):
        integrations.integration_for_work(987654321)
