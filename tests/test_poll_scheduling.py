"""The poll dispatcher (connector/services/scheduling.py): which integrations are due, batching,
jitter bounds, no double dispatch under two dispatchers, and the roll-up of idle polls."""

from __future__ import annotations

import datetime as dt
import random
import threading

import pytest
from django.db import connection, connections
from django.test import override_settings
from django.utils import timezone

from accounts.models import Integration, StoreConnection
from connector.models import SyncRun
from connector.services import polling, scheduling
from connector.services.archive import prune_archives
from tests.support.factories import make_integration

BC = StoreConnection.Platform.BIGCOMMERCE
pytestmark = pytest.mark.django_db


def _due_in(integration, seconds: float) -> Integration:
    Integration.objects.filter(pk=integration.pk).update(next_poll_at=timezone.now() + dt.timedelta(seconds=seconds))
    integration.refresh_from_db()
    return integration


def test_due_selection_takes_due_active_and_never_scheduled_integrations_only():
    due = _due_in(make_integration(poll_interval_seconds=60), -5)
    never = make_integration(poll_interval_seconds=60)
    later = _due_in(make_integration(poll_interval_seconds=60), 30)
    off = _due_in(make_integration(poll_interval_seconds=60, is_active=False), -5)
    claimed = {row.integration_id for row in scheduling.claim_due(platforms=[BC])}
    assert claimed == {due.pk, never.pk}
    assert later.pk not in claimed and off.pk not in claimed
    # Claimed rows moved on: the same tick run again finds nothing.
    assert scheduling.claim_due(platforms=[BC]) == []


def test_claim_moves_next_poll_one_interval_on_within_the_jitter_bound():
    integration = _due_in(make_integration(poll_interval_seconds=60), -2)
    due_at = integration.next_poll_at
    now = timezone.now()
    [row] = scheduling.claim_due(now, platforms=[BC])
    assert row.due_at == due_at and row.interval == 60
    integration.refresh_from_db()
    bound = scheduling.jitter_bound(60)
    assert bound == 3.0  # POLL_JITTER_SECONDS, under 10 % of the interval
    gap = (integration.next_poll_at - due_at).total_seconds()
    assert 60 - bound <= gap <= 60 + bound


@pytest.mark.parametrize("interval", [30, 60, 300, 3600])
def test_jitter_stays_within_its_bound_and_keeps_the_average_interval(interval):
    rng = random.Random(4)
    now = timezone.now()
    due = now - dt.timedelta(seconds=1)
    gaps = [(scheduling.next_due(now, due, interval, rng) - due).total_seconds() for _ in range(2000)]
    bound = scheduling.jitter_bound(interval)
    assert bound <= interval * 0.1
    assert all(interval - bound <= g <= interval + bound for g in gaps)
    assert abs(sum(gaps) / len(gaps) - interval) < bound / 5
    assert max(gaps) - min(gaps) > bound  # it does move: integrations created together drift apart


def test_after_an_outage_the_backlog_is_spread_over_the_next_interval():
    rng = random.Random(1)
    now = timezone.now()
    stale = now - dt.timedelta(hours=2)
    nexts = [(scheduling.next_due(now, stale, 60, rng) - now).total_seconds() for _ in range(500)]
    assert all(30 <= n <= 60 for n in nexts)
    assert max(nexts) - min(nexts) > 20  # not all on one tick again


@override_settings(POLL_DISPATCH_BATCH=7, POLL_DISPATCH_MAX_BATCHES=100)
def test_dispatch_sends_every_due_poll_in_batches(monkeypatch):
    integrations = [_due_in(make_integration(poll_interval_seconds=60), -1) for _ in range(17)]
    sent = []

    class FakeTask:
        def apply_async(self, args, kwargs, expires, producer=None):
            sent.append((args[0], kwargs["due_at"], expires))

    monkeypatch.setattr(scheduling, "task_named", lambda name: FakeTask())
    monkeypatch.setattr(scheduling, "broker_queue_depth", lambda: 0)
    result = scheduling.dispatch_due()
    assert result == {"sent": 17, "batches": 3, "queue_depth": 0}  # 7 + 7 + 3
    assert sorted(pk for pk, _, _ in sent) == sorted(i.pk for i in integrations)
    assert all(expires == 60 for _, _, expires in sent)  # a stale poll is dropped, not doubled
    assert scheduling.dispatch_due() == {"sent": 0, "batches": 1, "queue_depth": 0}


@override_settings(POLL_DISPATCH_BATCH=5, POLL_DISPATCH_MAX_BATCHES=2)
def test_one_tick_is_capped_and_leaves_the_rest_to_the_next(monkeypatch):
    for _ in range(12):
        _due_in(make_integration(poll_interval_seconds=60), -1)
    monkeypatch.setattr(scheduling, "task_named", lambda name: type("T", (), {"apply_async": lambda *a, **k: None})())
    monkeypatch.setattr(scheduling, "broker_queue_depth", lambda: None)  # a broker that cannot say: no limit
    assert scheduling.dispatch_due()["sent"] == 10
    assert scheduling.dispatch_due()["sent"] == 2


@override_settings(POLL_DISPATCH_BATCH=50, POLL_QUEUE_MAX=100)
def test_a_deep_queue_holds_polls_back_in_the_database(monkeypatch):
    """Workers behind: only what fits under POLL_QUEUE_MAX is sent; the rest stay due, oldest first."""
    rows = [_due_in(make_integration(poll_interval_seconds=60), -(30 - n)) for n in range(8)]
    sent = []
    monkeypatch.setattr(scheduling, "task_named",
                        lambda name: type("T", (), {"apply_async": lambda self, args, **k: sent.append(args[0])})())
    monkeypatch.setattr(scheduling, "broker_queue_depth", lambda: 97)
    assert scheduling.dispatch_due()["sent"] == 3
    assert sent == [r.pk for r in rows[:3]]  # the longest overdue
    monkeypatch.setattr(scheduling, "broker_queue_depth", lambda: 400)
    assert scheduling.dispatch_due()["sent"] == 0
    monkeypatch.setattr(scheduling, "broker_queue_depth", lambda: 0)
    assert scheduling.dispatch_due()["sent"] == 5
    assert sorted(sent) == sorted(r.pk for r in rows)


def test_the_oldest_due_go_first():
    rows = [_due_in(make_integration(poll_interval_seconds=60), -seconds) for seconds in (5, 50, 20)]
    claimed = scheduling.claim_due(limit=2, platforms=[BC])
    assert [c.integration_id for c in claimed] == [rows[1].pk, rows[2].pk]


def test_a_shortened_interval_applies_from_now():
    integration = _due_in(make_integration(poll_interval_seconds=3600), 3000)
    integration.poll_interval_seconds = 60
    integration.save()
    integration.refresh_from_db()
    assert integration.next_poll_at <= timezone.now() + dt.timedelta(seconds=61)
    integration.poll_interval_seconds = 600  # longer: after the next poll
    integration.save()
    integration.refresh_from_db()
    assert integration.next_poll_at <= timezone.now() + dt.timedelta(seconds=61)


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_once_never_take_the_same_integration():
    """Two threads, each with its own database connection, claim in small batches at the same time
    (two beats, or two workers running the tick): every due integration is taken exactly once."""
    ids = {_due_in(make_integration(poll_interval_seconds=60), -1).pk for _ in range(60)}
    taken: list[list[int]] = [[], []]
    start = threading.Barrier(2)
    errors = []

    def run(slot):
        try:
            start.wait()
            while True:
                claimed = scheduling.claim_due(limit=4, platforms=[BC])
                if not claimed:
                    break
                taken[slot].extend(c.integration_id for c in claimed)
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assert set(taken[0]).isdisjoint(taken[1])
    assert sorted(taken[0] + taken[1]) == sorted(ids)
    if connection.vendor == "postgresql":
        assert taken[0] and taken[1]  # SKIP LOCKED: both made progress, neither waited its turn


def _idle_poll(integration, *, late=None, api_calls=1, new=0, started_at=None):
    token = polling._lateness.set(late)
    try:
        return polling.record_poll(integration, started_at=started_at or timezone.now(), seen=new, new=new,
                                   succeeded=new, api_calls=api_calls, message="read")
    finally:
        polling._lateness.reset(token)


def test_idle_polls_roll_up_into_one_row_a_day():
    integration = make_integration()
    for late in (None, 1.5, 12.0, 3.0):
        _idle_poll(integration, late=late)
    busy = _idle_poll(integration, new=2, late=0.4)
    rows = SyncRun.objects.filter(integration=integration, kind=SyncRun.Kind.POLL)
    assert rows.count() == 2
    rollup = rows.get(params__has_key="idle_polls")
    assert rollup.params["idle_polls"] == 4 and rollup.params["scheduled_polls"] == 3
    assert rollup.params["late_polls"] == 1 and rollup.params["max_late_seconds"] == 12.0
    assert rollup.api_calls == 4 and rollup.seen == 0 and "4 poll(s) found nothing new" in rollup.message
    assert busy.pk != rollup.pk and busy.params == {"late_seconds": 0.4} and busy.seen == 2
    # The next day starts its own roll-up row.
    _idle_poll(integration, started_at=timezone.now() + dt.timedelta(days=1))
    assert rows.filter(params__has_key="idle_polls").count() == 2


def test_a_failed_poll_keeps_its_own_row():
    integration = make_integration()
    polling.record_poll(integration, started_at=timezone.now(), seen=0, new=0, succeeded=0, api_calls=1,
                        message="Poll failed: 500", state=SyncRun.State.FAILED)
    _idle_poll(integration)
    assert SyncRun.objects.filter(integration=integration, state=SyncRun.State.FAILED).count() == 1
    assert SyncRun.objects.filter(integration=integration).count() == 2


def test_idle_polls_do_not_grow_the_database_and_the_prune_removes_old_roll_ups():
    """A thousand idle polls are one row; roll-ups older than the retention are pruned."""
    integration = make_integration(archive_retention_days=7)
    old_day = timezone.now() - dt.timedelta(days=10)
    for _ in range(3):
        _idle_poll(integration, started_at=old_day)
    for _ in range(1000):
        _idle_poll(integration)
    assert SyncRun.objects.filter(integration=integration).count() == 2
    prune_archives(integration)
    [kept] = SyncRun.objects.filter(integration=integration)
    assert kept.params["idle_polls"] == 1000 and kept.started_at > old_day


def test_poll_once_records_how_late_a_scheduled_poll_started():
    integration = make_integration()
    due_at = (timezone.now() - dt.timedelta(seconds=14)).isoformat()
    seen = []

    def poll(loaded):
        seen.append(polling._lateness.get())
        return _idle_poll(loaded, late=polling._lateness.get())

    polling.poll_once(integration.pk, lock_prefix="test-poll", poll=poll, due_at=due_at)
    polling.poll_once(integration.pk, lock_prefix="test-poll", poll=poll)  # "Poll the store now"
    assert 14 <= seen[0] < 30 and seen[1] is None
    rollup = SyncRun.objects.get(integration=integration)
    assert rollup.params["late_polls"] == 1 and rollup.params["scheduled_polls"] == 1
    assert rollup.params["idle_polls"] == 2


def test_stock_pushes_with_nothing_to_push_roll_up_and_are_not_due_again_at_once(monkeypatch):
    from connector import tasks
    from connector.flows.stock import push_stock

    integration = make_integration(stock_push_interval_seconds=300)
    for _ in range(5):
        push_stock(integration)
    [run] = SyncRun.objects.filter(integration=integration, kind=SyncRun.Kind.STOCK_PUSH)
    assert run.params["idle_polls"] == 5 and "5 stock push(es) had nothing to push" in run.message
    # The roll-up started at the first push; the last one finished now: not due for another interval.
    SyncRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - dt.timedelta(hours=2))
    sent = []
    monkeypatch.setattr(tasks.push_stock, "delay", sent.append)
    assert integration.pk not in tasks.push_due_stock()
    assert sent == []
