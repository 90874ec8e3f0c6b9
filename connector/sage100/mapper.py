"""Store order (the neutral commerce model) → Sage 100 sales order (pure: no Django, no I/O, no store).

Shape of the document (``mlcommon.ledger.SalesOrder`` with its Sage 100 fields):

- ``sales_order_no``: 7 characters, derived from the store order id alone (``sales_order_no``), so
  every run of the same order names the same Sage record; the agent and the SOAP client look it up
  before they create anything, and the flow keeps it in the order's record link.
- ``ar_division_no`` + ``customer_no``: the customer the record links already know, the one web
  customer, or blank for the agent to match by email or create.
- ``customer_po_no``: the store's order number. Ship-to from the shipping address (else billing).
- lines: one per product line, ``ItemCode`` through the item mapping, quantity, unit price (ex tax,
  after the line's discounts); chosen options go into the line comment.
- ``freight``: shipping + handling + wrapping, ex tax. ``discount``: an order discount the store did
  not spread over its lines.
- sales tax, per the integration: the store's tax (as its lines and charges carry it, see
  ``_store_tax``) as a misc-charge line (``/TAX``) on a non-taxable order, or Sage's own tax
  schedule with the store's tax carried in ``store_tax`` so Sage's figure is shown beside it.
- comment lines: the order's label, payment, coupons, gift certificates and store credit spent, the
  shopper's message.

The order total (``SalesOrder.order_total``) must equal the store's total to the cent: a difference
within the rounding tolerance (the store's own rounding) becomes a ``/ROUND`` misc-charge line;
anything else is ``TotalsMismatch``, which holds the record with the difference shown.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal
from zoneinfo import ZoneInfo

from connector.commerce import ChargeKind, OrderLine, StoreOrder, TenderKind
from mlcommon.ledger import (
    ZERO,
    Customer,
    DocumentLine,
    LineKind,
    SalesOrder,
    ShipTo,
    TaxMode,
)

from .errors import MissingMapping, NeedsMapping, NotPostable, TotalsMismatch
from .mappings import (
    CUSTOMER_PO_LENGTH,
    ITEM_CODE_LENGTH,
    SALES_ORDER_NO_LENGTH,
    WEB_CUSTOMER,
    Sage100Mappings,
)

TAXABLE, NON_TAXABLE = "TX", "NT"  # Sage 100 tax classes on a line
_BASE36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
OVERFLOW_MARK = "Z"  # a number that is not the order id in decimal starts with it after the prefix


def sales_order_no(order_id: str, prefix: str = "W") -> str:
    """The 7-character SalesOrderNo of a store order: the prefix and the order id in decimal,
    zero-padded (``W001001``). A larger id becomes the prefix, ``Z`` and the id in base 36
    (``WZ0LFLS``: one to one up to 60 million with a 1-character prefix), never equal to a decimal
    number. Anything else (not a number, or larger still) gets a base-36 digest: stable, and a
    collision is caught by the look-up before create (the order found carries another PO number)."""
    width = SALES_ORDER_NO_LENGTH - len(prefix)
    text = str(order_id).strip()
    if text.isdigit() and len(str(int(text))) <= width:
        return f"{prefix}{int(text):0{width}d}"
    value = int(text) if text.isdigit() else -1
    if not 0 <= value < 36 ** (width - 1):  # neither fits: a digest (only then can two ids collide)
        value = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
    digits = ""
    for _ in range(width - 1):
        value, rest = divmod(value, 36)
        digits = _BASE36[rest] + digits
    return f"{prefix}{OVERFLOW_MARK}{digits}"


def split_customer_ref(ref: str) -> tuple[str, str]:
    """"01-ABF" → ("01", "ABF"): how a division and customer number are kept in one record link."""
    division, _, number = ref.partition("-")
    if not number:
        raise ValueError(f"{ref!r} is not a Sage 100 customer (division-customer number, e.g. 01-ABF)")
    return division, number


def not_postable_reason(order: StoreOrder) -> str | None:
    status = order.status
    if status.never_a_sale or not status.counts_as_paid:
        return f"order status '{status.name}' (id {status.code}) does not count as paid"
    return order.payment_pending


def local_date(moment: dt.datetime | None, timezone: str) -> dt.date:
    if moment is None:
        raise ValueError("the order has no creation date")
    return moment.astimezone(ZoneInfo(timezone)).date()


class _Problems:
    def __init__(self):
        self.items: list[MissingMapping] = []

    def add(self, kind: str, key: str, message: str) -> None:
        if all((m.kind, m.key) != (kind, key) for m in self.items):
            self.items.append(MissingMapping(kind, key, message))


def _customer(order: StoreOrder, mappings: Sage100Mappings, customer_ref: str | None,
              problems: _Problems) -> tuple[Customer, str, str]:
    party = order.party
    rule = mappings.customers
    division, number = rule.division, ""
    if rule.mode == WEB_CUSTOMER:
        if not rule.web_customer_no:
            problems.add("customer", "web_customer",
                         "the integration posts to one web customer but none is set: add its customer number "
                         "under the integration's Sage 100 settings")
        number = rule.web_customer_no
    elif customer_ref:
        division, number = split_customer_ref(customer_ref)
    customer = Customer(
        email=party.email, name=party.name or party.company or party.email,
        account_ref=f"{division}-{number}" if number else None, company=party.company, phone=party.phone,
        address_lines=list(party.billing.lines), city=party.billing.city, region=party.billing.region,
        postcode=party.billing.postcode, country=party.billing.country, currency=order.currency,
        is_guest=party.is_guest,
    )
    return customer, division, number


def _ship_to(order: StoreOrder) -> ShipTo:
    party = order.party
    address = party.shipping or party.billing
    return ShipTo(name=party.name or party.company, address_lines=list(address.lines), city=address.city,
                  region=address.region, postcode=address.postcode, country=address.country)


def _item_code(order: StoreOrder, line: OrderLine, mappings: Sage100Mappings, problems: _Problems) -> str:
    if line.is_gift_certificate:
        return mappings.items.gift_certificate
    where = f"order {order.order_id}, line '{line.description}'"
    if not line.sku:
        problems.add("item", f"product {line.product_id or None}",
                     f"line '{line.description}' (order {order.order_id}) has no SKU in {order.store_name}: give "
                     "the product a SKU, then map it under Mappings → Item mappings")
        return ""
    code = mappings.items.lookup(line.sku)
    if code:
        return code
    if not mappings.items.same_code_fallback:
        problems.add("item", line.sku, f"SKU '{line.sku}' ({where}) has no Sage 100 item code: add it under "
                                       "Mappings → Item mappings, or turn on 'same code' fallback")
        return ""
    if len(line.sku) > ITEM_CODE_LENGTH:
        problems.add("item", line.sku, f"SKU '{line.sku}' ({where}) is longer than {ITEM_CODE_LENGTH} characters, "
                                       "too long for a Sage 100 item code: map it under Mappings → Item mappings")
        return ""
    return line.sku.upper()


def _item_lines(order: StoreOrder, mappings: Sage100Mappings, problems: _Problems) -> list[DocumentLine]:
    if not order.lines:
        raise ValueError(f"order {order.order_id} has no line items: fetch it with its lines")
    lines = []
    for line in order.lines:
        code = _item_code(order, line, mappings, problems)
        description = line.description if mappings.options_in_comment or line.is_gift_certificate else ""
        lines.append(DocumentLine(
            kind=LineKind.SERVICE if line.is_gift_certificate else LineKind.ITEM,
            description=description, quantity=line.quantity, unit_net=line.unit_net, net=line.net, tax=line.tax,
            tax_code=TAXABLE if line.tax and mappings.tax_mode == TaxMode.SAGE_TAX_SCHEDULE else NON_TAXABLE,
            stock_code=code, store_line_id=line.line_id, discount=line.discount,
        ))
    return lines


def _ship_via(order: StoreOrder, mappings: Sage100Mappings, problems: _Problems) -> str:
    shipping = next((charge for charge in order.charges if charge.kind == ChargeKind.SHIPPING), None)
    methods = shipping.methods if shipping else []
    if not methods:
        return mappings.default_ship_via
    for key, code in mappings.ship_via.items():
        if key.strip().lower() == methods[0].strip().lower():
            return code
    if mappings.default_ship_via:
        return mappings.default_ship_via
    problems.add("ship_via", methods[0], f"shipping method '{methods[0]}' (order {order.order_id}) has no Sage 100 "
                                         "ship-via code: map it under the integration's Sage 100 settings, or set "
                                         "a default ship-via code")
    return ""


def _warehouse(order: StoreOrder, mappings: Sage100Mappings, problems: _Problems) -> str:
    code = mappings.warehouses.get(str(order.channel_id)) or mappings.default_warehouse
    if not code:
        problems.add("warehouse", str(order.channel_id),
                     f"sales channel {order.channel_id} has no Sage 100 warehouse: map it, or set a default warehouse")
    return code


def _comments(order: StoreOrder) -> list[str]:
    comments = [order.label]
    if order.payment_method:
        comments.append(f"Paid by {order.payment_method}")
    if order.coupon_codes:
        comments.append(f"Coupons: {', '.join(order.coupon_codes)}")
    for kind, words in ((TenderKind.GIFT_CERTIFICATE, "Gift certificates"), (TenderKind.STORE_CREDIT, "Store credit")):
        if order.tendered(kind):
            comments.append(f"{words} applied: {order.currency} {order.tendered(kind)}")
    if order.customer_message:
        comments.append(f"Customer message: {order.customer_message}")
    return comments


def _store_tax(order: StoreOrder) -> Decimal:
    """The tax the store charged, as its lines and charges carry it: their net + tax is what the
    order total is made of. A store's total tax can miss that sum by a few cents (tax-inclusive
    prices rounded per line) or, with a coupon in a tax-inclusive store, by the coupon's tax; the
    lines are what the shopper paid. Only an order discount the store did not spread over its lines
    takes tax off outside them: then the order's own total tax is the one."""
    undistributed = order.discount_total > ZERO and not any(line.discount for line in order.lines)
    if undistributed:
        return order.totals.total_tax
    return sum((line.tax for line in order.lines), ZERO) + sum((charge.tax for charge in order.charges), ZERO)


def map_sales_order(order: StoreOrder, *, mappings: Sage100Mappings, customer_ref: str | None = None) -> SalesOrder:
    """One store order → its Sage 100 sales order. ``customer_ref`` ("01-ABF") is the customer the
    record links keep for the buyer's email. Raises NotPostable, NeedsMapping or TotalsMismatch."""
    reference = order.reference
    reason = not_postable_reason(order)
    if reason:
        raise NotPostable(reference, reason)
    problems = _Problems()
    customer, division, number = _customer(order, mappings, customer_ref, problems)
    lines = _item_lines(order, mappings, problems)
    ship_via = _ship_via(order, mappings, problems)
    warehouse = _warehouse(order, mappings, problems)
    if problems.items:
        raise NeedsMapping(reference, problems.items)

    store_total, store_tax = order.totals.total_inc_tax, _store_tax(order)
    freight = sum((charge.net for charge in order.charges), ZERO)
    tax_mode = mappings.tax_mode
    if tax_mode == TaxMode.STORE_TAX_LINE and store_tax:
        lines.append(DocumentLine(kind=LineKind.SERVICE, description="Sales tax (as the store charged it)",
                                  quantity=Decimal("1"), unit_net=store_tax, net=store_tax, tax=ZERO,
                                  tax_code=NON_TAXABLE, stock_code=mappings.tax_item_code))
    items_net = sum((line.net for line in lines), ZERO)
    tax_outside_lines = ZERO if tax_mode == TaxMode.STORE_TAX_LINE else store_tax
    excess = items_net + freight + tax_outside_lines - store_total
    discount = ZERO
    if excess > ZERO and order.discount_total > ZERO and not any(line.discount for line in order.lines):
        discount = excess  # an order discount the store did not spread over its lines
    document = SalesOrder(
        reference=reference, date=local_date(order.created_at, mappings.timezone), currency=order.currency,
        lines=lines, customer=customer, order_id=order.order_id, store_total=store_total,
        notes=order.label, sales_order_no=sales_order_no(order.order_id, mappings.sales_order_prefix),
        ar_division_no=division, customer_no=number, customer_po_no=str(order.order_id)[:CUSTOMER_PO_LENGTH],
        ship_to=_ship_to(order), ship_via=ship_via, warehouse_code=warehouse, freight=freight, discount=discount,
        tax_mode=tax_mode,
        tax_schedule=mappings.tax_schedule, store_tax=store_tax, comments=_comments(order),
        customer_numbering=mappings.customers.numbering,
    )
    difference = store_total - document.order_total
    if difference and mappings.rounding_item_code and abs(difference) <= mappings.rounding_tolerance:
        lines.append(DocumentLine(kind=LineKind.ROUNDING, description="Rounding (the store's own)",
                                  quantity=Decimal("1"), unit_net=difference, net=difference, tax=ZERO,
                                  tax_code=NON_TAXABLE, stock_code=mappings.rounding_item_code))
    if document.order_total != store_total:
        raise TotalsMismatch(reference, store_total, document.order_total,
                             f"Check the order in {order.store_name}: its lines, charges, discounts and tax do not add "
                             "up to its total.")
    return document
