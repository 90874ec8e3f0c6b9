"""Who is calling: ``Authorization: Bearer <agent key>`` → the Agent, and how often it may call.

Shared by the DRF views and the async lease view, so both answer the same 401s and 429s.
"""

from __future__ import annotations

import hmac
from types import SimpleNamespace

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

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


class AgentRateThrottle(SimpleRateThrottle):
    """Per agent, rate from settings REST_FRAMEWORK['DEFAULT_THROTTLE_RATES']['agent']."""

    scope = "agent"

    def get_rate(self):
        # Read at call time (DRF caches the rates on the class at import, which override_settings misses).
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view):
        user = getattr(request, "user", None)
        if not isinstance(user, Agent):
            return None
        return self.cache_format % {"scope": self.scope, "ident": user.pk}


def throttle_wait(agent: Agent) -> float | None:
    """None when the agent may call now, else the seconds to wait (for Retry-After)."""
    throttle = AgentRateThrottle()
    if throttle.allow_request(SimpleNamespace(user=agent), None):
        return None
    return throttle.wait() or 1.0
