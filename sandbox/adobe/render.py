"""Records → Magento REST JSON, field names and shapes as the admin schema (2.4.8/2.4.9) gives them.

Magento's output processor leaves out a field whose getter returns null unless the interface
declares it required (``DataObjectProcessor``), so optional nulls are dropped here too, while the
required-but-null payment fields (``account_status``, ``cc_last4``) come out as ``null`` like on a
real store. Money goes out as JSON numbers (Magento's ``float``); it is ``Decimal`` until here.
"""

from __future__ import annotations

from decimal import Decimal

from .models import (
    Address,
    Comment,
    CreditMemo,
    DocItem,
    Invoice,
    LegacyStockItem,
    Order,
    OrderItem,
    Pair,
    Product,
    SourceItem,
    StoreGroup,
    StoreView,
    Totals,
    Website,
    stamp,
)


def num(value: Decimal) -> float | int:
    """A JSON number the way PHP's json_encode writes a float: 12.5, 10 (not 10.0)."""
    value = Decimal(value)
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def _clean(record: dict) -> dict:
    return {k: v for k, v in record.items() if v is not None}


def _pair(out: dict, name: str, value: Pair) -> None:
    out[name] = num(value.order)
    out[f"base_{name}"] = num(value.base)


def address(a: Address, parent_id: int) -> dict:
    return _clean({
        "address_type": a.address_type, "city": a.city, "company": a.company, "country_id": a.country_id,
        "customer_address_id": a.entity_id if a.customer_id else None, "customer_id": a.customer_id,
        "email": a.email, "entity_id": a.entity_id, "firstname": a.firstname, "lastname": a.lastname,
        "parent_id": parent_id, "postcode": a.postcode, "region": a.region, "region_code": a.region_code,
        "region_id": 12 if a.country_id == "US" else None, "street": list(a.street), "telephone": a.telephone,
    })


def history(c: Comment) -> dict:
    return _clean({
        "comment": c.comment, "created_at": stamp(c.created_at), "entity_id": c.entity_id,
        "entity_name": c.entity_name, "is_customer_notified": c.is_customer_notified,
        "is_visible_on_front": c.is_visible_on_front, "parent_id": c.parent_id, "status": c.status,
    })


def order_item(o: Order, i: OrderItem, embed_parent: bool = True) -> dict:
    a = i.amounts
    out = {
        "amount_refunded": num(i.refunded.row_total.order), "base_amount_refunded": num(i.refunded.row_total.base),
        "base_cost": num(i.product.cost) if i.carries_money else 0,
        "created_at": stamp(i.created_at or o.created_at), "updated_at": stamp(o.updated_at),
        "discount_percent": num(i.discount_percent), "free_shipping": 0, "is_qty_decimal": 0,
        "is_virtual": 1 if i.product_type == "virtual" else 0, "item_id": i.item_id, "name": i.name,
        "no_discount": 0, "order_id": o.entity_id, "product_id": i.product.id, "product_type": i.product_type,
        "qty_canceled": num(i.qty_canceled), "qty_invoiced": num(i.qty_invoiced), "qty_ordered": num(i.qty_ordered),
        "qty_refunded": num(i.qty_refunded), "qty_shipped": num(i.qty_shipped), "quote_item_id": i.item_id + 5000,
        "sku": i.sku, "store_id": o.store.id, "tax_percent": num(i.tax_percent),
        "row_weight": num(i.qty_ordered), "weight": 1,
    }
    _pair(out, "price", a.price)
    _pair(out, "original_price", a.price)
    _pair(out, "price_incl_tax", Pair(a.price.order + (a.tax.order / i.qty_ordered if i.qty_ordered else 0),
                                      a.price.base + (a.tax.base / i.qty_ordered if i.qty_ordered else 0))
          .share(Decimal(1), Decimal(1)))
    _pair(out, "row_total", a.row_total)
    _pair(out, "row_total_incl_tax", a.row_incl_tax)
    _pair(out, "tax_amount", a.tax)
    _pair(out, "discount_amount", a.discount)  # positive on lines
    _pair(out, "row_invoiced", i.invoiced.row_total)
    _pair(out, "tax_invoiced", i.invoiced.tax)
    _pair(out, "discount_invoiced", i.invoiced.discount)
    _pair(out, "tax_refunded", i.refunded.tax)
    _pair(out, "discount_refunded", i.refunded.discount)
    out["base_discount_tax_compensation_amount"] = out["discount_tax_compensation_amount"] = 0
    if i.parent_item_id is not None:
        out["parent_item_id"] = i.parent_item_id
        if embed_parent:
            parent = next(p for p in o.items if p.item_id == i.parent_item_id)
            out["parent_item"] = order_item(o, parent, embed_parent=False)
    if i.product_option:
        out["product_option"] = i.product_option
    if i.bundle_price_type:
        out["product_option"] = {"extension_attributes": {"bundle_options": [
            {"option_id": n + 1, "option_qty": 1, "option_selections": [child.item_id]}
            for n, child in enumerate(x for x in o.items if x.parent_item_id == i.item_id)]}}
    return out


def _header_totals(out: dict, t: Totals) -> None:
    _pair(out, "subtotal", t.subtotal)
    _pair(out, "subtotal_incl_tax", t.subtotal_incl_tax)
    _pair(out, "tax_amount", t.tax)
    _pair(out, "shipping_amount", t.shipping)
    _pair(out, "shipping_tax_amount", t.shipping_tax)
    _pair(out, "shipping_incl_tax", t.shipping_incl_tax)
    _pair(out, "discount_amount", t.discount)  # negative on headers
    _pair(out, "grand_total", t.grand_total)
    out["discount_tax_compensation_amount"] = out["base_discount_tax_compensation_amount"] = 0
    out["shipping_discount_tax_compensation_amount"] = out["base_shipping_discount_tax_compensation_amnt"] = 0


def order(o: Order, nested: bool = True) -> dict:
    """The order as ``GET /V1/orders/{id}`` shows it; ``nested=False`` gives only the scalar columns
    (what searchCriteria filters and sorts on), which is much cheaper."""
    t = o.totals
    paid, invoiced, refunded = o.paid(), o.invoiced(), o.refunded()
    out = {
        "entity_id": o.entity_id, "increment_id": o.increment_id, "state": o.state, "status": o.status,
        "created_at": stamp(o.created_at), "updated_at": stamp(o.updated_at), "store_id": o.store.id,
        "store_name": f"{o.store.name}\n{o.store.name}", "customer_email": o.customer_email,
        "customer_firstname": o.customer_firstname, "customer_lastname": o.customer_lastname,
        "customer_group_id": o.customer_group_id, "customer_is_guest": 1 if o.is_guest else 0,
        "customer_note_notify": 1, "customer_id": o.customer_id,
        "base_currency_code": o.base_currency, "global_currency_code": "USD", "order_currency_code": o.order_currency,
        "store_currency_code": o.base_currency, "base_to_global_rate": 1 if o.base_currency == "USD" else 1.27,
        "base_to_order_rate": num(o.base_to_order_rate), "store_to_base_rate": 0,
        "store_to_order_rate": 0, "email_sent": 1, "is_virtual": 1 if o.is_virtual else 0,
        "protect_code": f"{o.entity_id:06x}", "quote_id": o.quote_id, "remote_ip": o.remote_ip,
        "billing_address_id": o.billing.entity_id, "shipping_description": o.shipping_description or None,
        "total_item_count": len([i for i in o.items if i.parent_item_id is None]),
        "total_qty_ordered": num(sum(i.qty_ordered for i in o.items)),
        "weight": num(sum(i.qty_ordered for i in o.items if i.product_type != "virtual")),
        "coupon_code": o.coupon_code, "discount_description": o.discount_description,
        "applied_rule_ids": "1" if o.coupon_code else None,
    }
    _header_totals(out, t)
    if o.invoices:
        _pair(out, "total_invoiced", invoiced)
        _pair(out, "total_paid", paid)
        _pair(out, "subtotal_invoiced", sum((i.totals.subtotal for i in o.invoices), Pair()))
        _pair(out, "tax_invoiced", sum((i.totals.tax for i in o.invoices), Pair()))
        _pair(out, "shipping_invoiced", o.shipping_invoiced())
        _pair(out, "discount_invoiced", sum((i.totals.discount for i in o.invoices), Pair()))
    _pair(out, "total_due", t.grand_total - paid)
    if o.creditmemos:
        _pair(out, "total_refunded", refunded)
        _pair(out, "total_offline_refunded", o.refunded_offline())
        _pair(out, "total_online_refunded", refunded - o.refunded_offline())
        _pair(out, "subtotal_refunded", sum((c.totals.subtotal for c in o.creditmemos), Pair()))
        _pair(out, "tax_refunded", sum((c.totals.tax for c in o.creditmemos), Pair()))
        _pair(out, "shipping_refunded", o.shipping_refunded())
        _pair(out, "discount_refunded", sum((c.totals.discount for c in o.creditmemos), Pair()))
        _pair(out, "adjustment_positive", sum((c.totals.adjustment_positive for c in o.creditmemos), Pair()))
        _pair(out, "adjustment_negative", sum((c.totals.adjustment_negative for c in o.creditmemos), Pair()))
    if o.state == "canceled":
        _pair(out, "total_canceled", t.grand_total - invoiced)
    if not nested:
        return _clean(out)
    out["items"] = [order_item(o, i) for i in o.items]
    out["billing_address"] = address(o.billing, o.entity_id)
    out["payment"] = _clean({
        "account_status": None, "additional_information": [o.payment_title], "cc_last4": None,
        "method": o.payment_method, "entity_id": o.entity_id, "parent_id": o.entity_id,
        "amount_ordered": num(t.grand_total.order), "base_amount_ordered": num(t.grand_total.base),
        "amount_paid": num(paid.order) if o.invoices else None,
        "base_amount_paid": num(paid.base) if o.invoices else None,
        "amount_refunded": num(refunded.order) if o.creditmemos else None,
        "base_amount_refunded": num(refunded.base) if o.creditmemos else None,
        "shipping_amount": num(t.shipping.order), "base_shipping_amount": num(t.shipping.base),
        "last_trans_id": next((i.transaction_id for i in o.invoices if i.transaction_id), None),
    })
    # Required by the interface, so Magento writes them even when null.
    out["payment"]["account_status"] = None
    out["payment"]["cc_last4"] = None
    out["status_histories"] = [history(c) for c in sorted(o.histories, key=lambda c: (c.created_at, c.entity_id),
                                                          reverse=True)]
    ext: dict = {}
    if o.shipping_address is not None:
        total = {}
        _pair(total, "shipping_amount", t.shipping)
        _pair(total, "shipping_tax_amount", t.shipping_tax)
        _pair(total, "shipping_incl_tax", t.shipping_incl_tax)
        _pair(total, "shipping_invoiced", o.shipping_invoiced())
        _pair(total, "shipping_refunded", o.shipping_refunded())
        _pair(total, "shipping_discount_amount", Pair())
        ext["shipping_assignments"] = [{
            "shipping": {"address": address(o.shipping_address, o.entity_id), "method": o.shipping_method,
                         "total": total},
            "items": [order_item(o, i) for i in o.items],
        }]
    ext["payment_additional_info"] = [{"key": "method_title", "value": o.payment_title}]
    rate = o.store.tax_rate
    if rate:
        ext["applied_taxes"] = [{"code": f"{o.store.country}-TAX", "title": f"{o.store.country}-TAX",
                                 "percent": num(rate), "amount": num(t.tax.order), "base_amount": num(t.tax.base)}]
        ext["item_applied_taxes"] = [
            {"type": "product", "item_id": i.item_id, "applied_taxes": [
                {"code": f"{o.store.country}-TAX", "title": f"{o.store.country}-TAX", "percent": num(rate),
                 "amount": num(i.amounts.tax.order), "base_amount": num(i.amounts.tax.base)}]}
            for i in o.money_items()]
        if t.shipping_tax.order:
            ext["item_applied_taxes"].append({"type": "shipping", "applied_taxes": [
                {"code": f"{o.store.country}-TAX", "title": f"{o.store.country}-TAX", "percent": num(rate),
                 "amount": num(t.shipping_tax.order), "base_amount": num(t.shipping_tax.base)}]})
    ext["converting_from_quote"] = False
    if o.gift_cards:
        ext["gift_cards"] = [{"id": g.id, "code": g.code, "amount": num(g.amount.order),
                              "base_amount": num(g.amount.base)} for g in o.gift_cards]
        _pair(ext, "gift_cards_amount", t.gift_cards)
        _pair(ext, "gift_cards_invoiced", sum((i.totals.gift_cards for i in o.invoices), Pair()))
    if t.customer_balance.order:
        _pair(ext, "customer_balance_amount", t.customer_balance)
        _pair(ext, "customer_balance_invoiced", sum((i.totals.customer_balance for i in o.invoices), Pair()))
    out["extension_attributes"] = ext
    return _clean(out)


def _doc_item(d: DocItem, extra: dict) -> dict:
    a, i = d.amounts, d.order_item
    out = {"entity_id": d.entity_id, "parent_id": d.parent_id, "order_item_id": i.item_id, "sku": i.sku,
           "name": i.name, "product_id": i.product.id, "qty": num(d.qty),
           "base_cost": num(i.product.cost) if i.carries_money else 0}
    _pair(out, "price", a.price if i.carries_money else Pair())
    _pair(out, "price_incl_tax", (a.price if i.carries_money else Pair()) + Pair(
        a.tax.order / d.qty if d.qty else 0, a.tax.base / d.qty if d.qty else 0).share(Decimal(1), Decimal(1)))
    _pair(out, "row_total", a.row_total)
    _pair(out, "row_total_incl_tax", a.row_incl_tax)
    _pair(out, "tax_amount", a.tax)
    _pair(out, "discount_amount", a.discount)  # positive on lines
    out["discount_tax_compensation_amount"] = out["base_discount_tax_compensation_amount"] = 0
    out.update(extra)
    return out


def _doc_header(out: dict, o: Order, t: Totals) -> None:
    out.update({"base_currency_code": o.base_currency, "order_currency_code": o.order_currency,
                "store_currency_code": o.base_currency, "global_currency_code": "USD",
                "base_to_order_rate": num(o.base_to_order_rate), "base_to_global_rate": 1,
                "store_to_base_rate": 0, "store_to_order_rate": 0, "billing_address_id": o.billing.entity_id,
                "email_sent": 1})
    if o.shipping_address is not None:
        out["shipping_address_id"] = o.shipping_address.entity_id
    _header_totals(out, t)
    if o.discount_description and t.discount.order:
        out["discount_description"] = o.discount_description


def invoice(inv: Invoice, o: Order) -> dict:
    out = {"entity_id": inv.entity_id, "increment_id": inv.increment_id, "order_id": inv.order_id,
           "store_id": inv.store_id, "state": inv.state, "created_at": stamp(inv.created_at),
           "updated_at": stamp(inv.updated_at), "can_void_flag": 0, "is_used_for_refund": 0,
           "total_qty": num(sum(d.qty for d in inv.items if d.order_item.parent_item_id is None))}
    if inv.transaction_id:
        out["transaction_id"] = inv.transaction_id
    _doc_header(out, o, inv.totals)
    refunded = sum((c.totals.grand_total for c in o.creditmemos if c.invoice_id == inv.entity_id), Pair())
    if refunded.order:
        out["base_total_refunded"] = num(refunded.base)
        out["is_used_for_refund"] = 1
    out["items"] = [_doc_item(d, {"order_item_id": d.order_item.item_id}) for d in inv.items]
    out["comments"] = [{"comment": c.comment, "created_at": stamp(c.created_at), "entity_id": c.entity_id,
                        "is_customer_notified": c.is_customer_notified, "is_visible_on_front": c.is_visible_on_front,
                        "parent_id": c.parent_id} for c in inv.comments]
    ext = {}
    if inv.totals.gift_cards.order:
        _pair(ext, "gift_cards_amount", inv.totals.gift_cards)
    if inv.totals.customer_balance.order:
        _pair(ext, "customer_balance_amount", inv.totals.customer_balance)
    if ext:
        out["extension_attributes"] = ext
    return out


def creditmemo(cm: CreditMemo, o: Order) -> dict:
    t = cm.totals
    out = {"entity_id": cm.entity_id, "increment_id": cm.increment_id, "order_id": cm.order_id,
           "store_id": cm.store_id, "state": cm.state, "creditmemo_status": cm.state,
           "created_at": stamp(cm.created_at), "updated_at": stamp(cm.updated_at)}
    if cm.invoice_id is not None:  # offline credit memos made against the order carry none
        out["invoice_id"] = cm.invoice_id
    if cm.transaction_id:
        out["transaction_id"] = cm.transaction_id
    _doc_header(out, o, t)
    _pair(out, "adjustment_positive", t.adjustment_positive)
    _pair(out, "adjustment_negative", t.adjustment_negative)
    _pair(out, "adjustment", t.adjustment_positive - t.adjustment_negative)
    out["items"] = [_doc_item(d, {}) for d in cm.items]
    out["comments"] = [history(c) | {"entity_name": None} for c in cm.comments]
    for c in out["comments"]:
        c.pop("entity_name", None)
        c.pop("status", None)
    return out


def website(w: Website) -> dict:
    return {"id": w.id, "code": w.code, "name": w.name, "default_group_id": w.default_group_id}


def store_group(g: StoreGroup) -> dict:
    return {"id": g.id, "website_id": g.website_id, "root_category_id": g.root_category_id,
            "default_store_id": g.default_store_id, "name": g.name, "code": g.code}


def store_view(v: StoreView) -> dict:
    return {"id": v.id, "code": v.code, "name": v.name, "website_id": v.website_id, "store_group_id": v.group_id,
            "is_active": v.is_active}


def store_config(v: StoreView, base_currency: str, base_url: str) -> dict:
    root = base_url.rstrip("/") + "/"
    return {"id": v.id, "code": v.code, "website_id": v.website_id, "locale": v.locale,
            "base_currency_code": base_currency, "default_display_currency_code": v.display_currency,
            "timezone": v.timezone, "weight_unit": "lbs" if v.country == "US" else "kgs",
            "base_url": root, "base_link_url": root, "base_static_url": root + "static/",
            "base_media_url": root + "media/", "secure_base_url": root, "secure_base_link_url": root,
            "secure_base_static_url": root + "static/", "secure_base_media_url": root + "media/"}


def product(p: Product) -> dict:
    """A catalog product as ``GET /V1/products`` lists it (the fields a stock push asks about)."""
    out = {"id": p.id, "sku": p.sku, "name": p.name, "attribute_set_id": 4, "price": num(p.base_price),
           "status": 1, "visibility": 1 if p.parent_id else 4, "type_id": p.type_id}
    if p.updated_at is not None:
        out["updated_at"] = stamp(p.updated_at)
    return out


def source_item(s: SourceItem) -> dict:
    return {"sku": s.sku, "source_code": s.source_code, "quantity": num(s.quantity), "status": s.status}


def stock_item(s: LegacyStockItem) -> dict:
    return {
        "item_id": s.item_id, "product_id": s.product_id, "stock_id": s.stock_id, "qty": num(s.qty),
        "is_in_stock": s.is_in_stock, "is_qty_decimal": False, "show_default_notification_message": False,
        "use_config_min_qty": True, "min_qty": 0, "use_config_min_sale_qty": 1, "min_sale_qty": 1,
        "use_config_max_sale_qty": True, "max_sale_qty": 10000, "use_config_backorders": True, "backorders": 0,
        "use_config_notify_stock_qty": True, "notify_stock_qty": 1, "use_config_qty_increments": True,
        "qty_increments": 0, "use_config_enable_qty_inc": True, "enable_qty_increments": False,
        "use_config_manage_stock": True, "manage_stock": True, "low_stock_date": None,
        "is_decimal_divided": False, "stock_status_changed_auto": 0,
    }


def customer(c: dict) -> dict:
    address_id = c["id"] + 100000
    return _clean({
        "id": c["id"], "group_id": c["group_id"], "created_at": stamp(c["created_at"]),
        "updated_at": stamp(c["updated_at"]), "created_in": "Default Store View", "email": c["email"],
        "firstname": c["firstname"], "lastname": c["lastname"], "store_id": c["store_id"],
        "website_id": c["website_id"], "default_billing": str(address_id), "default_shipping": str(address_id),
        "disable_auto_group_change": 0,
        "addresses": [_clean({
            "id": address_id, "customer_id": c["id"], "region": {"region_code": c["region_code"],
                                                                 "region": c["region"], "region_id": 0},
            "region_id": 0, "country_id": c["country"], "street": [c["street"]], "company": c["company"],
            "telephone": c["telephone"], "postcode": c["postcode"], "city": c["city"],
            "firstname": c["firstname"], "lastname": c["lastname"], "default_shipping": True,
            "default_billing": True})],
    })
