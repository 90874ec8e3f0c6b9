"""Store order / refund (the neutral commerce model) → Sage 50 ledger documents (pure: no Django,
no I/O, no store).

``map_order`` turns a paid order into the customer, the sales invoice and the receipt(s) for the
captured payment; ``map_refund`` turns one refund into a credit note against that invoice and the
refund payment(s). The rules themselves live in ``rules.py``; the references the documents carry
are the store adapter's (``StoreOrder.reference``, ``StoreRefund.reference``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from connector.commerce import (
    Charge,
    ChargeKind,
    OrderLine,
    RefundItemKind,
    StoreOrder,
    StoreRefund,
    TenderKind,
)
from mlcommon.ledger import (
    ZERO,
    CreditNote,
    Customer,
    DocumentLine,
    LineKind,
    Receipt,
    Refund,
    SalesInvoice,
    Tender,
    money,
)

from . import rules
from .errors import MissingMapping, NeedsMapping, NotPostable, TotalsMismatch
from .mappings import (
    BASE_CURRENCY,
    WEB_SALES_ACCOUNT,
    WITHOUT_EMAIL_HOLD,
    WITHOUT_EMAIL_WEB_SALES,
    Sage50Mappings,
    norm,
)


@dataclass
class OrderPosting:
    customer: Customer
    invoice: SalesInvoice
    receipts: list[Receipt] = field(default_factory=list)
    accounts_used: str = ""  # for the record's trail: the channel's own accounts or the defaults

    @property
    def receipt(self) -> Receipt | None:
        return self.receipts[0] if self.receipts else None


@dataclass
class RefundPosting:
    credit_note: CreditNote
    refunds: list[Refund] = field(default_factory=list)
    accounts_used: str = ""

    @property
    def refund(self) -> Refund | None:
        return self.refunds[0] if self.refunds else None


class _Problems:
    def __init__(self):
        self.items: list[MissingMapping] = []

    def add(self, kind: str, key: str, message: str):
        if all((m.kind, m.key) != (kind, key) for m in self.items):
            self.items.append(MissingMapping(kind, key, message))

    def extend(self, items):
        for m in items:
            self.add(m.kind, m.key, m.message)

    def raise_if_any(self, reference: str):
        if self.items:
            raise NeedsMapping(reference, self.items)


def local_date(moment: dt.datetime | None, timezone: str) -> dt.date:
    """Sage wants the local date of the store's moment."""
    if moment is None:
        raise ValueError("missing date")
    return moment.astimezone(ZoneInfo(timezone)).date()


# --- customer --------------------------------------------------------------------------------


def build_customer(order: StoreOrder, mappings: Sage50Mappings, problems: _Problems, account_ref=None):
    """Rule "customer": the billing address is the customer. Under ``match_or_create`` the agent
    matches the Sage account by email (or creates it) unless a linked ``account_ref`` is known;
    under ``web_sales_account`` (or for guests when ``guests_to_web_sales``) every order goes to
    the web-sales account of its currency, keeping the shopper's details on the invoice."""
    party, currency = order.party, order.currency
    strategy = mappings.customers
    if _converts(order, mappings):
        currency = norm(strategy.base_currency)  # the document is converted: its account is in the base
    # Rule "no email": a buyer is matched by a linked store customer id or by email, never by name.
    # With neither, the web-sales account of the currency, or the record is held (per integration).
    anonymous = not party.email and not account_ref and not party.store_customer_id
    if anonymous and strategy.without_email == WITHOUT_EMAIL_HOLD:
        problems.add(
            "customer",
            "no email",
            f"Order {order.order_id} has no email address and no {order.store_name} customer account, so it "
            "cannot be matched to a Sage customer: add the email in the store and replay it, or send such "
            "orders to the web-sales account (Integration → Buyers without email)",
        )
    if strategy.mode == WEB_SALES_ACCOUNT or (party.is_guest and strategy.guests_to_web_sales) or (
            anonymous and strategy.without_email == WITHOUT_EMAIL_WEB_SALES):
        account_ref = None
        for key, ref in strategy.web_sales_accounts.items():
            if norm(key) == currency:
                account_ref = ref
        if not account_ref:
            problems.add(
                "customer_account",
                currency,
                f"Order {order.order_id} is in {currency} but no web-sales customer account is set for "
                f"{currency}: add it under Mappings → Customers",
            )
    return Customer(
        email=party.email,
        name=party.name or party.company or party.email,
        account_ref=account_ref,
        company=party.company,
        phone=party.phone,
        address_lines=list(party.billing.lines),
        city=party.billing.city,
        region=party.billing.region,
        postcode=party.billing.postcode,
        country=party.billing.country,
        currency=currency,
        is_guest=party.is_guest,
    )


# --- lines -----------------------------------------------------------------------------------


def _tax_problem(order: StoreOrder, description, label) -> MissingMapping:
    return MissingMapping(
        "tax",
        label,
        f"The {label} on order {order.order_id}, line '{description}', has no Sage tax code: "
        "add it under Mappings → Tax codes, or set a default tax code",
    )


def _nominal_problem(order: StoreOrder, slot: str, what: str) -> MissingMapping:
    return MissingMapping(
        "nominal",
        slot,
        f"Order {order.order_id} has {what} but no Sage nominal code is set for {slot.replace('_', ' ')}: "
        "add it under Mappings → Nominal codes",
    )


def item_line(order: StoreOrder, line: OrderLine, mappings: Sage50Mappings) -> tuple[DocumentLine, list]:
    """One product line, and what is missing to post it."""
    missing = []
    description = line.description
    if line.is_gift_certificate:
        # Selling a gift certificate is a liability, not revenue, and carries no VAT.
        nominal = mappings.nominals.gift_certificate
        if not nominal:
            missing.append(_nominal_problem(order, "gift_certificate", "a gift certificate sale"))
        doc = DocumentLine(
            kind=LineKind.SERVICE,
            description=f"Gift certificate: {description}",
            quantity=line.quantity,
            unit_net=line.unit_net,
            net=line.net,
            tax=line.tax,
            tax_code=mappings.tax.outside_scope,
            nominal_code=nominal,
            store_line_id=line.line_id,
        )
        return doc, missing
    sku = line.sku
    code = mappings.items.lookup(sku) if sku else None
    where = f"order {order.order_id}, line '{description}'"
    if not code and sku and mappings.items.same_code_fallback:
        if len(sku) <= mappings.items.max_code_length:
            code = sku.upper()
        else:
            missing.append(
                MissingMapping(
                    "item",
                    sku,
                    f"SKU '{sku}' ({where}) is longer than {mappings.items.max_code_length} characters, "
                    "too long for a Sage 50 stock code: map it under Mappings → Item mappings",
                )
            )
    elif not code and sku:
        missing.append(
            MissingMapping(
                "item",
                sku,
                f"SKU '{sku}' ({where}) has no Sage stock code: add it under Mappings → Item mappings, "
                "or turn on 'same code' fallback",
            )
        )
    elif not sku:
        missing.append(
            MissingMapping(
                "item",
                f"product {line.product_id or None}",
                f"Line '{description}' (order {order.order_id}, product id {line.product_id or None}) has no SKU "
                f"in {order.store_name}: give the product or variant a SKU, then map it under Mappings → Item "
                "mappings",
            )
        )
    tax_code, label = rules.resolve_tax_code(mappings.tax, line.net, line.tax, line.quantity, line.tax_detail)
    if not tax_code:
        missing.append(_tax_problem(order, description, label))
    doc = DocumentLine(
        kind=LineKind.ITEM,
        description=description,
        quantity=line.quantity,
        unit_net=line.unit_net,
        net=line.net,
        tax=line.tax,
        tax_code=tax_code or "",
        stock_code=code,
        nominal_code=mappings.nominals.sales,
        store_line_id=line.line_id,
        discount=line.discount,
    )
    return doc, missing


@dataclass(frozen=True)
class ChargeRule:
    """How one kind of charge is posted: its nominal slot and the words in messages and lines."""

    nominal_slot: str
    description: str
    what: str  # for messages: "a shipping charge"


CHARGE_RULES = {
    ChargeKind.SHIPPING: ChargeRule(nominal_slot="shipping", description="Shipping", what="a shipping charge"),
    ChargeKind.HANDLING: ChargeRule(nominal_slot="handling", description="Handling", what="a handling charge"),
    ChargeKind.WRAPPING: ChargeRule(nominal_slot="wrapping", description="Gift wrapping",
                                    what="a gift wrapping charge"),
}


def charge_line(order: StoreOrder, charge: Charge | None, mappings: Sage50Mappings) -> tuple[DocumentLine | None, list]:
    """Shipping, handling or wrapping as a service line on its mapped nominal code."""
    if charge is None or (charge.net == ZERO and charge.tax == ZERO):
        return None, []
    rule = CHARGE_RULES[charge.kind]
    description = rule.description
    if charge.methods:
        description = f"{description}: {', '.join(charge.methods)}"
    missing = []
    nominal = getattr(mappings.nominals, rule.nominal_slot)
    if not nominal:
        missing.append(_nominal_problem(order, rule.nominal_slot, rule.what))
    tax_code, label = rules.resolve_tax_code(mappings.tax, charge.net, charge.tax, Decimal(1), charge.tax_detail,
                                             charge.tax_class_id)
    if not tax_code:
        missing.append(_tax_problem(order, description, label))
    doc = DocumentLine(
        kind=LineKind.SERVICE,
        description=description,
        quantity=Decimal("1"),
        unit_net=charge.net,
        net=charge.net,
        tax=charge.tax,
        tax_code=tax_code or "",
        nominal_code=nominal,
    )
    return doc, missing


def _charge(order: StoreOrder, kind: str) -> Charge | None:
    return next((charge for charge in order.charges if charge.kind == kind), None)


def _dominant_tax_code(lines: list[DocumentLine], fallback: str) -> str:
    taxed = [line for line in lines if line.tax != ZERO and line.tax_code]
    return max(taxed, key=lambda line: abs(line.tax)).tax_code if taxed else fallback


def _reconcile(order: StoreOrder, reference: str, lines: list[DocumentLine], store_total: Decimal,
               mappings: Sage50Mappings):
    """Append a rounding line when allowed (see ``rules.rounding_allowed``), else raise."""
    document_total = sum((line.gross for line in lines), ZERO)
    difference = store_total - document_total
    if difference == ZERO:
        return
    nominal = mappings.nominals.rounding
    if rules.rounding_allowed(difference, nominal, mappings.rounding_tolerance):
        lines.append(
            DocumentLine(
                kind=LineKind.ROUNDING,
                description="Rounding",
                quantity=Decimal("1"),
                unit_net=difference,
                net=difference,
                tax=ZERO,
                tax_code=mappings.tax.outside_scope,
                nominal_code=nominal,
            )
        )
        return
    if not nominal:
        hint = "No rounding nominal is mapped, so no rounding line can absorb it."
    else:
        hint = f"That is more than the rounding tolerance of {mappings.rounding_tolerance}."
    raise TotalsMismatch(reference, store_total, document_total, f"{hint} Check the order in {order.store_name}.")


def _lines_of(order: StoreOrder) -> list[OrderLine]:
    if not order.lines:
        raise ValueError(f"order {order.order_id} has no line items: fetch it with its lines")
    return order.lines


# --- orders ----------------------------------------------------------------------------------


def not_postable_reason(order: StoreOrder) -> str | None:
    """Rule "paid": an order becomes an invoice only when its status counts as paid (never an
    abandoned, unpaid, declined or cancelled one, whatever is configured) and its payment is
    captured (the store adapter says whether it is)."""
    status = order.status
    if status.never_a_sale or not status.counts_as_paid:
        return f"order status '{status.name}' (id {status.code}) does not count as paid"
    return order.payment_pending


def map_order(order: StoreOrder, *, mappings: Sage50Mappings, customer_account_ref: str | None = None) -> OrderPosting:
    """Map one store order to its Sage 50 customer, invoice and receipt(s).
    Raises NotPostable, NeedsMapping or TotalsMismatch."""
    reference = order.reference
    store_total = order.totals.total_inc_tax
    amount_due = order.amount_due
    reason = not_postable_reason(order)
    if reason:
        raise NotPostable(reference, reason)

    mappings, accounts_used = mappings.for_channel(order.channel_id)
    problems = _Problems()
    currency = order.currency
    customer = build_customer(order, mappings, problems, customer_account_ref)
    date = local_date(order.created_at, mappings.timezone)

    lines: list[DocumentLine] = []
    for line in _lines_of(order):
        doc, missing = item_line(order, line, mappings)
        lines.append(doc)
        problems.extend(missing)
    for kind in CHARGE_RULES:
        doc, missing = charge_line(order, _charge(order, kind), mappings)
        if doc:
            lines.append(doc)
            problems.extend(missing)

    discount = rules.undistributed_discount(order, lines, store_total)
    if discount:
        if not mappings.nominals.discount:
            problems.extend([_nominal_problem(order, "discount", "an order discount not spread over its lines")])
        lines.append(
            DocumentLine(
                kind=LineKind.DISCOUNT,
                description=discount.description,
                quantity=Decimal("1"),
                unit_net=discount.net,
                net=discount.net,
                tax=discount.tax,
                tax_code=_dominant_tax_code(lines, mappings.tax.outside_scope) if discount.tax
                else mappings.tax.outside_scope,
                nominal_code=mappings.nominals.discount,
            )
        )

    payments = _payments(order, date=date, customer=customer, mappings=mappings, problems=problems)
    tenders = payments.tenders
    receipts = payments.receipts
    for kind in (TenderKind.GIFT_CERTIFICATE, TenderKind.STORE_CREDIT):
        if order.tendered(kind):
            tender = _tender_for(order, kind, mappings, problems)
            tenders.append(tender)
            receipts.append(_tender_receipt(order, tender, date=date, customer=customer))

    if _converts(order, mappings) and not _has_rate(order):
        problems.add("currency", currency, _no_rate_message(order, mappings))
    problems.raise_if_any(reference)
    _reconcile(order, reference, lines, store_total, mappings)
    if payments.paid_total > amount_due:
        raise TotalsMismatch(
            f"{reference}-P",
            amount_due,
            payments.paid_total,
            "The captured payments are more than the order total less gift certificates and store credit.",
        )

    notes = _notes(order)
    if _converts(order, mappings):
        conversion = _to_base_currency(order, reference, lines, receipts, store_total, mappings)
        currency, store_total = conversion.currency, conversion.total
        customer.currency = currency
        notes = f"{notes}; {conversion.note}"
    invoice = SalesInvoice(
        reference=reference,
        date=date,
        currency=currency,
        lines=lines,
        customer=customer,
        order_id=order.order_id,
        store_total=store_total,
        exchange_rate=order.exchange_rate,
        tenders=tenders,
        notes=notes,
    )
    return OrderPosting(customer=customer, invoice=invoice, receipts=receipts, accounts_used=accounts_used)


def _bank_account(mappings: Sage50Mappings, currency: str, *methods: str) -> str | None:
    for method in methods:
        if method:
            account = mappings.payments.lookup(method, currency)
            if account:
                return account
    return mappings.payments.fallback(currency)


def _payment_problem(order: StoreOrder, method, currency) -> MissingMapping:
    return MissingMapping(
        "payment_method",
        method,
        f"Payment method '{method}' (order {order.order_id}, {currency}) has no Sage bank account: "
        "add it under Mappings → Payment methods, or set a default bank account",
    )


@dataclass
class _GatewayPayments:
    """The captured payments through one gateway: one receipt."""

    amount: Decimal = ZERO
    references: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)  # the first payment's own method, for the bank look-up
    date: dt.date | None = None


@dataclass
class _Payments:
    tenders: list[Tender]
    receipts: list[Receipt]
    paid_total: Decimal


def _payments(order: StoreOrder, *, date: dt.date, customer: Customer, mappings: Sage50Mappings,
              problems: _Problems) -> _Payments:
    """Rule "receipts": one receipt per payment gateway for the money actually captured (gift
    certificates and store credit excluded), on the bank account mapped for that method. Without
    captured payments, the amount due after gift certificates and store credit is the payment, by
    the order's payment method."""
    reference, currency = order.reference, order.currency
    groups: dict[str, _GatewayPayments] = {}
    for tender in order.tenders:
        if tender.kind != TenderKind.PAYMENT:
            continue
        group = groups.get(tender.method)
        if group is None:
            group = groups[tender.method] = _GatewayPayments(methods=[tender.method_detail])
        group.amount += tender.amount
        if tender.reference:
            group.references.append(tender.reference)
        if tender.paid_at is not None and group.date is None:
            group.date = local_date(tender.paid_at, mappings.timezone)
    if not groups and order.amount_due > ZERO:
        groups[order.payment_method or "unknown"] = _GatewayPayments(amount=order.amount_due)
    tenders, receipts, paid_total = [], [], ZERO
    for n, (name, group) in enumerate(groups.items(), start=1):
        account = _bank_account(mappings, currency, name, *group.methods, order.payment_method)
        if not account:
            problems.extend([_payment_problem(order, order.payment_method or name, currency)])
        payment_reference = ", ".join(group.references)
        tenders.append(Tender("payment", name, group.amount, account, payment_reference))
        receipts.append(
            Receipt(
                reference=f"{reference}-P" if n == 1 else f"{reference}-P{n}",
                invoice_reference=reference,
                date=group.date or date,
                currency=currency,
                amount=group.amount,
                bank_account=account or "",
                method=name,
                account_ref=customer.account_ref,
                customer_email=customer.email,
                payment_reference=payment_reference,
            )
        )
        paid_total += group.amount
    return _Payments(tenders=tenders, receipts=receipts, paid_total=paid_total)


def _tender_for(order: StoreOrder, kind: str, mappings: Sage50Mappings, problems: _Problems) -> Tender:
    """Rule "tenders": gift certificates and store credit spent on the order are tenders, not
    revenue and not bank receipts: they settle the invoice against their liability nominal."""
    nominal = getattr(mappings.nominals, kind)
    label = "gift certificate" if kind == TenderKind.GIFT_CERTIFICATE else "store credit"
    if not nominal:
        problems.extend([_nominal_problem(order, kind, f"{label} spent on it")])
    codes = ", ".join(t.reference for t in order.tenders if t.kind == kind and t.reference)
    return Tender(kind, label, order.tendered(kind), nominal, codes)


# --- base-currency conversion ----------------------------------------------------------------


@dataclass(frozen=True)
class _Conversion:
    currency: str
    total: Decimal
    note: str


def _converts(order: StoreOrder, mappings: Sage50Mappings) -> bool:
    """Rule "account currency": under BASE_CURRENCY (Sage 50 US, or chosen) a document in another
    currency is converted to the base currency, never posted in its own to a base-currency account."""
    strategy = mappings.customers
    return (strategy.currency_accounts == BASE_CURRENCY and bool(strategy.base_currency)
            and order.currency != norm(strategy.base_currency))


def _has_rate(order: StoreOrder) -> bool:
    return bool(order.exchange_rate) and order.exchange_rate != Decimal(1)


def _no_rate_message(order: StoreOrder, mappings: Sage50Mappings) -> str:
    return (f"Order {order.order_id} is in {order.currency} but carries no exchange rate to the base currency "
            f"{norm(mappings.customers.base_currency)}, and a Sage 50 account here holds only the base currency: "
            f"set the currency's rate in {order.store_name} and replay the order")


def _to_base_currency(order: StoreOrder, reference: str, lines: list[DocumentLine], payments: list,
                      total: Decimal, mappings: Sage50Mappings) -> _Conversion:
    """Every line and payment divided by the order's rate (store default currency → the shopper's;
    the store's default is the Sage company's base); the cents lost converting line by line go on
    a rounding line, so the document equals the converted store total, and the payments are
    brought to the same total when they settled it whole."""
    rate = order.exchange_rate
    base = norm(mappings.customers.base_currency)
    for line in lines:
        line.net, line.tax = money(line.net / rate), money(line.tax / rate)
        line.unit_net = money(line.unit_net / rate)
        line.discount = money(line.discount / rate)
    converted_total = money(total / rate)
    difference = converted_total - sum((line.gross for line in lines), ZERO)
    if difference:
        if not mappings.nominals.rounding:
            raise TotalsMismatch(reference, converted_total, converted_total - difference,
                                 "Converting to the base currency leaves a rounding difference and no rounding "
                                 "nominal is mapped.")
        lines.append(DocumentLine(kind=LineKind.ROUNDING, description="Currency conversion rounding",
                                  quantity=Decimal("1"), unit_net=difference, net=difference, tax=ZERO,
                                  tax_code=mappings.tax.outside_scope, nominal_code=mappings.nominals.rounding))
    paid = sum((payment.amount for payment in payments), ZERO)
    for payment in payments:
        payment.amount, payment.currency = money(payment.amount / rate), base
    if payments and paid == total:
        payments[-1].amount += converted_total - sum((payment.amount for payment in payments), ZERO)
    return _Conversion(currency=base, total=converted_total,
                       note=f"{order.currency} {total} at {rate} {order.currency} per {base}")


# A non-cash tender's payment carries the order's reference and the tender's own suffix, so it is
# looked up by that reference before it is created, like every receipt: posting it twice is impossible.
TENDER_SUFFIX = {TenderKind.GIFT_CERTIFICATE: "GC", TenderKind.STORE_CREDIT: "SC"}


def _tender_receipt(order: StoreOrder, tender: Tender, *, date: dt.date, customer: Customer) -> Receipt:
    """Rule "tender receipts": a gift certificate or store credit spent on the order settles its
    share of the invoice as a receipt allocated to it, from the tender's mapped account (the
    liability the sale of the certificate or the credit note created, or a clearing account), so
    that a paid order leaves nothing owing on the customer's account."""
    return Receipt(
        reference=f"{order.reference}-{TENDER_SUFFIX[tender.kind]}",
        invoice_reference=order.reference,
        date=date,
        currency=order.currency,
        amount=tender.amount,
        bank_account=tender.bank_account or "",
        method=tender.method,
        account_ref=customer.account_ref,
        customer_email=customer.email,
        payment_reference=tender.payment_reference,
    )


def _notes(order: StoreOrder) -> str:
    notes = [order.label]
    if order.payment_method:
        notes.append(f"Paid by {order.payment_method}")
    if order.coupon_codes:
        notes.append(f"Coupons: {', '.join(order.coupon_codes)}")
    if order.customer_message:
        notes.append(f"Customer message: {order.customer_message}")
    return "; ".join(notes)


# --- refunds ---------------------------------------------------------------------------------


@dataclass
class _CreditDraft:
    """A credit note line before the refund's own tax is spread over the taxed lines."""

    line: DocumentLine
    natural_tax: Decimal  # its pro-rata share of the invoiced tax
    taxable: bool  # False: an amount not tied to items, or the tax-only line, keeps its tax


def map_refund(
    order: StoreOrder,
    refund: StoreRefund,
    invoice_reference: str,
    mappings: Sage50Mappings,
    *,
    customer_account_ref: str | None = None,
) -> RefundPosting:
    """Map one refund to a credit note against ``invoice_reference`` and the refund payment(s).

    Rule "credit notes":
    * The reference is the refund's (the order's reference and the refund id), so several
      refunds on one order never collide.
    * PRODUCT items credit the invoice line pro rata: quantity refunded / quantity sold of the
      line's net, tax and discount (same stock code and tax code), less any adjustments.
    * SHIPPING, HANDLING and WRAPPING credit the charge's line for the requested amount
      (gross), its tax in the charge's own proportion.
    * ORDER and FEE items (an amount not tied to items) carry no tax - an order-level amount
      does not change tax liability - and go to the discount nominal, outside the scope of VAT.
    * A tax-only refund (no items) is one line with no net and the refunded tax, on the
      discount nominal with the order's main tax code.
    * The refund's own total tax is then spread over the taxed lines in proportion to their
      pro-rata tax, so the credit note's VAT is exactly what the store refunded; net = gross - tax.
    * The credit note must add up to the refund's total (rounding rule as for invoices).
    * Each payment becomes a refund payment on the bank account mapped for its provider; store
      credit given back is a tender on the store-credit nominal instead.
    """
    reference = refund.reference
    if refund.order_id != order.order_id:
        raise ValueError(f"refund {refund.refund_id} belongs to order {refund.order_id}, not {order.order_id}")
    total = refund.total
    if total <= ZERO:
        raise NotPostable(reference, "the refund has no amount")
    mappings, accounts_used = mappings.for_channel(order.channel_id)
    problems = _Problems()
    currency = order.currency
    customer = build_customer(order, mappings, problems, customer_account_ref)
    date = local_date(refund.created_at or order.created_at, mappings.timezone)
    source = {line.line_id: line for line in _lines_of(order)}

    drafts: list[_CreditDraft] = []
    for item in refund.items:
        if item.kind == RefundItemKind.PRODUCT:
            line = source.get(item.line_id)
            if line is None:
                raise ValueError(f"refund {refund.refund_id} refunds order product {item.line_id}, not on the order")
            doc, missing = item_line(order, line, mappings)
            problems.extend(missing)
            sold = doc.quantity or Decimal(1)
            quantity = item.quantity or sold
            tax = money(doc.tax * quantity / sold)
            gross = money(doc.gross * quantity / sold) + item.adjustments
            doc.quantity, doc.tax, doc.net = quantity, tax, gross - tax
            doc.discount = money(doc.discount * quantity / sold)
            drafts.append(_CreditDraft(doc, tax, taxable=True))
        elif item.kind in CHARGE_RULES:
            doc, missing = charge_line(order, _charge(order, item.kind), mappings)
            if doc is None:
                raise ValueError(f"refund {refund.refund_id} refunds {item.kind} the order never charged")
            problems.extend(missing)
            requested = item.requested_amount
            gross = (requested if requested is not None else doc.gross) + item.adjustments
            tax = money(doc.tax * gross / doc.gross) if doc.gross else ZERO
            doc.tax, doc.net = tax, gross - tax
            doc.unit_net = doc.net
            drafts.append(_CreditDraft(doc, tax, taxable=True))
        else:  # ORDER, FEE: an amount not tied to items
            gross = (item.requested_amount or ZERO) + item.adjustments
            if not mappings.nominals.discount:
                problems.extend([_nominal_problem(order, "discount", "a refund amount not tied to items")])
            text = "Refund not tied to items" + (f": {item.reason}" if item.reason else "")
            line = DocumentLine(
                kind=LineKind.SERVICE,
                description=text,
                quantity=Decimal("1"),
                unit_net=gross,
                net=gross,
                tax=ZERO,
                tax_code=mappings.tax.outside_scope,
                nominal_code=mappings.nominals.discount,
            )
            drafts.append(_CreditDraft(line, ZERO, taxable=False))

    refund_tax = refund.total_tax
    if not drafts:
        drafts.append(_tax_only_line(order, refund, mappings, problems))
    taxed = [draft for draft in drafts if draft.taxable]
    if taxed and sum((draft.natural_tax for draft in taxed), ZERO) != refund_tax:
        weights = [draft.natural_tax for draft in taxed]
        if not any(weights):
            weights = [draft.line.gross for draft in taxed]
        for draft, tax in zip(taxed, rules.allocate(refund_tax, weights), strict=True):
            draft.line.net, draft.line.tax = draft.line.gross - tax, tax
    lines = [draft.line for draft in drafts]

    refunds, tenders = _refund_payments(order, refund, date=date, customer=customer, mappings=mappings,
                                        problems=problems)
    if _converts(order, mappings) and not _has_rate(order):
        problems.add("currency", currency, _no_rate_message(order, mappings))
    problems.raise_if_any(reference)
    _reconcile(order, reference, lines, total, mappings)
    if _converts(order, mappings):
        conversion = _to_base_currency(order, reference, lines, refunds, total, mappings)
        currency, total = conversion.currency, conversion.total
        customer.currency = currency
    credit_note = CreditNote(
        reference=reference,
        date=date,
        currency=currency,
        lines=lines,
        customer=customer,
        invoice_reference=invoice_reference,
        refund_id=refund.refund_id,
        store_total=total,
        refund_tenders=tenders,
    )
    return RefundPosting(credit_note=credit_note, refunds=refunds, accounts_used=accounts_used)


def _tax_only_line(order: StoreOrder, refund: StoreRefund, mappings: Sage50Mappings,
                   problems: _Problems) -> _CreditDraft:
    invoice_lines = [item_line(order, line, mappings)[0] for line in _lines_of(order)]
    code = _dominant_tax_code(invoice_lines, mappings.tax.default or mappings.tax.outside_scope)
    if not mappings.nominals.discount:
        problems.extend([_nominal_problem(order, "discount", "a tax-only refund")])
    net = refund.total - refund.total_tax
    doc = DocumentLine(
        kind=LineKind.SERVICE,
        description="Tax refund" + (f": {refund.reason}" if refund.reason else ""),
        quantity=Decimal("1"),
        unit_net=net,
        net=net,
        tax=refund.total_tax,
        tax_code=code,
        nominal_code=mappings.nominals.discount,
    )
    return _CreditDraft(doc, refund.total_tax, taxable=False)


def _refund_payments(order: StoreOrder, refund: StoreRefund, *, date: dt.date, customer: Customer,
                     mappings: Sage50Mappings, problems: _Problems) -> tuple[list[Refund], list[Tender]]:
    refunds, tenders, cash_refunds = [], [], 0
    for payment in refund.payments:
        if payment.tender_kind != TenderKind.PAYMENT:
            nominal = getattr(mappings.nominals, payment.tender_kind)
            if not nominal:
                problems.extend([_nominal_problem(order, payment.tender_kind,
                                                  f"a refund to {payment.tender_kind.replace('_', ' ')}")])
            tenders.append(Tender(payment.tender_kind, payment.method, payment.amount, nominal, payment.reference))
            # Store credit given back is money owed to the shopper on the liability account: a
            # refund payment from that account, so the credit note leaves nothing on the customer.
            suffix = TENDER_SUFFIX.get(payment.tender_kind, payment.tender_kind.upper())
            same = sum(1 for r in refunds if r.reference.startswith(f"{refund.reference}-{suffix}"))
            refunds.append(Refund(
                reference=f"{refund.reference}-{suffix}{same + 1 if same else ''}", credit_note_reference=refund.reference, date=date,
                currency=order.currency, amount=payment.amount, bank_account=nominal or "",
                method=payment.method or payment.tender_kind.replace("_", " "), account_ref=customer.account_ref))
            continue
        account = _bank_account(mappings, order.currency, payment.method, order.payment_method)
        if not account:
            problems.extend([_payment_problem(order, payment.method or order.payment_method or "unknown",
                                              order.currency)])
        cash_refunds += 1
        n = cash_refunds
        refunds.append(
            Refund(
                reference=f"{refund.reference}-P" if n == 1 else f"{refund.reference}-P{n}",
                credit_note_reference=refund.reference,
                date=date,
                currency=order.currency,
                amount=payment.amount,
                bank_account=account or "",
                method=payment.method,
                account_ref=customer.account_ref,
            )
        )
    return refunds, tenders
