import os

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector.settings")

app = Celery("connector")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def release_old_connections(task=None, **_kwargs) -> None:
    """Around each task, what Django does around each request: close a connection past its
    CONN_MAX_AGE, or one that saw an error and fails its health check (PostgreSQL restarted), and
    keep the others. Celery's own fixup would close them all (see CELERY_DB_REUSE_MAX in settings).
    Not for an eager task: it runs inside its caller, maybe inside the caller's transaction."""
    from django.db import close_old_connections

    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()
