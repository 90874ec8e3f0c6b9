"""Golden tests, store half: fetched BigCommerce orders and refunds → the neutral commerce model.

Each ``golden/<shape>.json`` holds a realistic v2 order (as ``GET /v2/orders/{id}
?include=consignments.line_items&consignment_structure=object`` returns it; some with the
``/products``, ``/coupons`` or ``/taxes?details=true`` sub-resources), its v3 transactions and
refunds, the integration's paid statuses when they are not the default, and the whole expected
neutral order and refunds (``connector.commerce.to_dict``, every field). The ledger half of the
same cases is ``connector/sage50/tests/fixtures/<shape>.json``; ``tests/test_golden_chain.py``
checks that the two halves meet.

Inputs come from ``fixture_builder.py``. To regenerate the expected models after a deliberate
rule change: ``BC_GOLDEN_REGEN=1 pytest connector/bigcommerce/tests/test_bc_normalize.py`` and
review the diff.
"""

from __future__ import annotations

import copy
import json
import os
from decimal import Decimal as D
from pathlib import Path

import pytest

from connector.bigcommerce.normalize import (
    DEFAULT_PAID_STATUS_IDS,
    needs_transactions,
    normalize_order,
    normalize_refund,
    order_line,
    payment_pending,
)
from connector.commerce import TenderKind, to_dict

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("BC_GOLDEN_REGEN") == "1"
SHAPES = sorted(p.stem for p in GOLDEN.glob("*.json"))


def load(name: str) -> dict:
    return json.loads((GOLDEN / f"{name}.json").read_text(), parse_float=D)


def normalized(fixture: dict, order: dict | None = None, paid=None):
    data = fixture["input"]
    if paid is None:
        paid = frozenset(fixture.get("paid_status_ids") or ()) or DEFAULT_PAID_STATUS_IDS
    return normalize_order(order or data["order"], paid_status_ids=paid, products=data.get("products"),
                           coupons=data.get("coupons"), taxes=data.get("taxes"), transactions=data.get("transactions"))


def test_enough_shapes():
    assert len(SHAPES) >= 30


@pytest.mark.parametrize("shape", SHAPES)
def test_golden_order(shape):
    fixture = load(shape)
    order = normalized(fixture)
    # The store's own total is carried over untouched, and the references are the store's.
    assert order.totals.total_inc_tax == D(fixture["input"]["order"]["total_inc_tax"]).quantize(D("0.01"))
    assert order.reference == f"BC-{fixture['input']['order']['id']}"
    refunds = [to_dict(normalize_refund(entry["refund"])) for entry in fixture.get("refunds", [])]
    statuses = []
    if "statuses" in fixture:
        for status_id in fixture["statuses"]["ids"]:
            raw = dict(fixture["input"]["order"], status_id=status_id, status=f"status {status_id}")
            statuses.append(to_dict(normalized(fixture, raw).status))
    if REGEN:
        fixture["expected"] = to_dict(order)
        for entry, got in zip(fixture.get("refunds", []), refunds, strict=True):
            entry["expected"] = got
        if statuses:
            fixture["statuses"]["expected"] = statuses
        (GOLDEN / f"{shape}.json").write_text(json.dumps(fixture, indent=1, ensure_ascii=False, default=float) + "\n")
        return
    assert to_dict(order) == fixture["expected"]
    for entry, got in zip(fixture.get("refunds", []), refunds, strict=True):
        assert got == entry["expected"]
    if statuses:
        assert statuses == fixture["statuses"]["expected"]


def test_never_paid_statuses_are_marked_even_when_configured():
    fixture = load("single_line")
    for status_id in (0, 1, 5, 6):
        order = copy.deepcopy(fixture["input"]["order"]) | {"status_id": status_id}
        status = normalized(fixture, order, paid=frozenset({0, 1, 5, 6, 11})).status
        assert status.counts_as_paid and status.never_a_sale


def test_line_amounts_tax_inclusive_discounted_line():
    line = {"id": 1, "quantity": 1, "price_ex_tax": "20.0000", "total_ex_tax": "20.0000",
            "total_inc_tax": "24.0000", "total_tax": "3.6000", "discounted_total_inc_tax": "21.6000"}
    got = order_line(line, None)
    assert (got.net, got.tax, got.discount, got.gross) == (D("18.00"), D("3.60"), D("2.00"), D("21.60"))


def test_line_amounts_without_discounted_total_uses_applied_discounts():
    line = {"id": 1, "quantity": 1, "price_ex_tax": "10.0000", "total_ex_tax": "10.0000",
            "total_inc_tax": "12.0000", "total_tax": "1.8000", "applied_discounts": [{"amount": "1.2000"}]}
    got = order_line(line, None)
    assert (got.net, got.tax, got.discount) == (D("9.00"), D("1.80"), D("1.00"))


def test_payment_status_rules():
    order = {"status_id": 11, "payment_status": "held for review"}
    assert "not captured" in payment_pending(order, [], D("10"))
    capture = {"event": "capture", "status": "ok", "method": "credit_card", "gateway": "stripe"}
    assert payment_pending(order, [capture], D("10")) is None
    assert payment_pending(order, [], D("0")) is None  # fully paid by gift certificate
    assert payment_pending(order | {"payment_status": ""}, [], D("10")) is None
    assert needs_transactions(order, DEFAULT_PAID_STATUS_IDS)
    assert not needs_transactions(order | {"status_id": 7}, DEFAULT_PAID_STATUS_IDS)


def test_tenders_separate_money_from_gift_certificates():
    order = normalized(load("gift_certificate_partial"))
    kinds = {tender.kind for tender in order.tenders}
    assert TenderKind.GIFT_CERTIFICATE in kinds
    assert order.amount_due == order.totals.total_inc_tax - order.tendered(TenderKind.GIFT_CERTIFICATE)


def test_an_order_listed_without_lines_normalises_with_none():
    order = normalize_order({"id": 5, "status_id": 11, "total_inc_tax": "1.0000"})
    assert order.lines == [] and order.reference == "BC-5"


def test_refund_without_order_id_takes_the_given_one():
    refund = normalize_refund({"id": 7, "total_amount": D("1"), "total_tax": D("0")}, order_id=1001)
    assert (refund.order_id, refund.reference) == ("1001", "BC-1001-R7")
