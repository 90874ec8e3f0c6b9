"""Unit tests for the individual posting rules (the golden tests cover whole documents)."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from connector.commerce import TaxDetail
from connector.sage50 import rules
from connector.sage50.mappings import TaxMap

TAXES = TaxMap(by_rate={D("20"): "T1", D("5"): "T5", D("0"): "T0"}, by_class_name={"Exempt": "T2"})


@pytest.mark.parametrize(
    "total, weights, expected",
    [
        (D("1.00"), [D("1"), D("1"), D("1")], [D("0.34"), D("0.33"), D("0.33")]),
        (D("-1.00"), [D("1"), D("2")], [D("-0.33"), D("-0.67")]),
        (D("5.79"), [D("0"), D("0")], [D("5.79"), D("0")]),
        (D("2.60"), [D("2.60")], [D("2.60")]),
    ],
)
def test_allocate_sums_exactly(total, weights, expected):
    shares = rules.allocate(total, weights)
    assert shares == expected
    assert sum(shares) == total


@pytest.mark.parametrize(
    "net, tax, qty, code",
    [
        (D("0.99"), D("0.20"), D("1"), "T1"),  # 20.2 % "looks" wrong but is 20 % rounded per unit
        (D("89.00"), D("4.45"), D("1"), "T5"),
        (D("12.99"), D("0.00"), D("1"), "T0"),
        (D("25.47"), D("5.10"), D("3"), "T1"),  # per-unit rounding: 3 x 1.70 on 8.49
    ],
)
def test_tax_code_from_rate(net, tax, qty, code):
    assert rules.resolve_tax_code(TAXES, net, tax, qty, None)[0] == code


def test_tax_class_beats_rate_and_unknown_rate_is_named():
    exempt = TaxDetail(class_name="Exempt", class_id="6", rate=D("0"))
    assert rules.resolve_tax_code(TAXES, D("25"), D("0"), D("1"), exempt) == ("T2", "")
    code, label = rules.resolve_tax_code(TAXES, D("100"), D("12.50"), D("1"), None)
    assert code is None and label == "tax rate 12.50 %"
    with_default = TaxMap(by_rate=TAXES.by_rate, default="T1")
    assert rules.resolve_tax_code(with_default, D("100"), D("12.50"), D("1"), None)[0] == "T1"
