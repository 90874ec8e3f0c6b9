"""records.enqueue(here=True): a worker task runs the records it just created itself, after the
commit, and hands them to a worker as usual when that fails."""

from __future__ import annotations

import pytest

from connector.services import pipeline, records
from connector.services.taskqueue import task_named

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    messages = []
    process_record = task_named("connector.process_record")
    monkeypatch.setattr(process_record, "delay", messages.append)
    return messages


def test_records_run_in_the_task_after_the_commit_and_send_no_message(monkeypatch, sent,
                                                                       django_capture_on_commit_callbacks):
    ran = []
    monkeypatch.setattr(pipeline, "run_record", ran.append)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        records.enqueue([7], here=True)
        records.enqueue([8, 9], here=True)
    assert ran == [], "nothing runs before the commit"
    for callback in callbacks:
        callback()
    assert ran == [7, [8, 9]] and sent == []


def test_records_that_fail_to_run_here_go_to_a_worker(monkeypatch, sent, django_capture_on_commit_callbacks):
    def broken(record_id):
        raise RuntimeError("database went away")

    monkeypatch.setattr(pipeline, "run_record", broken)
    with django_capture_on_commit_callbacks(execute=True):
        records.enqueue([5, 6], here=True)
    assert sent == [[5, 6]]


def test_without_here_or_with_a_delay_records_go_to_a_worker(monkeypatch, sent, django_capture_on_commit_callbacks):
    ran = []
    monkeypatch.setattr(pipeline, "run_record", ran.append)
    with django_capture_on_commit_callbacks(execute=True):
        records.enqueue([3])
    assert sent == [3] and ran == []
