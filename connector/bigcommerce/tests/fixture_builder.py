"""How the golden fixtures were made: a tiny model of BigCommerce's order arithmetic.

Run ``python -m connector.bigcommerce.tests.fixture_builder`` to rewrite ``golden/*.json`` inputs
(the expected neutral orders are kept; regenerate them with ``BC_GOLDEN_REGEN=1 pytest ...`` and
review the diff). The Sage 50 half of each case (mappings, expected documents or errors) lives in
``connector/sage50/tests/fixtures``; the arguments below that belong to it are dropped here. The builder computes every money field the way BigCommerce reports it
(4-decimal strings, tax on the discounted price, per-line ``discounted_total_inc_tax``), so
fixtures stay internally consistent; the mapper itself only reads those figures.
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

FIXTURES = Path(__file__).parent / "golden"
C = Decimal("0.01")
Q4 = Decimal("0.0001")


def m4(value) -> str:
    return str(Decimal(value).quantize(Q4, ROUND_HALF_UP))


def r2(value) -> Decimal:
    return Decimal(value).quantize(C, ROUND_HALF_UP)


class Store:
    def __init__(self, tax_inclusive=False, currency="GBP", store_currency="GBP", rate="1"):
        self.tax_inclusive = tax_inclusive
        self.currency = currency
        self.store_currency = store_currency
        self.rate = rate


def product_line(order_id, line_id, *, sku, name, price, qty=1, rate="20", discounts=(), options=(),
                 product_id=None, variant_id=None, store, kind="physical", wrapping=None):
    """``price`` is in the store's display basis (inc tax when tax-inclusive); ``discounts`` are
    (name, code, amount) in the same basis, for the whole line."""
    r = Decimal(rate) / 100
    price = Decimal(price)
    if store.tax_inclusive:
        price_inc = price
        price_ex = (price / (1 + r)).quantize(Q4, ROUND_HALF_UP)
        total_inc = price_inc * qty
        total_ex = r2(total_inc / (1 + r))
        discount = sum((Decimal(d[2]) for d in discounts), Decimal(0))
        discounted_inc = total_inc - discount
        total_tax = r2(discounted_inc * r / (1 + r))
    else:
        price_ex = price
        price_inc = price + r2(price * r)
        total_ex = price_ex * qty
        total_inc = total_ex + r2(total_ex * r)
        discount = sum((Decimal(d[2]) for d in discounts), Decimal(0))
        total_tax = r2((total_ex - discount) * r)
        discounted_inc = total_ex - discount + total_tax
    line = {
        "id": line_id,
        "order_id": order_id,
        "product_id": product_id or 100 + line_id,
        "variant_id": variant_id or 200 + line_id,
        "order_address_id": 1,
        "name": name,
        "name_customer": name,
        "name_merchant": name,
        "sku": sku,
        "upc": "",
        "type": kind,
        "base_price": m4(price),
        "price_ex_tax": m4(price_ex),
        "price_inc_tax": m4(price_inc),
        "price_tax": m4(price_inc - price_ex),
        "base_total": m4(price * qty),
        "total_ex_tax": m4(total_ex),
        "total_inc_tax": m4(total_inc),
        "total_tax": m4(total_tax),
        "quantity": qty,
        "base_cost_price": "0.0000",
        "cost_price_inc_tax": "0.0000",
        "cost_price_ex_tax": "0.0000",
        "cost_price_tax": "0.0000",
        "weight": "1.0000",
        "is_refunded": False,
        "quantity_refunded": 0,
        "refund_amount": "0.0000",
        "return_id": 0,
        "wrapping_id": 0,
        "wrapping_name": None,
        "base_wrapping_cost": "0.0000",
        "wrapping_cost_ex_tax": "0.0000",
        "wrapping_cost_inc_tax": "0.0000",
        "wrapping_cost_tax": "0.0000",
        "wrapping_message": "",
        "quantity_shipped": 0,
        "event_name": None,
        "event_date": None,
        "fixed_shipping_cost": "0.0000",
        "ebay_item_id": "",
        "ebay_transaction_id": "",
        "option_set_id": None,
        "parent_order_product_id": None,
        "is_bundled_product": False,
        "bin_picking_number": "",
        "external_id": None,
        "brand": "",
        "applied_discounts": [
            {"id": code or "manual-discount", "amount": m4(amount), "name": dname, "code": code,
             "target": "product" if code else "order"}
            for dname, code, amount in discounts
        ],
        "product_options": [
            {"id": 900 + line_id * 10 + i, "option_id": 30 + i, "order_product_id": line_id,
             "product_option_id": 60 + i, "display_name": label, "display_name_customer": label,
             "display_name_merchant": label, "display_value": value, "display_value_customer": value,
             "display_value_merchant": value, "value": value, "type": otype, "name": label.lower(),
             "display_style": ""}
            for i, (label, value, otype) in enumerate(options)
        ],
        "configurable_fields": [],
        "gift_certificate_id": None,
        "discounted_total_inc_tax": m4(discounted_inc),
    }
    if wrapping:
        w_ex, w_tax = Decimal(wrapping[1]), r2(Decimal(wrapping[1]) * r)
        line.update(wrapping_id=1, wrapping_name=wrapping[0], base_wrapping_cost=m4(w_ex),
                    wrapping_cost_ex_tax=m4(w_ex), wrapping_cost_inc_tax=m4(w_ex + w_tax),
                    wrapping_cost_tax=m4(w_tax))
    if kind == "giftcertificate":
        line["gift_certificate_id"] = 7
    return line


BILLING = {
    "first_name": "Amelia", "last_name": "Hart", "company": "", "street_1": "12 Orchard Lane",
    "street_2": "Flat 3", "city": "Bristol", "state": "Bristol", "zip": "BS1 4DJ",
    "country": "United Kingdom", "country_iso2": "GB", "phone": "0117 496 0123",
    "email": "Amelia.Hart@example.co.uk", "form_fields": [],
}


def charge(amount, rate, store):
    amount, r = Decimal(amount), Decimal(rate) / 100
    if store.tax_inclusive:
        tax = r2(amount * r / (1 + r))
        return amount - tax, tax, amount
    tax = r2(amount * r)
    return amount, tax, amount + tax


def order(order_id, lines, *, store=None, status_id=11, shipping=("0", "20"), handling=("0", "20"),
          payment_method="Stripe", payment_status="captured", customer_id=42, billing=None,
          coupon_discount="0", discount_amount="0", gift_certificate_amount="0", store_credit_amount="0",
          date="Tue, 03 Jun 2025 09:15:00 +0000", shipping_method="Royal Mail Tracked 48",
          customer_message="", total_adjust="0", structure="consignments"):
    store = store or Store()
    s_ex, s_tax, s_inc = charge(shipping[0], shipping[1], store)
    h_ex, h_tax, h_inc = charge(handling[0], handling[1], store)
    w_ex = sum((Decimal(line["wrapping_cost_ex_tax"]) for line in lines), Decimal(0))
    w_tax = sum((Decimal(line["wrapping_cost_tax"]) for line in lines), Decimal(0))
    items_gross = sum((Decimal(line["discounted_total_inc_tax"]) for line in lines), Decimal(0))
    items_tax = sum((Decimal(line["total_tax"]) for line in lines), Decimal(0))
    total_tax = items_tax + s_tax + h_tax + w_tax
    total_inc = items_gross + s_inc + h_inc + w_ex + w_tax + Decimal(total_adjust)
    sub_ex = sum((Decimal(line["total_ex_tax"]) for line in lines), Decimal(0))
    sub_inc = sum((Decimal(line["total_inc_tax"]) for line in lines), Decimal(0))
    currency_ids = {"GBP": 1, "EUR": 2, "USD": 3}
    physical = [line for line in lines if line["type"] == "physical"]
    others = [line for line in lines if line["type"] != "physical"]
    consignments = {
        "pickups": [], "downloads": [], "email": {"gift_certificates": []},
        "shipping": [] if not physical else [{
            "id": 1, "first_name": (billing or BILLING)["first_name"], "last_name": (billing or BILLING)["last_name"],
            "company": "", "street_1": "12 Orchard Lane", "street_2": "", "city": "Bristol", "state": "Bristol",
            "zip": "BS1 4DJ", "country": "United Kingdom", "country_iso2": "GB", "phone": "",
            "email": (billing or BILLING)["email"], "form_fields": [], "shipping_method": shipping_method,
            "line_items": physical, "items_total": sum(line["quantity"] for line in physical), "items_shipped": 0,
            "base_cost": float(s_ex), "cost_ex_tax": float(s_ex), "cost_inc_tax": float(s_inc),
            "cost_tax": float(s_tax), "cost_tax_class_id": 0, "base_handling_cost": float(h_ex),
            "handling_cost_ex_tax": float(h_ex), "handling_cost_inc_tax": float(h_inc),
            "handling_cost_tax": float(h_tax), "handling_cost_tax_class_id": 0, "shipping_zone_id": 1,
            "shipping_zone_name": "United Kingdom",
        }],
    }
    for line in others:
        if line["type"] == "giftcertificate":
            consignments["email"]["gift_certificates"].append(
                {"recipient_email": "friend@example.com", "line_items": [line]})
        else:
            consignments["downloads"] = [{"recipient_email": (billing or BILLING)["email"], "line_items": [line]}]
    body = {
        "id": order_id, "customer_id": customer_id, "date_created": date, "date_modified": date,
        "date_shipped": "", "status_id": status_id,
        "status": {0: "Incomplete", 1: "Pending", 2: "Shipped", 3: "Partially Shipped", 4: "Refunded",
                   5: "Cancelled", 6: "Declined", 7: "Awaiting Payment", 8: "Awaiting Pickup",
                   9: "Awaiting Shipment", 10: "Completed", 11: "Awaiting Fulfillment",
                   12: "Manual Verification Required", 13: "Disputed", 14: "Partially Refunded"}[status_id],
        "subtotal_ex_tax": m4(sub_ex), "subtotal_inc_tax": m4(sub_inc), "subtotal_tax": m4(sub_inc - sub_ex),
        "base_shipping_cost": m4(shipping[0]), "shipping_cost_ex_tax": m4(s_ex), "shipping_cost_inc_tax": m4(s_inc),
        "shipping_cost_tax": m4(s_tax), "shipping_cost_tax_class_id": 2,
        "base_handling_cost": m4(handling[0]), "handling_cost_ex_tax": m4(h_ex), "handling_cost_inc_tax": m4(h_inc),
        "handling_cost_tax": m4(h_tax), "handling_cost_tax_class_id": 2,
        "base_wrapping_cost": m4(w_ex), "wrapping_cost_ex_tax": m4(w_ex), "wrapping_cost_inc_tax": m4(w_ex + w_tax),
        "wrapping_cost_tax": m4(w_tax), "wrapping_cost_tax_class_id": 3,
        "total_ex_tax": m4(total_inc - total_tax), "total_inc_tax": m4(total_inc), "total_tax": m4(total_tax),
        "items_total": sum(line["quantity"] for line in lines), "items_shipped": 0,
        "payment_method": payment_method, "payment_provider_id": f"pi_{order_id}", "payment_status": payment_status,
        "refunded_amount": "0.0000", "order_is_digital": not physical,
        "store_credit_amount": m4(store_credit_amount), "gift_certificate_amount": m4(gift_certificate_amount),
        "ip_address": "203.0.113.7", "ip_address_v6": "", "geoip_country": "United Kingdom",
        "geoip_country_iso2": "GB",
        "currency_id": currency_ids[store.currency], "currency_code": store.currency, "currency_exchange_rate": m4(store.rate),
        "default_currency_id": currency_ids[store.currency], "default_currency_code": store.currency,
        "store_default_currency_code": store.store_currency,
        "store_default_to_transactional_exchange_rate": str(Decimal(store.rate).quantize(Decimal("0.0000000001"))),
        "staff_notes": "", "customer_message": customer_message, "discount_amount": m4(discount_amount),
        "coupon_discount": m4(coupon_discount), "shipping_address_count": 1 if physical else 0,
        "is_deleted": False, "ebay_order_id": "0", "cart_id": f"cart-{order_id}",
        "billing_address": billing or BILLING, "is_email_opt_in": False, "order_source": "www",
        "channel_id": 1, "external_source": None, "external_id": None, "external_merchant_id": None,
        "tax_provider_id": "BasicTaxProvider", "customer_locale": "en-GB", "external_order_id": "",
        "is_tax_inclusive_pricing": store.tax_inclusive,
        "products": {"url": f"https://api.bigcommerce.com/stores/abc123/v2/orders/{order_id}/products",
                     "resource": f"/orders/{order_id}/products"},
        "shipping_addresses": {"url": f"https://api.bigcommerce.com/stores/abc123/v2/orders/{order_id}/shipping_addresses",
                               "resource": f"/orders/{order_id}/shipping_addresses"},
        "coupons": {"url": f"https://api.bigcommerce.com/stores/abc123/v2/orders/{order_id}/coupons",
                    "resource": f"/orders/{order_id}/coupons"},
    }
    if structure == "consignments":
        body["consignments"] = consignments
    else:
        body["consignments"] = {"url": f"https://api.bigcommerce.com/stores/abc123/v2/orders/{order_id}/consignments",
                                "resource": f"/orders/{order_id}/consignments"}
    return body


def tax_row(row_id, order_id, line_id, cls, rate, amount, line_type="item", class_id=1):
    return {"id": row_id, "order_id": order_id, "order_address_id": 1, "sales_tax_id": "", "tax_class_id": class_id,
            "name": f"VAT {cls}", "class": cls, "rate": m4(rate), "priority": 0, "priority_amount": m4(amount),
            "line_amount": m4(amount), "order_product_id": str(line_id), "line_item_type": line_type}


def transaction(tid, order_id, amount, *, gateway="stripe", method="credit_card", event="purchase",
                currency="GBP", status="ok", date="2025-06-03T09:15:04+00:00", code=None):
    body = {"id": tid, "order_id": str(order_id), "event": event, "method": method, "amount": float(amount),
            "currency": currency, "gateway": gateway, "gateway_transaction_id": f"{gateway}_{tid:06d}",
            "date_created": date, "test": False, "status": status, "fraud_review": False,
            "offline": None, "custom": None, "payment_method_id": gateway}
    if code:
        body["gift_certificate"] = {"code": code, "original_balance": float(amount) * 2,
                                    "starting_balance": float(amount) * 2, "remaining_balance": float(amount),
                                    "status": "active"}
    return body


def refund(rid, order_id, items, payments, *, total, tax, reason="", created="2025-06-10T14:02:11+00:00"):
    return {"id": rid, "order_id": order_id, "user_id": 5, "created": created, "reason": reason,
            "total_amount": float(total), "total_tax": float(tax), "uses_merchant_override_values": False,
            "items": items, "payments": payments}


def write(name, description, body):
    path = FIXTURES / f"{name}.json"
    body.pop("mappings", None)
    body.pop("expect_error", None)
    if "refunds" in body:
        # Refunded orders are fetched after the refund; their invoice was posted while paid.
        body["paid_status_ids"] = [2, 3, 4, 8, 9, 10, 11, 14]
    expected = {}
    if path.exists():
        old = json.loads(path.read_text())
        expected = {k: old[k] for k in ("expected", "statuses") if k in old}
        for i, r in enumerate(old.get("refunds", [])):
            if i < len(body.get("refunds", [])) and "expected" in r:
                body["refunds"][i]["expected"] = r["expected"]
    data = {"shape": name, "description": description, **body, **expected}
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def _in(o, **extra):
    return {"order": o, **extra}


def main():  # noqa: C901 - one block per shape reads best here
    FIXTURES.mkdir(exist_ok=True)
    gbp, inc = Store(), Store(tax_inclusive=True)
    shirt = dict(sku="TSHIRT-BLU-L", name="Organic cotton T-shirt", price="20.00",
                 options=[("Colour", "Blue", "Swatch"), ("Size", "L", "Multiple choice")])
    mug = dict(sku="MUG-WHT", name="Enamel camping mug", price="8.50")

    def L(oid, lid, store=gbp, **kw):
        return product_line(oid, lid, store=store, **kw)

    def paid(oid, amount, **kw):
        return [transaction(oid * 10 + 1, oid, amount, **kw)]

    # 1 single line, registered customer, card
    o = order(1001, [L(1001, 1, **mug)], shipping=("3.95", "20"))
    write("single_line", "One stock line, tax-exclusive UK store, registered customer, Stripe capture",
          {"input": _in(o, transactions=paid(1001, o["total_inc_tax"]))})
    # 2 multi line, quantity > 1
    lines = [L(1002, 1, qty=3, **mug), L(1002, 2, sku="PEG-SET", name="Aluminium tent pegs (10)", price="6.49", qty=2),
             L(1002, 3, sku="LANTERN-01", name="Solar lantern", price="24.99")]
    o = order(1002, lines, shipping=("4.95", "20"))
    write("multi_line_quantity", "Three lines, quantities 3 and 2, card",
          {"input": _in(o, transactions=paid(1002, o["total_inc_tax"]))})
    # 3 variant SKU
    o = order(1003, [L(1003, 1, variant_id=555, **shirt)], shipping=("3.95", "20"))
    write("variant_sku", "A variant bought: the line SKU is the variant SKU, options in the description",
          {"input": _in(o, transactions=paid(1003, o["total_inc_tax"]))})
    # 4 modifier options
    o = order(1004, [L(1004, 1, sku="FLASK-750", name="Steel flask 750ml", price="18.00",
                       options=[("Engraving", "For Dad", "Text field"), ("Gift box", "Yes", "Checkbox")])])
    write("modifier_options", "Modifier options (engraving text, checkbox) carried in the line description",
          {"input": _in(o, transactions=paid(1004, o["total_inc_tax"]))})
    # 5 tax inclusive
    lines = [L(1005, 1, store=inc, sku="MUG-WHT", name="Enamel camping mug", price="9.99", qty=2),
             L(1005, 2, store=inc, sku="LANTERN-01", name="Solar lantern", price="29.99")]
    o = order(1005, lines, store=inc, shipping=("4.99", "20"))
    write("tax_inclusive", "Tax-inclusive store: net = gross - the store's tax, never split by us",
          {"input": _in(o, transactions=paid(1005, o["total_inc_tax"]))})
    # 6 multiple tax rates
    lines = [L(1006, 1, **mug), L(1006, 2, sku="CARSEAT-G1", name="Child car seat", price="89.00", rate="5")]
    o = order(1006, lines, shipping=("5.00", "20"))
    taxes = [tax_row(1, 1006, 1, "Standard", "20", lines[0]["total_tax"]),
             tax_row(2, 1006, 2, "Reduced Rate", "5", lines[1]["total_tax"], class_id=4),
             tax_row(3, 1006, 0, "Standard", "20", o["shipping_cost_tax"], "shipping")]
    write("multiple_tax_rates", "20 % and 5 % lines in one order, tax classes from /taxes?details=true",
          {"input": _in(o, taxes=taxes, transactions=paid(1006, o["total_inc_tax"]))})
    # 7 zero rated and exempt
    lines = [L(1007, 1, sku="BOOK-TRAILS", name="Walking trails of Somerset (book)", price="12.99", rate="0"),
             L(1007, 2, sku="SVC-REPAIR", name="Tent repair voucher", price="25.00", rate="0"),
             L(1007, 3, **mug)]
    o = order(1007, lines, shipping=("2.50", "20"))
    taxes = [tax_row(1, 1007, 1, "Zero Rated", "0", "0", class_id=5),
             tax_row(2, 1007, 2, "Exempt", "0", "0", class_id=6),
             tax_row(3, 1007, 3, "Standard", "20", lines[2]["total_tax"])]
    write("zero_rated_and_exempt", "A zero-rated book, an exempt service and a standard-rated line",
          {"input": _in(o, taxes=taxes, transactions=paid(1007, o["total_inc_tax"]))})
    # 8 shipping, handling, wrapping
    lines = [L(1008, 1, wrapping=("Kraft paper", "2.50"), **mug), L(1008, 2, sku="LANTERN-01", name="Solar lantern", price="24.99")]
    o = order(1008, lines, shipping=("4.95", "20"), handling=("1.50", "20"))
    write("shipping_handling_wrapping", "Shipping, handling and gift wrapping as service lines on their nominals",
          {"input": _in(o, transactions=paid(1008, o["total_inc_tax"]))})
    # 9 percent coupon
    lines = [L(1009, 1, discounts=[("10% off", "SUMMER10", "4.00")], **shirt | {"price": "20.00"}, qty=2),
             L(1009, 2, discounts=[("10% off", "SUMMER10", "0.85")], **mug)]
    o = order(1009, lines, shipping=("3.95", "20"), coupon_discount="4.85")
    coupons = [{"id": 3, "coupon_id": 12, "order_id": 1009, "code": "SUMMER10", "amount": "10", "type": 1, "discount": 4.85}]
    write("coupon_percent", "10 % coupon: taken off each line it applies to (reduced line net, line discount shown)",
          {"input": _in(o, coupons=coupons, transactions=paid(1009, o["total_inc_tax"]))})
    # 10 fixed coupon
    lines = [L(1010, 1, discounts=[("£5 off", "FIVEOFF", "3.73")], sku="LANTERN-01", name="Solar lantern", price="24.99"),
             L(1010, 2, discounts=[("£5 off", "FIVEOFF", "1.27")], **mug)]
    o = order(1010, lines, shipping=("3.95", "20"), coupon_discount="5.00")
    coupons = [{"id": 4, "coupon_id": 13, "order_id": 1010, "code": "FIVEOFF", "amount": "5", "type": 2, "discount": 5}]
    write("coupon_fixed", "Fixed £5 order coupon spread over the lines by BigCommerce",
          {"input": _in(o, coupons=coupons, transactions=paid(1010, o["total_inc_tax"]))})
    # 11 manual discount
    lines = [L(1011, 1, discounts=[("Manual Discount", None, "2.00")], sku="LANTERN-01", name="Solar lantern", price="24.99")]
    o = order(1011, lines, shipping=("3.95", "20"), discount_amount="2.00", payment_method="Bank Deposit",
              payment_status="", customer_message="Please leave with neighbour at no. 14")
    write("manual_discount", "Manual (staff) discount on a phone order paid by bank deposit, no transactions",
          {"input": _in(o)})
    # 12 free shipping coupon
    o = order(1012, [L(1012, 1, **mug)], shipping=("0", "20"), coupon_discount="0", shipping_method="Free Shipping")
    coupons = [{"id": 5, "coupon_id": 14, "order_id": 1012, "code": "FREESHIP", "amount": "0", "type": 4, "discount": 0}]
    write("free_shipping_coupon", "Free shipping coupon: no shipping charge, so no shipping line",
          {"input": _in(o, coupons=coupons, transactions=paid(1012, o["total_inc_tax"]))})
    # 13 gift certificate partial
    o = order(1013, [L(1013, 1, sku="LANTERN-01", name="Solar lantern", price="24.99")], shipping=("3.95", "20"),
              gift_certificate_amount="10.00")
    rest = Decimal(o["total_inc_tax"]) - 10
    tx = [transaction(10131, 1013, "10.00", gateway="giftcertificate", method="gift_certificate", code="GC-7QX2-PL9M"),
          transaction(10132, 1013, rest)]
    write("gift_certificate_partial", "Gift certificate pays £10, the card the rest: only the card is a bank receipt",
          {"input": _in(o, transactions=tx)})
    # 14 gift certificate full
    o = order(1014, [L(1014, 1, **mug)], shipping=("0", "20"), payment_method="Gift Certificate", payment_status="")
    tx = [transaction(10141, 1014, o["total_inc_tax"], gateway="giftcertificate", method="gift_certificate",
                      code="GC-ZZ41-KM02")]
    o["gift_certificate_amount"] = o["total_inc_tax"]
    write("gift_certificate_full", "Gift certificate covers the whole order: no receipt at all",
          {"input": _in(o, transactions=tx)})
    # 15 store credit
    o = order(1015, [L(1015, 1, **mug), L(1015, 2, sku="PEG-SET", name="Aluminium tent pegs (10)", price="6.49")],
              shipping=("3.95", "20"), store_credit_amount="5.00")
    tx = [transaction(10151, 1015, "5.00", gateway="storecredit", method="store_credit"),
          transaction(10152, 1015, Decimal(o["total_inc_tax"]) - 5)]
    write("store_credit", "Store credit pays £5, card the rest", {"input": _in(o, transactions=tx)})
    # 16 EUR
    eur = Store(currency="EUR", rate="1.1725")
    o = order(1016, [L(1016, 1, store=eur, sku="LANTERN-01", name="Solar lantern", price="29.30")],
              store=eur, shipping=("5.90", "20"), billing=BILLING | {"country": "Ireland", "country_iso2": "IE",
                                                                    "city": "Dublin", "zip": "D02 X285", "state": ""})
    write("multi_currency_eur", "Paid in EUR on a GBP store: transactional currency and exchange rate, EUR bank account",
          {"input": _in(o, transactions=paid(1016, o["total_inc_tax"], currency="EUR"))})
    # 17 USD
    usd = Store(currency="USD", rate="1.2710")
    o = order(1017, [L(1017, 1, store=usd, rate="0", **mug | {"price": "10.80"}, qty=2)], store=usd,
              shipping=("12.00", "0"), payment_method="PayPal",
              billing=BILLING | {"country": "United States", "country_iso2": "US", "city": "Austin", "state": "Texas",
                                 "zip": "78701", "street_2": ""})
    write("multi_currency_usd", "Export to the US in USD, no VAT, PayPal into the USD bank account",
          {"input": _in(o, transactions=paid(1017, o["total_inc_tax"], currency="USD", gateway="paypalexpress",
                                               method="electronic_wallet"))})
    # 18 guest checkout
    o = order(1018, [L(1018, 1, **mug)], shipping=("3.95", "20"), customer_id=0,
              billing=BILLING | {"first_name": "Tom", "last_name": "Price", "email": "tom.price@example.net",
                                 "company": "Price & Sons Ltd"})
    write("guest_checkout", "Guest checkout under match_or_create: matched by email, flagged as guest",
          {"input": _in(o, transactions=paid(1018, o["total_inc_tax"]))})
    # 19 guest to web sales
    o = order(1019, [L(1019, 1, **mug)], shipping=("3.95", "20"), customer_id=0)
    write("guest_to_web_sales", "Guest checkout with 'guests to web-sales account' on",
          {"input": _in(o, transactions=paid(1019, o["total_inc_tax"])),
           "mappings": {"customers.guests_to_web_sales": True}})
    # 20 web sales strategy
    o = order(1020, [L(1020, 1, **mug)], shipping=("3.95", "20"))
    write("web_sales_account", "web_sales_account strategy: registered shopper still posts to WEBGBP",
          {"input": _in(o, transactions=paid(1020, o["total_inc_tax"])),
           "mappings": {"customers.mode": "web_sales_account"}})
    # 21 web sales account missing for currency
    o = order(1021, [L(1021, 1, store=eur, sku="LANTERN-01", name="Solar lantern", price="29.30")], store=eur)
    write("web_sales_missing_currency", "web_sales_account strategy with no EUR account: NeedsMapping",
          {"input": _in(o, transactions=paid(1021, o["total_inc_tax"], currency="EUR")),
           "mappings": {"customers.mode": "web_sales_account"},
           "expect_error": {"type": "NeedsMapping", "keys": [["customer_account", "EUR"]],
                            "messages": ["Order 1021 is in EUR but no web-sales customer account is set for EUR: "
                                         "add it under Mappings → Customers"]}})
    # 22 missing SKU + tax mappings
    lines = [L(1022, 1, sku="ABC-1", name="Blue shirt", price="15.00"), L(1022, 2, sku="ABC-2", name="Red shirt", price="15.00"),
             L(1022, 3, sku="TENT-2P", name="Two-person tent", price="120.00", rate="12.5")]
    o = order(1022, lines, shipping=("3.95", "20"))
    write("missing_sku_mapping", "Unmapped SKUs and an unmapped tax rate: every missing mapping listed at once",
          {"input": _in(o, transactions=paid(1022, o["total_inc_tax"])),
           "expect_error": {"type": "NeedsMapping",
                            "keys": [["item", "ABC-1"], ["item", "ABC-2"], ["item", "TENT-2P"], ["tax", "tax rate 12.50 %"]],
                            "messages": [
                                "SKU 'ABC-1' (order 1022, line 'Blue shirt') has no Sage stock code: add it under "
                                "Mappings → Item mappings, or turn on 'same code' fallback",
                                "SKU 'ABC-2' (order 1022, line 'Red shirt') has no Sage stock code: add it under "
                                "Mappings → Item mappings, or turn on 'same code' fallback",
                                "SKU 'TENT-2P' (order 1022, line 'Two-person tent') has no Sage stock code: add it "
                                "under Mappings → Item mappings, or turn on 'same code' fallback",
                                "The tax rate 12.50 % on order 1022, line 'Two-person tent', has no Sage tax code: "
                                "add it under Mappings → Tax codes, or set a default tax code"]}})
    # 23 same code fallback
    lines = [L(1023, 1, sku="abc-1", name="Blue shirt", price="15.00"), L(1023, 2, **mug)]
    o = order(1023, lines, shipping=("3.95", "20"))
    write("same_code_fallback", "Unmapped SKU posted under its own code (upper case) with 'same code' on",
          {"input": _in(o, transactions=paid(1023, o["total_inc_tax"])), "mappings": {"items.same_code_fallback": True}})
    # 24 same code fallback, SKU too long
    o = order(1024, [L(1024, 1, sku="HIKING-BOOT-WATERPROOF-BROWN-UK9", name="Hiking boot", price="89.00")])
    write("same_code_too_long", "Fallback cannot use a SKU longer than Sage 50's 30 characters",
          {"input": _in(o, transactions=paid(1024, o["total_inc_tax"])), "mappings": {"items.same_code_fallback": True},
           "expect_error": {"type": "NeedsMapping", "keys": [["item", "HIKING-BOOT-WATERPROOF-BROWN-UK9"]],
                            "messages": ["SKU 'HIKING-BOOT-WATERPROOF-BROWN-UK9' (order 1024, line 'Hiking boot') is "
                                         "longer than 30 characters, too long for a Sage 50 stock code: map it under "
                                         "Mappings → Item mappings"]}})
    # 25 unknown payment method
    o = order(1025, [L(1025, 1, **mug)], shipping=("3.95", "20"), payment_method="Klarna")
    write("unknown_payment_method", "Payment method without a bank account and no default: NeedsMapping",
          {"input": _in(o, transactions=paid(1025, o["total_inc_tax"], gateway="klarna", method="offsite"))},
          )
    # 26 not-paid statuses
    o = order(1026, [L(1026, 1, **mug)], shipping=("3.95", "20"), payment_status="pending")
    write("not_paid_statuses", "Incomplete, Pending, Cancelled, Declined, Awaiting Payment, "
          "Manual Verification Required, Disputed: each refused with the status named",
          {"input": _in(o), "statuses": [0, 1, 5, 6, 7, 12, 13],
           "expect_error": {"type": "NotPostable", "contains": "does not count as paid"}})
    # 27 paid status but only authorised
    o = order(1027, [L(1027, 1, **mug)], shipping=("3.95", "20"), payment_status="authorized")
    write("authorized_not_captured", "Status says Awaiting Fulfillment but the card was only authorised",
          {"input": _in(o, transactions=[transaction(10271, 1027, o["total_inc_tax"], event="authorization")]),
           "expect_error": {"type": "NotPostable",
                            "contains": "BC-1027 is not posted: the payment is not captured (payment status 'authorized')"}})
    # 28 rounding within tolerance
    lines = [L(1028, 1, store=inc, sku="PEG-SET", name="Aluminium tent pegs (10)", price="6.49", qty=3)]
    o = order(1028, lines, store=inc, shipping=("3.99", "20"), total_adjust="0.01")
    write("rounding_within_tolerance", "Store total 1p above the lines (tax-inclusive rounding): a rounding line",
          {"input": _in(o, transactions=paid(1028, o["total_inc_tax"]))})
    # 29 rounding outside tolerance
    o = order(1029, [L(1029, 1, **mug)], shipping=("3.95", "20"), total_adjust="0.50")
    write("rounding_outside_tolerance", "50p unexplained difference: TotalsMismatch with the difference",
          {"input": _in(o, transactions=paid(1029, o["total_inc_tax"])),
           "expect_error": {"type": "TotalsMismatch", "difference": "0.50",
                            "contains": "BC-1029: the Sage document totals 14.94 but the store says 15.44 "
                                        "(difference 0.50). That is more than the rounding tolerance of 0.02."}})
    # 30 products sub-resource as the lines source
    lines = [L(1030, 1, **mug), L(1030, 2, sku="PEG-SET", name="Aluminium tent pegs (10)", price="6.49")]
    o = order(1030, lines, shipping=("3.95", "20"), structure="links")
    write("products_subresource", "Order fetched without include: lines from /v2/orders/{id}/products",
          {"input": _in(o, products=lines, transactions=paid(1030, o["total_inc_tax"]))})
    # 31 gift certificate purchase
    lines = [L(1031, 1, **mug), L(1031, 2, sku="", name="£25 Gift Certificate", price="25.00", rate="0",
                                  kind="giftcertificate")]
    o = order(1031, lines, shipping=("3.95", "20"))
    write("gift_certificate_purchase", "Buying a gift certificate: a liability line, not revenue, no VAT",
          {"input": _in(o, transactions=paid(1031, o["total_inc_tax"]))})
    # 32 undistributed order discount (API-created order)
    o = order(1032, [L(1032, 1, sku="LANTERN-01", name="Solar lantern", price="24.99")], shipping=("3.95", "20"),
              coupon_discount="3.00", total_adjust="-3.00")
    o["order_source"], o["tax_provider_id"] = "external", ""
    write("undistributed_order_discount", "Order-level £3 discount the store did not spread over lines "
          "(external order): one discount line, no VAT change", {"input": _in(o, transactions=paid(1032, o["total_inc_tax"]))})
    # 33 pickup consignment + store timezone date
    o = order(1033, [L(1033, 1, **mug)], date="Tue, 03 Jun 2025 23:30:00 +0000", status_id=8)
    o["consignments"]["pickups"] = [{"id": 5, "pickup_method_id": 1, "pickup_method_display_name": "Pick up in store",
                                     "collection_instructions": "Bring ID", "collection_time_description": "9am - 6pm",
                                     "location": {"id": 1, "name": "Bristol shop", "code": "BRS-1",
                                                  "address_line_1": "1 Quay St", "address_line_2": "", "city": "Bristol",
                                                  "state": "Bristol", "postal_code": "BS1 4DJ", "country_alpha2": "GB",
                                                  "email": "shop@example.co.uk", "phone": "0117 000 0000"},
                                     "line_items": o["consignments"]["shipping"][0]["line_items"]}]
    o["consignments"]["shipping"] = []
    write("pickup_late_evening", "Awaiting Pickup order placed 23:30 UTC: dated the next day in Europe/London",
          {"input": _in(o, transactions=paid(1033, o["total_inc_tax"], date="2025-06-03T23:30:05+00:00"))})

    # refunds ------------------------------------------------------------------------------
    lines = [L(1101, 1, qty=2, **mug), L(1101, 2, sku="LANTERN-01", name="Solar lantern", price="24.99")]
    o = order(1101, lines, shipping=("4.95", "20"), status_id=14, payment_status="partially refunded")
    write("refund_partial_item", "One of two mugs refunded to the card",
          {"input": _in(o, transactions=paid(1101, o["total_inc_tax"])),
           "refunds": [{"refund": refund(71, 1101, [{"item_type": "PRODUCT", "item_id": 1, "quantity": 1,
                                                   "reason": "Chipped"}],
                                         [{"id": 1, "provider_id": "stripe", "amount": 10.20, "offline": False,
                                           "is_declined": False, "declined_message": "", "transaction_id": "11011"}],
                                         total="10.20", tax="1.70", reason="Damaged in transit")}]})
    lines = [L(1102, 1, **mug), L(1102, 2, sku="PEG-SET", name="Aluminium tent pegs (10)", price="6.49")]
    o = order(1102, lines, shipping=("3.95", "20"), status_id=4, payment_status="refunded")
    write("refund_full", "Everything refunded: both lines and shipping",
          {"input": _in(o, transactions=paid(1102, o["total_inc_tax"])),
           "refunds": [{"refund": refund(72, 1102, [
               {"item_type": "PRODUCT", "item_id": 1, "quantity": 1, "reason": ""},
               {"item_type": "PRODUCT", "item_id": 2, "quantity": 1, "reason": ""},
               {"item_type": "SHIPPING", "item_id": 1, "reason": "", "requested_amount": 4.74}],
               [{"id": 2, "provider_id": "stripe", "amount": float(o["total_inc_tax"]), "offline": False,
                 "is_declined": False, "declined_message": "", "transaction_id": "11021"}],
               total=o["total_inc_tax"], tax=o["total_tax"], reason="Order cancelled by customer")}]})
    o = order(1103, [L(1103, 1, **mug)], shipping=("4.95", "20"), status_id=14, payment_status="partially refunded")
    write("refund_shipping_only", "Late delivery: shipping refunded only",
          {"input": _in(o, transactions=paid(1103, o["total_inc_tax"])),
           "refunds": [{"refund": refund(73, 1103, [{"item_type": "SHIPPING", "item_id": 1, "reason": "Late",
                                                   "requested_amount": 5.94}],
                                         [{"id": 3, "provider_id": "stripe", "amount": 5.94, "offline": False,
                                           "is_declined": False, "declined_message": "", "transaction_id": "11031"}],
                                         total="5.94", tax="0.99")}]})
    o = order(1104, [L(1104, 1, sku="LANTERN-01", name="Solar lantern", price="24.99")], shipping=("3.95", "20"),
              status_id=14, payment_status="partially refunded")
    write("refund_tax_only", "VAT charged in error refunded (tax_adjustment_amount: no items)",
          {"input": _in(o, transactions=paid(1104, o["total_inc_tax"])),
           "refunds": [{"refund": refund(74, 1104, [], [{"id": 4, "provider_id": "stripe", "amount": 5.79,
                                                         "offline": False, "is_declined": False, "declined_message": "",
                                                         "transaction_id": "11041"}],
                                         total="5.79", tax="5.79", reason="VAT-registered buyer, zero-rated export")}]})
    lines = [L(1105, 1, qty=3, **mug), L(1105, 2, sku="PEG-SET", name="Aluminium tent pegs (10)", price="6.49", qty=2)]
    o = order(1105, lines, shipping=("3.95", "20"), status_id=14, payment_status="partially refunded")
    write("refund_two_on_one_order", "Two refunds on one order: distinct references R75 and R76; "
          "the second partly to store credit",
          {"input": _in(o, transactions=paid(1105, o["total_inc_tax"])),
           "refunds": [
               {"refund": refund(75, 1105, [{"item_type": "PRODUCT", "item_id": 1, "quantity": 1, "reason": ""}],
                                 [{"id": 5, "provider_id": "stripe", "amount": 10.20, "offline": False,
                                   "is_declined": False, "declined_message": "", "transaction_id": "11051"}],
                                 total="10.20", tax="1.70")},
               {"refund": refund(76, 1105, [{"item_type": "PRODUCT", "item_id": 2, "quantity": 2, "reason": ""}],
                                 [{"id": 6, "provider_id": "stripe", "amount": 10.00, "offline": False,
                                   "is_declined": False, "declined_message": "", "transaction_id": "11052"},
                                  {"id": 7, "provider_id": "storecredit", "amount": 5.58, "offline": True,
                                   "is_declined": False, "declined_message": "", "transaction_id": "11053"}],
                                 total="15.58", tax="2.60", created="2025-06-12T08:00:00+00:00")}]})
    o = order(1106, [L(1106, 1, sku="LANTERN-01", name="Solar lantern", price="24.99")], shipping=("3.95", "20"),
              status_id=14, payment_status="partially refunded", payment_method="PayPal")
    write("refund_manual_amount", "Goodwill £5 refunded as an amount not tied to items (ORDER item): no VAT",
          {"input": _in(o, transactions=paid(1106, o["total_inc_tax"], gateway="paypalexpress", method="electronic_wallet")),
           "refunds": [{"refund": refund(77, 1106, [{"item_type": "ORDER", "item_id": 1106, "reason": "Goodwill",
                                                   "requested_amount": 5.00}],
                                         [{"id": 8, "provider_id": "paypalexpress", "amount": 5.00, "offline": False,
                                           "is_declined": False, "declined_message": "", "transaction_id": "11061"}],
                                         total="5.00", tax="0")}]})


if __name__ == "__main__":
    main()
