"""BigCommerce records → the neutral commerce model (pure: no Django, no I/O).

BigCommerce's own rules live here, so no ledger needs to know them: which of an order's figures
is authoritative (``discounted_total_inc_tax``, ``*_cost_inc_tax - *_cost_tax``), what counts as
paid (status ids and a captured payment), which transactions are tenders rather than money, and
the references every Sage document of an order carries (``BC-1001``, ``BC-1001-R7``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from email.utils import parsedate_to_datetime

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

from .orders import order_lines, shipping_methods, tax_rows
from .statuses import ORDER_STATUS_NAMES

STORE_NAME = "BigCommerce"
REFERENCE_PREFIX = "BC-"

# BigCommerce's own "paid" group: Shipped, Partially Shipped, Awaiting Pickup, Awaiting Shipment,
# Completed, Awaiting Fulfillment; plus Refunded and Partially Refunded, because an order refunded
# before it was synced was still a sale: it is posted, and its refunds are posted against it.
DEFAULT_PAID_STATUS_IDS = frozenset({2, 3, 4, 8, 9, 10, 11, 14})
# Never a sale, whatever the configuration says: abandoned, unpaid, declined, cancelled.
NEVER_PAID_STATUS_IDS = frozenset({0, 1, 5, 6})

CAPTURED_PAYMENT_STATUSES = {"captured", "paid", "partially refunded", "refunded"}
UNCAPTURED_PAYMENT_STATUSES = {
    "authorized",
    "capture pending",
    "declined",
    "held for review",
    "pending",
    "void",
    "void pending",
}
CAPTURE_EVENTS = {"capture", "purchase"}
# Transactions that spend a tender rather than move money through a bank account.
TENDER_METHODS = {"gift_certificate": TenderKind.GIFT_CERTIFICATE, "store_credit": TenderKind.STORE_CREDIT}
TENDER_GATEWAYS = {"giftcertificate": TenderKind.GIFT_CERTIFICATE, "storecredit": TenderKind.STORE_CREDIT}

# (order field prefix, neutral kind, /taxes line_item_type)
CHARGES = (
    ("shipping", ChargeKind.SHIPPING, "shipping"),
    ("handling", ChargeKind.HANDLING, "handling"),
    ("wrapping", ChargeKind.WRAPPING, "gift-wrapping"),
)
REFUND_ITEM_KINDS = {
    "PRODUCT": RefundItemKind.PRODUCT,
    "SHIPPING": RefundItemKind.SHIPPING,
    "HANDLING": RefundItemKind.HANDLING,
    "GIFT_WRAPPING": RefundItemKind.WRAPPING,
    "ORDER": RefundItemKind.ORDER,
    "FEE": RefundItemKind.FEE,
}


def order_reference(order_id) -> str:
    return f"{REFERENCE_PREFIX}{order_id}"


def refund_reference(order_id, refund_id) -> str:
    return f"{REFERENCE_PREFIX}{order_id}-R{refund_id}"


_MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}


def _v2_date(text: str) -> dt.datetime | None:
    """The one form v2 writes ('Tue, 03 Jun 2025 09:15:00 +0000'), read without the general
    RFC 2822 parser: every order carries two dates and the backfill reads thousands a second."""
    parts = text.split(" ")
    if len(parts) != 6 or parts[5] != "+0000" or parts[2] not in _MONTHS:
        return None
    clock = parts[4].split(":")
    if len(clock) != 3 or not parts[1].isdigit() or not parts[3].isdigit():
        return None
    try:
        return dt.datetime(int(parts[3]), _MONTHS[parts[2]], int(parts[1]), int(clock[0]), int(clock[1]),
                           int(clock[2]), tzinfo=dt.UTC)
    except ValueError:
        return None


def parse_date(value) -> dt.datetime | None:
    """v2 dates are RFC 2822 in UTC, v3 dates ISO 8601; '' (v2's "never") and junk are None."""
    if not value:
        return None
    if isinstance(value, str) and (stamp := _v2_date(value)) is not None:
        return stamp
    if isinstance(value, dt.datetime):
        stamp = value
    else:
        text = str(value)
        try:
            stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            try:
                stamp = parsedate_to_datetime(text)
            except (TypeError, ValueError):
                return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=dt.UTC)


def tender_kind(transaction: Mapping) -> str | None:
    method = (transaction.get("method") or "").lower()
    gateway = (transaction.get("gateway") or "").lower()
    return TENDER_METHODS.get(method) or TENDER_GATEWAYS.get(gateway)


def is_capture(transaction: Mapping) -> bool:
    """A successful capture or purchase of money (not a gift certificate or store credit spent)."""
    return (transaction.get("event") in CAPTURE_EVENTS and transaction.get("status") == "ok"
            and tender_kind(transaction) is None)


def status_counts_as_paid(order: Mapping, paid_status_ids) -> bool:
    status_id = int(order.get("status_id", -1))
    return status_id in paid_status_ids and status_id not in NEVER_PAID_STATUS_IDS


def needs_transactions(order: Mapping, paid_status_ids) -> bool:
    """A paid-status order whose payment_status is not captured: only the store's payment
    transactions can show a capture. Orders in other statuses are refused on the status alone,
    so they cost no call."""
    if not status_counts_as_paid(order, paid_status_ids):
        return False
    return (order.get("payment_status") or "").strip().lower() not in CAPTURED_PAYMENT_STATUSES | {""}


def payment_pending(order: Mapping, transactions: list[Mapping], amount_due: Decimal) -> str | None:
    """Rule "captured": a status can be set by hand, so the payment must be captured too:
    ``payment_status`` is captured/paid (or refunded later), or a v3 transaction shows a
    successful capture or purchase, or gift certificates / store credit cover the whole total.
    An authorisation, a pending or held payment is refused. An empty ``payment_status`` (offline
    and manual payments such as bank deposit, which the merchant marks paid through the status)
    is accepted. Returns the reason in words, or None."""
    if amount_due <= ZERO or any(is_capture(t) for t in transactions):
        return None
    payment_status = (order.get("payment_status") or "").strip().lower()
    if payment_status in CAPTURED_PAYMENT_STATUSES or payment_status == "":
        return None
    return f"the payment is not captured (payment status '{payment_status}')"


def line_description(line: Mapping) -> str:
    """The line name with its chosen options ("Size: L, Colour: Blue"): variant options and
    modifiers both show up in ``product_options``; modifiers exist nowhere else, so they travel in
    the description for the person who picks and checks the order in Sage."""
    name = (line.get("name_merchant") or line.get("name") or "").strip()
    options = []
    for option in line.get("product_options") or []:
        label = (option.get("display_name_merchant") or option.get("display_name") or "").strip()
        value = (option.get("display_value_merchant") or option.get("display_value") or "").strip()
        if label or value:
            options.append(f"{label}: {value}" if label else value)
    return f"{name} ({', '.join(options)})" if options else name


def _tax_detail(rows: list[dict]) -> TaxDetail | None:
    if not rows:
        return None
    class_id = rows[0].get("tax_class_id")
    return TaxDetail(class_name=rows[0].get("class") or rows[0].get("name"),
                     class_id=None if class_id in (None, "") else str(class_id),
                     rate=sum((Decimal(str(r.get("rate") or 0)) for r in rows), Decimal(0)))


def _unit_cost(line: Mapping) -> Decimal | None:
    for name in ("cost_price_ex_tax", "base_cost_price"):
        if line.get(name) not in (None, ""):
            return Decimal(str(line[name]))
    return None


def order_line(line: Mapping, taxes) -> OrderLine:
    """Rule "discounts live on the line" and "net is gross minus the store's tax".

    Coupons, automatic promotions and manual discounts are all taken off the line they belong
    to: BigCommerce charged tax on the discounted price, and spreads manual order discounts over
    the lines in proportion to price.

    * gross = ``discounted_total_inc_tax`` (after every discount, with tax: BigCommerce's own
      "shopper paid" figure); without it, ``total_inc_tax`` less the line's ``applied_discounts``.
    * tax = ``total_tax`` (the line's tax after discounts), never recomputed from a rate.
    * net = gross - tax, the same for tax-inclusive and tax-exclusive stores.
    * discount = ``total_ex_tax`` (list net) - net; unit_net is ``price_ex_tax`` to the cent.
      A line whose gross is not below its undiscounted ``total_inc_tax`` has no discount.
    """
    tax = money(line.get("total_tax"))
    if line.get("discounted_total_inc_tax") not in (None, ""):
        gross = money(line["discounted_total_inc_tax"])
    else:
        applied = sum((money(d.get("amount")) for d in line.get("applied_discounts") or []), ZERO)
        gross = money(line.get("total_inc_tax")) - applied
    net = gross - tax
    list_net = money(line.get("total_ex_tax"))
    # A line nobody discounted can still show a cent between total_ex_tax and gross - tax
    # (the store rounds each figure on its own); that is not a discount.
    discounted = gross < money(line.get("total_inc_tax"))
    codes = []
    for applied in line.get("applied_discounts") or []:
        if applied.get("code") and applied["code"] not in codes:
            codes.append(applied["code"])
    product_id = line.get("product_id")
    return OrderLine(
        line_id=str(line["id"]),
        sku=(line.get("sku") or "").strip(),
        product_id="" if product_id is None else str(product_id),
        description=line_description(line),
        quantity=Decimal(str(line.get("quantity") or 0)),
        unit_net=money(line.get("price_ex_tax")),
        list_net=list_net,
        net=net,
        tax=tax,
        discount=max(list_net - net, ZERO) if discounted else ZERO,
        is_gift_certificate=line.get("type") == "giftcertificate",
        tax_detail=_tax_detail(tax_rows(taxes, "item", line["id"])),
        unit_cost=_unit_cost(line),
        discount_codes=codes,
    )


def _charges(order: Mapping, taxes) -> list[Charge]:
    """Shipping, handling and gift wrapping: net = ``*_inc_tax`` - ``*_tax``, for the same reason
    as the lines. A free shipping coupon leaves these at zero and the charge is left out."""
    charges = []
    for prefix, kind, line_type in CHARGES:
        gross = money(order.get(f"{prefix}_cost_inc_tax"))
        tax = money(order.get(f"{prefix}_cost_tax"))
        ex_tax = money(order.get(f"{prefix}_cost_ex_tax"))
        if gross == ZERO and tax == ZERO and ex_tax == ZERO:
            continue
        class_id = order.get(f"{prefix}_cost_tax_class_id")
        charges.append(Charge(
            kind=kind, net=gross - tax, tax=tax, ex_tax=ex_tax,
            methods=shipping_methods(order) if prefix == "shipping" else [],
            tax_detail=_tax_detail(tax_rows(taxes, line_type)),
            tax_class_id=None if class_id in (None, "", 0) else str(class_id),
        ))
    return charges


def _address(fields: Mapping) -> Address:
    def text(key):
        return (fields.get(key) or "").strip()

    return Address(lines=[s.strip() for s in (fields.get("street_1"), fields.get("street_2")) if s and s.strip()],
                   city=text("city"), region=text("state"), postcode=text("zip"), country=text("country_iso2").upper())


def _shipping_address(order: Mapping) -> Address | None:
    """The first shipping consignment's address (``include=consignments``); None for an order
    with nothing shipped, or fetched without its consignments."""
    consignments = order.get("consignments")
    for group in consignments if isinstance(consignments, list) else [consignments or {}]:
        if isinstance(group, dict):
            for consignment in group.get("shipping") or []:
                if isinstance(consignment, dict) and consignment.get("street_1"):
                    return _address(consignment)
    return None


def _party(order: Mapping) -> Party:
    billing = order.get("billing_address") or {}
    customer_id = int(order.get("customer_id") or 0)

    def text(key):
        return (billing.get(key) or "").strip()

    return Party(
        email=text("email").lower(),
        first_name=text("first_name"),
        last_name=text("last_name"),
        company=text("company"),
        phone=text("phone"),
        billing=_address(billing),
        shipping=_shipping_address(order),
        store_customer_id=str(customer_id) if customer_id else "",
        is_guest=customer_id == 0,
    )


def _currency(order: Mapping) -> str:
    # default_currency_code is the currency the shopper paid in; currency_code is only the display one.
    return (order.get("default_currency_code") or order.get("currency_code") or "").upper()


def _exchange_rate(order: Mapping, currency: str) -> Decimal:
    base = (order.get("store_default_currency_code") or currency).upper()
    if base == currency:
        return Decimal("1")
    raw = order.get("store_default_to_transactional_exchange_rate") or order.get("currency_exchange_rate") or "1"
    return Decimal(str(raw)).normalize()


def _tenders(order: Mapping, transactions: list[Mapping]) -> list[Tender]:
    """Captured payments (one per successful capture/purchase transaction), then the gift
    certificates and store credit spent, with their codes."""
    tenders = [Tender(kind=TenderKind.PAYMENT,
                      method=t.get("gateway") or t.get("method") or order.get("payment_method") or "unknown",
                      amount=money(t.get("amount")), reference=str(t.get("gateway_transaction_id") or ""),
                      paid_at=parse_date(t.get("date_created")), method_detail=t.get("method") or "")
               for t in transactions if is_capture(t)]
    for kind, field_name, label in ((TenderKind.GIFT_CERTIFICATE, "gift_certificate_amount", "gift certificate"),
                                    (TenderKind.STORE_CREDIT, "store_credit_amount", "store credit")):
        amount = money(order.get(field_name))
        if amount:
            codes = [(t.get("gift_certificate") or {}).get("code") for t in transactions
                     if tender_kind(t) == kind and (t.get("gift_certificate") or {}).get("code")]
            tenders.append(Tender(kind=kind, method=label, amount=amount, reference=", ".join(codes)))
    return tenders


def _coupon_codes(coupons, lines: list[OrderLine]) -> list[str]:
    codes = [c.get("code") for c in coupons or [] if c.get("code")]
    if not codes:
        for line in lines:
            codes += [code for code in line.discount_codes if code not in codes]
    return codes


def normalize_order(order: Mapping, *, paid_status_ids=DEFAULT_PAID_STATUS_IDS, products: list | None = None,
                    coupons: list | None = None, taxes: list | None = None,
                    transactions: Iterable[Mapping] | None = None) -> StoreOrder:
    """One v2 order (``GET /v2/orders/{id}?include=consignments.line_items&consignment_structure=object``,
    or with ``products`` from ``/v2/orders/{id}/products``) with its optional ``coupons`` and
    ``taxes`` (``?details=true``) sub-resources and v3 ``transactions`` (money parsed to Decimal).
    ``paid_status_ids``: the integration's statuses that count as paid. An order fetched without
    its lines has none (the lists of changed orders carry no lines)."""
    transactions = list(transactions or [])
    status_id = int(order.get("status_id", -1))
    lines = [order_line(line, taxes) for line in order_lines(order, products, required=False)]
    currency = _currency(order)
    tenders = _tenders(order, transactions)
    discounts = [Discount(kind, money(order.get(name))) for kind, name in
                 (("coupon", "coupon_discount"), ("manual", "discount_amount")) if money(order.get(name))]
    result = StoreOrder(
        order_id=str(order["id"]),
        reference=order_reference(order["id"]),
        label=f"{STORE_NAME} order {order['id']}",
        store_name=STORE_NAME,
        status=OrderStatus(code=str(status_id),
                           name=order.get("status") or ORDER_STATUS_NAMES.get(status_id, str(status_id)),
                           counts_as_paid=status_id in paid_status_ids,
                           never_a_sale=status_id in NEVER_PAID_STATUS_IDS),
        created_at=parse_date(order.get("date_created")),
        modified_at=parse_date(order.get("date_modified")),
        currency=currency,
        exchange_rate=_exchange_rate(order, currency),
        channel_id=int(order.get("channel_id") or 1),  # BigCommerce's default storefront is channel 1
        party=_party(order),
        lines=lines,
        charges=_charges(order, taxes),
        discounts=discounts,
        tenders=tenders,
        totals=StoreTotals(subtotal_ex_tax=money(order.get("subtotal_ex_tax")),
                           total_ex_tax=money(order.get("total_ex_tax")),
                           total_tax=money(order.get("total_tax")),
                           total_inc_tax=money(order.get("total_inc_tax"))),
        payment_method=order.get("payment_method") or "",
        coupon_codes=_coupon_codes(coupons, lines),
        customer_message=(order.get("customer_message") or "").strip(),
    )
    result.payment_pending = payment_pending(order, transactions, result.amount_due)
    return result


def normalize_refund(refund: Mapping, *, order_id=None) -> StoreRefund:
    """One v3 refund (``GET /v3/orders/payment_actions/refunds``, money as Decimal or strings);
    ``order_id`` when the refund does not name its order. Declined payments are left out: no
    money went back through them."""
    items = []
    for item in refund.get("items") or []:
        item_type = (item.get("item_type") or "").upper()
        quantity, requested = item.get("quantity"), item.get("requested_amount")
        items.append(RefundItem(
            kind=REFUND_ITEM_KINDS.get(item_type, RefundItemKind.ORDER),
            line_id="" if item.get("item_id") is None else str(item["item_id"]),
            quantity=Decimal(str(quantity)) if quantity else None,
            requested_amount=None if requested is None else money(requested),
            adjustments=sum((money(a.get("amount")) for a in item.get("adjustments") or []), ZERO),
            reason=item.get("reason") or "",
        ))
    payments = []
    for payment in refund.get("payments") or []:
        if payment.get("is_declined"):
            continue
        provider = payment.get("provider_id") or ""
        payments.append(RefundPayment(method=provider, amount=money(payment.get("amount")),
                                      tender_kind=TENDER_GATEWAYS.get(provider.lower(), TenderKind.PAYMENT),
                                      reference=str(payment.get("transaction_id") or "")))
    if refund.get("order_id") is not None:
        order_id = refund["order_id"]
    return StoreRefund(
        refund_id=str(refund["id"]),
        order_id="" if order_id is None else str(order_id),
        order_reference=order_reference(order_id),
        reference=refund_reference(order_id, refund["id"]),
        label=f"{STORE_NAME} refund {refund['id']} of order {order_id}",
        created_at=parse_date(refund.get("created")),
        total=money(refund.get("total_amount")),
        total_tax=money(refund.get("total_tax")),
        items=items,
        payments=payments,
        reason=refund.get("reason") or "",
    )
