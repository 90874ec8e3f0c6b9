"""Adobe Commerce (Magento 2) records → the neutral commerce model (pure: no Django, no I/O).

Adobe's own rules live here, so no ledger needs to know them (facts: reference/adobe-commerce.md):

* Accounting decisions read the order's ``state``, never its merchant-configurable ``status``.
  An order counts as a sale when its state is one the integration treats as paid (default
  ``processing``, ``complete`` and ``closed``: a fully refunded order was still a sale, and its
  credit memos are posted against it) and money was invoiced and paid (``total_paid``). It posts
  once everything is paid: until then (partial invoicing) it waits with the amount still open.
* Amounts are the order currency's (``grand_total``, ``row_total``…); ``base_*`` are the
  website's base currency, which gives the exchange rate (``base_to_order_rate``).
* ``grand_total`` is what is left to pay after store credit, reward points and gift cards; the
  neutral order total is before them, and they become tenders.
* Header ``discount_amount`` is negative; line ``discount_amount`` is positive. Tax was charged
  after the discount: line gross = row_total + tax + discount_tax_compensation - discount.
* A configurable product is two lines: the parent carries the money (and the chosen variant's
  SKU), the child repeats the SKU at 0 and is skipped. A bundle posts its children when they
  carry the money (dynamic price) and its parent otherwise (fixed price).
* Credit memo amounts are positive; ``adjustment_positive`` is an extra refund not tied to items,
  ``adjustment_negative`` a fee kept back. A memo without ``invoice_id`` is still a credit against
  the order's one Sage invoice: the sync allocates it.
* References use the order's ``entity_id`` (``increment_id`` is unique only per store view).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal

from connector.commerce import (
    Address,
    Charge,
    ChargeKind,
    Discount,
    OrderLine,
    OrderStatus,
    Party,
    RefundItem,
    RefundItemKind,
    RefundPayment,
    StoreOrder,
    StoreRefund,
    StoreTotals,
    TaxDetail,
    Tender,
    TenderKind,
)
from mlcommon.ledger import ZERO, money

STORE_NAME = "Adobe Commerce"
REFERENCE_PREFIX = "AC-"

# Order states (Magento\Sales\Model\Order::STATE_*). Statuses are labels merchants define on them.
PAID_STATES_DEFAULT = frozenset({"processing", "complete", "closed"})
NEVER_A_SALE_STATES = frozenset({"canceled", "pending_payment", "payment_review"})
STATE_NAMES = {
    "new": "New", "pending_payment": "Pending Payment", "processing": "Processing", "complete": "Complete",
    "closed": "Closed", "canceled": "Canceled", "holded": "On Hold", "payment_review": "Payment Review",
}
INVOICE_PAID = 2  # Invoice::STATE_PAID (1 open, 3 canceled)
CREDITMEMO_CANCELED = 3


def order_reference(order_id) -> str:
    return f"{REFERENCE_PREFIX}{order_id}"


def refund_reference(order_id, creditmemo_id) -> str:
    return f"{REFERENCE_PREFIX}{order_id}-R{creditmemo_id}"


def parse_date(value) -> dt.datetime | None:
    """Adobe writes ``YYYY-MM-DD HH:MM:SS`` in UTC with no offset, whatever the store's locale."""
    if not value:
        return None
    if isinstance(value, dt.datetime):
        stamp = value
    else:
        try:
            stamp = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=dt.UTC)


def _ext(record: Mapping) -> Mapping:
    return record.get("extension_attributes") or {}


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def paid_states(configured) -> frozenset[str]:
    """The integration's states that count as paid; state codes only (a BigCommerce numeric
    status id in the setting means nothing here and is ignored)."""
    states = frozenset(str(s).strip().lower() for s in configured or () if isinstance(s, str) and s.strip())
    return states or PAID_STATES_DEFAULT


# -- lines --------------------------------------------------------------------------------------


def _children(items: list[Mapping]) -> dict[str, list[Mapping]]:
    children: dict[str, list[Mapping]] = {}
    for item in items:
        if item.get("parent_item_id") not in (None, "", 0):
            children.setdefault(str(item["parent_item_id"]), []).append(item)
    return children


def _carries_money(item: Mapping) -> bool:
    return money(item.get("row_total")) != ZERO or money(item.get("tax_amount")) != ZERO


def posted_items(items: list[Mapping]) -> list[Mapping]:
    """The lines that carry the sale, each product counted once (see the module docstring)."""
    by_id = {str(item.get("item_id")): item for item in items if item.get("item_id") is not None}
    children = _children(items)
    posted = []
    for item in items:
        parent_id = item.get("parent_item_id")
        if parent_id in (None, "", 0):
            if item.get("product_type") == "bundle" and any(_carries_money(c) for c in
                                                            children.get(str(item.get("item_id")), [])):
                continue  # dynamic-price bundle: its children are the lines
            posted.append(item)
            continue
        parent = by_id.get(str(parent_id)) or item.get("parent_item") or {}
        if parent.get("product_type") == "bundle" and _carries_money(item):
            posted.append(item)
        # configurable children, and fixed-price bundle children, repeat what the parent carries
    return posted


def line_gross(item: Mapping) -> Decimal:
    return (money(item.get("row_total")) + money(item.get("tax_amount"))
            + money(item.get("discount_tax_compensation_amount")) - money(item.get("discount_amount")))


def order_line(item: Mapping) -> OrderLine:
    tax = money(item.get("tax_amount"))
    gross = line_gross(item)
    net = gross - tax
    list_net = money(item.get("row_total"))
    rate = item.get("tax_percent")
    product_id = item.get("product_id")
    return OrderLine(
        line_id=str(item["item_id"]),
        sku=_text(item.get("sku")),
        product_id="" if product_id is None else str(product_id),
        description=_text(item.get("name")),
        quantity=Decimal(str(item.get("qty_ordered") or 0)).normalize() if item.get("qty_ordered") else Decimal(0),
        unit_net=money(item.get("price")),
        list_net=list_net,
        net=net,
        tax=tax,
        discount=max(list_net - net, ZERO) if money(item.get("discount_amount")) > ZERO else ZERO,
        is_gift_certificate=item.get("product_type") == "giftcard",
        tax_detail=None if rate in (None, "") else TaxDetail(rate=Decimal(str(rate)).normalize()),
    )


# -- charges ------------------------------------------------------------------------------------


def _shipping(order: Mapping) -> Charge | None:
    ex_tax = money(order.get("shipping_amount"))
    tax = money(order.get("shipping_tax_amount"))
    gross = (ex_tax + tax + money(order.get("shipping_discount_tax_compensation_amount"))
             - money(order.get("shipping_discount_amount")))
    if gross == ZERO and tax == ZERO:
        return None  # free shipping (or a free-shipping rule): no charge line
    rate = None
    if tax and gross - tax:
        rate = (tax * 100 / (gross - tax)).quantize(Decimal("0.01")).normalize()
    description = _text(order.get("shipping_description"))
    return Charge(kind=ChargeKind.SHIPPING, net=gross - tax, tax=tax, ex_tax=ex_tax,
                  methods=[description] if description else [],
                  tax_detail=TaxDetail(rate=rate) if rate is not None else None)


def _wrapping(order: Mapping) -> Charge | None:
    """Gift wrapping (Adobe Commerce only): per order, per item and the printed card."""
    ext = _ext(order)
    net = money(ext.get("gw_price")) + money(ext.get("gw_items_price")) + money(ext.get("gw_card_price"))
    tax = (money(ext.get("gw_tax_amount")) + money(ext.get("gw_items_tax_amount"))
           + money(ext.get("gw_card_tax_amount")))
    if net == ZERO and tax == ZERO:
        return None
    rate = (tax * 100 / net).quantize(Decimal("0.01")).normalize() if net and tax else None
    return Charge(kind=ChargeKind.WRAPPING, net=net, tax=tax, ex_tax=net,
                  tax_detail=TaxDetail(rate=rate) if rate is not None else None)


# -- party --------------------------------------------------------------------------------------


def _address(fields: Mapping) -> Address:
    street = fields.get("street") or []
    if isinstance(street, str):
        street = street.split("\n")
    return Address(lines=[s.strip() for s in street if s and s.strip()], city=_text(fields.get("city")),
                   region=_text(fields.get("region_code") or fields.get("region")),
                   postcode=_text(fields.get("postcode")), country=_text(fields.get("country_id")).upper())


def _shipping_address(order: Mapping) -> Address | None:
    for assignment in _ext(order).get("shipping_assignments") or []:
        address = ((assignment or {}).get("shipping") or {}).get("address")
        if address and address.get("street"):
            return _address(address)
    return None


def _party(order: Mapping) -> Party:
    billing = order.get("billing_address") or {}
    guest = bool(order.get("customer_is_guest")) or not order.get("customer_id")
    return Party(
        email=_text(order.get("customer_email") or billing.get("email")).lower(),
        first_name=_text(order.get("customer_firstname") or billing.get("firstname")),
        last_name=_text(order.get("customer_lastname") or billing.get("lastname")),
        company=_text(billing.get("company")),
        phone=_text(billing.get("telephone")),
        billing=_address(billing),
        shipping=_shipping_address(order),
        store_customer_id="" if guest else str(order["customer_id"]),
        is_guest=guest,
    )


# -- tenders ------------------------------------------------------------------------------------


def _gift_card_codes(order: Mapping) -> str:
    cards = _ext(order).get("gift_cards")
    if isinstance(cards, list):
        return ", ".join(_text(c.get("code")) for c in cards if isinstance(c, Mapping) and c.get("code"))
    return ""


def _other_tenders(order: Mapping) -> list[Tender]:
    """What settled the order besides money: gift cards, store credit, reward points."""
    ext = _ext(order)
    tenders = []
    if amount := money(ext.get("gift_cards_amount")):
        tenders.append(Tender(kind=TenderKind.GIFT_CERTIFICATE, method="gift card", amount=amount,
                              reference=_gift_card_codes(order)))
    if amount := money(ext.get("customer_balance_amount")):
        tenders.append(Tender(kind=TenderKind.STORE_CREDIT, method="store credit", amount=amount))
    if amount := money(ext.get("reward_currency_amount")):
        points = ext.get("reward_points_balance")
        tenders.append(Tender(kind=TenderKind.STORE_CREDIT, method="reward points", amount=amount,
                              reference=f"{points} points" if points else ""))
    return tenders


def _payment_method(order: Mapping) -> str:
    return _text((order.get("payment") or {}).get("method"))


def _money_tenders(order: Mapping, invoices: list[Mapping]) -> list[Tender]:
    """One tender per paid invoice when the order's invoices are at hand (several, for partial
    invoicing), else one for ``total_paid``."""
    method = _payment_method(order) or "unknown"
    paid = [i for i in invoices if int(i.get("state") or 0) == INVOICE_PAID and money(i.get("grand_total"))]
    if paid:
        return [Tender(kind=TenderKind.PAYMENT, method=method, amount=money(i.get("grand_total")),
                       reference=_text(i.get("transaction_id") or i.get("increment_id")),
                       paid_at=parse_date(i.get("created_at"))) for i in paid]
    if amount := money(order.get("total_paid")):
        return [Tender(kind=TenderKind.PAYMENT, method=method, amount=amount)]
    return []


def payment_pending(order: Mapping, due: Decimal) -> str | None:
    """Rule "paid": nothing posts before the money is in, and a partly invoiced order waits for
    the rest (its Sage invoice must equal the store's grand total)."""
    paid = money(order.get("total_paid"))
    if due <= ZERO:
        return None
    if paid <= ZERO:
        return "nothing is invoiced and paid yet (total_paid is 0)"
    if paid < due:
        return (f"only {paid} of {due} is invoiced and paid so far (partial invoicing); "
                "the order posts once it is fully invoiced")
    return None


def exchange_rate(order: Mapping, currency: str) -> Decimal:
    base = _text(order.get("base_currency_code")).upper() or currency
    if base == currency:
        return Decimal("1")
    return Decimal(str(order.get("base_to_order_rate") or 1)).normalize()


def normalize_order(order: Mapping, *, paid_states_setting=None,
                    invoices: Iterable[Mapping] | None = None) -> StoreOrder:
    """One order (``GET /V1/orders/{id}`` or an item of ``/V1/orders``, money as Decimal or
    numbers), with its invoices (``/V1/invoices`` filtered on order_id) when they are at hand."""
    invoices = list(invoices or [])
    state = _text(order.get("state")).lower()
    states = paid_states(paid_states_setting)
    entity_id = order["entity_id"]
    items = list(order.get("items") or [])
    lines = [order_line(item) for item in posted_items(items)]
    charges = [c for c in (_shipping(order), _wrapping(order)) if c is not None]
    header_discount = -money(order.get("discount_amount"))  # negative on the header
    coupon = _text(order.get("coupon_code"))
    discounts = [Discount("coupon" if coupon else "manual", header_discount)] if header_discount > ZERO else []
    others = _other_tenders(order)
    grand_total = money(order.get("grand_total"))
    total_inc_tax = grand_total + sum((t.amount for t in others), ZERO)
    total_tax = money(order.get("tax_amount"))
    currency = _text(order.get("order_currency_code")).upper()
    increment = _text(order.get("increment_id")) or str(entity_id)
    status_label = _text(order.get("status"))
    result = StoreOrder(
        order_id=str(entity_id),
        reference=order_reference(entity_id),
        label=f"{STORE_NAME} order {increment}",
        store_name=STORE_NAME,
        status=OrderStatus(code=state, name=STATE_NAMES.get(state, state or "unknown")
                           + (f" ({status_label})" if status_label and status_label != state else ""),
                           counts_as_paid=state in states, never_a_sale=state in NEVER_A_SALE_STATES),
        created_at=parse_date(order.get("created_at")),
        modified_at=parse_date(order.get("updated_at")),
        currency=currency,
        exchange_rate=exchange_rate(order, currency),
        channel_id=int(order.get("store_id") or 1),  # the store view; its website comes with the mapping
        party=_party(order),
        lines=lines,
        charges=charges,
        discounts=discounts,
        tenders=_money_tenders(order, invoices) + others,
        totals=StoreTotals(subtotal_ex_tax=money(order.get("subtotal")), total_ex_tax=total_inc_tax - total_tax,
                           total_tax=total_tax, total_inc_tax=total_inc_tax),
        payment_method=_payment_method(order),
        coupon_codes=[coupon] if coupon else [],
        customer_message=_text(order.get("customer_note")),
    )
    result.payment_pending = payment_pending(order, grand_total)
    return result


# -- credit memos -------------------------------------------------------------------------------


def normalize_refund(memo: Mapping, *, order_id=None) -> StoreRefund:
    """One credit memo (``/V1/creditmemos`` item or ``/V1/creditmemo/{id}``). Items that carry no
    money (configurable children, fixed-bundle children) are left out, like on the order."""
    if memo.get("order_id") is not None:
        order_id = memo["order_id"]
    items = []
    for item in memo.get("items") or []:
        if not _carries_money(item) or not Decimal(str(item.get("qty") or 0)):
            continue
        items.append(RefundItem(kind=RefundItemKind.PRODUCT, line_id=str(item.get("order_item_id")),
                                quantity=Decimal(str(item["qty"])).normalize()))
    shipping = (money(memo.get("shipping_amount")) + money(memo.get("shipping_tax_amount"))
                + money(memo.get("shipping_discount_tax_compensation_amount")))
    if shipping:
        items.append(RefundItem(kind=RefundItemKind.SHIPPING, requested_amount=shipping))
    if positive := money(memo.get("adjustment_positive")):
        items.append(RefundItem(kind=RefundItemKind.ORDER, requested_amount=positive, reason="Adjustment refund"))
    if negative := money(memo.get("adjustment_negative")):
        items.append(RefundItem(kind=RefundItemKind.FEE, requested_amount=-negative, reason="Adjustment fee"))
    ext = _ext(memo)
    store_credit = money(ext.get("customer_balance_amount"))
    gift_cards = money(ext.get("gift_cards_amount"))
    cash = money(memo.get("grand_total"))
    payments = []
    if cash:
        # The memo does not name the payment method; the order's method finds the bank account.
        payments.append(RefundPayment(method="", amount=cash, reference=_text(memo.get("transaction_id"))))
    if store_credit:
        payments.append(RefundPayment(method="store credit", amount=store_credit, tender_kind=TenderKind.STORE_CREDIT))
    if gift_cards:
        payments.append(RefundPayment(method="gift card", amount=gift_cards, tender_kind=TenderKind.GIFT_CERTIFICATE))
    memo_id = memo["entity_id"]
    increment = _text(memo.get("increment_id")) or str(memo_id)
    return StoreRefund(
        refund_id=str(memo_id),
        order_id="" if order_id is None else str(order_id),
        order_reference=order_reference(order_id),
        reference=refund_reference(order_id, memo_id),
        label=f"{STORE_NAME} credit memo {increment} of order {order_id}",
        created_at=parse_date(memo.get("created_at")),
        total=cash + store_credit + gift_cards,
        total_tax=money(memo.get("tax_amount")),
        items=items,
        payments=payments,
        reason=_text(memo.get("customer_note")),
    )


def is_canceled_memo(memo: Mapping) -> bool:
    return int(memo.get("state") or 0) == CREDITMEMO_CANCELED
