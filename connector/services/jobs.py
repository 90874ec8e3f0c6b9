"""The agent outbox: queue, lease, complete, fail. The agent API views are thin over this.

Exactly-once towards Sage rests on three things: (integration, op, reference) is unique so a
posting is queued once; a lease token fences a job so a late `complete` from an agent whose
lease expired cannot overwrite the new holder's work; and the agent looks every reference up
in Sage before it creates anything, so a job executed twice still leaves one document.
"""

from __future__ import annotations

import hmac
import logging
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts.models import Integration, secret_fields
from connector.models import AgentJob
from connector.services.audit import audit, audit_many
from connector.services.bulk import insert_new, update_rows
from connector.services.integrations import integration_for_work
from connector.services.wakeup import notify_jobs_available

logger = logging.getLogger(__name__)

LEASE_SECONDS = 120
RETRY_BASE_SECONDS = 5
RETRY_CAP_SECONDS = 600

# op -> callbacks run inside the completing transaction (flows register them). A done-callback
# takes the list of jobs of that op completed together (a batch complete hands over dozens).
_on_done: dict[str, Callable[[list[AgentJob]], None]] = {}
_on_failed: dict[str, Callable[[AgentJob], None]] = {}


def on_job_done(op: str):
    def register(fn):
        _on_done[op] = fn
        return fn
    return register


def on_job_failed(op: str):
    def register(fn):
        _on_failed[op] = fn
        return fn
    return register


def queue_job(integration_id: int, op: str, reference: str, payload: dict, *, record=None,
              priority: int = 0, depends_on: AgentJob | None = None) -> tuple[AgentJob, bool]:
    """Queue a job once; a second call for the same (op, reference) returns the first job.
    ``depends_on``: the job is leased only once that one is done."""
    try:
        with transaction.atomic():
            job = AgentJob.objects.create(integration_id=integration_id, op=op, reference=reference,
                                          payload=payload, record=record, priority=priority,
                                          depends_on=depends_on)
    except IntegrityError:
        return AgentJob.objects.get(integration_id=integration_id, op=op, reference=reference), False
    if record is not None:
        audit(record, "dispatched", f"Queued {op} {reference} for the agent.", {"job": job.pk})
    transaction.on_commit(lambda: notify_jobs_available(integration_id))
    return job, True


@dataclass
class JobSpec:
    """One job to queue with queue_jobs."""
    op: str
    reference: str
    payload: dict
    record: object = None
    priority: int = 0
    depends_on_id: int | None = None


def queue_jobs(integration_id: int, specs: list[JobSpec], *,
               audited: bool = True) -> tuple[dict[tuple[str, str], int], list[JobSpec]]:
    """queue_job for many jobs: one INSERT … ON CONFLICT DO NOTHING and one audit INSERT (one
    entry per record). Returns the ids of the jobs it created by (op, reference), and the specs
    whose (op, reference) had a job already (the caller decides what an earlier attempt's job
    means, as dispatch_job does). ``audited=False``: the caller writes the entries, with
    dispatched_entries, once it has queued everything for its records."""
    rows = insert_new(AgentJob, [AgentJob(integration_id=integration_id, op=spec.op, reference=spec.reference,
                                          payload=spec.payload, record=spec.record, priority=spec.priority,
                                          depends_on_id=spec.depends_on_id) for spec in specs],
                      returning=("id", "op", "reference"))
    created = {(op, reference): pk for pk, op, reference in rows}
    if audited:
        audit_many(dispatched_entries(specs, created))
    if created:
        transaction.on_commit(lambda: notify_jobs_available(integration_id))
    return created, [spec for spec in specs if (spec.op, spec.reference) not in created]


def dispatched_entries(specs: list[JobSpec], created: dict[tuple[str, str], int]) -> list[tuple]:
    """One "dispatched" audit entry per record for the jobs just created for it (a paid order's
    invoice and receipts are one line of its trail, not one each)."""
    by_record: dict[int, list[JobSpec]] = {}
    for spec in specs:
        if spec.record is not None and (spec.op, spec.reference) in created:
            by_record.setdefault(spec.record.pk, []).append(spec)
    entries = []
    for record_id, queued in by_record.items():
        names = [f"{spec.op} {spec.reference}" for spec in queued]
        listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"
        entries.append((record_id, "dispatched", f"Queued {listed} for the agent.",
                        {"jobs": [created[spec.op, spec.reference] for spec in queued]}))
    return entries


def ready_q(now=None) -> Q:
    """A job an agent may take now: queued and due (or its lease ran out), and whatever it depends
    on is done. A receipt queued with its invoice thus waits for the invoice without a retry loop."""
    now = now or timezone.now()
    return (Q(state=AgentJob.State.QUEUED, available_at__lte=now)
            | Q(state=AgentJob.State.LEASED, lease_expires_at__lt=now)) & (
        Q(depends_on__isnull=True) | Q(depends_on__state=AgentJob.State.DONE))


def leasable(integration_id: int):
    return AgentJob.objects.filter(integration_id=integration_id).filter(ready_q())


def lease_jobs(agent, max_jobs: int, lease_seconds: int = LEASE_SECONDS) -> list[AgentJob]:
    now = timezone.now()
    with transaction.atomic():
        candidates = leasable(agent.integration_id).order_by("priority", "id")
        if settings.IS_POSTGRES:
            # Several web processes may lease for the same integration: skip rows another holds.
            # of=("self",): the dependency join is on the nullable side, which FOR UPDATE refuses.
            candidates = candidates.select_for_update(skip_locked=True, of=("self",))
        jobs = list(candidates[:max_jobs])
        entries = []
        for job in jobs:
            expired = job.state == AgentJob.State.LEASED
            job.state = AgentJob.State.LEASED
            job.lease_token = secrets.token_urlsafe(24)
            job.lease_expires_at = now + timedelta(seconds=lease_seconds)
            job.leased_by = agent
            job.attempts += 1
            job.updated_at = now
            if job.record_id:
                note = " (previous lease expired)" if expired else ""
                entries.append((job.record_id, "leased", f"Agent '{agent.name}' leased {job.op} {job.reference}{note}, "
                                                         f"attempt {job.attempts}.", None))
        # One UPDATE and one INSERT for the whole lease, not two statements per job.
        update_rows(AgentJob, jobs, ["state", "lease_token", "lease_expires_at", "leased_by", "attempts",
                                     "updated_at"])
        audit_many(entries)
    return jobs


@dataclass
class JobAnswer:
    status: int  # HTTP status for the agent API
    job: AgentJob | None
    detail: str = ""


# A job's record's integration is loaded for the callbacks; its secrets are not (see secret_fields).
RECORD_INTEGRATION_SECRETS = secret_fields(Integration, "record__integration__")


def _locked_job(agent, job_id: int) -> AgentJob | None:
    # of=("self",): PostgreSQL refuses FOR UPDATE on the nullable side of the LEFT JOIN to record.
    return (AgentJob.objects.select_for_update(of=("self",)).select_related("record__integration")
            .defer(*RECORD_INTEGRATION_SECRETS)
            .filter(pk=job_id, integration_id=agent.integration_id).first())


def _token_matches(job: AgentJob, token: str) -> bool:
    return bool(token) and hmac.compare_digest(job.lease_token.encode(), str(token).encode())


def _refusal(job: AgentJob | None, token: str) -> JobAnswer | None:
    """Why a complete cannot be applied to this job (None: it can)."""
    if job is None:
        return JobAnswer(404, None, "no such job for this agent")
    if not _token_matches(job, token):
        return JobAnswer(409, job, "lease token is stale")
    if job.state == AgentJob.State.DONE:
        return JobAnswer(200, job, "already complete")
    if job.state != AgentJob.State.LEASED:
        return JobAnswer(409, job, f"job is {job.state}")
    return None


# Not the payload: the document the agent posted does not change, and re-sending it would rewrite
# kilobytes of JSON per job.
_COMPLETED_FIELDS = ["state", "result", "completed_at", "error_code", "error_message", "updated_at"]


def _apply_results(jobs: list[AgentJob], results: list[dict]) -> None:
    """Mark leased jobs done with their results and run the flows' callbacks, one UPDATE and one
    audit INSERT for all of them and one callback call per op."""
    now = timezone.now()
    for job, result in zip(jobs, results, strict=True):
        job.state = AgentJob.State.DONE
        job.result = result
        job.completed_at = job.updated_at = now
        job.error_code = job.error_message = ""
    update_rows(AgentJob, jobs, _COMPLETED_FIELDS)
    audit_many([(job.record_id, "agent_result", f"Agent completed {job.op} {job.reference}.", {"result": job.result})
                for job in jobs if job.record_id])
    # Jobs waiting on these (a receipt on its invoice) are ready now: wake a long-polling lease,
    # which may already be waiting (the agent leases again before this batch's answer is back).
    integration_id = jobs[0].integration_id
    transaction.on_commit(lambda: notify_jobs_available(integration_id))
    by_op: dict[str, list[AgentJob]] = {}
    for job in jobs:
        by_op.setdefault(job.op, []).append(job)
    for op, done in by_op.items():
        callback = _on_done.get(op)
        if callback:
            callback(done)


def complete_job(agent, job_id: int, token: str, result: dict) -> JobAnswer:
    with transaction.atomic():
        job = _locked_job(agent, job_id)
        refusal = _refusal(job, token)
        if refusal:
            return refusal
        _apply_results([job], [result])
    return JobAnswer(200, job)


def complete_jobs(agent, items: list[dict]) -> list[JobAnswer]:
    """Complete several jobs (the batch endpoint). Each item is judged on its own, exactly as
    complete_job does, and the completable ones are applied together: one locking SELECT, one
    UPDATE, one audit INSERT and one callback per op for the batch, in one transaction.

    If applying them together fails (a callback raising on one job's result), that transaction is
    undone and the items are completed one by one, each in its own savepoint, so a bad item undoes
    only itself and the others still commit."""
    try:
        return _complete_together(agent, items)
    except Exception:  # noqa: BLE001 - retried item by item below, where the bad one is isolated
        logger.exception("completing %s jobs together failed; completing them one by one", len(items))
    answers = []
    with transaction.atomic():
        for item in items:
            try:
                # complete_job's own atomic block is a savepoint here: a failing item undoes itself only.
                answers.append(complete_job(agent, int(item["id"]), item["lease_token"], item["result"]))
            except Exception as error:  # noqa: BLE001 - one bad item must not fail the whole batch
                logger.exception("completing job %s failed", item.get("id"))
                answers.append(JobAnswer(500, None, f"internal error: {error.__class__.__name__}"))
    return answers


def _complete_together(agent, items: list[dict]) -> list[JobAnswer]:
    ids = [int(item["id"]) for item in items]
    with transaction.atomic():
        # Locked in id order, whatever the order of the items: two batches sharing jobs cannot deadlock.
        # Not the job's payload nor the record's store order: kilobytes of JSON per job that no
        # callback reads (the record's document is what they use).
        # The integration comes from the process's copy (services/integrations.py), not from a join:
        # the joined Integration row was the most expensive part of a completion under load (a
        # web node's CPU on a busy day), and the callbacks only read it.
        locked = {job.pk: job for job in AgentJob.objects.select_for_update(of=("self",))
                  .select_related("record").defer("payload", "record__payload")
                  .filter(pk__in=ids, integration_id=agent.integration_id).order_by("pk")}
        if any(job.record_id for job in locked.values()):
            integration = integration_for_work(agent.integration_id)
            for job in locked.values():
                if job.record_id:
                    job.record.integration = integration
        answers, completing, results, taken = [], [], [], set()
        for job_id, item in zip(ids, items, strict=True):
            job = locked.get(job_id)
            if job_id in taken:  # the same job twice in one batch: the first one counts
                answers.append(JobAnswer(200, job, "already complete"))
                continue
            refusal = _refusal(job, item["lease_token"])
            if refusal:
                answers.append(refusal)
                continue
            taken.add(job_id)
            completing.append(job)
            results.append(item["result"])
            answers.append(JobAnswer(200, job))
        if completing:
            _apply_results(completing, results)
    return answers


def retry_delay(attempts: int) -> float:
    return random.uniform(0.5, 1.0) * min(RETRY_CAP_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))


def fail_job(agent, job_id: int, token: str, code: str, message: str, retryable: bool) -> JobAnswer:
    with transaction.atomic():
        job = _locked_job(agent, job_id)
        if job is None:
            return JobAnswer(404, None, "no such job for this agent")
        if not _token_matches(job, token):
            return JobAnswer(409, job, "lease token is stale")
        if job.state in (AgentJob.State.DONE, AgentJob.State.FAILED) or (
                job.state == AgentJob.State.QUEUED and job.error_code == code):
            return JobAnswer(200, job, "already recorded")
        job.error_code = code
        job.error_message = message
        if retryable:
            delay = retry_delay(job.attempts)
            job.state = AgentJob.State.QUEUED
            job.available_at = timezone.now() + timedelta(seconds=delay)
            job.lease_expires_at = None
            note = f"Sage said '{code}': {message}. Retrying in {int(delay)} s."
        else:
            job.state = AgentJob.State.FAILED
            note = f"Sage refused {job.op} {job.reference} ({code}): {message}"
        job.save(update_fields=["state", "error_code", "error_message", "available_at", "lease_expires_at",
                                "updated_at"])
        if job.record_id:
            audit(job.record, "agent_error", note, {"code": code, "retryable": retryable})
        if not retryable:
            callback = _on_failed.get(job.op)
            if callback:
                callback(job)
    return JobAnswer(200, job)


def requeue_failed(job: AgentJob) -> None:
    """Replay of a record whose job failed permanently: the same job goes back to the queue
    (same reference, so the agent's look-up still prevents a second document)."""
    AgentJob.objects.filter(pk=job.pk, state=AgentJob.State.FAILED).update(
        state=AgentJob.State.QUEUED, available_at=timezone.now(), lease_token="", error_code="", error_message="")
    transaction.on_commit(lambda: notify_jobs_available(job.integration_id))


def dispatch_job(integration_id: int, op: str, reference: str, payload: dict, *, record=None,
                 priority: int = 0, depends_on: AgentJob | None = None) -> AgentJob:
    """Queue a job for a record, or pick up where an earlier attempt of the same posting left off:
    a permanently failed job goes back to the queue with the fresh payload (same reference, so the
    agent's look-up still guards against a second document); a done job re-applies its result,
    which queues any follow-up that did not run (links and follow-up jobs are unique)."""
    job, created = queue_job(integration_id, op, reference, payload, record=record, priority=priority,
                             depends_on=depends_on)
    if created:
        return job
    if job.state == AgentJob.State.FAILED:
        AgentJob.objects.filter(pk=job.pk).update(payload=payload, record=record)
        requeue_failed(job)
        if record is not None:
            audit(record, "dispatched", f"Re-queued {op} {reference} (it had failed: {job.error_message}).")
    elif job.state == AgentJob.State.DONE:
        callback = _on_done.get(op)
        if callback:
            job.record = record
            callback([job])
    return job
