"""The store's REST quirks over real HTTP: auth, v2 pagination and 204s, formats, errors, writes."""

from __future__ import annotations

import email.utils
import json
import re
from decimal import Decimal


def test_auth_is_x_auth_token(bc):
    assert bc.get("/v2/orders/count").status_code == 200
    r = bc.http.get(bc.base + "/v2/orders", headers={"X-Auth-Token": "wrong"}, timeout=5)
    assert r.status_code == 401 and r.json()[0]["status"] == 401  # v2 error body is a list
    r = bc.http.get(bc.base + "/v3/hooks", headers={"X-Auth-Token": ""}, timeout=5)
    assert r.status_code == 401 and r.json()["status"] == 401 and "type" in r.json()


def test_v2_pagination_ends_with_204_and_no_body(bc):
    total = bc.get("/v2/orders/count").json()["count"]
    assert total == 60
    seen = []
    page = 1
    while True:
        r = bc.get("/v2/orders", params={"limit": 25, "page": page})
        if r.status_code == 204:
            assert r.content == b""
            break
        assert r.status_code == 200
        seen += [o["id"] for o in r.json()]
        page += 1
    assert page == 4 and len(seen) == 60 and seen == sorted(seen)
    assert bc.get("/v2/orders", params={"min_id": 10**6}).status_code == 204
    assert bc.get("/v2/orders", params={"limit": 251}).status_code == 413


def test_v2_formats_and_watermark_filter(bc):
    r = bc.get("/v2/orders", params={"sort": "date_modified:asc", "limit": 250})
    orders = r.json()
    stamps = [email.utils.parsedate_to_datetime(o["date_modified"]) for o in orders]
    assert stamps == sorted(stamps)
    assert re.fullmatch(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000", orders[0]["date_created"])
    assert all(re.fullmatch(r"-?\d+\.\d{4}", o["total_inc_tax"]) for o in orders)
    mark = orders[30]["date_modified"]
    later = bc.get("/v2/orders", params={"min_date_modified": mark, "sort": "date_modified:asc"}).json()
    assert {o["id"] for o in later} >= {o["id"] for o in orders[31:]}
    assert all(email.utils.parsedate_to_datetime(o["date_modified"]) >= stamps[30] for o in later)
    # a garbled date filter is ignored, as on the real API
    assert len(bc.get("/v2/orders", params={"min_date_modified": "yesterday", "limit": 250}).json()) == 60


def test_include_consignments_line_items_brings_the_lines(bc):
    orders = bc.get("/v2/orders", params={"include": "consignments.line_items",
                                          "consignment_structure": "object", "limit": 5}).json()
    for o in orders:
        lines = o["consignments"]["shipping"][0]["line_items"]
        direct = bc.get(f"/v2/orders/{o['id']}/products").json()
        assert [ln["id"] for ln in lines] == [ln["id"] for ln in direct]


def test_sub_resources_and_errors(bc):
    order = bc.get("/v2/orders", params={"limit": 1}).json()[0]
    assert bc.get(f"/v2/orders/{order['id']}/shipping_addresses").json()[0]["order_id"] == order["id"]
    assert bc.get(f"/v2/orders/{order['id']}/coupons").status_code in (200, 204)
    missing = bc.get("/v2/orders/999999")
    assert missing.status_code == 404 and missing.json() == [
        {"status": 404, "message": "The requested resource was not found."}]
    statuses = bc.get("/v2/order_statuses").json()
    assert [s["id"] for s in statuses] == list(range(15)) and statuses[14]["name"] == "Partially Refunded"
    r = bc.get("/v3/catalog/products/999999")
    assert r.status_code == 404 and set(r.json()) == {"status", "title", "type", "errors"}


def test_status_update_changes_date_modified(bc):
    order = bc.get("/v2/orders", params={"status_id": 11, "limit": 1}).json()[0]
    r = bc.put(f"/v2/orders/{order['id']}", {"status_id": 2})
    assert r.status_code == 200 and r.json()["status_id"] == 2 and r.json()["status"] == "Shipped"
    assert email.utils.parsedate_to_datetime(r.json()["date_modified"]) > \
        email.utils.parsedate_to_datetime(order["date_modified"])


def test_refunds_only_visible_through_v3(bc):
    order = bc.get("/v2/orders", params={"status_id": 10, "limit": 1}).json()[0]
    created = bc.control("POST", f"/orders/{order['id']}/refunds", {"kind": "shipping"})
    if created.status_code == 422:  # free shipping: refund an item instead
        created = bc.control("POST", f"/orders/{order['id']}/refunds", {"kind": "item"})
    assert created.status_code == 201
    v2 = bc.get(f"/v2/orders/{order['id']}").json()
    assert v2["refunded_amount"] == "0.0000" and v2["status_id"] in (4, 14)
    refunds = bc.get("/v3/orders/payment_actions/refunds", params={"order_id:in": order["id"]}).json()["data"]
    assert len(refunds) == 1 and isinstance(refunds[0]["total_amount"], (int, float))
    body = json.loads(bc.get("/v3/orders/payment_actions/refunds").text, parse_float=Decimal)
    assert body["meta"]["pagination"]["total"] == len(bc.app.store.refunds)
    since = bc.get("/v3/orders/payment_actions/refunds", params={"created:min": "2099-01-01T00:00:00+00:00"})
    assert since.json()["data"] == []


def test_v3_refund_post_checks_the_quote(bc):
    order = next(o for o in bc.app.store.orders.values() if o.status_id == 11)
    line = order.lines[0]
    items = [{"item_type": "PRODUCT", "item_id": line.id, "quantity": 1}]
    bad = bc.post(f"/v3/orders/{order.id}/payment_actions/refunds",
                  {"items": items, "payments": [{"provider_id": order.gateway, "amount": 0.01, "offline": False}]})
    assert bad.status_code == 422 and not bc.app.store.refunds.get(999)
    expected = float(bc.app.store.quote_refund(order, items)[1])
    ok = bc.post(f"/v3/orders/{order.id}/payment_actions/refunds",
                 {"items": items, "payments": [{"provider_id": order.gateway, "amount": expected, "offline": False}]})
    assert ok.status_code == 201 and ok.json()["data"]["total_amount"] == expected


def test_customers_lookup_and_batch_create(bc):
    known = next(iter(bc.app.store.customers.values()))
    found = bc.get("/v3/customers", params={"email:in": known.email}).json()["data"]
    assert [c["id"] for c in found] == [known.id]
    new = [{"email": f"n{i}@example.org", "first_name": "N", "last_name": str(i)} for i in range(3)]
    r = bc.post("/v3/customers", new)
    assert r.status_code == 200 and len(r.json()["data"]) == 3
    assert bc.post("/v3/customers", new[:1]).status_code == 422  # email must be unique
    assert bc.post("/v3/customers", new * 4).status_code == 413


def test_inventory_push_and_read_back(bc):
    r = bc.put("/v3/inventory/adjustments/absolute", {"reason": "sage sync", "items": [
        {"location_id": 1, "sku": "SKU-0003", "quantity": 42},
        {"location_id": 2, "sku": "SKU-0001-" + bc.app.store.catalog.products[101].variants[0].sku.split("-")[2],
         "quantity": 7}]})
    assert r.status_code == 200 and r.json()["transaction_id"]
    levels = bc.control("GET", "/inventory").json()["levels"]
    assert levels["SKU-0003"]["1"] == 42
    items = bc.get("/v3/inventory/items", params={"sku:in": "SKU-0003"}).json()["data"]
    assert items[0]["locations"][0]["available_to_sell"] == 42
    bad = bc.put("/v3/inventory/adjustments/absolute", {"items": [{"location_id": 1, "product_id": 101,
                                                                  "quantity": 1}]})
    assert bad.status_code == 422 and bad.headers["Content-Type"].startswith("application/problem+json")
    too_many = [{"location_id": 1, "sku": "SKU-0003", "quantity": 1}] * 2001
    assert bc.put("/v3/inventory/adjustments/absolute", {"items": too_many}).status_code == 413


def test_catalog_batch_update_answers_207_on_partial_success(bc):
    r = bc.put("/v3/catalog/products", [{"id": 103, "price": 9.5, "inventory_level": 3},
                                        {"id": 101, "inventory_level": 3}])
    assert r.status_code == 207 and "101" in r.json()["errors"]["errors"]
    assert bc.get("/v3/catalog/products/103").json()["data"]["inventory_level"] == 3
    variants = bc.get("/v3/catalog/products/101/variants").json()["data"]
    assert all(v["sku"].startswith("SKU-0001-") for v in variants)


def test_faults_settable_at_run_time(bc):
    r = bc.control("POST", "/faults", {"error_rate": 1.0})
    assert r.status_code == 200 and r.json()["error_rate"] == 1.0
    failed = bc.get("/v2/orders/count")
    assert failed.status_code == 503 and "X-Rate-Limit-Requests-Left" in failed.headers
    bc.control("POST", "/faults", {"error_rate": 0, "latency_ms": 0})
    assert bc.get("/v2/orders/count").status_code == 200
    assert bc.control("POST", "/faults", {"no_such_knob": 1}).status_code == 400
    counters = bc.control("GET", "/counters").json()
    assert counters["endpoints"]["GET /v2/orders/count"] == 2
