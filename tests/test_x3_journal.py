"""Pure tests of the Sage X3 journal mapper, fed BigCommerce orders through the store adapter's
normaliser (the mapper itself reads only the neutral model)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal as D

import pytest

from connector.bigcommerce.normalize import DEFAULT_PAID_STATUS_IDS, normalize_order, normalize_refund
from connector.sagex3 import journal
from connector.sagex3.journal import (
    ChannelAccounts,
    CurrencyMismatch,
    NeedsMapping,
    NotPostable,
    PostingSettings,
    Unbalanced,
)
from mlcommon.ledger import from_payload, to_payload


def build_order_entry(order: dict, costs, accounts, settings, *, paid=DEFAULT_PAID_STATUS_IDS, **kwargs):
    return journal.build_order_entry(normalize_order(order, paid_status_ids=paid), costs, accounts, settings,
                                     **kwargs)


def build_refund_entry(order: dict, refund: dict, accounts, settings, **kwargs):
    return journal.build_refund_entry(normalize_order(order), normalize_refund(refund), accounts, settings,
                                      **kwargs)

WEB = ChannelAccounts(1, "Web store", receivable="411000", revenue="707000", tax_payable="445710",
                      shipping_revenue="708500", cost_of_goods="607000", stock="370000",
                      business_partner="WEBSALES")
MARKET = ChannelAccounts(2, "Marketplace", receivable="467000", revenue="706000", tax_payable="445711",
                         shipping_revenue="708600")
SETTINGS = PostingSettings(entry_type="VEN", journal="VTE", site="FR011", company="FR10")


def order_ex_tax(**over) -> dict:
    """US-style store, prices ex tax: 2 x 50.00, coupon 10.00, shipping 10.00, 20 % tax."""
    order = {
        "id": 1001, "channel_id": 1, "status_id": 11, "status": "Awaiting Fulfillment",
        "date_created": "Tue, 05 Mar 2024 23:30:00 +0000", "date_modified": "Wed, 06 Mar 2024 08:00:00 +0000",
        "default_currency_code": "USD", "currency_code": "USD", "is_tax_inclusive_pricing": False,
        "subtotal_ex_tax": "100.0000", "subtotal_inc_tax": "120.0000", "subtotal_tax": "20.0000",
        "shipping_cost_ex_tax": "10.0000", "shipping_cost_inc_tax": "12.0000",
        "handling_cost_ex_tax": "0.0000", "handling_cost_inc_tax": "0.0000",
        "wrapping_cost_ex_tax": "0.0000", "wrapping_cost_inc_tax": "0.0000",
        "coupon_discount": "10.0000", "discount_amount": "0.0000",
        "total_ex_tax": "100.0000", "total_tax": "20.0000", "total_inc_tax": "120.0000",
        "products": [{"id": 71, "product_id": 9, "sku": "MUG-RED", "quantity": 2,
                      "cost_price_ex_tax": "12.5000", "base_cost_price": "12.5000"}],
    }
    order.update(over)
    return order


def order_inc_tax(**over) -> dict:
    """UK-style store, prices inc VAT 20 %: 2 x 60.00 inc, shipping 6.00 inc, coupon 12.00 inc."""
    order = order_ex_tax(
        is_tax_inclusive_pricing=True, default_currency_code="GBP", currency_code="GBP",
        subtotal_ex_tax="100.0000", subtotal_inc_tax="120.0000", subtotal_tax="20.0000",
        shipping_cost_ex_tax="5.0000", shipping_cost_inc_tax="6.0000", coupon_discount="12.0000",
        total_ex_tax="95.0000", total_tax="19.0000", total_inc_tax="114.0000",
    )
    order.update(over)
    return order


def amounts(entry) -> dict[tuple[str, int], D]:
    out: dict = {}
    for line in entry.lines:
        out[(line.account, line.sense)] = out.get((line.account, line.sense), D(0)) + line.amount
    return out


def test_tax_exclusive_order_balances_with_revenue_net_of_discount():
    entry = build_order_entry(order_ex_tax(), None, {1: WEB}, SETTINGS)
    assert entry.reference == "BC-1001"
    assert "1001" in entry.description
    assert entry.is_balanced and entry.debit_total == D("120.00")
    assert amounts(entry) == {
        ("411000", 1): D("120.00"), ("707000", -1): D("90.00"), ("445710", -1): D("20.00"),
        ("708500", -1): D("10.00"),
    }
    assert (entry.entry_type, entry.journal, entry.site, entry.company, entry.currency) == (
        "VEN", "VTE", "FR011", "FR10", "USD")
    assert entry.date == dt.date(2024, 3, 5)
    receivable = entry.lines[0]
    assert receivable.business_partner == "WEBSALES"


def test_tax_inclusive_order_uses_ex_tax_figures_and_balances():
    entry = build_order_entry(order_inc_tax(), None, {1: WEB}, SETTINGS)
    assert amounts(entry) == {
        ("411000", 1): D("114.00"), ("707000", -1): D("90.00"), ("445710", -1): D("19.00"),
        ("708500", -1): D("5.00"),
    }
    assert entry.currency == "GBP"


def test_discount_account_gets_a_separate_debit_and_revenue_stays_gross():
    accounts = ChannelAccounts(**{**WEB.__dict__, "discounts": "709000"})
    entry = build_order_entry(order_inc_tax(), None, {1: accounts}, SETTINGS)
    got = amounts(entry)
    assert got[("709000", 1)] == D("10.00")
    assert got[("707000", -1)] == D("100.00")
    assert entry.debit_total == entry.credit_total == D("124.00")


def test_handling_and_wrapping_go_to_shipping_revenue_and_zero_lines_are_dropped():
    order = order_ex_tax(handling_cost_ex_tax="2.5000", wrapping_cost_ex_tax="1.5000",
                         total_ex_tax="104.0000", total_tax="20.8000", total_inc_tax="124.8000")
    entry = build_order_entry(order, None, {1: WEB}, SETTINGS)
    assert amounts(entry)[("708500", -1)] == D("14.00")
    free = order_ex_tax(shipping_cost_ex_tax="0.0000", total_ex_tax="90.0000", total_tax="18.0000",
                        total_inc_tax="108.0000")
    entry = build_order_entry(free, None, {1: WEB}, SETTINGS)
    assert "708500" not in {line.account for line in entry.lines}
    assert entry.is_balanced


def test_cost_posting_on_and_off():
    off = build_order_entry(order_ex_tax(), None, {1: WEB}, SETTINGS)
    assert {"607000", "370000"}.isdisjoint(line.account for line in off.lines)
    costing = ChannelAccounts(**{**WEB.__dict__, "cost_posting": True})
    on = build_order_entry(order_ex_tax(), None, {1: costing}, SETTINGS)
    assert amounts(on)[("607000", 1)] == D("25.00")
    assert amounts(on)[("370000", -1)] == D("25.00")
    assert on.is_balanced
    override = build_order_entry(order_ex_tax(), {"MUG-RED": D("7.3333")}, {1: costing}, SETTINGS)
    assert amounts(override)[("607000", 1)] == D("14.67")  # 2 x 7.3333, rounded once


def test_cost_posting_reads_consignment_line_items():
    costing = ChannelAccounts(**{**WEB.__dict__, "cost_posting": True})
    order = order_ex_tax()
    lines = order.pop("products")
    order["consignments"] = [{
        "shipping": [{"id": 3, "line_items": lines}], "pickups": [],
        "downloads": [{"line_items": [{"id": 72, "sku": "EBOOK", "quantity": 1, "cost_price_ex_tax": "1.0000"}]}],
    }]
    entry = build_order_entry(order, None, {1: costing}, SETTINGS)
    assert amounts(entry)[("607000", 1)] == D("26.00")


def test_cost_posting_without_stock_account_needs_mapping():
    costing = ChannelAccounts(**{**WEB.__dict__, "cost_posting": True, "stock": ""})
    with pytest.raises(NeedsMapping) as info:
        build_order_entry(order_ex_tax(), None, {1: costing}, SETTINGS)
    assert info.value.purposes == ["stock"]
    assert "sales channel 1 (Web store)" in str(info.value)


def test_each_channel_posts_to_its_own_accounts():
    web = build_order_entry(order_ex_tax(), None, {1: WEB, 2: MARKET}, SETTINGS)
    market = build_order_entry(order_ex_tax(id=1002, channel_id=2), None, {1: WEB, 2: MARKET}, SETTINGS)
    assert {line.account for line in web.lines} == {"411000", "707000", "445710", "708500"}
    assert {line.account for line in market.lines} == {"467000", "706000", "445711", "708600"}
    assert market.reference == "BC-1002"


def test_unmapped_channel_names_the_channel_and_what_to_map():
    with pytest.raises(NeedsMapping) as info:
        build_order_entry(order_ex_tax(channel_id=5), None, {1: WEB}, SETTINGS, channel_name="Amazon US")
    message = str(info.value)
    assert "sales channel 5 (Amazon US)" in message
    assert "receivable / clearing" in message and "revenue" in message
    assert info.value.channel_id == 5


def test_missing_tax_account_is_required_only_when_there_is_tax():
    no_tax = ChannelAccounts(**{**WEB.__dict__, "tax_payable": ""})
    with pytest.raises(NeedsMapping, match="tax payable"):
        build_order_entry(order_ex_tax(), None, {1: no_tax}, SETTINGS)
    untaxed = order_ex_tax(total_tax="0.0000", total_inc_tax="100.0000")
    entry = build_order_entry(untaxed, None, {1: no_tax}, SETTINGS)
    assert entry.is_balanced


def test_store_totals_that_do_not_add_up_raise_unbalanced_with_the_difference():
    with pytest.raises(Unbalanced) as info:
        build_order_entry(order_ex_tax(total_inc_tax="120.0100"), None, {1: WEB}, SETTINGS)
    assert info.value.difference == D("0.01")
    assert "BC-1001" in str(info.value) and "0.01" in str(info.value)


def test_unexplained_extra_charge_is_unbalanced_not_a_negative_discount():
    with pytest.raises(Unbalanced, match="unmapped fees"):
        build_order_entry(order_ex_tax(total_ex_tax="115.0000", total_inc_tax="135.0000"), None, {1: WEB},
                          SETTINGS)


def test_only_posting_statuses_are_posted():
    with pytest.raises(NotPostable, match="status 1"):
        build_order_entry(order_ex_tax(status_id=1, status="Pending"), None, {1: WEB}, SETTINGS)
    only_completed = frozenset({10})
    with pytest.raises(NotPostable):
        build_order_entry(order_ex_tax(), None, {1: WEB}, SETTINGS, paid=only_completed)
    assert build_order_entry(order_ex_tax(status_id=10), None, {1: WEB}, SETTINGS, paid=only_completed).is_balanced


def test_gl_date_created_or_status_reached_in_the_configured_timezone():
    paris = PostingSettings(timezone="Europe/Paris")
    assert build_order_entry(order_ex_tax(), None, {1: WEB}, paris).date == dt.date(2024, 3, 6)
    reached = PostingSettings(gl_date="status_reached")
    when = dt.datetime(2024, 4, 2, 9, 0, tzinfo=dt.UTC)
    entry = build_order_entry(order_ex_tax(), None, {1: WEB}, reached, status_reached_at=when)
    assert entry.date == dt.date(2024, 4, 2)
    # Without the transition time, date_modified is the best the order itself says.
    assert build_order_entry(order_ex_tax(), None, {1: WEB}, reached).date == dt.date(2024, 3, 6)


def test_fixed_currency_refuses_orders_in_another_currency():
    eur_only = PostingSettings(currency_source="fixed", currency="EUR")
    with pytest.raises(CurrencyMismatch, match="USD"):
        build_order_entry(order_ex_tax(), None, {1: WEB}, eur_only)
    entry = build_order_entry(order_ex_tax(default_currency_code="EUR"), None, {1: WEB}, eur_only)
    assert entry.currency == "EUR"


def refund(**over) -> dict:
    data = {"id": 7, "order_id": 1001, "created": "2024-03-10T15:00:00+00:00", "reason": "damaged",
            "total_amount": D("60.00"), "total_tax": D("10.00"),
            "items": [{"item_type": "PRODUCT", "item_id": 71, "quantity": 1, "requested_amount": D("50.00")}]}
    data.update(over)
    return data


def test_refund_negative_style_keeps_senses_with_negative_amounts():
    entry = build_refund_entry(order_ex_tax(), refund(), {1: WEB}, SETTINGS)
    assert entry.reference == "BC-1001-R7"
    assert "1001" in entry.description and "7" in entry.description
    assert entry.date == dt.date(2024, 3, 10)
    assert amounts(entry) == {("411000", 1): D("-60.00"), ("707000", -1): D("-50.00"),
                              ("445710", -1): D("-10.00")}
    assert entry.is_balanced


def test_refund_swap_style_swaps_debit_and_credit():
    swap = PostingSettings(refund_style="swap")
    entry = build_refund_entry(order_ex_tax(), refund(), {1: WEB}, swap)
    assert amounts(entry) == {("411000", -1): D("60.00"), ("707000", 1): D("50.00"),
                              ("445710", 1): D("10.00")}
    assert all(line.amount > 0 for line in entry.lines)


def test_refunded_shipping_goes_to_shipping_revenue_ex_tax_on_inclusive_stores():
    items = [{"item_type": "SHIPPING", "item_id": 3, "requested_amount": D("6.00")}]
    entry = build_refund_entry(order_inc_tax(), refund(total_amount=D("6.00"), total_tax=D("1.00"), items=items),
                               {1: WEB}, PostingSettings(refund_style="swap"))
    assert amounts(entry) == {("411000", -1): D("6.00"), ("708500", 1): D("5.00"), ("445710", 1): D("1.00")}


def test_refund_reverses_cost_only_when_asked():
    costing = ChannelAccounts(**{**WEB.__dict__, "cost_posting": True})
    plain = build_refund_entry(order_ex_tax(), refund(), {1: costing}, SETTINGS)
    assert "607000" not in {line.account for line in plain.lines}
    settings = PostingSettings(refund_style="swap", refund_reverses_cost=True)
    entry = build_refund_entry(order_ex_tax(), refund(), {1: costing}, settings)
    assert amounts(entry)[("370000", 1)] == D("12.50")
    assert amounts(entry)[("607000", -1)] == D("12.50")


def test_refund_on_unmapped_channel_needs_mapping():
    with pytest.raises(NeedsMapping, match="sales channel 2"):
        build_refund_entry(order_ex_tax(channel_id=2), refund(), {1: WEB}, SETTINGS)


def test_refund_with_more_shipping_than_money_is_unbalanced():
    # 66.00 gross of shipping is 55.00 ex tax: more than the refund's 50.00 net.
    items = [{"item_type": "SHIPPING", "item_id": 3, "requested_amount": D("66.00")}]
    with pytest.raises(Unbalanced, match="BC-1001-R7"):
        build_refund_entry(order_ex_tax(), refund(items=items), {1: WEB}, SETTINGS)


def test_zero_refund_is_not_posted():
    with pytest.raises(NotPostable):
        build_refund_entry(order_ex_tax(), refund(total_amount=D("0"), total_tax=D("0")), {1: WEB}, SETTINGS)


def test_entry_survives_the_payload_round_trip():
    entry = build_refund_entry(order_ex_tax(), refund(), {1: WEB}, SETTINGS)
    again = from_payload(entry.op, to_payload(entry))
    assert again == entry


def test_settings_reject_unknown_styles():
    with pytest.raises(ValueError):
        PostingSettings(refund_style="reverse")
    with pytest.raises(ValueError):
        PostingSettings(gl_date="shipped")


def test_tax_inclusive_rounding_of_a_cent_is_absorbed_by_revenue():
    # Ex-tax parts derived from inc-tax prices exceed total_ex_tax by a cent: rounding, not fees.
    # subtotal 100.00 + shipping 10.00 is a cent more than total_ex_tax 109.99.
    order = order_ex_tax(total_ex_tax="109.9900", total_tax="20.0100", total_inc_tax="130.0000",
                         coupon_discount="0.0000")
    entry = build_order_entry(order, None, {1: WEB}, SETTINGS)
    assert entry.is_balanced and entry.debit_total == D("130.00")
    revenue = [line.amount for line in entry.lines if line.description.endswith("revenue")]
    assert revenue == [D("99.99")]
    too_much = order_ex_tax(total_ex_tax="115.0000", total_tax="20.0000", total_inc_tax="135.0000",
                            coupon_discount="0.0000")
    with pytest.raises(Unbalanced, match="unmapped fees"):
        build_order_entry(too_much, None, {1: WEB}, SETTINGS)


def test_tax_exclusive_shipping_refund_is_read_as_gross():
    items = [{"item_type": "SHIPPING", "item_id": 3, "requested_amount": D("12.00")}]
    entry = build_refund_entry(order_ex_tax(), refund(items=items, total_amount=D("12.00"), total_tax=D("2.00")),
                               {1: WEB}, SETTINGS)
    assert entry.is_balanced
    shipping = [line for line in entry.lines if "shipping" in line.description]
    assert [line.amount.copy_abs() for line in shipping] == [D("10.00")]
