"""Every golden fixture (``golden/*.json``, BigCommerce → neutral model) speaks BigCommerce's published wire format.

Each fixture's order is validated as the ``GET /v2/orders/{id}`` response (``order_Resp``),
its sub-resources and its v3 transactions and refunds as their list responses, with the shared
spec loader (``sandbox/specs.py``: OpenAPI 3.0 → JSON Schema, known spec bugs listed there).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.specs import bigcommerce_specs

FIXTURES = Path(__file__).parent / "golden"
SHAPES = sorted(p.stem for p in FIXTURES.glob("*.json"))


def _violations(method, path, body):
    return [f"{v.where}: {v.message}" for v in bigcommerce_specs().validate_response(method, path, 200, body)]


def _meta(items):
    n = len(items)
    return {"pagination": {"total": n, "count": n, "per_page": 50, "current_page": 1, "total_pages": 1,
                           "links": {"current": "?page=1&limit=50"}}}


@pytest.mark.parametrize("shape", SHAPES)
def test_fixture_matches_bigcommerce_specs(shape):
    # Plain floats here on purpose: this is the JSON as it travels, before the mapper parses it.
    fixture = json.loads((FIXTURES / f"{shape}.json").read_text())
    data = fixture["input"]
    order = data["order"]
    oid = order["id"]
    problems = _violations("GET", f"/v2/orders/{oid}", order)
    if "products" in data:
        problems += _violations("GET", f"/v2/orders/{oid}/products", data["products"])
    if "taxes" in data:
        problems += _violations("GET", f"/v2/orders/{oid}/taxes", data["taxes"])
    if "coupons" in data:
        problems += _violations("GET", f"/v2/orders/{oid}/coupons", data["coupons"])
    if data.get("transactions"):
        body = {"data": data["transactions"], "meta": _meta(data["transactions"])}
        problems += _violations("GET", f"/v3/orders/{oid}/transactions", body)
    refunds = [entry["refund"] for entry in fixture.get("refunds", [])]
    if refunds:
        problems += _violations("GET", f"/v3/orders/{oid}/payment_actions/refunds", {"data": refunds, "meta": _meta(refunds)})
    assert problems == []


def test_validation_catches_a_broken_order():
    fixture = json.loads((FIXTURES / "single_line.json").read_text())
    order = fixture["input"]["order"]
    order["total_inc_tax"] = 14.94  # v2 money is a string
    order["consignments"]["shipping"][0]["line_items"][0]["not_a_field"] = 1
    problems = _violations("GET", f"/v2/orders/{order['id']}", order)
    assert any("total_inc_tax" in p for p in problems)
