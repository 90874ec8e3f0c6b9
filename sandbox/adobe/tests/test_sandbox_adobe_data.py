"""The seeded store has the shapes the connector must handle, its figures add up like Magento's,
and writes through the API (invoice, refund, comment, stock) behave like a real store's."""

from __future__ import annotations

from decimal import Decimal

from sandbox.adobe import render
from sandbox.adobe.store import AdobeCommerceStore
from sandbox.adobe.testkit import ANCHOR


def _d(value) -> Decimal:
    return Decimal(str(value))


def _header_adds_up(doc: dict, extra: Decimal = Decimal(0), prefix: str = "") -> None:
    p = prefix
    total = (_d(doc[f"{p}subtotal"]) + _d(doc[f"{p}shipping_amount"]) + _d(doc[f"{p}tax_amount"])
             + _d(doc[f"{p}discount_amount"]) + extra)
    assert total == _d(doc[f"{p}grand_total"]), (doc["entity_id"], p)


def test_seeded_history_has_every_shape():
    store = AdobeCommerceStore(seed=3, orders=300, anchor=ANCHOR)
    docs = [render.order(o) for o in store.orders.values()]
    assert any(d["base_currency_code"] != d["order_currency_code"] for d in docs)  # multi-currency
    assert any(d["customer_is_guest"] == 1 and "customer_id" not in d for d in docs)  # guests
    items = [i for d in docs for i in d["items"]]
    parents = {i["item_id"]: i for i in items if i["product_type"] == "configurable"}
    children = [i for i in items if i.get("parent_item_id") in parents]
    assert children and all(i["price"] == 0 and i["sku"] == parents[i["parent_item_id"]]["sku"] for i in children)
    assert all(i["parent_item"]["item_id"] == i["parent_item_id"] for i in children)
    bundles = [i for i in items if i["product_type"] == "bundle"]
    assert {b["price"] == 0 for b in bundles} == {True, False}  # dynamic (children priced) and fixed
    assert any(len(o.invoices) >= 2 for o in store.orders.values())  # partial invoicing
    memos = list(store.creditmemos.values())
    assert any(m.invoice_id is None for m in memos) and any(m.invoice_id for m in memos)
    assert any(m.totals.adjustment_positive.order for m in memos)
    assert any(m.totals.adjustment_negative.order for m in memos)
    discounted = [d for d in docs if d["discount_amount"]]
    assert discounted and all(d["discount_amount"] < 0 for d in discounted)
    assert all(i["discount_amount"] >= 0 for i in items)
    assert any(d["shipping_tax_amount"] > 0 for d in docs)
    assert any("gift_cards" in d["extension_attributes"] for d in docs)
    assert any("customer_balance_amount" in d["extension_attributes"] for d in docs)
    assert any(d["is_virtual"] == 1 and "shipping_assignments" not in d["extension_attributes"] for d in docs)
    assert {d["state"] for d in docs} >= {"new", "processing", "complete", "closed", "canceled", "holded"}


def test_every_document_adds_up_in_both_currencies():
    store = AdobeCommerceStore(seed=5, orders=200, anchor=ANCHOR)
    for order in store.orders.values():
        doc = render.order(order)
        ext = doc["extension_attributes"]
        for p in ("", "base_"):
            less = -_d(ext.get(f"{p}gift_cards_amount", 0)) - _d(ext.get(f"{p}customer_balance_amount", 0))
            _header_adds_up(doc, less, p)
        if order.invoices and all(i.qty_invoiced >= i.qty_ordered for i in order.money_items()):
            for side in ("order", "base"):
                assert sum(getattr(i.totals.grand_total, side) for i in order.invoices) == \
                    getattr(order.totals.grand_total, side)
        for invoice in order.invoices:
            idoc = render.invoice(invoice, order)
            iext = idoc.get("extension_attributes", {})
            _header_adds_up(idoc, -_d(iext.get("gift_cards_amount", 0)) - _d(iext.get("customer_balance_amount", 0)))
            assert sum(_d(i["row_total"]) for i in idoc["items"]) == _d(idoc["subtotal"])
        for memo in order.creditmemos:
            cdoc = render.creditmemo(memo, order)
            _header_adds_up(cdoc, _d(cdoc["adjustment_positive"]) - _d(cdoc["adjustment_negative"]))
            assert cdoc["grand_total"] > 0  # credit memo amounts are positive
        assert order.refunded().order <= order.paid().order


def test_same_seed_same_history():
    one = AdobeCommerceStore(seed=9, orders=40, anchor=ANCHOR)
    two = AdobeCommerceStore(seed=9, orders=40, anchor=ANCHOR)
    assert [render.order(o) for o in one.orders.values()] == [render.order(o) for o in two.orders.values()]
    other = AdobeCommerceStore(seed=10, orders=40, anchor=ANCHOR)
    assert [render.order(o) for o in one.orders.values()] != [render.order(o) for o in other.orders.values()]


def test_shared_increment_sequence_reproduces_cross_store_collisions():
    store = AdobeCommerceStore(seed=1, orders=60, anchor=ANCHOR, shared_increment_sequence=True)
    seen: dict[str, set[int]] = {}
    for order in store.orders.values():
        seen.setdefault(order.increment_id, set()).add(order.store.id)
    assert any(len(stores) > 1 for stores in seen.values())
    plain = AdobeCommerceStore(seed=1, orders=60, anchor=ANCHOR)
    assert len({o.increment_id for o in plain.orders.values()}) == 60


def test_partial_invoice_then_offline_and_online_refunds_through_the_api(adobe):
    placed = adobe.control("POST", "/orders", {"store": "default", "customer_id": 1, "payment_method": "braintree",
                                               "lines": [{"sku": "24-MB01", "qty": 3}, {"sku": "MH01-S-Black",
                                                                                        "qty": 1}]}).json()
    order_id = placed["entity_id"]
    first = placed["items"][0]
    r = adobe.call("POST", f"order/{order_id}/invoice", body={"capture": True, "items": [
        {"order_item_id": first["item_id"], "qty": 1}]})
    assert r.status_code == 200, r.text
    invoice_id = int(r.json())
    after_first = adobe.get(f"orders/{order_id}").json()
    assert after_first["state"] == "processing"
    assert after_first["total_paid"] == adobe.get(f"invoices/{invoice_id}").json()["grand_total"]
    second = adobe.call("POST", f"order/{order_id}/invoice", body={"capture": True})
    order = adobe.get(f"orders/{order_id}").json()
    invoices = [adobe.get(f"invoices/{invoice_id}").json(), adobe.get(f"invoices/{int(second.json())}").json()]
    assert _d(invoices[0]["grand_total"]) + _d(invoices[1]["grand_total"]) == _d(order["grand_total"])
    assert order["total_due"] == 0
    too_much = adobe.call("POST", f"order/{order_id}/invoice", body={"capture": True})
    assert too_much.status_code == 400
    offline = adobe.call("POST", f"order/{order_id}/refund", body={
        "items": [{"order_item_id": first["item_id"], "qty": 1}], "arguments": {"shipping_amount": 0}})
    assert offline.status_code == 200, offline.text
    memo = adobe.get(f"creditmemo/{int(offline.json())}").json()
    assert "invoice_id" not in memo and memo["order_id"] == order_id
    online = adobe.call("POST", f"invoice/{invoice_id}/refund", body={"arguments": {"adjustment_positive": 1}})
    assert online.status_code == 200, online.text
    online_memo = adobe.get(f"creditmemo/{int(online.json())}").json()
    assert online_memo["invoice_id"] == invoice_id
    assert [i["qty"] for i in online_memo["items"]] == [1]  # what the invoice billed, not the whole order
    assert adobe.get(f"orders/{order_id}").json()["state"] == "processing"
    # The extra 1.00 refunded online has to be kept back now, or the refund exceeds what was paid.
    rest = adobe.call("POST", f"order/{order_id}/refund", body={"arguments": {"adjustment_negative": 1}})
    assert rest.status_code == 200, rest.text
    closed = adobe.get(f"orders/{order_id}").json()
    assert closed["state"] == "closed" and closed["total_refunded"] == closed["total_paid"]
    over = adobe.call("POST", f"order/{order_id}/refund", body={"arguments": {"adjustment_positive": 5}})
    assert over.status_code == 400


def test_online_refund_of_an_offline_payment_is_refused(adobe):
    placed = adobe.control("POST", "/orders", {"store": "uk", "payment_method": "checkmo",
                                               "lines": [{"sku": "24-MB02", "qty": 1}]}).json()
    invoice = adobe.control("POST", f"/orders/{placed['entity_id']}/invoice", {}).json()
    r = adobe.call("POST", f"invoice/{invoice['entity_id']}/refund", body={})
    assert r.status_code == 400


def test_comments_and_stock_writes(adobe):
    order_id = next(iter(adobe.app.store.orders))
    r = adobe.call("POST", f"orders/{order_id}/comments", body={"statusHistory": {
        "comment": "Posted to Sage 50 as invoice 10042", "is_customer_notified": 0, "is_visible_on_front": 0,
        "parent_id": order_id}})
    assert (r.status_code, r.json()) == (200, True)
    comments = adobe.get(f"orders/{order_id}/comments").json()["items"]
    assert comments[-1]["comment"] == "Posted to Sage 50 as invoice 10042"
    posted = adobe.call("POST", "inventory/source-items", body={"sourceItems": [
        {"sku": "24-MB01", "source_code": "default", "quantity": 42, "status": 1}]})
    assert (posted.status_code, posted.json()) == (200, [])
    listed = adobe.get("inventory/source-items", {
        "searchCriteria[filter_groups][0][filters][0][field]": "sku",
        "searchCriteria[filter_groups][0][filters][0][value]": "24-MB01"}).json()
    assert [i["quantity"] for i in listed["items"] if i["source_code"] == "default"] == [42]
    stock = adobe.get("stockItems/24-MB02").json()
    put = adobe.call("PUT", f"products/24-MB02/stockItems/{stock['item_id']}", body={"stockItem": {
        "qty": 7, "is_in_stock": True}})
    assert (put.status_code, put.json()) == (200, stock["item_id"])
    assert adobe.get("stockItems/24-MB02").json()["qty"] == 7
    adobe.control("POST", "/settings", {"msi_enabled": False})
    assert adobe.get("inventory/source-items", {"searchCriteria": ""}).status_code == 404


def test_store_structure(adobe):
    views = adobe.get("store/storeViews").json()
    assert [v["code"] for v in views] == ["admin", "default", "french", "uk"]
    assert [w["code"] for w in adobe.get("store/websites").json()] == ["admin", "base", "uk_site"]
    configs = {c["code"]: c for c in adobe.get("store/storeConfigs").json()}
    assert configs["french"]["base_currency_code"] == "USD"
    assert configs["french"]["default_display_currency_code"] == "EUR"
    assert configs["uk"]["base_currency_code"] == "GBP"
    only = adobe.get("store/storeConfigs", {"storeCodes[0]": "uk"}).json()
    assert [c["code"] for c in only] == ["uk"]
