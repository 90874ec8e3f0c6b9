"""Celery tasks looked up by their registered name.

The task modules (connector/tasks.py, each store package's tasks.py) sit on top of the services,
flows and store packages: they import them to do their work. So those layers must not import a
task to send it (that closed the import cycle through records, pipeline, sweeper and the flows);
they ask Celery's task registry for it by name instead. The registry hands back the very Task
object the task module defines, so eager mode and a test that replaces a task's ``delay`` behave
as with a direct import.
"""

from __future__ import annotations

from celery import Task

from connector.celery import app


def task_named(name: str) -> Task:
    """The task registered as ``name``. A process that never imported the task modules (the web
    process) has Celery import every installed app's ``tasks`` module, as a worker does at start."""
    try:
        return app.tasks[name]
    except KeyError:
        app.loader.import_default_modules()
        return app.tasks[name]
