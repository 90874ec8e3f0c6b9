"""Polls are scheduled by one beat entry from Integration.next_poll_at instead of one
django-celery-beat PeriodicTask per integration (connector/services/scheduling.py says why).

The data step carries each integration's PeriodicTask over: an interval edited on the periodic task
in the admin is the one that was running, so it becomes the integration's poll interval; the next
poll is due one interval after the task last ran, or (never ran) at a point spread over the interval
so that a deployment's integrations do not all come due on the same tick. Then it deletes those
per-integration tasks and the two old "poll due …" beat rows, which beat would otherwise keep firing
(django-celery-beat never deletes a row that left CELERY_BEAT_SCHEDULE)."""

import datetime as dt

from django.db import migrations, models
from django.utils import timezone

PREFIX = "BigCommerce poll: integration "
OLD_BEAT_ROWS = ("poll due integrations", "poll due Adobe integrations")
PERIOD_SECONDS = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1, "microseconds": 1e-6}


def spread(pk: int, interval: int) -> float:
    """A fixed point in [0, interval) per integration (golden-ratio steps): neighbours land apart."""
    return (pk * 0.6180339887498949) % 1.0 * interval


def forwards(apps, schema_editor):
    Integration = apps.get_model("accounts", "Integration")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    now = timezone.now()
    tasks = {task.name: task for task in PeriodicTask.objects.filter(name__startswith=PREFIX).select_related("interval")}
    for integration in Integration.objects.all().only("pk", "poll_interval_seconds", "next_poll_at"):
        task = tasks.get(f"{PREFIX}{integration.pk}")
        interval = max(30, int(integration.poll_interval_seconds or 300))
        if task is not None and task.enabled and task.interval is not None:
            edited = int(task.interval.every * PERIOD_SECONDS.get(task.interval.period, 1))
            if edited >= 30:
                interval = edited
        due = None
        if task is not None and task.last_run_at is not None:
            due = max(task.last_run_at + dt.timedelta(seconds=interval), now)
        if due is None or due > now + dt.timedelta(seconds=interval):
            due = now + dt.timedelta(seconds=spread(integration.pk, interval))
        Integration.objects.filter(pk=integration.pk).update(poll_interval_seconds=interval, next_poll_at=due)
    PeriodicTask.objects.filter(name__startswith=PREFIX).delete()
    PeriodicTask.objects.filter(name__in=OLD_BEAT_ROWS).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0010_sage100rest_price_level'),
        ('django_celery_beat', '0019_alter_periodictasks_options'),
    ]

    operations = [
        migrations.AddField(
            model_name='integration',
            name='next_poll_at',
            field=models.DateTimeField(blank=True, db_index=True, editable=False, null=True,
                                       help_text="When the next scheduled poll is due (empty: at the next beat tick). "
                                                 "One beat entry hands out due integrations in batches "
                                                 "(connector/services/scheduling.py)."),
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
