"""The two halves of every golden case meet: what the BigCommerce adapter makes of a store order
(``connector/bigcommerce/tests/golden``) is exactly the neutral input of the Sage 50 case
(``connector/sage50/tests/fixtures``), and the store order taken through both halves gives the
Sage 50 documents the case expects: the same documents the single BigCommerce → Sage 50 mapper
produced before the neutral model existed."""

from __future__ import annotations

import json
from decimal import Decimal as D
from pathlib import Path

import pytest

from connector.bigcommerce.normalize import DEFAULT_PAID_STATUS_IDS, normalize_order, normalize_refund
from connector.commerce import to_dict
from connector.sage50 import NeedsMapping, NotPostable, TotalsMismatch, map_order, map_refund
from connector.sage50.tests.test_sage50_golden import mappings_for
from mlcommon.ledger import to_payload

ROOT = Path(__file__).resolve().parent.parent
STORE_HALF = ROOT / "connector" / "bigcommerce" / "tests" / "golden"
LEDGER_HALF = ROOT / "connector" / "sage50" / "tests" / "fixtures"
SHAPES = sorted(p.stem for p in STORE_HALF.glob("*.json"))


def load(folder: Path, shape: str) -> dict:
    return json.loads((folder / f"{shape}.json").read_text(), parse_float=D)


def test_every_case_has_both_halves():
    assert SHAPES == sorted(p.stem for p in LEDGER_HALF.glob("*.json"))
    assert len(SHAPES) >= 30


@pytest.mark.parametrize("shape", SHAPES)
def test_store_half_output_is_ledger_half_input(shape):
    store, ledger = load(STORE_HALF, shape), load(LEDGER_HALF, shape)
    assert store["expected"] == ledger["order"]
    assert [e["expected"] for e in store.get("refunds", [])] == [e["refund"] for e in ledger.get("refunds", [])]
    assert store.get("statuses", {}).get("expected") == ledger.get("statuses")


@pytest.mark.parametrize("shape", SHAPES)
def test_store_order_through_both_halves(shape):
    store, ledger = load(STORE_HALF, shape), load(LEDGER_HALF, shape)
    data = store["input"]
    order = normalize_order(data["order"], paid_status_ids=frozenset(store.get("paid_status_ids") or ())
                            or DEFAULT_PAID_STATUS_IDS, products=data.get("products"), coupons=data.get("coupons"),
                            taxes=data.get("taxes"), transactions=data.get("transactions"))
    mappings = mappings_for(ledger)
    if "expect_error" in ledger:
        errors = {"NeedsMapping": NeedsMapping, "NotPostable": NotPostable, "TotalsMismatch": TotalsMismatch}
        with pytest.raises(errors[ledger["expect_error"]["type"]]):
            map_order(order, mappings=mappings)
        return
    posting = map_order(order, mappings=mappings)
    assert {"invoice": to_payload(posting.invoice),
            "receipts": [to_payload(r) for r in posting.receipts]} == ledger["expected"]
    for store_entry, ledger_entry in zip(store.get("refunds", []), ledger.get("refunds", []), strict=True):
        refund = normalize_refund(store_entry["refund"])
        assert to_dict(refund) == ledger_entry["refund"]
        note = map_refund(order, refund, posting.invoice.reference, mappings)
        assert {"credit_note": to_payload(note.credit_note),
                "refunds": [to_payload(r) for r in note.refunds]} == ledger_entry["expected"]
