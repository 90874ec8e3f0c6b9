import pytest
from django.core.cache.backends.locmem import LocMemCache

from agentapi.auth import AgentRateThrottle


@pytest.fixture(autouse=True)
def fresh_throttle_cache(monkeypatch):
    # Row ids repeat across rolled-back tests, so throttle history must not outlive a test.
    monkeypatch.setattr(AgentRateThrottle, "cache", LocMemCache(f"agent-throttle-{id(monkeypatch)}", {}))
