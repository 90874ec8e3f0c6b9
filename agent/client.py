"""The agent's side of agentapi/PROTOCOL.md: heartbeat, lease, complete, fail, push changes."""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import urlsplit

from mlcommon.http import ApiError, BaseApiClient, NotFoundError, PermanentError

API_PREFIX = "/agent/v1"
ALLOW_HTTP_ENV = "ML_AGENT_ALLOW_PLAIN_HTTP"


class InsecureServerUrl(ValueError):
    """The server URL would send the agent key unencrypted over a network."""


def check_server_url(url: str, *, allow_plain_http: bool = False) -> None:
    """https anywhere; plain http only to this machine (loopback), or anywhere with the test flag:
    every call carries the agent key, which on plain http anyone on the path can read."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme != "http":
        raise InsecureServerUrl(f"server URL {url!r} must start with https://")
    if allow_plain_http or os.environ.get(ALLOW_HTTP_ENV) == "1" or _is_loopback(parts.hostname or ""):
        return
    raise InsecureServerUrl(f"refusing plain http to {parts.hostname}: the agent key would cross the network "
                            f"unencrypted. Use https:// (plain http is allowed only to this machine, e.g. "
                            f"http://127.0.0.1).")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class StaleLease(PermanentError):
    """409: the lease expired and the job was leased again; our token no longer counts."""


class AgentClient(BaseApiClient):
    max_attempts = 3

    def __init__(self, base_url: str, key: str, *, verify: bool = True, user_agent: str = "ml-connector-agent",
                 allow_plain_http: bool = False):
        check_server_url(base_url, allow_plain_http=allow_plain_http)
        super().__init__(base_url, verify=verify)
        self.allow_plain_http = allow_plain_http
        self._key = key  # never logged: BaseApiClient keeps headers out of its exchanges and logs
        self.user_agent = user_agent
        self.batch_complete: bool | None = None  # unknown until the first batch call

    def __repr__(self) -> str:
        return f"AgentClient({self.base_url!r}, key=***)"

    def twin(self) -> AgentClient:
        """The same server and key on a session of its own, for another thread."""
        twin = AgentClient(self.base_url, self._key, verify=self.session.verify, user_agent=self.user_agent,
                           allow_plain_http=self.allow_plain_http)
        twin.batch_complete = self.batch_complete
        twin.timeout = self.timeout
        return twin

    def default_headers(self) -> dict[str, str]:
        return {"Accept": "application/json", "Authorization": f"Bearer {self._key}",
                "User-Agent": self.user_agent}

    def error_for(self, response, body) -> ApiError:
        if response.status_code == 409:
            detail = body.get("detail") if isinstance(body, dict) else None
            return StaleLease(detail or "lease token is stale", status=409, body=body)
        return super().error_for(response, body)

    def _post(self, path: str, body: dict, *, retry: bool, read_timeout: float | None = None):
        if read_timeout is None:
            return self.request("POST", f"{API_PREFIX}{path}", json_body=body, retry=retry)[1]
        saved = self.timeout
        self.timeout = (saved[0], read_timeout)
        try:
            return self.request("POST", f"{API_PREFIX}{path}", json_body=body, retry=retry)[1]
        finally:
            self.timeout = saved

    def heartbeat(self, info: dict) -> dict:
        # The run loop owns backoff for heartbeat and lease: no hidden retries here.
        return self._post("/heartbeat", info, retry=False) or {}

    def lease(self, max_jobs: int, wait_seconds: int) -> list[dict]:
        # Not retried: a lease that timed out may have handed us jobs; they come back when it expires.
        body = self._post("/jobs/lease", {"max": max_jobs, "wait_seconds": wait_seconds}, retry=False,
                          read_timeout=wait_seconds + 20)
        return list((body or {}).get("jobs") or [])

    def complete(self, job_id: int, lease_token: str, result: dict) -> dict:
        # complete and fail are idempotent per the protocol, so they are safe to repeat.
        return self._post(f"/jobs/{job_id}/complete", {"lease_token": lease_token, "result": result},
                          retry=True) or {}

    def complete_many(self, items: list[dict]) -> list[dict] | None:
        """POST /jobs/complete: ``items`` are {"id", "lease_token", "result"}. Returns one answer per
        item ({"id", "status", "state", "detail"}), or None when the server has no batch endpoint
        (an older server: use ``complete`` per job). Idempotent per item, so safe to repeat."""
        if self.batch_complete is False:
            return None
        try:
            body = self._post("/jobs/complete", {"jobs": items}, retry=True) or {}
        except NotFoundError:
            self.batch_complete = False
            return None
        except ApiError as exc:
            if exc.status == 405:
                self.batch_complete = False
                return None
            raise
        self.batch_complete = True
        return list(body.get("jobs") or [])

    def fail(self, job_id: int, lease_token: str, code: str, message: str, retryable: bool) -> dict:
        return self._post(f"/jobs/{job_id}/fail", {"lease_token": lease_token, "code": code,
                                                    "message": message[:2000], "retryable": retryable},
                          retry=True) or {}

    def push_changes(self, kind: str, items: list[dict], cursor: str | None) -> dict:
        return self._post("/changes", {"kind": kind, "items": items, "cursor": cursor}, retry=True) or {}
