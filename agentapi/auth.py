"""Who is calling: ``Authorization: Bearer <agent key>`` → the Agent, and how often it may call.

Shared by the DRF views and the async lease view, so both answer the same 401s and 429s.
"""

from __future__ import annotations

import hmac
import time
from types import SimpleNamespace

from django.core.cache import cache as default_cache
from django.core.exceptions import ImproperlyConfigured
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from accounts.models import Agent, hash_agent_key

MISSING = "Send the agent key as 'Authorization: Bearer <agent key>'."
INVALID = "Unknown agent key."
REVOKED = "This agent key has been revoked; create a new agent key in admin."
MAX_KEY_LENGTH = 512


def agent_for_authorization(header: str | None) -> Agent:
    """The agent an Authorization header names, or AuthenticationFailed with a clear detail."""
    scheme, _, key = (header or "").strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise exceptions.AuthenticationFailed(MISSING)
    if len(key) > MAX_KEY_LENGTH:
        raise exceptions.AuthenticationFailed(INVALID)
    key_hash = hash_agent_key(key)
    agent = Agent.objects.select_related("integration").filter(key_hash=key_hash).first()
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
        return agent_for_authorization(request.headers.get("Authorization")), None

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
