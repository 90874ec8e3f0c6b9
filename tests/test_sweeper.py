"""Work whose Celery message was lost (a worker killed mid-task, a countdown retry held in a dead
worker's memory) is sent again from the database, but never while the queue still has a backlog."""

from datetime import timedelta

import pytest
from django.utils import timezone

from connector.models import InboundEvent, SyncRecord
from connector.services import sweeper
from connector.tasks import worker_heartbeat
from tests.conftest import purge_broker
from tests.support.factories import IntegrationFactory


@pytest.fixture
def sent(monkeypatch):
    from connector import tasks
    from connector.bigcommerce import tasks as bc_tasks

    calls = {"records": [], "events": []}
    monkeypatch.setattr(tasks.process_record, "delay", lambda pk: calls["records"].append(pk))
    monkeypatch.setattr(bc_tasks.process_webhook_event, "delay", lambda pk: calls["events"].append(pk))
    return calls


def pending(integration, external_id, **fields):
    record = SyncRecord.objects.create(integration=integration, kind="order", external_id=external_id,
                                       action="post_invoice")
    SyncRecord.objects.filter(pk=record.pk).update(**fields)
    return record


@pytest.mark.django_db
def test_lost_records_and_events_are_sent_again_once(monkeypatch, sent):
    monkeypatch.setattr(sweeper, "broker_queue_depth", lambda: 0)
    integration = IntegrationFactory()
    now = timezone.now()
    lost = pending(integration, "1", updated_at=now - timedelta(minutes=5))
    lost_retry = pending(integration, "2", updated_at=now - timedelta(minutes=9),
                         next_attempt_at=now - timedelta(minutes=3))
    fresh = pending(integration, "3", updated_at=now)
    retry_not_due = pending(integration, "4", updated_at=now - timedelta(minutes=9),
                            next_attempt_at=now + timedelta(minutes=5))
    posted = pending(integration, "5", updated_at=now - timedelta(hours=1), state="posted")
    event = InboundEvent.objects.create(integration=integration, source="webhook", dedup_key="k1",
                                        received_at=now - timedelta(minutes=5))
    InboundEvent.objects.create(integration=integration, source="webhook", dedup_key="k2",
                                received_at=now - timedelta(minutes=5), processed_at=now)

    result = sweeper.sweep()
    assert sorted(sent["records"]) == sorted([lost.pk, lost_retry.pk])
    assert sent["events"] == [event.pk]
    assert result == {"queue_depth": 0, "records": 2, "events": 1, "backfills": 0, "refunds": 0}
    assert fresh.pk not in sent["records"] and retry_not_due.pk not in sent["records"]
    assert posted.pk not in sent["records"]
    # Touched: the next tick gives the re-sent messages their own grace period.
    sent["records"].clear()
    sweeper.sweep()
    assert sent["records"] == []


@pytest.mark.django_db
def test_nothing_is_swept_while_the_queue_has_a_backlog(monkeypatch, sent):
    monkeypatch.setattr(sweeper, "broker_queue_depth", lambda: 250)
    pending(IntegrationFactory(), "1", updated_at=timezone.now() - timedelta(minutes=5))
    assert sweeper.sweep()["records"] == 0 and sent["records"] == []


def test_the_broker_reports_its_queue_depth():
    purge_broker()
    assert sweeper.broker_queue_depth() in (0, None) or pytest.fail("queue not empty after purge")
    worker_heartbeat.delay("sweeper-test")
    worker_heartbeat.delay("sweeper-test")
    assert sweeper.broker_queue_depth() == 2
    purge_broker()


@pytest.mark.django_db
def test_a_backfill_that_stopped_saving_progress_is_resumed_on_another_worker(monkeypatch, sent):
    from connector.bigcommerce import tasks as bc_tasks
    from connector.models import SyncRun

    monkeypatch.setattr(sweeper, "broker_queue_depth", lambda: 0)
    resumed = []
    monkeypatch.setattr(bc_tasks.backfill, "delay", lambda *args, **kwargs: resumed.append((args, kwargs)))
    integration = IntegrationFactory()
    now = timezone.now()
    params = {"since": "2026-01-01T00:00:00+00:00", "until": None, "last_id": 349}
    stalled = SyncRun.objects.create(integration=integration, kind="backfill", params=params,
                                     progress_at=now - timedelta(minutes=10))
    never_saved = SyncRun.objects.create(integration=integration, kind="backfill", params=params,
                                         started_at=now - timedelta(minutes=10))
    SyncRun.objects.create(integration=integration, kind="backfill", params=params, progress_at=now)  # healthy
    SyncRun.objects.create(integration=integration, kind="backfill", params=params, state="done",
                           progress_at=now - timedelta(hours=1))

    assert sweeper.sweep(now)["backfills"] == 2
    assert sorted(kwargs["run_id"] for _, kwargs in resumed) == sorted([stalled.pk, never_saved.pk])
    assert all(args == (integration.pk, params["since"], None) for args, _ in resumed)
    # Handed over: progress_at moved, so the next tick leaves them to their new worker.
    assert SyncRun.objects.get(pk=stalled.pk).progress_at == now
    resumed.clear()
    assert sweeper.sweep(now + timedelta(seconds=1))["backfills"] == 0


@pytest.mark.django_db
def test_lost_work_of_a_platform_no_store_package_registered_is_left_and_logged(monkeypatch, sent, caplog):
    """The sweeper names no store: it re-sends a store's lost work through the tasks its package
    registered at start (connector/bigcommerce/apps.py), and says so when none did."""
    monkeypatch.setattr(sweeper, "broker_queue_depth", lambda: 0)
    monkeypatch.setattr(sweeper, "_store_work_tasks", {})
    integration = IntegrationFactory()
    InboundEvent.objects.create(integration=integration, source="webhook", dedup_key="k-unregistered",
                                received_at=timezone.now() - timedelta(minutes=5))
    with caplog.at_level("ERROR", logger=sweeper.__name__):
        sweeper.sweep()
    assert sent["events"] == []
    assert "no store package registered the tasks for 'bigcommerce' stores" in caplog.text
