"""Many sandbox stores in one process: what a hosted connector sees when it serves many merchants.

Each store is a whole ``BigCommerceApp`` of its own (catalog, orders, hooks, rate-limit window,
webhook thread), told apart by the store hash BigCommerce already puts in every API path
(``/stores/{store_hash}/v2/...``). A store's control endpoints are under its own path too:
``/stores/{store_hash}/__sandbox__/orders`` creates an order in that store and fires its webhooks.
``/__sandbox__/faults`` sets a knob on every store at once; ``/__sandbox__/info`` lists the stores.

One process for fifty stores rather than fifty processes: the stores are independent (nothing is
shared but the socket and the interpreter), and fifty idle interpreters would take memory and CPU
from the connector being measured on the same machine.
"""

from __future__ import annotations

import re

from sandbox.httpserver import Request, Response, SandboxApp

from .app import BigCommerceApp, build_app

STORE_PATH = re.compile(r"^/stores/(?P<store_hash>[^/]+)(?P<rest>/.*)?$")


def fleet_hashes(prefix: str, count: int) -> list[str]:
    """The store hashes of a fleet: ``prefix`` and a number, ``demo001``, ``demo002``, …"""
    return [f"{prefix}{n:03d}" for n in range(1, count + 1)]


class StoreFleetApp(SandboxApp):
    name = "bigcommerce-fleet"

    def __init__(self, apps: dict[str, BigCommerceApp]):
        super().__init__()
        self.apps = apps
        self.route("GET", r"/__sandbox__/info", self.ctl_info)

    def dispatch(self, request: Request) -> Response:
        match = STORE_PATH.match(request.path)
        if match is None:
            return super().dispatch(request)  # the fleet's own control endpoints
        app = self.apps.get(match.group("store_hash"))
        if app is None:
            return Response(404, {"status": 404, "title": "The requested resource was not found."})
        rest = match.group("rest") or ""
        if rest.startswith("/__sandbox__/"):
            request.path = rest  # that store's control endpoint
        return app.dispatch(request)

    # -- fleet-wide control ----------------------------------------------------------------------
    def _get_faults(self, request: Request) -> Response:
        first = next(iter(self.apps.values()))
        return Response(200, first.faults.as_dict())

    def _set_faults(self, request: Request) -> Response:
        answer = Response(200, {})
        for app in self.apps.values():
            answer = app._set_faults(request)
            if answer.status != 200:
                return answer
        return answer

    def _get_requests(self, request: Request) -> Response:
        count = 0
        for app in self.apps.values():
            with app.lock:
                count += len(app.request_log)
        return Response(200, {"count": count, "requests": []})

    def ctl_info(self, request: Request) -> Response:
        return Response(200, {"stores": [{"store_hash": h, "orders": len(a.store.orders),
                                          "api_path": f"/stores/{h}/"} for h, a in self.apps.items()]})


def build_fleet(hashes: list[str], *, seed: int = 1, **kwargs) -> StoreFleetApp:
    """One store per hash, each as ``build_app`` makes it, with the same catalog (same ``seed``),
    so one item mapping fits every store, as for a merchant group selling the same range."""
    return StoreFleetApp({store_hash: build_app(store_hash=store_hash, seed=seed, **kwargs) for store_hash in hashes})
