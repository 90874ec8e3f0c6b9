"""BigCommerce test helpers: an in-process sandbox store (and its fixture), a Redis probe, and the
worker function the multi-process rate-limit tests run. The store connection that talks to this
sandbox comes from ``tests.support.factories.make_store``. No model is imported at module level: the
spawned rate-limit workers import this module without Django set up."""

from __future__ import annotations

import os
import time
import uuid

import pytest

# The sandbox store's credentials; tests.support.factories.make_store gives a store connection these.
SANDBOX_TOKEN = "sandbox-token"
SANDBOX_SECRET = "sandbox-secret"
STORE_HASH = "abc123"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


# -- sandbox --------------------------------------------------------------------------------------

class Sandbox:
    """A running sandbox store plus helpers to read its control endpoints."""

    def __init__(self, **kwargs):
        from sandbox.bigcommerce.app import build_app
        from sandbox.httpserver import SandboxServer

        kwargs.setdefault("validate", True)
        kwargs.setdefault("orders", 60)
        kwargs.setdefault("webhook_retry_delay", 0.05)
        self.app = build_app(store_hash=STORE_HASH, token=SANDBOX_TOKEN, client_secret=SANDBOX_SECRET, **kwargs)
        self.server = SandboxServer(self.app).start()
        self.url = self.server.url

    @property
    def store(self):
        return self.app.store

    def client(self, **kw):
        from connector.bigcommerce.client import BigCommerceClient
        from connector.bigcommerce.ratelimit import LocalBudget

        kw.setdefault("budget", LocalBudget())
        return BigCommerceClient(self.url, STORE_HASH, SANDBOX_TOKEN, **kw)

    def calls(self, key: str) -> int:
        """How many times an endpoint was called, e.g. 'GET /v2/orders'."""
        return self.app.counters.get(key, 0)

    def request_violations(self) -> list[dict]:
        return [v for v in self.app.violations if v["direction"] == "request"]

    def stop(self):
        self.app.dispatcher.stop()
        self.server.stop()


@pytest.fixture
def sandbox():
    box = Sandbox()
    yield box
    box.stop()


def redis_or_skip():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis at {REDIS_URL} is unreachable ({error}); the shared-budget tests need it")
    return client


def unique_prefix() -> str:
    return f"mlc:test:{uuid.uuid4().hex[:12]}"


# -- multi-process worker ---------------------------------------------------------------------------

def hammer(url: str, redis_url: str, key: str, seconds: float, results) -> None:
    """One worker process: call the store as fast as the shared budget allows for ``seconds``.
    Reports (ok, rate_limited, errors) through ``results`` (a multiprocessing queue)."""
    import redis

    from connector.bigcommerce.client import BigCommerceClient
    from connector.bigcommerce.ratelimit import RedisBudget
    from mlcommon.http import ApiError, RateLimitedError

    budget = RedisBudget(redis.Redis.from_url(redis_url), key)
    client = BigCommerceClient(url, STORE_HASH, SANDBOX_TOKEN, budget=budget)
    client.max_attempts = 1  # count every 429, none hidden by a retry
    ok = limited = errors = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            client.order_statuses()
            ok += 1
        except RateLimitedError:
            limited += 1
        except ApiError:
            errors += 1
    results.put((ok, limited, errors))
