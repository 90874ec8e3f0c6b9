"""Lease / complete / fail through the API. The lease view runs its database work on other
threads (see agentapi/longpoll.py), so these tests need committed data: transactional_db."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from agentapi.tests.factories import auth, make_agent, make_job
from connector.models import AgentJob, AuditEntry
from tests.support.factories import make_integration

pytestmark = pytest.mark.django_db(transaction=True)


def lease(client, key, **body):
    body.setdefault("wait_seconds", 0)
    response = client.post("/agent/v1/jobs/lease", body, content_type="application/json", **auth(key))
    assert response.status_code == 200, response.content
    return response.json()["jobs"]


def post(client, key, job_id, action, body):
    return client.post(f"/agent/v1/jobs/{job_id}/{action}", body, content_type="application/json", **auth(key))


def test_lease_hands_out_own_jobs_only_in_priority_order_with_a_token():
    from django.test import Client

    client = Client()
    integration = make_integration()
    _, key = make_agent(integration)
    invoice = make_job(integration, "create_sales_invoice", priority=1)
    customer = make_job(integration, "ensure_customer", priority=0)
    make_job(make_integration(), "create_sales_invoice")  # another integration's
    jobs = lease(client, key, max=10)
    assert [j["id"] for j in jobs] == [customer.pk, invoice.pk]
    first = jobs[0]
    assert first["op"] == "ensure_customer" and first["reference"] == customer.reference
    assert first["payload"] == customer.payload and first["attempts"] == 1 and len(first["lease_token"]) >= 20
    assert first["lease_expires_at"]
    assert lease(client, key) == []  # both are leased now
    assert AuditEntry.objects.filter(record=invoice.record, step="leased").count() == 1


def test_max_limits_the_batch(client):
    integration = make_integration()
    _, key = make_agent(integration)
    for _ in range(3):
        make_job(integration)
    assert len(lease(client, key, max=2)) == 2
    assert len(lease(client, key, max=2)) == 1


def test_complete_is_idempotent_and_audited(client):
    integration = make_integration()
    _, key = make_agent(integration)
    job = make_job(integration)
    token = lease(client, key)[0]["lease_token"]
    result = {"invoice_number": "1042", "existed": False, "gross_total": "12.00"}
    first = post(client, key, job.pk, "complete", {"lease_token": token, "result": result})
    assert first.status_code == 200 and first.json() == {"id": job.pk, "state": "done"}
    again = post(client, key, job.pk, "complete", {"lease_token": token, "result": {"invoice_number": "other"}})
    assert again.status_code == 200 and again.json()["state"] == "done"
    job.refresh_from_db()
    assert job.state == AgentJob.State.DONE and job.result == result
    assert AuditEntry.objects.filter(record=job.record, step="agent_result").count() == 1


def test_stale_token_is_409_and_changes_nothing(client):
    integration = make_integration()
    _, key = make_agent(integration)
    job = make_job(integration)
    lease(client, key)
    for action, body in (("complete", {"lease_token": "not-the-token", "result": {"x": 1}}),
                         ("fail", {"lease_token": "not-the-token", "code": "internal", "retryable": False})):
        response = post(client, key, job.pk, action, body)
        assert response.status_code == 409 and response.json() == {"detail": "lease token is stale"}
    job.refresh_from_db()
    assert job.state == AgentJob.State.LEASED and job.result is None and job.error_code == ""


def test_expired_lease_returns_the_job_and_the_old_token_is_refused(client):
    integration = make_integration()
    _, key = make_agent(integration)
    job = make_job(integration)
    old_token = lease(client, key)[0]["lease_token"]
    AgentJob.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    again = lease(client, key)
    assert [j["id"] for j in again] == [job.pk] and again[0]["attempts"] == 2
    assert again[0]["lease_token"] != old_token
    response = post(client, key, job.pk, "complete", {"lease_token": old_token, "result": {"late": True}})
    assert response.status_code == 409
    job.refresh_from_db()
    assert job.state == AgentJob.State.LEASED and job.result is None
    assert post(client, key, job.pk, "complete", {"lease_token": again[0]["lease_token"], "result": {}}).status_code == 200


def test_retryable_fail_requeues_with_backoff(client):
    integration = make_integration()
    _, key = make_agent(integration)
    job = make_job(integration)
    token = lease(client, key)[0]["lease_token"]
    before = timezone.now()
    body = {"lease_token": token, "code": "sage_locked", "message": "Exclusive task running", "retryable": False}
    response = post(client, key, job.pk, "fail", body)  # sage_locked is retryable whatever the flag says
    assert response.status_code == 200 and response.json()["state"] == "queued"
    job.refresh_from_db()
    assert job.state == AgentJob.State.QUEUED and job.error_code == "sage_locked"
    assert job.available_at >= before + timedelta(seconds=2)  # base 5 s x jitter 0.5..1
    assert lease(client, key) == []  # not before the backoff
    assert post(client, key, job.pk, "fail", body).json()["state"] == "queued"  # idempotent
    AgentJob.objects.filter(pk=job.pk).update(available_at=timezone.now())
    assert [j["id"] for j in lease(client, key)] == [job.pk]


def test_permanent_fail_marks_failed_and_shows_the_message(client):
    integration = make_integration()
    _, key = make_agent(integration)
    job = make_job(integration)
    token = lease(client, key)[0]["lease_token"]
    body = {"lease_token": token, "code": "validation", "message": "Account SMITHJ01 on hold", "retryable": False}
    assert post(client, key, job.pk, "fail", body).json() == {"id": job.pk, "state": "failed"}
    assert post(client, key, job.pk, "fail", body).status_code == 200
    job.refresh_from_db()
    assert job.state == AgentJob.State.FAILED
    entry = AuditEntry.objects.get(record=job.record, step="agent_error")
    assert "SMITHJ01 on hold" in entry.message


def test_long_poll_answers_when_a_job_arrives(client):
    import threading

    from connector.services.jobs import queue_job

    integration = make_integration()
    _, key = make_agent(integration)
    from django.db import connection

    def queue_from_another_thread():
        try:
            queue_job(integration.pk, "ensure_customer", "C-1", {"email": "a@b.c"})
        finally:
            connection.close()

    timer = threading.Timer(0.6, queue_from_another_thread)
    started = time.monotonic()
    timer.start()
    try:
        jobs = lease(client, key, wait_seconds=5)
    finally:
        timer.cancel()
    elapsed = time.monotonic() - started
    assert [j["reference"] for j in jobs] == ["C-1"]
    assert 0.5 < elapsed < 1.8  # queued at 0.6 s, seen by the next 0.5 s sweep


def test_long_poll_times_out_empty(client):
    _, key = make_agent()
    started = time.monotonic()
    assert lease(client, key, wait_seconds=1) == []
    assert 0.9 < time.monotonic() - started < 2.5
