"""Migration accounts 0010: each integration's django-celery-beat PeriodicTask becomes its
next_poll_at (an interval edited on the task wins), and the per-integration tasks and the two old
"poll due …" beat rows are deleted."""

import datetime as dt
import json

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("accounts", "0010_sage100rest_price_level")]
AFTER = [("accounts", "0010_tenants2k_next_poll_at")]
BEAT = ("django_celery_beat", "0019_alter_periodictasks_options")


@pytest.mark.django_db(transaction=True)
def test_periodic_tasks_become_next_poll_times():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state([*BEFORE, BEAT]).apps
    Tenant, Store = old.get_model("accounts", "Tenant"), old.get_model("accounts", "StoreConnection")
    Sage, Integration = old.get_model("accounts", "SageConnection"), old.get_model("accounts", "Integration")
    Interval, Task = old.get_model("django_celery_beat", "IntervalSchedule"), old.get_model("django_celery_beat",
                                                                                            "PeriodicTask")
    tenant = Tenant.objects.create(name="t", slug="t")
    store = Store.objects.create(tenant=tenant, name="s", store_hash="h", api_base_url="http://127.0.0.1:9")
    sage = Sage.objects.create(tenant=tenant, name="g", edition="sage50uk")
    edited = Integration.objects.create(tenant=tenant, name="a", store=store, sage=sage, poll_interval_seconds=300,
                                        webhook_token="w1")
    never = Integration.objects.create(tenant=tenant, name="b", store=store, sage=sage, poll_interval_seconds=120,
                                       webhook_token="w2")
    every_minute = Interval.objects.create(every=1, period="minutes")
    last_run = timezone.now() - dt.timedelta(seconds=20)
    Task.objects.create(name=f"BigCommerce poll: integration {edited.pk}", task="connector.bigcommerce.poll_integration",
                        interval=every_minute, args=json.dumps([edited.pk]), last_run_at=last_run)
    for name in ("poll due integrations", "poll due Adobe integrations", "push due stock"):
        Task.objects.create(name=name, task="x", interval=every_minute)

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    new = executor.loader.project_state([*AFTER, BEAT]).apps
    Integration, Task = new.get_model("accounts", "Integration"), new.get_model("django_celery_beat", "PeriodicTask")
    moved, spread = Integration.objects.get(pk=edited.pk), Integration.objects.get(pk=never.pk)
    assert moved.poll_interval_seconds == 60  # the interval that was running, edited on the periodic task
    assert abs((moved.next_poll_at - (last_run + dt.timedelta(seconds=60))).total_seconds()) < 1
    assert spread.poll_interval_seconds == 120
    assert timezone.now() - dt.timedelta(seconds=5) <= spread.next_poll_at <= timezone.now() + dt.timedelta(seconds=120)
    assert list(Task.objects.values_list("name", flat=True)) == ["push due stock"]
