"""JSON bodies exactly as BigCommerce sends them: v2 (string money, RFC-2822 dates, link objects)
and v3 (numbers, ISO-8601 dates, ``data``/``meta`` envelopes)."""

from __future__ import annotations

from decimal import Decimal

from .formats import iso8601, rfc2822, v2_money, v3_money
from .models import CURRENCIES, STATUSES, Customer, Hook, Order, OrderLine, Refund, Transaction

STATUS_DESCRIPTIONS = {
    0: "An incomplete order happens when a shopper reached the payment page, but did not complete the "
       "transaction.",
    1: "Customer started the checkout process, but did not complete it.",
    2: "Order has been shipped, but receipt has not been confirmed; seller has used the Ship Items action.",
    3: "Only some items in the order have been shipped.",
    4: "Seller has used the Refund action.",
    5: "Seller has cancelled an order, due to a stock inconsistency or other reasons.",
    6: "Seller has marked the order as declined for lack of manual payment, or other reasons.",
    7: "Customer has completed checkout process, but payment has yet to be confirmed.",
    8: "Order has been pulled, and is awaiting customer pickup from a seller-specified location.",
    9: "Order has been pulled and packaged, and is awaiting collection from a shipping provider.",
    10: "Client has paid for their digital product and their file(s) are available for download.",
    11: "Customer has completed the checkout process and payment has been confirmed.",
    12: "Order is on hold while some aspect needs to be manually confirmed.",
    13: "Customer has initiated a dispute resolution process for the PayPal transaction.",
    14: "Seller has partially refunded the order.",
}


def _link(base_url: str, resource: str) -> dict:
    return {"url": f"{base_url}/v2{resource}", "resource": resource}


def order_status(status_id: int) -> dict:
    name = STATUSES[status_id]
    return {"id": status_id, "name": name, "system_label": name, "custom_label": name,
            "system_description": STATUS_DESCRIPTIONS[status_id]}


def order_v2(order: Order, base_url: str, include: set[str] = frozenset()) -> dict:
    f = order.figures
    m = v2_money
    currency_id, fx = CURRENCIES[order.currency]
    body = {
        "id": order.id,
        "customer_id": order.customer_id,
        "date_created": rfc2822(order.date_created),
        "date_modified": rfc2822(order.date_modified),
        "date_shipped": rfc2822(order.date_shipped),
        "status_id": order.status_id,
        "status": STATUSES[order.status_id],
        "subtotal_ex_tax": m(f.subtotal_ex),
        "subtotal_inc_tax": m(f.subtotal_inc),
        "subtotal_tax": m(f.subtotal_tax),
        "base_shipping_cost": m(f.shipping.inc if order.inclusive else f.shipping.ex),
        "shipping_cost_ex_tax": m(f.shipping.ex),
        "shipping_cost_inc_tax": m(f.shipping.inc),
        "shipping_cost_tax": m(f.shipping.tax),
        "shipping_cost_tax_class_id": 2,
        "base_handling_cost": m(f.handling.inc if order.inclusive else f.handling.ex),
        "handling_cost_ex_tax": m(f.handling.ex),
        "handling_cost_inc_tax": m(f.handling.inc),
        "handling_cost_tax": m(f.handling.tax),
        "handling_cost_tax_class_id": 2,
        "base_wrapping_cost": m(f.wrapping.inc if order.inclusive else f.wrapping.ex),
        "wrapping_cost_ex_tax": m(f.wrapping.ex),
        "wrapping_cost_inc_tax": m(f.wrapping.inc),
        "wrapping_cost_tax": m(f.wrapping.tax),
        "wrapping_cost_tax_class_id": 3,
        "total_ex_tax": m(f.total_ex),
        "total_inc_tax": m(f.total_inc),
        "total_tax": m(f.total_tax),
        "items_total": sum(ln.quantity for ln in order.lines),
        "items_shipped": sum(ln.quantity_shipped for ln in order.lines),
        "payment_method": order.payment_method,
        "payment_provider_id": f"pi_{order.id:010d}" if order.payment_status else "",
        "payment_status": order.payment_status,
        # Documented as "always returns 0" since 2022: refunds are only visible through v3.
        "refunded_amount": m(Decimal("0")),
        "order_is_digital": False,
        "store_credit_amount": m(order.store_credit_amount),
        "gift_certificate_amount": m(order.gift_certificate_amount),
        "ip_address": order.ip_address,
        "ip_address_v6": "",
        "geoip_country": order.billing["country"],
        "geoip_country_iso2": order.billing["country_iso2"],
        "currency_id": currency_id,
        "currency_code": order.currency,
        "currency_exchange_rate": "1.0000000000",
        "default_currency_id": currency_id,
        "default_currency_code": order.currency,
        "store_default_currency_code": "USD",
        "store_default_to_transactional_exchange_rate": f"{fx:.10f}",
        "staff_notes": order.staff_notes,
        "customer_message": order.customer_message,
        "discount_amount": m(f.discount_amount),
        "coupon_discount": m(f.coupon_discount),
        "shipping_address_count": 1,
        "is_deleted": order.is_deleted,
        "ebay_order_id": "0",
        "cart_id": f"cart-{order.id:08d}",
        "billing_address": {**order.billing, "form_fields": []},
        "is_email_opt_in": False,
        "credit_card_type": None,
        "order_source": order.order_source,
        "channel_id": order.channel_id,
        "external_source": None,
        "external_id": None,
        "external_merchant_id": None,
        "external_order_id": "",
        "tax_provider_id": "BasicTaxProvider",
        "customer_locale": "en",
        "store_default_currency_id": 1,
        "is_tax_inclusive_pricing": order.inclusive,
        "products": _link(base_url, f"/orders/{order.id}/products"),
        "shipping_addresses": _link(base_url, f"/orders/{order.id}/shipping_addresses"),
        "coupons": _link(base_url, f"/orders/{order.id}/coupons"),
    }
    if "consignments" in include or "consignments.line_items" in include:
        shipping = shipping_address_v2(order, base_url, numbers=True)
        if "consignments.line_items" in include:
            shipping["line_items"] = [order_product_v2(order, ln) for ln in order.lines]
        else:
            shipping["line_items"] = [_link(base_url, f"/orders/{order.id}/products/{ln.id}") for ln in order.lines]
        shipping.pop("order_id", None)
        shipping.pop("shipping_quotes", None)
        shipping["shipping_quotes"] = _link(
            base_url, f"/orders/{order.id}/consignments/shipping/{order.address_id}/shipping_quotes")
        body["consignments"] = {"pickups": [], "shipping": [shipping], "downloads": [],
                                "email": {"gift_certificates": []}}
    if "fees" in include:
        body["fees"] = []
    return body


def order_product_v2(order: Order, line: OrderLine) -> dict:
    lf = line.figures
    m = v2_money
    discounts = []
    for name, amount in lf.discounts.items():
        if name == "coupon" and order.coupon:
            discounts.append({"id": str(order.coupon["coupon_id"]), "amount": m(amount), "name": order.coupon["code"],
                              "code": order.coupon["code"], "target": "order"})
        else:
            discounts.append({"id": "manual-discount", "amount": m(amount), "name": "Manual Discount",
                              "code": None, "target": "order"})
    product, variant = line.product, line.variant
    return {
        "id": line.id,
        "order_id": order.id,
        "product_id": product.id,
        "variant_id": variant.id,
        "order_pickup_method_id": 0,
        "order_address_id": order.address_id,
        "name": product.name,
        "name_customer": product.name,
        "name_merchant": product.name,
        "sku": variant.sku,
        "upc": "",
        "type": "physical",
        "base_price": m(line.base_price),
        "price_ex_tax": m(lf.unit.ex),
        "price_inc_tax": m(lf.unit.inc),
        "price_tax": m(lf.unit.tax),
        "base_total": m(lf.base_total),
        "total_ex_tax": m(lf.total_ex),
        "total_inc_tax": m(lf.total_inc),
        "total_tax": m(lf.total_tax),
        "weight": m(product.weight),
        "width": m(Decimal(0)),
        "height": m(Decimal(0)),
        "depth": m(Decimal(0)),
        "quantity": line.quantity,
        "base_cost_price": m(product.cost_price),
        "cost_price_inc_tax": m(product.cost_price),
        "cost_price_ex_tax": m(product.cost_price),
        "cost_price_tax": m(Decimal(0)),
        "is_refunded": line.quantity_refunded == line.quantity,
        "quantity_refunded": line.quantity_refunded,
        "refund_amount": m(Decimal(0)),  # deprecated: always 0
        "return_id": 0,
        "wrapping_id": 1 if line.wrapping else 0,
        "wrapping_name": "Gift wrap" if line.wrapping else None,
        "base_wrapping_cost": m(line.wrapping),
        "wrapping_cost_ex_tax": m(lf.wrapping.ex),
        "wrapping_cost_inc_tax": m(lf.wrapping.inc),
        "wrapping_cost_tax": m(lf.wrapping.tax),
        "wrapping_message": "Happy birthday" if line.wrapping else "",
        "quantity_shipped": line.quantity_shipped,
        "event_name": None,
        "event_date": None,
        "fixed_shipping_cost": m(Decimal(0)),
        "ebay_item_id": "",
        "ebay_transaction_id": "",
        "option_set_id": None,
        "parent_order_product_id": None,
        "is_bundled_product": False,
        "bin_picking_number": "",
        "external_id": None,
        "brand": "",
        "gift_certificate_id": None,
        "applied_discounts": discounts,
        "product_options": list(line.options),
        "configurable_fields": [],
        "discounted_total_inc_tax": m(lf.discounted_total_inc),
    }


def shipping_address_v2(order: Order, base_url: str, numbers: bool = False) -> dict:
    """One shipping address. The consignment form of it (``numbers=True``) carries money as numbers,
    as its schema in orders.v2 says, unlike the shipping_addresses sub-resource."""
    f = order.figures
    m = v3_money if numbers else v2_money
    addr = order.shipping_address
    return {
        "id": order.address_id,
        "order_id": order.id,
        **{k: addr[k] for k in ("first_name", "last_name", "company", "street_1", "street_2", "city", "state",
                                "zip", "country", "country_iso2", "phone", "email")},
        "items_total": sum(ln.quantity for ln in order.lines),
        "items_shipped": sum(ln.quantity_shipped for ln in order.lines),
        "shipping_method": order.shipping_method,
        "base_cost": m(f.shipping.inc if order.inclusive else f.shipping.ex),
        "cost_ex_tax": m(f.shipping.ex),
        "cost_inc_tax": m(f.shipping.inc),
        "cost_tax": m(f.shipping.tax),
        "cost_tax_class_id": 2,
        "base_handling_cost": m(f.handling.inc if order.inclusive else f.handling.ex),
        "handling_cost_ex_tax": m(f.handling.ex),
        "handling_cost_inc_tax": m(f.handling.inc),
        "handling_cost_tax": m(f.handling.tax),
        "handling_cost_tax_class_id": 2,
        "shipping_zone_id": 1,
        "shipping_zone_name": order.billing["country"],
        "form_fields": [],
        "shipping_quotes": _link(base_url, f"/orders/{order.id}/shipping_addresses/{order.address_id}/shipping_quotes"),
    }


def coupons_v2(order: Order) -> list[dict]:
    if not order.coupon:
        return []
    c = order.coupon
    return [{"id": c["id"], "coupon_id": c["coupon_id"], "order_id": order.id, "code": c["code"],
             "amount": v2_money(c["amount"]), "type": c["type"], "discount": float(order.figures.coupon_discount)}]


def taxes_v2(order: Order) -> list[dict]:
    """Tax rows; their ``line_amount`` values add up to the order's ``total_tax``."""
    if not order.tax_rate:
        return []
    f = order.figures
    rate = v2_money(order.tax_rate * 100)
    name = {"GBP": "VAT", "EUR": "MwSt", "CAD": "HST"}.get(order.currency, "Sales Tax")
    rows = []

    def row(amount: Decimal, kind: str, product_id: int | None, tax_class: str, class_id: int):
        rows.append({
            "id": order.id * 100 + len(rows) + 1, "order_id": order.id, "order_address_id": order.address_id,
            "tax_rate_id": 1, "sales_tax_id": "", "tax_class_id": class_id, "name": name, "class": tax_class,
            "rate": rate, "priority": 0, "priority_amount": v2_money(amount), "line_amount": v2_money(amount),
            "order_pickup_method_id": 0, "order_product_id": str(product_id or ""), "line_item_type": kind,
        })

    for ln in order.lines:
        row(ln.figures.discounted_tax, "item", ln.id, "Default Tax Class", 0)
        if ln.wrapping:
            row(ln.figures.wrapping.tax, "gift-wrapping", ln.id, "Gift Wrapping", 3)
    if f.shipping.inc:
        row(f.shipping.tax, "shipping", None, "Shipping", 2)
    if f.handling.inc:
        row(f.handling.tax, "handling", None, "Shipping", 2)
    return rows


# -- v3 -------------------------------------------------------------------------------------------
def transaction_v3(t: Transaction) -> dict:
    body = {
        "id": t.id, "order_id": str(t.order_id), "event": t.event, "method": t.method,
        "amount": v3_money(t.amount), "currency": t.currency, "gateway": t.gateway,
        "gateway_transaction_id": f"gw_{t.id:08d}", "date_created": iso8601(t.date_created), "test": True,
        "status": t.status, "fraud_review": False, "payment_method_id": t.gateway,
        "offline": None, "custom": None, "payment_instrument_token": None, "provider_instrument_token": None,
        "provider_customer_id": None, "gift_certificate": None, "store_credit": None,
        "custom_provider_field_result": None,
    }
    if t.method == "credit_card":
        body["credit_card"] = {"card_type": "visa", "card_iin": "411111", "card_last4": "1111",
                               "card_expiry_month": 12, "card_expiry_year": 2030}
        body["avs_result"] = {"code": "M", "message": "Street address and postal code match",
                              "street_match": "Match", "postal_match": "Match"}
        body["cvv_result"] = {"code": "M", "message": "CVV matches"}
    if t.method == "offline":
        body["offline"] = {"display_name": "Cash on Delivery"}
    body.update(t.extra)
    return body


def refund_v3(r: Refund) -> dict:
    items = []
    for item in r.items:
        out = {"item_type": item["item_type"], "item_id": item["item_id"], "reason": r.reason,
               "requested_amount": v3_money(item["amount"]), "adjustments": []}
        if item["item_type"] == "PRODUCT":
            out["quantity"] = item["quantity"]
        items.append(out)
    return {
        "id": r.id, "order_id": r.order_id, "user_id": 0, "created": iso8601(r.created), "reason": r.reason,
        "total_amount": v3_money(r.total_amount), "total_tax": v3_money(r.total_tax),
        "uses_merchant_override_values": False, "items": items,
        "payments": [{**p, "amount": v3_money(p["amount"])} for p in r.payments],
    }


def customer_v3(c: Customer) -> dict:
    return {
        "id": c.id, "email": c.email, "first_name": c.first_name, "last_name": c.last_name, "company": c.company,
        "phone": c.phone, "registration_ip_address": "", "notes": c.notes, "tax_exempt_category": "",
        "customer_group_id": c.customer_group_id, "date_created": iso8601(c.date_created),
        "date_modified": iso8601(c.date_modified), "address_count": 0, "attribute_count": 0,
        "authentication": {"force_password_reset": False},
        "accepts_product_review_abandoned_cart_emails": False,
        "store_credit_amounts": [{"amount": v3_money(c.store_credit)}], "origin_channel_id": 1,
    }


def hook_v3(h: Hook, store_hash: str) -> dict:
    return {"id": h.id, "client_id": h.client_id, "store_hash": store_hash, "scope": h.scope,
            "destination": h.destination, "headers": h.headers, "is_active": h.is_active,
            "created_at": h.created_at, "updated_at": h.updated_at}


def pagination(total: int, page: int, limit: int, count: int, url: str) -> dict:
    pages = max(1, -(-total // limit)) if limit else 1
    links = {"current": f"?page={page}&limit={limit}"}
    if page > 1:
        links["previous"] = f"?page={page - 1}&limit={limit}"
    if page < pages:
        links["next"] = f"?page={page + 1}&limit={limit}"
    return {"total": total, "count": count, "per_page": limit, "current_page": page, "total_pages": pages,
            "links": links}
