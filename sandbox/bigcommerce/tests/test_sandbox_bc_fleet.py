"""Many stores in one sandbox process (sandbox/bigcommerce/fleet.py), and the duplicate-delivery knob."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests

from sandbox.bigcommerce.fleet import build_fleet, fleet_hashes
from sandbox.httpserver import SandboxServer

ANCHOR = datetime(2026, 3, 1, tzinfo=UTC)
TOKEN, SECRET = "fleet-token", "fleet-client-secret"


@pytest.fixture
def fleet():
    app = build_fleet(fleet_hashes("bf", 3), token=TOKEN, client_id="cid", client_secret=SECRET, orders=0,
                      anchor=ANCHOR, webhook_retry_delay=0.01)
    server = SandboxServer(app).start()
    yield app, server.url
    for store in app.apps.values():
        store.dispatcher.stop()
    server.stop()


def api(url: str, store_hash: str, path: str) -> requests.Response:
    return requests.get(f"{url}/stores/{store_hash}{path}", headers={"X-Auth-Token": TOKEN}, timeout=5)


def test_each_store_has_its_own_orders_and_control_path(fleet):
    app, url = fleet
    assert fleet_hashes("bf", 3) == ["bf001", "bf002", "bf003"]
    made = requests.post(f"{url}/stores/bf002/__sandbox__/orders", json={"status_id": 11}, timeout=5)
    assert made.status_code == 201
    order_id = made.json()["id"]
    assert api(url, "bf002", f"/v2/orders/{order_id}").json()["id"] == order_id
    assert api(url, "bf001", f"/v2/orders/{order_id}").status_code == 404, "another store has no such order"
    assert api(url, "nosuch", "/v2/orders").status_code == 404
    info = requests.get(f"{url}/__sandbox__/info", timeout=5).json()
    assert [(s["store_hash"], s["orders"]) for s in info["stores"]] == [("bf001", 0), ("bf002", 1), ("bf003", 0)]
    assert requests.get(f"{url}/stores/bf002/__sandbox__/info", timeout=5).json()["store_hash"] == "bf002"


def test_faults_set_on_the_fleet_reach_every_store(fleet):
    app, url = fleet
    assert requests.post(f"{url}/__sandbox__/faults", json={"webhook_duplicate_rate": 0.3}, timeout=5).ok
    assert {store.faults.webhook_duplicate_rate for store in app.apps.values()} == {0.3}
    assert requests.post(f"{url}/__sandbox__/faults", json={"no_such_knob": 1}, timeout=5).status_code == 400


def test_duplicate_rate_sends_that_share_of_deliveries_once_more(bc, receiver):
    bc.post("/v3/hooks", {"scope": "store/order/created", "destination": receiver.url, "is_active": True})
    bc.control("POST", "/faults", {"webhook_duplicate_rate": 0.5})
    for _ in range(40):
        bc.control("POST", "/orders", {"status_id": 0})
    assert bc.app.dispatcher.wait_idle(10)
    hashes = [json.loads(body)["hash"] for _, body in receiver.received]
    repeated = len(hashes) - len(set(hashes))
    assert len(set(hashes)) == 40 and 8 <= repeated <= 32, repeated  # about half, never more than one extra
    assert all(hashes.count(h) <= 2 for h in hashes)
