"""Many sandbox BigCommerce stores behind one server: ``/stores/{store_hash}/…`` goes to that
store's own ``BigCommerceApp`` (its orders, rate limit and token), created on its first request.

For the many-merchants bench (bench/tenants.py): 2,000 stores in one process instead of 2,000
servers. Each store starts empty (no seeded orders, a small catalog) so that idle stores cost
little memory; ``store(hash)`` hands the bench a store to place orders in.
"""

from __future__ import annotations

import re
import threading
from collections import Counter

from sandbox.httpserver import Request, Response

from .app import BigCommerceApp, BigCommerceFaults, v2_error
from .store import BigCommerceStore

HASH = re.compile(r"^/stores/(?P<store_hash>[^/]+)/")


class ManyStores:
    """A SandboxApp-shaped router (``dispatch`` and ``name``) over lazily created stores that all
    accept ``token``. ``requests`` counts API requests per store hash."""

    name = "bigcommerce-many"

    def __init__(self, token: str = "sandbox-token", client_secret: str = "sandbox-secret", seed: int = 1,
                 quota: int = 150, window_ms: int = 30000):
        self.token, self.client_secret, self.seed = token, client_secret, seed
        self.quota, self.window_ms = quota, window_ms
        self.apps: dict[str, BigCommerceApp] = {}
        self.requests: Counter[str] = Counter()
        self.lock = threading.Lock()

    def app(self, store_hash: str) -> BigCommerceApp:
        with self.lock:
            app = self.apps.get(store_hash)
            if app is None:
                store = BigCommerceStore(seed=self.seed + len(self.apps), orders=0, store_hash=store_hash,
                                         n_products=3, n_customers=2)
                faults = BigCommerceFaults()
                faults.update({"quota": self.quota, "window_ms": self.window_ms})
                app = BigCommerceApp(store, token=self.token, client_secret=self.client_secret, faults=faults)
                self.apps[store_hash] = app
            return app

    def store(self, store_hash: str) -> BigCommerceStore:
        return self.app(store_hash).store

    def dispatch(self, request: Request) -> Response:
        match = HASH.match(request.path)
        if not match:
            return v2_error(404, "The requested resource was not found.")
        store_hash = match.group("store_hash")
        with self.lock:
            self.requests[store_hash] += 1
        return self.app(store_hash).dispatch(request)
