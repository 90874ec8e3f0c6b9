"""Webhook deliveries, verified here independently from the documented algorithms."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from sandbox.bigcommerce.webhooks import standard_webhooks_secret

SECRET = "test-client-secret"


def verify_standard_webhooks(headers: dict, body: bytes, whsec: str) -> bool:
    """Receiver side, per the Standard Webhooks spec: the secret is base64 (after `whsec_`)."""
    key = base64.b64decode(whsec.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    if abs(time.time() - int(headers["webhook-timestamp"])) > 300:
        return False
    return any(hmac.compare_digest(sig.split(",", 1)[1], expected)
               for sig in headers["webhook-signature"].split() if sig.startswith("v1,"))


def verify_x_bc(headers: dict, body: bytes, secret: str) -> bool:
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["x-bc-signature"], expected)


def _hook(bc, receiver, scope="store/order/*"):
    r = bc.post("/v3/hooks", {"scope": scope, "destination": receiver.url, "is_active": True,
                              "headers": {"X-Shared": "s3cret"}})
    assert r.status_code == 200
    return r.json()["data"]


def test_order_created_delivery_is_signed_three_ways(bc, receiver):
    _hook(bc, receiver)
    created = bc.control("POST", "/orders", {"status_id": 11, "lines": [{"sku": "SKU-0003", "quantity": 2}]})
    assert created.status_code == 201
    order = created.json()
    assert bc.app.dispatcher.wait_idle(5)
    scopes = [json.loads(body)["scope"] for _, body in receiver.received]
    assert scopes == ["store/order/created", "store/order/statusUpdated"]
    whsec = "whsec_" + base64.b64encode(SECRET.encode()).decode()  # base64(client secret), as BC's docs say
    assert whsec == standard_webhooks_secret(SECRET)
    for headers, body in receiver.received:
        payload = json.loads(body)
        assert payload["data"]["id"] == order["id"] and payload["data"]["type"] == "order"
        assert set(payload) == {"scope", "store_id", "data", "hash", "created_at", "producer"}
        assert payload["producer"] == "stores/abc123" and isinstance(payload["store_id"], str)
        assert headers["x-shared"] == "s3cret"
        assert verify_standard_webhooks(headers, body, whsec)
        assert verify_x_bc(headers, body, SECRET)
        assert not verify_x_bc(headers, body + b" ", SECRET)
        assert not verify_standard_webhooks(headers, body, "whsec_" + base64.b64encode(b"other").decode())
    status = json.loads(receiver.received[1][1])["data"]["status"]
    assert status == {"previous_status_id": 0, "new_status_id": 11}


def test_status_refund_and_inventory_events(bc, receiver):
    _hook(bc, receiver, "store/order/refund/created")
    _hook(bc, receiver, "store/sku/inventory/updated")
    _hook(bc, receiver, "store/product/inventory/updated")
    order = next(o for o in bc.app.store.orders.values() if o.status_id == 10)
    bc.control("POST", f"/orders/{order.id}/refunds", {"kind": "item"})
    variant = bc.app.store.catalog.products[101].variants[0]
    bc.put("/v3/inventory/adjustments/absolute", {"items": [
        {"location_id": 1, "sku": variant.sku, "quantity": 9}, {"location_id": 1, "sku": "SKU-0003", "quantity": 4}]})
    assert bc.app.dispatcher.wait_idle(5)
    payloads = [json.loads(body) for _, body in receiver.received]
    by_scope = {p["scope"]: p["data"] for p in payloads}
    assert by_scope["store/order/refund/created"]["refund"]["refund_id"] == max(bc.app.store.refunds)
    assert by_scope["store/sku/inventory/updated"]["inventory"] == {
        "product_id": 101, "method": "absolute", "value": 9, "variant_id": variant.id}
    assert by_scope["store/product/inventory/updated"]["id"] == 103


def test_repeat_and_drop_knobs(bc, receiver):
    _hook(bc, receiver, "store/order/created")
    bc.control("POST", "/faults", {"webhook_repeat": 3})
    bc.control("POST", "/orders", {"status_id": 0})
    assert bc.app.dispatcher.wait_idle(5)
    assert len(receiver.received) == 3
    assert len({h["webhook-id"] for h, _ in receiver.received}) == 1  # same event, same id and hash
    assert len({json.loads(b)["hash"] for _, b in receiver.received}) == 1
    bc.control("POST", "/faults", {"webhook_repeat": 1, "webhook_drop_rate": 1.0})
    bc.control("POST", "/orders", {"status_id": 0})
    assert bc.app.dispatcher.wait_idle(5)
    assert len(receiver.received) == 3
    outcomes = [d["outcome"] for d in bc.control("GET", "/webhooks").json()["deliveries"]]
    assert outcomes.count("dropped") == 1


def test_failing_destination_deactivates_hook_and_put_reactivates(bc, receiver):
    hook = _hook(bc, receiver, "store/order/created")
    bc.control("POST", "/faults", {"webhook_deactivate_after": 2})
    receiver.status = 500
    bc.control("POST", "/orders", {"status_id": 0})
    assert bc.app.dispatcher.wait_idle(5)
    assert len(receiver.received) == 2  # two failed attempts, then the hook is switched off
    assert bc.get(f"/v3/hooks/{hook['id']}").json()["data"]["is_active"] is False
    assert bc.get("/v3/hooks", params={"is_active": "false"}).json()["data"][0]["id"] == hook["id"]
    receiver.status = 200
    r = bc.put(f"/v3/hooks/{hook['id']}", {"is_active": True})
    assert r.json()["data"]["is_active"] is True
    bc.control("POST", "/orders", {"status_id": 0})
    assert bc.app.dispatcher.wait_idle(5)
    assert len(receiver.received) == 3
    assert bc.http.delete(f"{bc.base}/v3/hooks/{hook['id']}", timeout=5).status_code == 200
    assert bc.get(f"/v3/hooks/{hook['id']}").status_code == 404
