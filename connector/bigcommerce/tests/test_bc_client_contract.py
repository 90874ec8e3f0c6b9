"""The client against the sandbox store with spec validation on: every call the client makes
must be a request the official specs allow, and the quirks (204, error shapes, Decimal, 207,
batching) must come out right."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from connector.bigcommerce import client as client_module
from connector.bigcommerce.client import BatchResult, remote_message
from connector.bigcommerce.formats import format_rfc2822, parse_rfc2822
from mlcommon.http import AuthError, NotFoundError, PermanentError
from tests.support.bigcommerce import Sandbox, sandbox  # noqa: F401 - fixture

LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

# Response-side disagreements that are the spec's, not the client's: the catalog specs do not
# mark nullable fields (the real API sends null for inherited variant prices, base_variant_id of
# products with options, sku_id of base variants). Anything else in a response fails the test.
NULLABLE_IN_REALITY = ("None is not of type",)


def _unexpected(box):
    return [v for v in box.app.violations
            if v["direction"] == "request" or not any(m in v["message"] for m in NULLABLE_IN_REALITY)]


def test_every_call_of_the_client_is_valid_against_the_specs(sandbox):  # noqa: F811
    bc = sandbox.client()
    orders = list(bc.iter_orders(bc.order_filters(created_since=LONG_AGO)))
    assert len(orders) == 60
    first = orders[0]
    assert bc.count_orders(bc.order_filters(created_since=LONG_AGO)) == 60
    one = bc.get_order(first["id"])
    assert one["id"] == first["id"] and one["consignments"]
    assert bc.order_products(first["id"])
    assert bc.order_shipping_addresses(first["id"])
    bc.order_coupons(first["id"])
    bc.order_taxes(first["id"])
    assert len(bc.order_statuses()) == 15
    bc.order_transactions(first["id"])
    refunds = list(bc.iter_refunds(created_since=LONG_AGO))
    assert refunds, "the seeded store has refunds"
    assert bc.order_refunds(refunds[0]["order_id"])
    emails = [o["billing_address"]["email"] for o in orders[:3]]
    bc.customers_by_email(emails)
    created = bc.create_customers([{"email": f"new{i}@example.com", "first_name": "N", "last_name": f"{i}"}
                                   for i in range(3)])
    assert created.ok and len(created.data) == 3
    products = list(bc.iter_products())
    variants = list(bc.iter_variants())
    assert products and variants
    items = bc.inventory_items([v["sku"] for v in variants[:5]])
    assert items
    result = bc.set_absolute_stock([{"location_id": 1, "sku": variants[0]["sku"], "quantity": 7}])
    assert result.ok and result.transaction_ids
    hook = bc.create_hook("store/order/created", "https://example.com/webhooks/x/", {"X-ML-Webhook-Secret": "s"})
    assert hook["id"] and hook["is_active"]
    assert [h["id"] for h in bc.list_hooks()] == [hook["id"]]
    assert bc.update_hook(hook["id"], is_active=False)["is_active"] is False
    bc.delete_hook(hook["id"])
    assert bc.list_hooks() == []
    assert bc.update_order_status(first["id"], 10)["status_id"] == 10
    assert sandbox.request_violations() == []
    assert _unexpected(sandbox) == []


def test_v2_204_is_an_empty_list_also_past_the_last_page(sandbox):  # noqa: F811
    bc = sandbox.client()
    future = dt.datetime.now(dt.UTC) + dt.timedelta(days=3650)
    assert bc.list_orders(bc.order_filters(created_since=future)) == []
    assert list(bc.iter_orders(bc.order_filters(created_since=future))) == []
    assert bc.list_orders(page=99, limit=250) == []
    # 60 orders, pages of 25: three pages read, the fourth is the 204 that ends it.
    before = sandbox.calls("GET /v2/orders")
    assert len(list(bc.iter_orders(limit=30))) == 60
    assert sandbox.calls("GET /v2/orders") - before == 3  # 30 + 30 + 204


def test_money_is_never_a_float(sandbox):  # noqa: F811
    bc = sandbox.client()
    refund = next(iter(bc.iter_refunds(created_since=LONG_AGO)))
    assert isinstance(refund["total_amount"], (Decimal, int))
    order = bc.get_order(refund["order_id"])
    assert isinstance(order["total_inc_tax"], str) and len(order["total_inc_tax"].split(".")[1]) == 4


def test_errors_carry_the_stores_words(sandbox):  # noqa: F811
    bc = sandbox.client()
    with pytest.raises(NotFoundError) as v2:
        bc.get_order(999999)
    assert "not found" in str(v2.value).lower() and v2.value.status == 404
    with pytest.raises(PermanentError) as too_many:
        bc.request("POST", "/v3/customers", json_body=[{"email": f"x{i}@e.com", "first_name": "a", "last_name": "b"}
                                                       for i in range(11)])
    assert too_many.value.status == 413 and "10" in str(too_many.value)
    bad = Sandbox(orders=1)
    try:
        wrong = bad.client()
        wrong._token = "wrong"
        with pytest.raises(AuthError) as denied:
            wrong.order_statuses()
        assert denied.value.status == 401
    finally:
        bad.stop()


def test_remote_message_reads_every_error_shape():
    assert remote_message([{"status": 404, "message": "The requested resource was not found."}]) == \
        "The requested resource was not found."
    assert remote_message({"status": 422, "title": "Bad", "errors": {"email": "taken"}}) == "Bad (email: taken)"
    assert remote_message({"data": [{"status": 422, "title": "Quote mismatch"}]}) == "Quote mismatch"
    assert remote_message(None) == ""


def test_customers_go_in_batches_of_ten(sandbox):  # noqa: F811
    bc = sandbox.client()
    before = sandbox.calls("POST /v3/customers")
    result = bc.create_customers([{"email": f"batch{i}@example.com", "first_name": "B", "last_name": str(i)}
                                  for i in range(23)])
    assert sandbox.calls("POST /v3/customers") - before == 3
    assert len(result.data) == 23
    assert len(bc.customers_by_email([f"BATCH{i}@example.com" for i in range(23)])) == 23


def test_inventory_is_chunked_and_failures_are_named(sandbox, monkeypatch):  # noqa: F811
    monkeypatch.setattr(client_module, "INVENTORY_BATCH", 2)
    bc = sandbox.client()
    variants = list(bc.iter_variants())[:3]
    items = [{"location_id": 1, "variant_id": v["id"], "quantity": 5} for v in variants]
    items.append({"location_id": 1, "sku": "NO-SUCH-SKU", "quantity": 1})
    before = sandbox.calls("PUT /v3/inventory/adjustments/absolute")
    result = bc.set_absolute_stock(items)
    assert sandbox.calls("PUT /v3/inventory/adjustments/absolute") - before == 2
    assert isinstance(result, BatchResult)
    assert not result.ok and len(result.transaction_ids) == 1
    assert [f["item"] for f in result.failed] == items[2:], "the chunk with the unknown SKU is reported"
    assert "NO-SUCH-SKU" in result.failed[0]["error"] or result.failed[0]["error"]


def test_rfc2822_round_trip():
    moment = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    text = format_rfc2822(moment)
    assert text == "Fri, 02 Jan 2026 03:04:05 +0000"
    assert parse_rfc2822(text) == moment
    assert parse_rfc2822("") is None
    assert parse_rfc2822("Thu, 20 Apr 2017 11:32:00 -0400") == dt.datetime(2017, 4, 20, 15, 32, tzinfo=dt.UTC)
