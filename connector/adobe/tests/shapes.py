"""Builds the store half of the Adobe golden cases: Adobe Commerce order / invoice / credit-memo
JSON with Magento's own arithmetic (row_total = price × qty; tax charged after the line discount;
header discount_amount negative, line discount_amount positive; grand_total after store credit,
reward points and gift cards; base_* = order amounts ÷ base_to_order_rate).

``python -m connector.adobe.tests.shapes`` rewrites ``golden/<shape>.json`` inputs (keeping the
reviewed ``expected`` parts); ``ADOBE_GOLDEN_REGEN=1 pytest tests/test_adobe_golden.py`` then
regenerates the expected halves for review.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"
CENT = Decimal("0.01")
ORDER_ID = 501


def m(value) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def item(item_id, sku, name, price, qty=1, rate=20, discount=0, product_type="simple", parent=None,
         inclusive=False):
    """One order item. ``price`` is ex tax (or incl. tax when ``inclusive``); ``discount`` is the
    line's positive discount_amount (incl. tax when ``inclusive``)."""
    price, qty, rate, discount = Decimal(str(price)), Decimal(str(qty)), Decimal(str(rate)), m(discount)
    if inclusive:
        gross_list = m(price * qty)
        ex_price = m(price * 100 / (100 + rate))
        row_total = m(gross_list * 100 / (100 + rate))
        tax = m((gross_list - discount) * rate / (100 + rate))
        compensation = m(discount * rate / (100 + rate))
        # Magento's figures add up: row_total + tax + compensation - discount = what was paid
        row_total = gross_list - discount - tax - compensation + discount
    else:
        ex_price = m(price)
        row_total = m(price * qty)
        tax = m((row_total - discount) * rate / 100)
        compensation = m(0)
    return {
        "item_id": item_id, "order_id": ORDER_ID, "sku": sku, "name": name, "product_id": 1000 + item_id,
        "product_type": product_type, "parent_item_id": parent, "qty_ordered": qty, "qty_invoiced": qty,
        "price": ex_price, "base_price": ex_price, "original_price": ex_price,
        "price_incl_tax": m(ex_price * (100 + rate) / 100), "row_total": row_total,
        "row_total_incl_tax": m(row_total + tax + compensation), "tax_amount": tax, "tax_percent": rate,
        "discount_amount": discount, "discount_percent": 0, "discount_tax_compensation_amount": compensation,
    }


def child(item_id, parent, sku, name, qty=1):
    """A configurable child (or a fixed-bundle child): same SKU, no money."""
    return {"item_id": item_id, "order_id": ORDER_ID, "sku": sku, "name": name, "product_id": 2000 + item_id,
            "product_type": "simple", "parent_item_id": parent, "qty_ordered": Decimal(qty), "price": m(0),
            "row_total": m(0), "tax_amount": m(0), "tax_percent": 0, "discount_amount": m(0)}


def gross(line) -> Decimal:
    return line["row_total"] + line["tax_amount"] + line.get("discount_tax_compensation_amount", m(0)) \
        - line["discount_amount"]


def order(items, *, state="processing", status=None, shipping=0, shipping_rate=20, currency="GBP", base="GBP",
          rate=1, guest=False, store_id=1, coupon=None, paid=True, paid_amount=None, ext=None, method="checkmo",
          increment="000000501", customer_note=""):
    shipping = m(shipping)
    shipping_tax = m(shipping * Decimal(shipping_rate) / 100)
    ext = dict(ext or {})
    gw_net = sum((m(ext.get(k, 0)) for k in ("gw_price", "gw_items_price", "gw_card_price")), m(0))
    gw_tax = sum((m(ext.get(k, 0)) for k in ("gw_tax_amount", "gw_items_tax_amount", "gw_card_tax_amount")), m(0))
    tenders = sum((m(ext.get(k, 0)) for k in ("customer_balance_amount", "reward_currency_amount",
                                              "gift_cards_amount")), m(0))
    posted = [i for i in items if i["row_total"] or i["tax_amount"]]
    subtotal = sum((i["row_total"] for i in posted), m(0))
    tax = sum((i["tax_amount"] for i in posted), m(0)) + shipping_tax + gw_tax
    discount = sum((i["discount_amount"] for i in posted), m(0))
    total = sum((gross(i) for i in posted), m(0)) + shipping + shipping_tax + gw_net + gw_tax
    grand_total = total - tenders
    rate = Decimal(str(rate))
    total_paid = (grand_total if paid else m(0)) if paid_amount is None else m(paid_amount)
    address = {"address_type": "billing", "firstname": "Ada", "lastname": "Lovelace", "company": "Analytical Ltd",
               "street": ["12 Engine Row", "Unit 4"], "city": "London", "region": "Greater London",
               "postcode": "N1 9GU", "country_id": "GB", "telephone": "+44 20 7946 0000",
               "email": "Ada@Example.com"}
    shipping_address = {**address, "address_type": "shipping", "street": ["1 Dock Road"], "postcode": "E16 1AA"}
    ext.setdefault("shipping_assignments", [{"shipping": {"address": shipping_address,
                                                          "method": "flatrate_flatrate"}, "items": []}])
    record = {
        "entity_id": ORDER_ID, "increment_id": increment, "state": state, "status": status or state,
        "store_id": store_id, "created_at": "2026-03-02 09:15:00", "updated_at": "2026-03-02 10:00:00",
        "customer_email": "ada@example.com", "customer_firstname": "Ada", "customer_lastname": "Lovelace",
        "customer_is_guest": 1 if guest else 0, "customer_id": None if guest else 77, "customer_group_id": 1,
        "order_currency_code": currency, "base_currency_code": base, "store_currency_code": base,
        "global_currency_code": base, "base_to_order_rate": rate, "base_to_global_rate": 1,
        "subtotal": subtotal, "base_subtotal": m(subtotal / rate), "tax_amount": tax, "base_tax_amount": m(tax / rate),
        "discount_amount": -discount, "base_discount_amount": -m(discount / rate),
        "shipping_amount": shipping, "shipping_tax_amount": shipping_tax, "shipping_incl_tax": shipping + shipping_tax,
        "shipping_discount_amount": m(0), "shipping_description": "Flat Rate - Fixed" if shipping else "",
        "grand_total": grand_total, "base_grand_total": m(grand_total / rate),
        "total_invoiced": total_paid, "total_paid": total_paid, "base_total_paid": m(total_paid / rate),
        "total_qty_ordered": sum((Decimal(i["qty_ordered"]) for i in items if not i.get("parent_item_id")),
                                 Decimal(0)),
        "coupon_code": coupon, "customer_note": customer_note,
        "payment": {"method": method, "amount_ordered": grand_total, "amount_paid": total_paid},
        "billing_address": address, "items": items, "extension_attributes": ext,
    }
    if guest:
        record["customer_firstname"] = record["customer_lastname"] = None
    return record


def invoice(entity_id, amount, *, state=2, transaction=None, increment=None):
    return {"entity_id": entity_id, "order_id": ORDER_ID, "increment_id": increment or f"00000{entity_id}",
            "state": state, "grand_total": m(amount), "created_at": "2026-03-02 09:20:00",
            "transaction_id": transaction}


def memo(entity_id, *, items=(), shipping=0, shipping_tax=0, adjustment_positive=0, adjustment_negative=0,
         invoice_id=None, store_credit=0, tax=None):
    """A credit memo. ``items``: (order_item_id, sku, qty, row_total, tax, discount)."""
    memo_items = [{"entity_id": 9000 + n, "parent_id": entity_id, "order_item_id": oid, "sku": sku, "qty": Decimal(qty),
                   "price": m(Decimal(str(row)) / Decimal(qty)) if qty else m(0), "row_total": m(row), "tax_amount": m(t),
                   "discount_amount": m(d)} for n, (oid, sku, qty, row, t, d) in enumerate(items)]
    money_items = sum((m(row) + m(t) - m(d) for _, _, _, row, t, d in items), m(0))
    tax_total = m(tax) if tax is not None else sum((m(t) for *_, t, _ in items), m(0)) + m(shipping_tax)
    total = money_items + m(shipping) + m(shipping_tax) + m(adjustment_positive) - m(adjustment_negative)
    ext = {"customer_balance_amount": m(store_credit)} if store_credit else {}
    return {"entity_id": entity_id, "order_id": ORDER_ID, "invoice_id": invoice_id, "increment_id": f"0000{entity_id}",
            "state": 2, "created_at": "2026-03-09 14:00:00", "grand_total": total - m(store_credit),
            "subtotal": sum((m(row) for _, _, _, row, _, _ in items), m(0)), "tax_amount": tax_total,
            "shipping_amount": m(shipping), "shipping_tax_amount": m(shipping_tax),
            "adjustment_positive": m(adjustment_positive), "adjustment_negative": m(adjustment_negative),
            "adjustment": m(adjustment_positive) - m(adjustment_negative), "items": memo_items,
            "extension_attributes": ext}


MUG = ("MUG-WHT", "White mug")
TEE = ("TSHIRT-BLU-L", "T-shirt")
LANTERN = ("LANTERN-01", "Camping lantern")
FLASK = ("FLASK-750", "Steel flask")


def shapes() -> dict[str, dict]:
    """shape → {description, input: {order, invoices?}, refunds?: [memo], expect_error?}."""
    cases: dict[str, dict] = {}

    def add(name, description, record, *, invoices=None, memos=(), expect_error=None, paid_states=None):
        case = {"shape": name, "description": description, "input": {"order": record}}
        if invoices is not None:
            case["input"]["invoices"] = invoices
        if memos:
            case["refunds"] = [{"creditmemo": mm} for mm in memos]
        if expect_error:
            case["expect_error"] = expect_error
        if paid_states:
            case["paid_states"] = paid_states
        cases[name] = case

    add("single_line", "One simple product, processing, paid by check/money order",
        order([item(1, *MUG, 10)]))
    add("multi_line_quantity", "Two products with quantities, shipping taxed",
        order([item(1, *MUG, 10, qty=3), item(2, *LANTERN, 24.99, qty=2)], shipping=5))
    add("configurable_parent_child", "Configurable T-shirt: the parent carries the money, the child is skipped",
        order([item(1, *TEE, 15, qty=2, product_type="configurable"), child(2, 1, *TEE, qty=2)], shipping=4.5))
    add("bundle_dynamic_price", "Dynamic-price bundle: the children carry the money, the parent is a header",
        order([{**child(1, None, "CAMP-KIT", "Camping kit"), "product_type": "bundle"},
               item(2, *LANTERN, 24.99, parent=1), item(3, *FLASK, 12.5, parent=1)]))
    add("bundle_fixed_price", "Fixed-price bundle: the parent carries the money, the children show 0",
        order([item(1, "LANTERN-01", "Lantern bundle", 30, product_type="bundle"),
               child(2, 1, *LANTERN), child(3, 1, *FLASK)]))
    add("tax_inclusive_catalog", "Prices include VAT; a discount on the incl.-tax price with tax compensation",
        order([item(1, *MUG, 12, qty=2, discount=2.4, inclusive=True)], coupon="TENOFF"))
    add("coupon_discount", "Coupon: negative header discount_amount, positive line discounts",
        order([item(1, *MUG, 10, qty=2, discount=2), item(2, *LANTERN, 24.99, discount=2.5)], shipping=5,
              coupon="SPRING10"))
    add("free_shipping", "A free-shipping rule: no shipping line",
        order([item(1, *LANTERN, 24.99)], shipping=0))
    add("zero_and_standard_rates", "A zero-rated book beside a standard-rated mug",
        order([item(1, *MUG, 10), item(2, "BOOK-TRAILS", "Trail guide", 8.99, rate=0)], shipping=3))
    add("guest_checkout", "Guest: no customer id, customer built from the billing address and email",
        order([item(1, *MUG, 10)], guest=True))
    add("multi_currency_eur", "Store base GBP, order placed in EUR at 1.17",
        order([item(1, *MUG, 11.7), item(2, *FLASK, 14.63)], shipping=5.85, currency="EUR", rate="1.17",
              method="braintree"))
    add("store_view_channel", "An order from store view 3 (the French view): channel 3",
        order([item(1, *MUG, 10)], store_id=3, increment="300000012"))
    add("store_credit", "Part paid with customer balance (store credit)",
        order([item(1, *LANTERN, 24.99, qty=2)], shipping=5, ext={"customer_balance_amount": m(20)}))
    add("reward_points", "Reward points redeemed for 5.00",
        order([item(1, *MUG, 10, qty=2)], ext={"reward_currency_amount": m(5), "reward_points_balance": 500}))
    add("gift_card_partial", "A gift card covers part of the total",
        order([item(1, *LANTERN, 24.99)], shipping=5,
              ext={"gift_cards_amount": m(10), "gift_cards": [{"id": 3, "code": "GC-7F3K", "amount": m(10)}]}))
    add("gift_card_full", "A gift card covers everything: no receipt",
        order([item(1, *MUG, 10)], ext={"gift_cards_amount": m(12), "gift_cards": [{"code": "GC-FULL"}]}))
    add("gift_wrapping", "Gift wrapping per order, taxed",
        order([item(1, *MUG, 10)], ext={"gw_price": m(2.5), "gw_tax_amount": m(0.5)}))
    add("virtual_product", "A virtual product (a service), no shipping",
        order([item(1, "SVC-REPAIR", "Repair service", 40, product_type="virtual")]))
    add("custom_status_label", "A merchant status 'ready_to_ship' on state processing: the state decides",
        order([item(1, *MUG, 10)], status="ready_to_ship"))
    two = order([item(1, *MUG, 10, qty=2), item(2, *LANTERN, 24.99)], state="complete", shipping=5)
    first = m(2 * 12) + m(6)
    add("partial_invoices_two_paid", "Invoiced in two parts, both paid: one tender per invoice",
        two, invoices=[invoice(801, first, transaction="ch_1"), invoice(802, two["grand_total"] - first,
                                                                        transaction="ch_2")])
    add("partial_invoice_pending", "Only part invoiced so far: held until fully invoiced",
        order([item(1, *MUG, 10, qty=2), item(2, *LANTERN, 24.99)], paid_amount=24),
        expect_error={"type": "NotPostable", "contains": "partial invoicing"})
    add("not_paid_pending_payment", "State pending_payment: never a sale",
        order([item(1, *MUG, 10)], state="pending_payment", paid=False),
        expect_error={"type": "NotPostable", "contains": "does not count as paid"})
    add("not_paid_canceled", "State canceled: never a sale",
        order([item(1, *MUG, 10)], state="canceled", paid=False),
        expect_error={"type": "NotPostable", "contains": "does not count as paid"})
    add("new_state_not_invoiced", "State new with nothing invoiced",
        order([item(1, *MUG, 10)], state="new", status="pending", paid=False),
        expect_error={"type": "NotPostable", "contains": "does not count as paid"})
    add("missing_sku_mapping", "A SKU with no Sage stock code",
        order([item(1, "UNMAPPED-9", "Mystery item", 10)]),
        expect_error={"type": "NeedsMapping", "contains": "UNMAPPED-9"})
    add("unknown_payment_method", "A payment method with no bank account",
        order([item(1, *MUG, 10)], method="cashondelivery"),
        expect_error={"type": "NeedsMapping", "contains": "cashondelivery"})
    full = order([item(1, *MUG, 10, qty=2), item(2, *LANTERN, 24.99)], state="closed", shipping=5)
    add("creditmemo_full_closed", "Fully refunded (state closed): the sale posts and the memo credits it all",
        full, memos=[memo(601, items=[(1, "MUG-WHT", 2, 20, 4, 0), (2, "LANTERN-01", 1, 24.99, 5, 0)],
                          shipping=5, shipping_tax=1, invoice_id=801)])
    add("creditmemo_partial_item", "One of two mugs refunded, against its invoice",
        order([item(1, *MUG, 10, qty=2)], state="complete"),
        memos=[memo(602, items=[(1, "MUG-WHT", 1, 10, 2, 0)], invoice_id=801)])
    add("creditmemo_offline_no_invoice", "Offline credit memo with no invoice_id: allocated to the order's invoice",
        order([item(1, *LANTERN, 24.99)], state="complete", shipping=5),
        memos=[memo(603, items=[(1, "LANTERN-01", 1, 24.99, 5, 0)])])
    add("creditmemo_adjustments", "Shipping refunded, an extra 3.00 refund and a 2.00 restocking fee",
        order([item(1, *LANTERN, 24.99)], state="complete", shipping=5),
        memos=[memo(604, shipping=5, shipping_tax=1, adjustment_positive=3, adjustment_negative=2)])
    add("creditmemo_configurable", "Refunding a configurable: the memo's child row carries nothing",
        order([item(1, *TEE, 15, qty=2, product_type="configurable"), child(2, 1, *TEE, qty=2)], state="complete"),
        memos=[{**memo(605, items=[(1, "TSHIRT-BLU-L", 1, 15, 3, 0)]),
                "items": memo(605, items=[(1, "TSHIRT-BLU-L", 1, 15, 3, 0), (2, "TSHIRT-BLU-L", 1, 0, 0, 0)])["items"]}])
    add("creditmemo_to_store_credit", "Refunded partly to store credit",
        order([item(1, *LANTERN, 24.99, qty=2)], state="complete"),
        memos=[memo(606, items=[(1, "LANTERN-01", 1, 24.99, 5, 0)], store_credit=10)])
    add("creditmemo_two_on_one_order", "Two credit memos on one order, each its own credit note",
        order([item(1, *MUG, 10, qty=3)], state="complete", shipping=5),
        memos=[memo(607, items=[(1, "MUG-WHT", 1, 10, 2, 0)]),
               memo(608, items=[(1, "MUG-WHT", 1, 10, 2, 0)], shipping=5, shipping_tax=1)])
    return cases


def _plain(value):
    if isinstance(value, Decimal):
        return float(value) if value != value.to_integral_value() or "." in str(value) else int(value)
    raise TypeError(type(value).__name__)


def write() -> None:
    GOLDEN.mkdir(exist_ok=True)
    for name, case in shapes().items():
        path = GOLDEN / f"{name}.json"
        old = json.loads(path.read_text()) if path.exists() else {}
        for key in ("expected", "expected_ledger"):
            if key in old:
                case[key] = old[key]
        for new_entry, old_entry in zip(case.get("refunds", []), old.get("refunds", []), strict=False):
            for key in ("expected", "expected_ledger"):
                if key in old_entry:
                    new_entry[key] = old_entry[key]
        path.write_text(json.dumps(case, indent=1, default=_plain) + "\n")


if __name__ == "__main__":
    write()
