"""A task sent from the app runs on a real Celery worker process through the real broker
(the filesystem broker on the embedded default, Redis when CELERY_BROKER_URL says so)."""

import pytest
from django.conf import settings

from connector.devstack import Stack, wait_for
from connector.models import ServiceHeartbeat
from connector.tasks import worker_heartbeat

pytestmark = pytest.mark.e2e


def test_task_runs_on_a_real_worker(process_env):
    with Stack(env=process_env) as stack:
        stack.worker(concurrency=1)
        # Sent from this (the app's) process; executed by the worker subprocess.
        worker_heartbeat.delay("celery-test")
        beat = wait_for(lambda: ServiceHeartbeat.objects.filter(name="celery-test").first(), timeout=60,
                        what=f"the worker to run the task (broker {settings.CELERY_BROKER_URL})")
        assert beat.detail  # the worker's host name: it ran there, not eagerly here
        assert not settings.CELERY_TASK_ALWAYS_EAGER
        assert stack.alive("worker")
        assert "connector.worker_heartbeat" in stack.log("worker")
