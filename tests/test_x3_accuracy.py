"""Issue 17, Sage X3: entries an auditor accepts (gift certificates, tenders, handling and
wrapping, business partners on collective accounts)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import pytest

from connector.bigcommerce.normalize import normalize_order
from connector.commerce import Charge, ChargeKind, Tender, TenderKind
from connector.sagex3 import journal
from connector.sagex3.journal import ChannelAccounts, NeedsMapping, PostingSettings
from tests.test_x3_journal import SETTINGS, WEB, amounts, order_ex_tax

GIFT = dataclasses.replace(WEB, gift_certificate="419100", store_credit="467100")


def gift_certificate_sale():
    """A 25.00 gift certificate bought alone: no tax, no shipping."""
    order = normalize_order(order_ex_tax(
        id=2001, subtotal_ex_tax="25.0000", subtotal_inc_tax="25.0000", subtotal_tax="0.0000",
        shipping_cost_ex_tax="0.0000", shipping_cost_inc_tax="0.0000", coupon_discount="0.0000",
        total_ex_tax="25.0000", total_tax="0.0000", total_inc_tax="25.0000"))
    line = order.lines[0]
    order.lines = [dataclasses.replace(line, net=D("25.00"), tax=D("0.00"), quantity=D("1"), unit_net=D("25.00"),
                                       is_gift_certificate=True)]
    return order


def redemption(kind=TenderKind.GIFT_CERTIFICATE, amount=D("25.00")):
    order = normalize_order(order_ex_tax(id=2002))
    order.tenders = [Tender(kind=kind, method=kind, amount=amount, reference="GC-1"),
                     Tender(kind=TenderKind.PAYMENT, method="card", amount=order.totals.total_inc_tax - amount)]
    return order


def test_selling_then_redeeming_a_gift_certificate_books_revenue_once():
    sale = journal.build_order_entry(gift_certificate_sale(), None, {1: GIFT}, SETTINGS)
    spent = journal.build_order_entry(redemption(), None, {1: GIFT}, SETTINGS)
    assert sale.is_balanced and spent.is_balanced
    sold, used = amounts(sale), amounts(spent)
    assert ("707000", -1) not in sold  # the sale of the certificate is not revenue
    assert sold[("419100", -1)] == D("25.00")
    assert used[("419100", 1)] == D("25.00")  # the liability is released when it is redeemed
    assert used[("411000", 1)] == D("95.00")  # the receivable is only what is left to pay
    assert used[("707000", -1)] == D("90.00")  # revenue once, for the goods
    liability = sold.get(("419100", 1), D(0)) + used.get(("419100", 1), D(0)) \
        - sold.get(("419100", -1), D(0)) - used.get(("419100", -1), D(0))
    assert liability == D("0.00")


def test_store_credit_spent_and_given_back_nets_to_zero_on_its_account():
    from connector.commerce import RefundPayment, StoreRefund

    spent = journal.build_order_entry(redemption(TenderKind.STORE_CREDIT, D("20.00")), None, {1: GIFT}, SETTINGS)
    order = redemption(TenderKind.STORE_CREDIT, D("20.00"))
    refund = StoreRefund(refund_id="7", order_id=order.order_id, order_reference=order.reference,
                         reference=f"{order.reference}-R7", label="refund 7", created_at=order.created_at,
                         total=D("20.00"), total_tax=D("0.00"), items=[],
                         payments=[RefundPayment(method="storecredit", amount=D("20.00"),
                                                 tender_kind=TenderKind.STORE_CREDIT)])
    swap = dataclasses.replace(SETTINGS, refund_style="swap")
    back = journal.build_refund_entry(order, refund, {1: GIFT}, swap)
    assert back.is_balanced
    assert amounts(spent)[("467100", 1)] == D("20.00")
    assert amounts(back)[("467100", -1)] == D("20.00")  # credit owed to the shopper again
    assert ("411000", -1) not in amounts(back)  # nothing goes back through the receivable


def test_handling_and_wrapping_go_to_their_own_accounts_when_mapped():
    order = normalize_order(order_ex_tax(id=2003))
    order.charges = [*order.charges, Charge(kind=ChargeKind.HANDLING, net=D("0"), tax=D("0"), ex_tax=D("0"))]
    own = dataclasses.replace(WEB, handling_revenue="708510", wrapping_revenue="708520")
    shipping = next(c for c in order.charges if c.kind == ChargeKind.SHIPPING)
    order.charges = [dataclasses.replace(shipping, net=D("6.00"), ex_tax=D("6.00")),
                     Charge(kind=ChargeKind.HANDLING, net=D("3.00"), tax=D("0"), ex_tax=D("3.00")),
                     Charge(kind=ChargeKind.WRAPPING, net=D("1.00"), tax=D("0"), ex_tax=D("1.00"))]
    entry = journal.build_order_entry(order, None, {1: own}, SETTINGS)
    got = amounts(entry)
    assert (got[("708500", -1)], got[("708510", -1)], got[("708520", -1)]) == (D("6.00"), D("3.00"), D("1.00"))
    merged = amounts(journal.build_order_entry(order, None, {1: WEB}, SETTINGS))
    assert merged[("708500", -1)] == D("10.00")  # not mapped: with shipping, as before


def test_no_entry_on_a_collective_account_without_a_business_partner():
    collective = PostingSettings(**{**dataclasses.asdict(SETTINGS), "collective_accounts": ("411000",)})
    without = dataclasses.replace(WEB, business_partner="")
    with pytest.raises(NeedsMapping, match="business partner"):
        journal.build_order_entry(normalize_order(order_ex_tax()), None, {1: without}, collective)
    entry = journal.build_order_entry(normalize_order(order_ex_tax()), None, {1: WEB}, collective)
    receivable = [line for line in entry.lines if line.account == "411000"]
    assert receivable and all(line.business_partner == "WEBSALES" for line in receivable)


def test_a_redeemed_certificate_without_a_liability_account_needs_mapping():
    with pytest.raises(NeedsMapping, match="gift certificate liability"):
        journal.build_order_entry(redemption(), None, {1: ChannelAccounts(**{
            **dataclasses.asdict(WEB), "gift_certificate": ""})}, SETTINGS)


def test_a_eur_entry_carries_its_rate_and_company_currency_amounts_that_balance():
    order = normalize_order(order_ex_tax(currency_code="EUR", default_currency_code="USD",
                                         currency_exchange_rate="0.9100000000"))
    order.currency, order.exchange_rate = "EUR", D("0.91")
    settings = dataclasses.replace(SETTINGS, ledger_currency="USD")
    entry = journal.build_order_entry(order, None, {1: WEB}, settings)
    assert (entry.currency, entry.ledger_currency, entry.exchange_rate) == ("EUR", "USD", D("1.098901"))
    assert all(line.ledger_amount is not None for line in entry.lines)
    assert sum((line.sense * line.ledger_amount for line in entry.lines), D(0)) == D("0")
    assert entry.lines[0].ledger_amount == D("131.87")  # 120.00 EUR / 0.91


def test_a_foreign_entry_without_a_rate_is_refused_with_a_real_reason():
    order = normalize_order(order_ex_tax())
    order.currency, order.exchange_rate = "EUR", D("1")
    settings = dataclasses.replace(SETTINGS, ledger_currency="USD")
    with pytest.raises(journal.CurrencyMismatch, match="carries no exchange rate to the company currency USD"):
        journal.build_order_entry(order, None, {1: WEB}, settings)
