"""The Redis cache backend with one connection pool per process.

Django keeps a cache backend per async context, and under ASGI every request runs in a context of
its own: the stock RedisCache then builds a new client, with a new connection pool, for each
request, and each request opened (and dropped) a TCP connection to Redis for its throttle check.
This backend hands every instance with the same settings the same client, whose pool redis-py
keeps thread-safe and re-creates after a fork.
"""

from __future__ import annotations

import threading

from django.core.cache.backends.redis import RedisCache
from django.utils.functional import cached_property

_clients: dict[tuple, object] = {}
_clients_lock = threading.Lock()


class SharedPoolRedisCache(RedisCache):
    @cached_property
    def _cache(self):
        key = (self._class, tuple(self._servers), repr(sorted(self._options.items())))
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = self._class(self._servers, **self._options)
        return client
