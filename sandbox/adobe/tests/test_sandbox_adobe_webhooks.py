"""Webhook deliveries verify with the keys the sandbox publishes, in all three shapes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from sandbox.adobe.testkit import Receiver


def _verify(pem: str, signature: str, signed: bytes) -> None:
    key = serialization.load_pem_public_key(pem.encode())
    key.verify(base64.b64decode(signature), signed, padding.PKCS1v15(), hashes.SHA256())  # raises if wrong


def _place_and_invoice(adobe) -> int:
    order = adobe.control("POST", "/orders", {"store": "default", "lines": [{"sku": "24-MB03", "qty": 2}]}).json()
    adobe.control("POST", f"/orders/{order['entity_id']}/invoice", {})
    assert adobe.app.dispatcher.wait_idle(10)
    return order["entity_id"]


def test_commerce_webhooks_rsa_signature_over_base64_body(adobe, receiver):
    r = adobe.control("POST", "/webhooks", {"kind": "commerce", "url": receiver.url,
                                            "events": ["observer.sales_order_place_after",
                                                       "observer.sales_order_invoice_save_after"]})
    assert r.status_code == 201
    order_id = _place_and_invoice(adobe)
    pem = requests.get(f"{adobe.root}/__sandbox__/webhooks/public-key", timeout=60).text
    assert pem == adobe.control("GET", "/info").json()["webhooks"]["public_key_pem"]
    names = []
    for headers, body in receiver.received:
        _verify(pem, headers["x-adobe-commerce-webhook-signature"], base64.b64encode(body))
        assert headers["x-adobe-commerce-request-id"]
        payload = json.loads(body)
        names.append(payload["eventName"])
        record = payload["data"].get("order") or payload["data"].get("invoice")
        assert order_id in (record.get("entity_id"), record.get("order_id"))
    assert names == ["observer.sales_order_place_after", "observer.sales_order_invoice_save_after"]
    delivered = adobe.control("GET", "/webhooks").json()["deliveries"]
    assert {d["answer"] for d in delivered} == {'[{"op":"success"}]'}


def test_io_events_challenge_and_two_digital_signatures(adobe, receiver):
    sub = adobe.control("POST", "/webhooks", {"kind": "io_events", "url": receiver.url,
                                              "client_id": "our-client-id"}).json()
    assert sub["status"] == "active" and len(receiver.challenges) == 1
    _place_and_invoice(adobe)
    assert receiver.received
    for headers, body in receiver.received:
        for n in (1, 2):
            pem = requests.get(adobe.root + headers[f"x-adobe-public-key{n}-path"], timeout=60).text
            _verify(pem, headers[f"x-adobe-digital-signature-{n}"], body)
        event = json.loads(body)
        assert event["specversion"] == "1.0" and event["recipient_client_id"] == "our-client-id"
        assert event["type"].startswith("com.adobe.commerce.observer.")
        assert event["data"]["value"]["entity_id"]
        assert event["event_id"] == headers["x-adobe-event-id"]
    types = {json.loads(body)["type"] for _, body in receiver.received}
    assert "com.adobe.commerce.observer.sales_order_invoice_save_after" in types


def test_io_events_registration_fails_without_the_challenge_echo(adobe):
    silent = Receiver(echo_challenge=False)
    try:
        sub = adobe.control("POST", "/webhooks", {"kind": "io_events", "url": silent.url}).json()
        assert sub["status"] == "verification_failed"
        _place_and_invoice(adobe)
        assert silent.received == []
    finally:
        silent.close()


def test_hmac_variant_with_a_shared_secret(adobe, receiver):
    adobe.control("POST", "/webhooks", {"kind": "hmac", "url": receiver.url, "secret": "s3cret"})
    _place_and_invoice(adobe)
    assert receiver.received
    for headers, body in receiver.received:
        expected = base64.b64encode(hmac.new(b"s3cret", body, hashlib.sha256).digest()).decode()
        assert headers["x-adobe-signature"] == expected


def test_repeats_drops_and_retries(make_adobe, receiver):
    adobe = make_adobe(orders=5, faults={"webhook_repeat": 2})
    adobe.control("POST", "/webhooks", {"kind": "commerce", "url": receiver.url,
                                        "events": ["observer.sales_order_place_after"]})
    adobe.control("POST", "/orders", {"store": "uk"})
    assert adobe.app.dispatcher.wait_idle(10)
    ids = [h["x-adobe-commerce-request-id"] for h, _ in receiver.received]
    assert len(ids) == 2 and ids[0] == ids[1]  # the same delivery twice
    adobe.control("POST", "/faults", {"webhook_drop_rate": 1.0, "webhook_repeat": 1})
    adobe.control("POST", "/orders", {"store": "uk"})
    assert adobe.app.dispatcher.wait_idle(10)
    assert len(receiver.received) == 2
    assert adobe.control("GET", "/webhooks").json()["deliveries"][-1]["outcome"] == "dropped"
    adobe.control("POST", "/faults", {"webhook_drop_rate": 0.0})
    receiver.status = 500
    adobe.control("POST", "/orders", {"store": "uk"})
    assert adobe.app.dispatcher.wait_idle(10)
    failed = [d for d in adobe.control("GET", "/webhooks").json()["deliveries"] if d["outcome"] == "failed"]
    assert [d["attempt"] for d in failed] == [1, 2, 3]


def test_live_activity_fires_every_step(adobe, receiver):
    adobe.control("POST", "/webhooks", {"kind": "hmac", "url": receiver.url, "secret": "k"})
    made = adobe.control("POST", "/activity", {"orders": 40}).json()
    assert len(made["orders"]) == 40 and len(made["invoices"]) > 30 and made["creditmemos"]
    assert adobe.app.dispatcher.wait_idle(30)
    names = [json.loads(body)["eventName"] for _, body in receiver.received]
    assert names.count("observer.sales_order_place_after") == 40
    assert names.count("observer.sales_order_invoice_save_after") == len(made["invoices"])
    assert names.count("observer.sales_order_creditmemo_save_after") == len(made["creditmemos"])
    orders = {o: adobe.get(f"orders/{o}").json() for o in made["orders"]}
    assert any(len([i for i in made["invoices"] if adobe.app.store.invoices[i].order_id == o]) > 1 for o in orders)
