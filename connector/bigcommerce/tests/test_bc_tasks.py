"""The Celery task wrappers: take ids, skip what is switched off, safe to run twice."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache

from connector.bigcommerce import tasks
from connector.bigcommerce.poller import start_backfill
from connector.models import SyncCursor, SyncRecord, SyncRun
from tests.support.bigcommerce import Sandbox
from tests.support.factories import make_integration, make_store

pytestmark = pytest.mark.django_db
LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def box():
    sandbox = Sandbox(orders=15, validate=False)
    yield sandbox
    sandbox.stop()


def test_poll_task_polls_once_at_a_time(box):
    integration = make_integration(make_store(api_base_url=box.url))
    SyncCursor.objects.create(integration=integration, stream="orders", value=LONG_AGO.isoformat())
    lock = f"bc-poll-lock:{integration.pk}"
    cache.add(lock, 1, 60)
    assert "already running" in tasks.poll_integration.run(integration.pk)
    cache.delete(lock)
    assert "order versions read" in tasks.poll_integration.run(integration.pk)
    assert SyncRun.objects.get(kind="poll").state == "done"
    assert SyncRecord.objects.filter(integration=integration).exists()


def test_tasks_skip_switched_off_integrations(box):
    integration = make_integration(make_store(api_base_url=box.url), is_active=False)
    assert "switched off" in tasks.poll_integration.run(integration.pk)
    assert "switched off" in tasks.backfill.run(integration.pk, "2000-01-01")


def test_backfill_task_continues_its_run_and_is_done_once(box):
    integration = make_integration(make_store(api_base_url=box.url))
    run = start_backfill(integration, LONG_AGO)
    assert "15 orders read" in tasks.backfill.run(integration.pk, "2000-01-01", None, run.pk)
    run.refresh_from_db()
    assert run.state == "done" and run.seen == 15 and run.total == 15
    assert tasks.backfill.run(integration.pk, "2000-01-01", None, run.pk) == "already done"
