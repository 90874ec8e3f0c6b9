"""Fixtures for the agent tests: a simulated Sage company and a fake server speaking PROTOCOL.md."""

from __future__ import annotations

import hmac
import itertools
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the repo root is not always on sys.path under pytest
    sys.path.insert(0, str(REPO))

from agent.simulator.company import SimCompany  # noqa: E402
from sandbox.httpserver import Response, SandboxApp, SandboxServer  # noqa: E402

AGENT_KEY = "test-agent-key-0123456789abcdef"


class FakeAgentApi(SandboxApp):
    """Enough of the agent API (PROTOCOL.md) to drive the runner: jobs with leases and tokens."""

    name = "fake-agent-api"

    def __init__(self, key: str = AGENT_KEY, config: dict | None = None, *, batch_complete: bool = False):
        super().__init__()
        self.key = key
        self.config = {"lease_wait_seconds": 1, "max_jobs": 10, "poll_changes_seconds": 3600,
                       "stock_quantity": "available", "cursors": {"stock": None, "customer": None, "price": None},
                       **(config or {})}
        self.jobs: dict[int, dict] = {}
        self.ids = itertools.count(1)
        self.heartbeats: list[dict] = []
        self.changes: list[dict] = []
        self.completions: list[tuple[int, dict]] = []
        self.failures: list[tuple[int, dict]] = []
        self.complete_batches: list[list[int]] = []  # job ids of each POST /jobs/complete
        self.fail_next_leases = 0  # answer the next N lease calls 503
        self.throttle_next_leases = 0  # answer the next N lease calls 429 with Retry-After: 1
        self.cond = threading.Condition(self.lock)
        self.route("POST", r"/agent/v1/heartbeat", self.heartbeat)
        self.route("POST", r"/agent/v1/jobs/lease", self.lease)
        self.route("POST", r"/agent/v1/jobs/(?P<id>\d+)/complete", self.complete)
        if batch_complete:  # without it, 404: an older server
            self.route("POST", r"/agent/v1/jobs/complete", self.complete_batch)
        self.route("POST", r"/agent/v1/jobs/(?P<id>\d+)/fail", self.fail)
        self.route("POST", r"/agent/v1/changes", self.push_changes)

    def pre_dispatch(self, request):
        auth = request.headers.get("authorization", "")
        if not hmac.compare_digest(auth.encode(), f"Bearer {self.key}".encode()):
            return Response(401, {"detail": "invalid agent key"})
        return None

    # -- test helpers ----------------------------------------------------------------------------
    def add_job(self, op: str, payload: dict, reference: str = "") -> int:
        with self.cond:
            job_id = next(self.ids)
            self.jobs[job_id] = {"id": job_id, "op": op, "reference": reference or payload.get("reference", ""),
                                 "payload": payload, "state": "queued", "token": None, "attempts": 0,
                                 "result": None}
            self.cond.notify_all()
            return job_id

    def expire(self, job_id: int) -> None:
        """The lease ran out: the job goes back to the queue and the old token stops working."""
        with self.cond:
            job = self.jobs[job_id]
            if job["state"] == "leased":
                job["state"], job["token"] = "queued", None
            self.cond.notify_all()

    def state(self, job_id: int) -> str:
        with self.lock:
            return self.jobs[job_id]["state"]

    # -- endpoints -------------------------------------------------------------------------------
    def heartbeat(self, request):
        with self.lock:
            self.heartbeats.append(request.json())
        return Response(200, {"agent_id": 1, "integration_id": 1, "server_time": "2025-01-01T00:00:00Z",
                              "config": self.config})

    def lease(self, request):
        body = request.json() or {}
        with self.cond:
            if self.fail_next_leases > 0:
                self.fail_next_leases -= 1
                return Response(503, {"detail": "unavailable"})
            if self.throttle_next_leases > 0:
                self.throttle_next_leases -= 1
                return Response(429, {"detail": "Request was throttled. Expected available in 1 seconds."},
                                headers={"Retry-After": "1"})
            deadline = time.monotonic() + min(int(body.get("wait_seconds", 0)), 25)
            while True:
                ready = [j for j in self.jobs.values() if j["state"] == "queued"][: int(body.get("max", 10))]
                if ready or time.monotonic() >= deadline:
                    break
                self.cond.wait(max(0.0, deadline - time.monotonic()))
            out = []
            for job in ready:
                job["state"], job["token"] = "leased", uuid.uuid4().hex
                job["attempts"] += 1
                out.append({"id": job["id"], "op": job["op"], "reference": job["reference"],
                            "payload": job["payload"], "lease_token": job["token"],
                            "lease_expires_at": "2099-01-01T00:00:00Z", "attempts": job["attempts"]})
            return Response(200, {"jobs": out})

    def _job_for(self, request):
        job = self.jobs.get(int(request.params["id"]))
        token = (request.json() or {}).get("lease_token")
        if job is None:
            return None, Response(404, {"detail": "no such job"})
        if job["token"] is None or not hmac.compare_digest(str(token), job["token"]):
            return None, Response(409, {"detail": "lease token is stale"})
        return job, None

    def complete(self, request):
        with self.cond:
            job, error = self._job_for(request)
            if error:
                return error
            body = request.json()
            if job["state"] != "done":
                job["state"], job["result"] = "done", body["result"]
                self.completions.append((job["id"], body["result"]))
            self.cond.notify_all()
            return Response(200, {"id": job["id"], "state": "done"})

    def complete_batch(self, request):
        items = (request.json() or {}).get("jobs") or []
        answers = []
        with self.cond:
            self.complete_batches.append([int(item["id"]) for item in items])
            for item in items:
                job = self.jobs.get(int(item["id"]))
                if job is None:
                    answers.append({"id": item["id"], "status": 404, "state": "", "detail": "no such job"})
                    continue
                if job["token"] is None or not hmac.compare_digest(str(item["lease_token"]), job["token"]):
                    answers.append({"id": job["id"], "status": 409, "state": job["state"],
                                    "detail": "lease token is stale"})
                    continue
                if job["state"] != "done":
                    job["state"], job["result"] = "done", item["result"]
                    self.completions.append((job["id"], item["result"]))
                answers.append({"id": job["id"], "status": 200, "state": "done", "detail": ""})
            self.cond.notify_all()
        return Response(200, {"jobs": answers})

    def fail(self, request):
        with self.cond:
            job, error = self._job_for(request)
            if error:
                return error
            body = request.json()
            self.failures.append((job["id"], body))
            if body.get("retryable"):
                job["state"], job["token"] = "queued", None
            else:
                job["state"] = "failed"
            self.cond.notify_all()
            return Response(200, {"id": job["id"], "state": job["state"]})

    def push_changes(self, request):
        body = request.json()
        with self.lock:
            self.changes.append(body)
        return Response(200, {"accepted": len(body["items"]), "cursor": body["cursor"]})


@pytest.fixture
def company_path(tmp_path) -> Path:
    path = tmp_path / "company.sqlite3"
    company = SimCompany.create(path)
    company.seed_stock(["SKU-1", "SKU-2"])
    company.close()
    return path


@pytest.fixture
def company(company_path):
    c = SimCompany(company_path)
    yield c
    c.close()


def _serve(app):
    server = SandboxServer(app).start()
    app.url = server.url
    return server


@pytest.fixture
def fake_api():
    app = FakeAgentApi()
    server = _serve(app)
    yield app
    server.stop()


@pytest.fixture
def fake_batch_api():
    """The fake server with the batch complete endpoint (a current server)."""
    app = FakeAgentApi(batch_complete=True, config={"max_jobs": 100})
    server = _serve(app)
    yield app
    server.stop()
