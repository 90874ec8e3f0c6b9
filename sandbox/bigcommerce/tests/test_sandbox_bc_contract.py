"""Every response of a walk over all emulated endpoints validates against the official specs."""

from __future__ import annotations

from sandbox.specs import Deviation, SpecSet, Violation, _swagger2_to_openapi3, bigcommerce_specs


def test_walk_over_all_endpoints_has_zero_violations(make_bc):
    bc = make_bc(orders=40, validate=True, faults={"quota": 100000})
    store = bc.app.store
    refunded = next(r.order_id for r in store.refunds.values())
    paid = next(o for o in store.orders.values() if o.status_id == 11)
    product = store.catalog.products[101]
    calls = [
        ("GET", "/v2/orders", {"limit": 250, "include": "consignments.line_items", "consignment_structure": "object",
                               "sort": "date_modified:asc", "min_date_modified": "Tue, 20 Nov 2012 00:00:00 +0000"}),
        ("GET", "/v2/orders", {"page": 99}),
        ("GET", "/v2/orders", {"status_id": 4, "min_date_created": "2020-01-01T00:00:00+00:00"}),
        ("GET", "/v2/orders/count", None),
        ("GET", "/v2/order_statuses", None),
        ("GET", "/v2/order_statuses/14", None),
        ("GET", "/v3/orders/payment_actions/refunds", {"created:min": "2020-01-15T01:02:34+00:00", "limit": 250}),
        ("GET", "/v3/orders/payment_actions/refunds", {"order_id:in": f"{refunded},{paid.id}"}),
        ("GET", f"/v3/orders/{refunded}/payment_actions/refunds", None),
        ("GET", "/v3/customers", {"email:in": "nobody@example.com"}),
        ("GET", "/v3/customers", {"limit": 10, "page": 2}),
        ("GET", "/v3/catalog/products", {"include": "variants", "limit": 250}),
        ("GET", "/v3/catalog/products", {"sku:in": "SKU-0003,SKU-0006"}),
        ("GET", "/v3/catalog/products/101", None),
        ("GET", "/v3/catalog/products/101/variants", None),
        ("GET", "/v3/catalog/products/103/variants", None),
        ("GET", "/v3/catalog/variants", {"sku": product.variants[0].sku}),
        ("GET", "/v3/inventory/items", {"sku:in": f"SKU-0003,{product.variants[0].sku}"}),
        ("GET", "/v3/hooks", None),
    ]
    for order in store.orders.values():
        for sub in ("", "/products", "/shipping_addresses", "/coupons", "/taxes"):
            calls.append(("GET", f"/v2/orders/{order.id}{sub}", None))
        calls.append(("GET", f"/v3/orders/{order.id}/transactions", None))
    for _method, path, params in calls:
        r = bc.get(path, params=params)
        assert r.status_code in (200, 204), (path, r.status_code, r.text[:200])
    line = paid.lines[0]
    quote = float(store.quote_refund(paid, [{"item_type": "PRODUCT", "item_id": line.id, "quantity": 1}])[1])
    writes = [
        ("PUT", f"/v2/orders/{paid.id}", {"status_id": 2}),
        ("POST", f"/v3/orders/{paid.id}/payment_actions/refunds", {
            "items": [{"item_type": "PRODUCT", "item_id": line.id, "quantity": 1}],
            "payments": [{"provider_id": paid.gateway, "amount": quote, "offline": False}]}),
        ("POST", "/v3/customers", [{"email": "new@example.org", "first_name": "New", "last_name": "Person"}]),
        ("POST", "/v3/hooks", {"scope": "store/order/*", "destination": "https://example.com/h", "is_active": True,
                               "headers": {"X-Key": "v"}}),
        ("PUT", "/v3/hooks/1", {"is_active": False}),
        ("PUT", "/v3/inventory/adjustments/absolute", {"reason": "sync", "items": [
            {"location_id": 1, "sku": "SKU-0003", "quantity": 5},
            {"location_id": 1, "variant_id": product.variants[0].id, "quantity": 2},
            {"location_id": 1, "product_id": 103, "quantity": 7}]}),
        ("PUT", "/v3/catalog/products", [{"id": 103, "price": 10.5, "inventory_level": 1},
                                         {"id": 101, "inventory_level": 1}]),
    ]
    for method, path, body in writes:
        r = bc.http.request(method, bc.base + path, json=body, timeout=5)
        assert r.status_code in (200, 201, 207), (path, r.status_code, r.text[:300])
    assert bc.http.delete(bc.base + "/v3/hooks/1", timeout=5).status_code == 200
    assert bc.get("/v3/hooks/1").status_code == 404
    assert bc.get("/v3/hooks").json()["data"] == []
    violations = bc.control("GET", "/violations").json()
    assert violations["count"] == 0, violations["violations"][:5]
    assert bc.app.violations == []


def test_validating_app_records_client_mistakes(make_bc):
    bc = make_bc(orders=3, validate=True)
    bc.get("/v2/orders", params={"not_a_filter": 1})
    bc.post("/v3/customers", {"email": "not-a-list@example.com"})
    found = bc.app.violations
    assert any(v["where"] == "query.not_a_filter" for v in found)
    assert any(v["operation"] == "POST /v3/customers" and v["direction"] == "request" for v in found)


def test_spec_checks_catch_wrong_shapes_and_honour_the_allow_list():
    specs = bigcommerce_specs()
    assert specs.find_operation("GET", "/v2/orders/count").template == "/orders/count"
    bad = specs.validate_response("GET", "/v2/orders/5", 200, {"id": "five"})
    assert [v.where for v in bad] == ["body/id"]
    assert specs.validate_response("GET", "/v3/customers", 204, None)[0].where == "status"
    assert specs.validate_response("GET", "/v2/orders", 204, None) == []  # the documented v2 quirk
    assert specs.validate_request("GET", "/v2/orders", {"sort": ["date_modified:desc"]}) == []
    assert specs.validate_request("GET", "/v2/orders", {"sort": ["nonsense:asc"]})
    only_sort = SpecSet(deviations=(), files=("orders.v2.oas2.yml",))
    assert only_sort.validate_request("GET", "/v2/orders", {"sort": ["id:asc"]})
    dev = Deviation("*", "response", r"^body/x$", r"boom", "test")
    assert dev.matches(Violation("response", "GET", "/p", "GET /p", "body/x", "boom"))
    assert not dev.matches(Violation("request", "GET", "/p", "GET /p", "body/x", "boom"))


def test_swagger2_documents_are_converted():
    doc = {
        "swagger": "2.0", "host": "api.example.com", "basePath": "/stores/{store_hash}/v9",
        "paths": {"/things/{id}": {"get": {
            "parameters": [{"name": "id", "in": "path", "type": "integer", "required": True},
                           {"name": "tags", "in": "query", "type": "array", "items": {"type": "string"}}],
            "responses": {"200": {"description": "", "schema": {"$ref": "#/definitions/Thing"}}}}}},
        "definitions": {"Thing": {"type": "object", "required": ["id"],
                                  "properties": {"id": {"type": "integer"}, "note": {"type": "string",
                                                                                     "x-nullable": True}}}},
    }
    converted = _swagger2_to_openapi3(doc)
    assert converted["openapi"].startswith("3") and "Thing" in converted["components"]["schemas"]
    specs = SpecSet(files=())
    specs.add_document("things.yml", doc)
    assert specs.validate_response("GET", "/v9/things/1", 200, {"id": 1}) == []
    assert specs.validate_response("GET", "/v9/things/1", 200, {"note": "x"})[0].message.startswith("'id'")
    assert specs.validate_request("GET", "/v9/things/1", {"tags": ["a,b"]}) == []
