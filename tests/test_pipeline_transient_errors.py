"""A record whose run meets our own infrastructure failing (Redis restarting, the broker away)
goes back to pending with a due time; it is never failed, which would park it for a person."""

from __future__ import annotations

import pytest
import redis.exceptions
from django.utils import timezone

from connector.models import SyncRecord
from connector.services import pipeline
from connector.services.records import upsert_record
from tests.support.factories import IntegrationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def record(monkeypatch):
    integration = IntegrationFactory()
    record, _ = upsert_record(integration.pk, SyncRecord.Kind.ORDER, "77", SyncRecord.Action.POST_INVOICE,
                              reason="test")
    return record


def run_with_handler(monkeypatch, record, handler):
    monkeypatch.setitem(pipeline._handlers, SyncRecord.Action.POST_INVOICE, handler)
    pipeline.run_record(record.pk)
    record.refresh_from_db()
    return record


def test_redis_connection_lost_mid_record_retries_later(monkeypatch, record):
    def handler(_record):
        raise redis.exceptions.ConnectionError("Connection closed by server.")

    record = run_with_handler(monkeypatch, record, handler)
    assert record.state == SyncRecord.State.PENDING
    assert record.next_attempt_at and record.next_attempt_at > timezone.now()
    assert "Infrastructure unavailable" in record.message and "Retrying in" in record.message


def test_a_bug_still_fails_visibly(monkeypatch, record):
    def handler(_record):
        raise KeyError("total_inc_tax")

    record = run_with_handler(monkeypatch, record, handler)
    assert record.state == SyncRecord.State.FAILED
    assert "Unexpected error: KeyError" in record.message
