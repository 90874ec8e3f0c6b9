"""Every generated order's figures reconcile to the cent, as the accounting mapper expects, checked on
the JSON a client actually receives (v2 strings, v3 numbers)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from sandbox.bigcommerce import render
from sandbox.bigcommerce.figures import LineInput, allocate, compute, split
from sandbox.bigcommerce.store import BigCommerceStore

ANCHOR = datetime(2026, 3, 1, tzinfo=UTC)

D = Decimal


def _wire(obj):
    return json.loads(json.dumps(obj), parse_float=Decimal)


@pytest.fixture(scope="module")
def store():
    return BigCommerceStore(seed=3, orders=300, anchor=ANCHOR)


def test_every_order_reconciles_to_the_cent(store):
    for order in store.orders.values():
        o = _wire(render.order_v2(order, "https://x"))
        lines = [_wire(render.order_product_v2(order, ln)) for ln in order.lines]
        taxes = _wire(render.taxes_v2(order))
        m = {k: D(v) for k, v in o.items() if isinstance(v, str) and k.endswith(("_tax", "_cost", "_amount",
                                                                                 "discount"))}
        for ln in lines:
            q = ln["quantity"]
            for part in ("ex_tax", "inc_tax", "tax"):
                assert D(ln[f"price_{part}"]) * q == D(ln[f"total_{part}"]), (order.id, part)
            assert D(ln["total_ex_tax"]) + D(ln["total_tax"]) == D(ln["total_inc_tax"])
            assert D(ln["wrapping_cost_ex_tax"]) + D(ln["wrapping_cost_tax"]) == D(ln["wrapping_cost_inc_tax"])
        for part in ("ex_tax", "inc_tax", "tax"):
            assert m[f"subtotal_{part}"] == sum(D(ln[f"total_{part}"]) for ln in lines), (order.id, part)
        for charge in ("shipping_cost", "handling_cost", "wrapping_cost"):
            assert m[f"{charge}_ex_tax"] + m[f"{charge}_tax"] == m[f"{charge}_inc_tax"]
        assert m["wrapping_cost_inc_tax"] == sum(D(ln["wrapping_cost_inc_tax"]) for ln in lines)
        discounts = sum(D(d["amount"]) for ln in lines for d in ln["applied_discounts"])
        assert discounts == m["coupon_discount"] + m["discount_amount"]
        charges_inc = m["shipping_cost_inc_tax"] + m["handling_cost_inc_tax"] + m["wrapping_cost_inc_tax"]
        assert m["total_inc_tax"] == sum(D(ln["discounted_total_inc_tax"]) for ln in lines) + charges_inc
        assert m["total_ex_tax"] + m["total_tax"] == m["total_inc_tax"]
        if o["is_tax_inclusive_pricing"]:
            assert m["total_inc_tax"] == m["subtotal_inc_tax"] - discounts + charges_inc
        else:
            charges_ex = m["shipping_cost_ex_tax"] + m["handling_cost_ex_tax"] + m["wrapping_cost_ex_tax"]
            assert m["total_ex_tax"] == m["subtotal_ex_tax"] - discounts + charges_ex
        assert sum((D(t["line_amount"]) for t in taxes), D(0)) == m["total_tax"]
        assert m["gift_certificate_amount"] + m["store_credit_amount"] <= m["total_inc_tax"]
        assert o["refunded_amount"] == "0.0000"


def test_payments_and_refunds_reconcile(store):
    for order in store.orders.values():
        txns = [render.transaction_v3(t) for t in store.transactions[order.id]]
        taken = sum(D(str(t["amount"])) for t in txns if t["event"] in ("purchase", "capture") and t["status"] == "ok")
        refunds = [render.refund_v3(r) for r in store.refunds.values() if r.order_id == order.id]
        refunded = sum((D(str(r["total_amount"])) for r in refunds), D(0))
        if order.status_id in (2, 3, 4, 8, 9, 10, 11, 13, 14):
            assert taken == order.figures.total_inc, order.id
        for r in refunds:
            assert sum(D(str(p["amount"])) for p in r["payments"]) == D(str(r["total_amount"]))
            if r["items"]:
                assert sum(D(str(i["requested_amount"])) for i in r["items"]) == D(str(r["total_amount"]))
            else:  # a tax-only refund
                assert r["total_tax"] == r["total_amount"]
        if order.status_id == 4:
            assert refunded == order.figures.total_inc
        if order.status_id == 14:
            assert D(0) < refunded < order.figures.total_inc


def test_the_seeded_store_covers_the_shapes_the_mapper_meets(store):
    orders = list(store.orders.values())
    assert set(Counter(o.status_id for o in orders)) == set(range(15))
    assert any(o.customer_id == 0 for o in orders) and any(o.customer_id for o in orders)
    assert {o.currency for o in orders} >= {"USD", "GBP", "EUR", "CAD"}
    assert any(o.inclusive for o in orders) and any(not o.inclusive for o in orders)
    assert any(o.coupon for o in orders) and any(o.figures.discount_amount for o in orders)
    assert any(o.gift_certificate_amount for o in orders) and any(o.store_credit_amount for o in orders)
    assert any(o.figures.handling.inc for o in orders) and any(o.figures.wrapping.inc for o in orders)
    assert any(opt["type"] == "Checkbox" for o in orders for ln in o.lines for opt in ln.options)
    kinds = {i["item_type"] for r in store.refunds.values() for i in r.items}
    assert {"PRODUCT", "SHIPPING"} <= kinds
    assert any(not r.items for r in store.refunds.values())  # tax-only
    skus = {v.sku for v in store.catalog.variants.values()}
    assert "SKU-0003" in skus and any(s.count("-") == 3 for s in skus)  # SKU-0004-RED-L style


def test_generation_is_deterministic():
    a = BigCommerceStore(seed=9, orders=40, anchor=ANCHOR)
    b = BigCommerceStore(seed=9, orders=40, anchor=ANCHOR)
    c = BigCommerceStore(seed=10, orders=40, anchor=ANCHOR)
    dump = lambda s: [render.order_v2(o, "u") for o in s.orders.values()]  # noqa: E731
    assert dump(a) == dump(b)
    assert dump(a) != dump(c)


def test_split_and_allocate():
    assert split(D("12.00"), D("0.20"), True).ex == D("10.00")
    assert split(D("10.00"), D("0.0825"), False).inc == D("10.83")
    parts = allocate(D("10.00"), [D(1), D(1), D(1)])
    assert sum(parts) == D("10.00") and sorted(parts) == [D("3.33"), D("3.33"), D("3.34")]
    figures = compute([LineInput(D("9.99"), 3), LineInput(D("0.01"), 1)], D("0.2"), True, coupon=D("5"))
    assert figures.total_inc == D("29.98") - D("5")
    with pytest.raises(ValueError):
        compute([LineInput(D("1.00"), 1)], D("0"), False, coupon=D("2"))
