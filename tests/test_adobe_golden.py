"""Golden tests: Adobe Commerce JSON → the neutral model → the full Sage 50 ledger documents.

Each ``connector/adobe/tests/golden/<shape>.json`` holds the Adobe input (an order as ``GET /V1/orders/{id}`` returns
it, its invoices from ``/V1/invoices`` where the case needs them, and its credit memos from
``/V1/creditmemos``), the neutral order and refunds the adapter must make of it (``expected``),
and every Sage 50 document the existing mapper makes of that (``expected_ledger``), or the
refusal expected. The inputs are built with Magento's own arithmetic by
``connector/adobe/tests/shapes.py``. (Here, not in the store package: a store package never
imports a ledger.)

Shapes (33):
Orders: single_line, multi_line_quantity, configurable_parent_child, bundle_dynamic_price,
bundle_fixed_price, tax_inclusive_catalog, coupon_discount, free_shipping, zero_and_standard_rates,
guest_checkout, multi_currency_eur, store_view_channel, store_credit, reward_points,
gift_card_partial, gift_card_full, gift_wrapping, virtual_product, custom_status_label,
partial_invoices_two_paid.
Refused: partial_invoice_pending, not_paid_pending_payment, not_paid_canceled,
new_state_not_invoiced (NotPostable); missing_sku_mapping, unknown_payment_method (NeedsMapping).
Credit memos: creditmemo_full_closed, creditmemo_partial_item, creditmemo_offline_no_invoice,
creditmemo_adjustments, creditmemo_configurable, creditmemo_to_store_credit,
creditmemo_two_on_one_order.

Regenerate after a deliberate rule change: ``ADOBE_GOLDEN_REGEN=1 pytest tests/test_adobe_golden.py`` and
review the diff.
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import pytest

from connector.adobe.normalize import normalize_order, normalize_refund
from connector.commerce import TenderKind, to_dict
from connector.sage50 import NeedsMapping, NotPostable, TotalsMismatch, map_order, map_refund
from connector.sage50.tests.test_sage50_golden import standard_mappings
from mlcommon.ledger import LineKind, to_payload

GOLDEN = Path(__file__).resolve().parent.parent / "connector" / "adobe" / "tests" / "golden"
REGEN = os.environ.get("ADOBE_GOLDEN_REGEN") == "1"
SHAPES = sorted(p.stem for p in GOLDEN.glob("*.json"))
ERRORS = {"NeedsMapping": NeedsMapping, "NotPostable": NotPostable, "TotalsMismatch": TotalsMismatch}


def load(shape: str) -> dict:
    return json.loads((GOLDEN / f"{shape}.json").read_text(), parse_float=Decimal)


def mappings():
    result = standard_mappings()
    result.payments.accounts.update({"checkmo": "1200"})
    result.payments.accounts_by_currency.setdefault("EUR", {})["braintree"] = "1211"
    return result


def _plain(value):
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def _jsonish(value):
    """What a value looks like after a trip through the golden file."""
    return json.loads(json.dumps(value, default=_plain), parse_float=Decimal)


def test_at_least_twenty_shapes_listed_in_the_module():
    assert len(SHAPES) >= 20
    for shape in SHAPES:
        assert shape in __doc__, f"{shape} is not listed in the module docstring"


@pytest.mark.parametrize("shape", SHAPES)
def test_golden_case(shape):
    case = load(shape)
    data = case["input"]
    order = normalize_order(data["order"], paid_states_setting=case.get("paid_states"),
                            invoices=data.get("invoices"))
    neutral = _jsonish(to_dict(order))
    refunds = [normalize_refund(entry["creditmemo"]) for entry in case.get("refunds", [])]
    if "expect_error" in case:
        expect = case["expect_error"]
        with pytest.raises(ERRORS[expect["type"]]) as caught:
            map_order(order, mappings=mappings())
        assert expect["contains"] in str(caught.value)
        ledger = None
    else:
        posting = map_order(order, mappings=mappings())
        invoice = posting.invoice
        # The invariant the whole design rests on: the Sage invoice is the store's total to the cent
        # (grand_total, plus what store credit, reward points and gift cards settled).
        assert invoice.gross_total == invoice.store_total == order.totals.total_inc_tax
        assert all(line.kind != LineKind.ROUNDING for line in invoice.lines)
        # Magento's total_paid is what the gateway took; gift cards, store credit and reward points
        # settle the rest of the invoice as receipts of their own (issue 17), so a paid order owes nothing.
        non_cash = sum((t.amount for t in order.tenders if t.kind != TenderKind.PAYMENT), Decimal(0))
        assert sum((r.amount for r in posting.receipts), Decimal(0)) == \
            Decimal(str(data["order"]["total_paid"])) + non_cash
        ledger = _jsonish({"invoice": to_payload(invoice), "receipts": [to_payload(r) for r in posting.receipts]})
    refund_results = []
    for refund in refunds:
        note = map_refund(order, refund, posting.invoice.reference, mappings())
        assert note.credit_note.gross_total == refund.total
        assert note.credit_note.tax_total == refund.total_tax
        assert note.credit_note.invoice_reference == order.reference
        refund_results.append((_jsonish(to_dict(refund)), _jsonish({
            "credit_note": to_payload(note.credit_note), "refunds": [to_payload(r) for r in note.refunds]})))
    if REGEN:
        case["expected"] = neutral
        if ledger is not None:
            case["expected_ledger"] = ledger
        for entry, (got_refund, got_ledger) in zip(case.get("refunds", []), refund_results, strict=True):
            entry["expected"], entry["expected_ledger"] = got_refund, got_ledger
        (GOLDEN / f"{shape}.json").write_text(json.dumps(case, indent=1, default=_plain) + "\n")
        return
    assert neutral == case["expected"]
    if ledger is not None:
        assert ledger == case["expected_ledger"]
    for entry, (got_refund, got_ledger) in zip(case.get("refunds", []), refund_results, strict=True):
        assert got_refund == entry["expected"]
        assert got_ledger == entry["expected_ledger"]
