"""Who is calling: ``Authorization: Bearer <agent key>`` → the Agent, and how often it may call.

Shared by the DRF views and the async lease view, so both answer the same 401s and 429s.
"""

from __future__ import annotations

import hmac
import logging
import time
from types import SimpleNamespace

from django.conf import settings
from django.core.cache import cache as default_cache
from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from accounts.models import Agent, hash_agent_key
from connector.security import client_ip

logger = logging.getLogger(__name__)

MISSING = "Send the agent key as 'Authorization: Bearer <agent key>'."
INVALID = "Unknown agent key."
REVOKED = "This agent key has been revoked; create a new agent key in admin."
MAX_KEY_LENGTH = 512


class TooManyWrongKeys(exceptions.Throttled):
    default_detail = "Too many wrong agent keys from this address."


def _failure_key(address: str) -> str:
    window = int(time.time() // settings.AGENT_AUTH_WINDOW_SECONDS)
    return f"agent_auth_failures:{address}:{window}"


def _refuse_if_locked_out(address: str | None) -> None:
    """Brute force: after AGENT_AUTH_FAILURE_LIMIT wrong keys from one address in a window, every call
    from it is answered 429 until the window ends, right key or not (so guessing gains nothing)."""
    if address is None:
        return
    failures = default_cache.get(_failure_key(address)) or 0
    if failures >= settings.AGENT_AUTH_FAILURE_LIMIT:
        window = settings.AGENT_AUTH_WINDOW_SECONDS
        wait = int(window - time.time() % window) + 1
        raise TooManyWrongKeys(wait=wait, detail=f"Too many wrong agent keys from {address}; try again in {wait} s. "
                                                 "Check the key in the agent's config file.")


def _count_failure(address: str | None) -> None:
    if address is None:
        return
    key = _failure_key(address)
    try:
        count = default_cache.incr(key)
    except ValueError:
        count = 1 if default_cache.add(key, 1, timeout=settings.AGENT_AUTH_WINDOW_SECONDS * 2) else default_cache.incr(key)
    if count == settings.AGENT_AUTH_FAILURE_LIMIT:
        logger.warning("agent API: %s wrong agent keys from %s; refusing that address for the rest of the window",
                       count, address)
        window = settings.AGENT_AUTH_WINDOW_SECONDS
        _remember_lockout(address, (int(time.time() // window) + 1) * window)


LOCKOUTS_KEY = "agent_auth_lockouts"


def _remember_lockout(address: str, until: float) -> None:
    # For the admin's list only (the counter above decides): a read-modify-write is fine here,
    # lock-outs are rare and a lost entry only hides one from the list until the next.
    lockouts = default_cache.get(LOCKOUTS_KEY) or {}
    lockouts[address] = until
    default_cache.set(LOCKOUTS_KEY, lockouts, timeout=settings.AGENT_AUTH_WINDOW_SECONDS * 2)


def current_lockouts() -> list[tuple[str, float]]:
    """(address, locked until as a Unix time) of the addresses refused now."""
    now = time.time()
    lockouts = default_cache.get(LOCKOUTS_KEY) or {}
    limit = settings.AGENT_AUTH_FAILURE_LIMIT
    return sorted((address, until) for address, until in lockouts.items()
                  if until > now and (default_cache.get(_failure_key(address)) or 0) >= limit)


def unlock_address(address: str) -> None:
    """Lift an agent-key lock-out (admin → Agents → lock-outs, or ``manage.py agent_unlock <address>``)."""
    default_cache.delete(_failure_key(address))
    lockouts = default_cache.get(LOCKOUTS_KEY) or {}
    if lockouts.pop(address, None) is not None:
        default_cache.set(LOCKOUTS_KEY, lockouts, timeout=settings.AGENT_AUTH_WINDOW_SECONDS * 2)


def agent_for_authorization(header: str | None, address: str | None = None) -> Agent:
    """The agent an Authorization header names, or AuthenticationFailed with a clear detail.
    ``address`` (the client's) turns on the wrong-key lock-out."""
    _refuse_if_locked_out(address)
    try:
        return _agent_for_key(header)
    except exceptions.AuthenticationFailed:
        _count_failure(address)
        raise


def _agent_for_key(header: str | None) -> Agent:
    scheme, _, key = (header or "").strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise exceptions.AuthenticationFailed(MISSING)
    if len(key) > MAX_KEY_LENGTH:
        raise exceptions.AuthenticationFailed(INVALID)
    key_hash = hash_agent_key(key)
    # The agent row alone: every agent request authenticates, and joining its integration (a wide
    # row) cost a web node more CPU than the lease itself. The few views that read the integration
    # (heartbeat config, Sage changes) load it when they do.
    agent = Agent.objects.filter(key_hash=key_hash).first()
    # The look-up is by a unique index on the hash; comparing the hashes again in constant time
    # keeps the decision itself free of timing differences.
    if agent is None or not hmac.compare_digest(agent.key_hash.encode(), key_hash.encode()):
        raise exceptions.AuthenticationFailed(INVALID)
    if agent.revoked_at is not None:
        raise exceptions.AuthenticationFailed(REVOKED)
    return agent


class AgentKeyAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        return agent_for_authorization(request.headers.get("Authorization"), client_ip(request)), None

    def authenticate_header(self, request):
        # Present, so DRF answers 401 (not 403) to unauthenticated calls.
        return 'Bearer realm="agent"'


class IsAgent(BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.user, Agent)


class AgentRateThrottle(BaseThrottle):
    """Per agent, at most N calls per window (REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['agent'],
    "50/s" by default): a guard against an agent stuck in a loop, never a limit on a working one.

    A counter per fixed window (one INCR), not DRF's sliding log: the log keeps every call's
    timestamp for the whole period, so at a rate sized for a busy agent (thousands a minute) each
    call read and wrote a list of thousands of floats. A short window also keeps a throttled agent's
    wait short: Retry-After is the rest of the window, at most one period."""

    scope = "agent"
    cache = default_cache
    cache_format = "throttle_%(scope)s_%(ident)s_%(window)s"

    def __init__(self):
        self.retry_in: float | None = None

    def get_rate(self) -> str | None:
        # Read at call time (DRF caches the rates on the class at import, which override_settings misses).
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        agent = getattr(request, "user", None)
        rate = self.get_rate()
        if not isinstance(agent, Agent) or not rate:
            return True
        limit, period = parse_rate(rate)
        now = time.time()
        window = int(now // period)
        key = self.cache_format % {"scope": self.scope, "ident": agent.pk, "window": window}
        # incr(), and add() for a window's first call: atomic on Redis (INCR, SET NX), so two web
        # processes never both take the last call of a window. A key is only used during its own
        # window and expires a period after it ends, so it cannot expire between the two calls.
        try:
            count = self.cache.incr(key)
        except ValueError:  # the window's first call
            count = 1 if self.cache.add(key, 1, timeout=period * 2) else self.cache.incr(key)
        if count <= limit:
            return True
        self.retry_in = (window + 1) * period - now
        return False

    def wait(self) -> float | None:
        return self.retry_in


def parse_rate(rate: str) -> tuple[int, int]:
    """"50/s", "600/min", "10000/hour" → (calls, seconds)."""
    calls, _, period = rate.partition("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(period.strip()[:1].lower())
    if seconds is None or not calls.strip().isdigit():
        raise ImproperlyConfigured(f"AGENT_THROTTLE_RATE {rate!r} is not a rate: write it as 50/s, 600/min or "
                                   f"10000/hour.")
    return int(calls), seconds


def throttle_wait(agent: Agent) -> float | None:
    """None when the agent may call now, else the seconds to wait (for Retry-After)."""
    throttle = AgentRateThrottle()
    if throttle.allow_request(SimpleNamespace(user=agent), None):
        return None
    return throttle.wait() or 1.0
