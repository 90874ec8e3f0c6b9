"""The Redis cache backend shares one client (one connection pool) per process: Django builds a
cache backend per async context, which under ASGI means one per request."""

from __future__ import annotations

import contextvars

from connector.cache import SharedPoolRedisCache


def _backend(location="redis://127.0.0.1:6379/9", **options):
    return SharedPoolRedisCache(location, {"OPTIONS": options})


def test_backends_built_in_different_contexts_share_one_client():
    first = contextvars.copy_context().run(lambda: _backend()._cache)
    second = contextvars.copy_context().run(lambda: _backend()._cache)
    assert first is second


def test_different_settings_get_different_clients():
    assert _backend()._cache is not _backend("redis://127.0.0.1:6379/10")._cache
    assert _backend()._cache is not _backend(socket_timeout=1)._cache
