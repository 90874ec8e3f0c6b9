"""Playing the worker in one test process, with the commit hooks that run in production.

A test that runs records itself (run_record in a loop, then the agent's side) sits inside the
test's transaction, so Django's on_commit callbacks never run by default. Some of them are the
engine's own wiring: an order's posting wakes the refunds waiting for it
(connector/services/records.py). ``commit_hooks`` runs every callback as if each statement had
committed, and sends no task message (the caller's loop is the worker): a record they make
pending is run by the loop's next round."""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from unittest import mock

from django.test import TestCase


@contextmanager
def commit_hooks():
    from connector import tasks

    with ExitStack() as stack:
        for task in (tasks.process_record, tasks.set_store_order_status):
            stack.enter_context(mock.patch.object(task, "delay"))
            stack.enter_context(mock.patch.object(task, "apply_async"))
        # Entered last, so it exits first: the callbacks run while the sends are still muted.
        stack.enter_context(TestCase.captureOnCommitCallbacks(execute=True))
        yield
