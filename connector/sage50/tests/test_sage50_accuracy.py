"""Issue 17, ledger half: tenders settle the invoice, buyers without email, per-channel accounts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connector.sage50 import NeedsMapping, map_order
from connector.sage50.mappings import WITHOUT_EMAIL_HOLD, ChannelAccounts
from connector.sage50.tests.test_sage50_golden import _map, load, mappings_for, neutral_order
from mlcommon.ledger import LineKind


@pytest.mark.parametrize("shape", ["gift_certificate_full", "gift_certificate_partial", "store_credit"])
def test_a_paid_order_s_receipts_settle_its_whole_invoice(shape):
    posting = _map(load(shape))
    assert sum((r.amount for r in posting.receipts), Decimal("0")) == posting.invoice.gross_total
    references = [r.reference for r in posting.receipts]
    assert len(set(references)) == len(references)  # each payment its own stable reference


def test_gift_certificate_receipt_comes_from_the_liability_account():
    posting = _map(load("gift_certificate_full"))
    (receipt,) = posting.receipts
    assert (receipt.reference, receipt.bank_account, receipt.amount) == ("BC-1014-GC", "2210",
                                                                        posting.invoice.gross_total)


def test_store_credit_refund_is_a_refund_payment_from_the_store_credit_account():
    from connector.commerce import StoreRefund, from_dict
    from connector.sage50 import map_refund

    fixture = load("refund_two_on_one_order")
    entry = fixture["refunds"][1]
    posting = map_refund(neutral_order(fixture), from_dict(entry["refund"], StoreRefund), "BC-1105",
                         mappings_for(fixture))
    assert sum((r.amount for r in posting.refunds), Decimal("0")) == posting.credit_note.gross_total
    assert [r.bank_account for r in posting.refunds if r.reference.endswith("-SC")] == ["2211"]


def _without_email(shape="single_line"):
    fixture = load(shape)
    order = neutral_order(fixture)
    order.party.email = ""
    order.party.store_customer_id = ""
    order.party.is_guest = True
    return fixture, order


def test_buyer_without_email_goes_to_the_web_sales_account_not_a_name_match():
    fixture, order = _without_email()
    posting = map_order(order, mappings=mappings_for(fixture))
    assert posting.customer.account_ref == f"WEB{order.currency}"


def test_buyer_without_email_is_held_when_the_integration_says_so():
    fixture, order = _without_email()
    mappings = mappings_for(fixture)
    mappings.customers.without_email = WITHOUT_EMAIL_HOLD
    with pytest.raises(NeedsMapping) as caught:
        map_order(order, mappings=mappings)
    assert caught.value.keys == [("customer", "no email")]
    assert "has no email address" in str(caught.value)


def test_buyer_without_email_but_with_a_linked_store_customer_keeps_that_account():
    fixture, order = _without_email()
    order.party.store_customer_id = "42"
    posting = map_order(order, mappings=mappings_for(fixture), customer_account_ref="SMITHJ02")
    assert posting.customer.account_ref == "SMITHJ02"


def test_channel_accounts_override_the_defaults_and_the_trail_says_so():
    fixture = load("shipping_handling_wrapping")
    order = neutral_order(fixture)
    mappings = mappings_for(fixture)
    mappings.channels = {order.channel_id: ChannelAccounts(sales="4100", shipping="4915", bank="1230")}
    posting = map_order(order, mappings=mappings)
    items = [line for line in posting.invoice.lines if line.kind == LineKind.ITEM]
    assert items and all(line.nominal_code == "4100" for line in items)
    shipping = [line for line in posting.invoice.lines if line.description.startswith("Shipping")]
    assert [line.nominal_code for line in shipping] == ["4915"]
    handling = [line for line in posting.invoice.lines if line.description.startswith("Handling")]
    assert [line.nominal_code for line in handling] == ["4906"]  # the default: the channel has none
    assert all(r.bank_account == "1230" for r in posting.receipts)
    assert f"channel {order.channel_id}'s own (bank 1230, sales 4100, shipping 4915)" in posting.accounts_used


def test_other_channels_keep_the_defaults():
    fixture = load("shipping_handling_wrapping")
    order = neutral_order(fixture)
    mappings = mappings_for(fixture)
    mappings.channels = {order.channel_id + 1: ChannelAccounts(shipping="4915")}
    posting = map_order(order, mappings=mappings)
    assert posting.accounts_used.startswith("Accounts: the integration's defaults")
    assert posting.invoice == _map(fixture).invoice


def test_base_currency_conversion_keeps_the_account_in_its_currency_with_a_rounding_line():
    from connector.sage50.mappings import BASE_CURRENCY

    fixture = load("multi_currency_eur")
    mappings = mappings_for(fixture)
    mappings.customers.currency_accounts, mappings.customers.base_currency = BASE_CURRENCY, "GBP"
    posting = map_order(neutral_order(fixture), mappings=mappings)
    invoice = posting.invoice
    assert invoice.currency == posting.customer.currency == "GBP"
    assert invoice.store_total == invoice.gross_total == (D_EUR_TOTAL / Decimal("1.1725")).quantize(Decimal("0.01"))
    assert all(r.currency == "GBP" for r in posting.receipts)
    assert sum((r.amount for r in posting.receipts), Decimal("0")) == invoice.gross_total
    assert "EUR 42.24 at 1.1725" in invoice.notes


def test_base_currency_conversion_without_a_rate_holds_the_order():
    from connector.sage50.mappings import BASE_CURRENCY

    fixture = load("multi_currency_eur")
    order = neutral_order(fixture)
    order.exchange_rate = Decimal("1")
    mappings = mappings_for(fixture)
    mappings.customers.currency_accounts, mappings.customers.base_currency = BASE_CURRENCY, "GBP"
    with pytest.raises(NeedsMapping, match="carries no exchange rate to the base currency GBP"):
        map_order(order, mappings=mappings)


D_EUR_TOTAL = Decimal("42.24")
