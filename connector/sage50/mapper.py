"""BigCommerce order / refund → Sage 50 ledger documents (pure: no Django, no I/O).

``map_order`` turns a fetched, paid v2 order into the customer, the sales invoice and the
receipt(s) for the captured payment; ``map_refund`` turns one v3 refund into a credit note
against that invoice and the refund payment(s). The rules themselves live in ``rules.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

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

from . import bc_order, rules
from .errors import MissingMapping, NeedsMapping, NotPostable, TotalsMismatch
from .mappings import WEB_SALES_ACCOUNT, Sage50Mappings, norm


@dataclass
class OrderPosting:
    customer: Customer
    invoice: SalesInvoice
    receipts: list[Receipt] = field(default_factory=list)

    @property
    def receipt(self) -> Receipt | None:
        return self.receipts[0] if self.receipts else None


@dataclass
class RefundPosting:
    credit_note: CreditNote
    refunds: list[Refund] = field(default_factory=list)

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


def order_reference(order: dict, mappings: Sage50Mappings) -> str:
    return f"{mappings.reference_prefix}{order['id']}"


def transactional_currency(order: dict) -> str:
    # default_currency_code is the currency the shopper paid in; currency_code is only the display one.
    return (order.get("default_currency_code") or order.get("currency_code") or "").upper()


def exchange_rate(order: dict, currency: str) -> Decimal:
    base = (order.get("store_default_currency_code") or currency).upper()
    if base == currency:
        return Decimal("1")
    raw = order.get("store_default_to_transactional_exchange_rate") or order.get("currency_exchange_rate") or "1"
    return Decimal(str(raw)).normalize()


# --- customer --------------------------------------------------------------------------------


def build_customer(order: dict, currency: str, mappings: Sage50Mappings, problems: _Problems, account_ref=None):
    """Rule "customer": the billing address is the customer. Under ``match_or_create`` the agent
    matches the Sage account by email (or creates it) unless a linked ``account_ref`` is known;
    under ``web_sales_account`` (or for guests when ``guests_to_web_sales``) every order goes to
    the web-sales account of its currency, keeping the shopper's details on the invoice."""
    billing = order.get("billing_address") or {}
    email = (billing.get("email") or "").strip().lower()
    name = " ".join(p for p in ((billing.get("first_name") or "").strip(), (billing.get("last_name") or "").strip()) if p)
    is_guest = int(order.get("customer_id") or 0) == 0
    strategy = mappings.customers
    if strategy.mode == WEB_SALES_ACCOUNT or (is_guest and strategy.guests_to_web_sales):
        account_ref = None
        for key, ref in strategy.web_sales_accounts.items():
            if norm(key) == currency:
                account_ref = ref
        if not account_ref:
            problems.add(
                "customer_account",
                currency,
                f"Order {order['id']} is in {currency} but no web-sales customer account is set for "
                f"{currency}: add it under Mappings → Customers",
            )
    street = [s.strip() for s in (billing.get("street_1"), billing.get("street_2")) if s and s.strip()]
    return Customer(
        email=email,
        name=name or (billing.get("company") or "").strip() or email,
        account_ref=account_ref,
        company=(billing.get("company") or "").strip(),
        phone=(billing.get("phone") or "").strip(),
        address_lines=street,
        city=(billing.get("city") or "").strip(),
        region=(billing.get("state") or "").strip(),
        postcode=(billing.get("zip") or "").strip(),
        country=(billing.get("country_iso2") or "").strip().upper(),
        currency=currency,
        is_guest=is_guest,
    )


# --- lines -----------------------------------------------------------------------------------


def _tax_problem(order, description, label) -> MissingMapping:
    return MissingMapping(
        "tax",
        label,
        f"The {label} on order {order['id']}, line '{description}', has no Sage tax code: "
        "add it under Mappings → Tax codes, or set a default tax code",
    )


def _nominal_problem(order, slot: str, what: str) -> MissingMapping:
    return MissingMapping(
        "nominal",
        slot,
        f"Order {order['id']} has {what} but no Sage nominal code is set for {slot.replace('_', ' ')}: "
        "add it under Mappings → Nominal codes",
    )


def item_line(order: dict, line: dict, taxes, mappings: Sage50Mappings) -> tuple[DocumentLine, list]:
    """One product line, and what is missing to post it."""
    missing = []
    description = bc_order.line_description(line)
    amounts = rules.line_amounts(line)
    quantity = Decimal(str(line.get("quantity") or 0))
    if line.get("type") == "giftcertificate":
        # Selling a gift certificate is a liability, not revenue, and carries no VAT.
        nominal = mappings.nominals.gift_certificate
        if not nominal:
            missing.append(_nominal_problem(order, "gift_certificate", "a gift certificate sale"))
        doc = DocumentLine(
            kind=LineKind.SERVICE,
            description=f"Gift certificate: {description}",
            quantity=quantity,
            unit_net=amounts.unit_net,
            net=amounts.net,
            tax=amounts.tax,
            tax_code=mappings.tax.outside_scope,
            nominal_code=nominal,
            store_line_id=str(line["id"]),
        )
        return doc, missing
    sku = (line.get("sku") or "").strip()
    code = mappings.items.lookup(sku) if sku else None
    where = f"order {order['id']}, line '{description}'"
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
                f"product {line.get('product_id')}",
                f"Line '{description}' (order {order['id']}, product id {line.get('product_id')}) has no SKU "
                "in BigCommerce: give the product or variant a SKU, then map it under Mappings → Item mappings",
            )
        )
    rows = bc_order.tax_rows(taxes, "item", line["id"])
    tax_code, label = rules.resolve_tax_code(mappings.tax, amounts.net, amounts.tax, quantity, rows)
    if not tax_code:
        missing.append(_tax_problem(order, description, label))
    doc = DocumentLine(
        kind=LineKind.ITEM,
        description=description,
        quantity=quantity,
        unit_net=amounts.unit_net,
        net=amounts.net,
        tax=amounts.tax,
        tax_code=tax_code or "",
        stock_code=code,
        store_line_id=str(line["id"]),
        discount=amounts.discount,
    )
    return doc, missing


CHARGES = (
    # (order field prefix, nominal slot, taxes line_item_type, description, what)
    ("shipping", "shipping", "shipping", "Shipping", "a shipping charge"),
    ("handling", "handling", "handling", "Handling", "a handling charge"),
    ("wrapping", "wrapping", "gift-wrapping", "Gift wrapping", "a gift wrapping charge"),
)


def charge_line(order: dict, prefix: str, taxes, mappings: Sage50Mappings) -> tuple[DocumentLine | None, list]:
    """Shipping, handling or wrapping as a service line on its mapped nominal code."""
    _, slot, line_type, description, what = next(c for c in CHARGES if c[0] == prefix)
    net, tax = rules.charge_amounts(order, prefix)
    if net == ZERO and tax == ZERO:
        return None, []
    if prefix == "shipping":
        methods = bc_order.shipping_methods(order)
        if methods:
            description = f"{description}: {', '.join(methods)}"
    missing = []
    nominal = getattr(mappings.nominals, slot)
    if not nominal:
        missing.append(_nominal_problem(order, slot, what))
    rows = bc_order.tax_rows(taxes, line_type)
    class_id = order.get(f"{prefix}_cost_tax_class_id")
    tax_code, label = rules.resolve_tax_code(mappings.tax, net, tax, Decimal(1), rows, class_id)
    if not tax_code:
        missing.append(_tax_problem(order, description, label))
    doc = DocumentLine(
        kind=LineKind.SERVICE,
        description=description,
        quantity=Decimal("1"),
        unit_net=net,
        net=net,
        tax=tax,
        tax_code=tax_code or "",
        nominal_code=nominal,
    )
    return doc, missing


def _dominant_tax_code(lines: list[DocumentLine], fallback: str) -> str:
    taxed = [line for line in lines if line.tax != ZERO and line.tax_code]
    return max(taxed, key=lambda line: abs(line.tax)).tax_code if taxed else fallback


def _reconcile(reference: str, lines: list[DocumentLine], store_total: Decimal, mappings: Sage50Mappings):
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
    raise TotalsMismatch(reference, store_total, document_total, hint + " Check the order in BigCommerce.")


# --- orders ----------------------------------------------------------------------------------


def map_order(
    order: dict,
    *,
    mappings: Sage50Mappings,
    products: list[dict] | None = None,
    coupons: list[dict] | None = None,
    taxes: list[dict] | None = None,
    transactions: list[dict] | None = None,
    customer_account_ref: str | None = None,
) -> OrderPosting:
    """Map one fetched BigCommerce v2 order to its Sage 50 customer, invoice and receipt(s).

    ``order`` is ``GET /v2/orders/{id}?include=consignments.line_items&consignment_structure=object``
    (or pass ``products`` from ``/v2/orders/{id}/products``); ``coupons`` and ``taxes``
    (``?details=true``) are optional sub-resources; ``transactions`` are the v3 transactions with
    money parsed to Decimal. Raises NotPostable, NeedsMapping or TotalsMismatch.
    """
    reference = order_reference(order, mappings)
    transactions = list(transactions or [])
    store_total = money(order.get("total_inc_tax"))
    gift_certificates = money(order.get("gift_certificate_amount"))
    store_credit = money(order.get("store_credit_amount"))
    amount_due = store_total - gift_certificates - store_credit
    reason = rules.unpaid_reason(order, transactions, mappings.paid_status_ids, amount_due)
    if reason:
        raise NotPostable(reference, reason)

    problems = _Problems()
    currency = transactional_currency(order)
    customer = build_customer(order, currency, mappings, problems, customer_account_ref)
    date = bc_order.local_date(order.get("date_created"), mappings.timezone)

    lines: list[DocumentLine] = []
    source_lines = bc_order.order_lines(order, products)
    for line in source_lines:
        doc, missing = item_line(order, line, taxes, mappings)
        lines.append(doc)
        problems.extend(missing)
    for prefix, *_ in CHARGES:
        doc, missing = charge_line(order, prefix, taxes, mappings)
        if doc:
            lines.append(doc)
            problems.extend(missing)

    discount = rules.undistributed_discount(order, lines, store_total)
    if discount:
        net, tax, text = discount
        if not mappings.nominals.discount:
            problems.extend([_nominal_problem(order, "discount", "an order discount not spread over its lines")])
        lines.append(
            DocumentLine(
                kind=LineKind.DISCOUNT,
                description=text,
                quantity=Decimal("1"),
                unit_net=net,
                net=net,
                tax=tax,
                tax_code=_dominant_tax_code(lines, mappings.tax.outside_scope) if tax else mappings.tax.outside_scope,
                nominal_code=mappings.nominals.discount,
            )
        )

    tenders, receipts, paid_total = _payments(
        order, reference, date, currency, customer, transactions, amount_due, mappings, problems
    )
    if gift_certificates:
        tenders.append(
            _tender_for(order, "gift_certificate", gift_certificates, transactions, mappings, problems)
        )
    if store_credit:
        tenders.append(_tender_for(order, "store_credit", store_credit, transactions, mappings, problems))

    problems.raise_if_any(reference)
    _reconcile(reference, lines, store_total, mappings)
    if paid_total > amount_due:
        raise TotalsMismatch(
            f"{reference}-P",
            amount_due,
            paid_total,
            "The captured payments are more than the order total less gift certificates and store credit.",
        )

    invoice = SalesInvoice(
        reference=reference,
        date=date,
        currency=currency,
        lines=lines,
        customer=customer,
        order_id=str(order["id"]),
        store_total=store_total,
        exchange_rate=exchange_rate(order, currency),
        tenders=tenders,
        notes=_notes(order, source_lines, coupons),
    )
    return OrderPosting(customer=customer, invoice=invoice, receipts=receipts)


def _bank_account(mappings: Sage50Mappings, currency: str, *methods: str) -> str | None:
    for method in methods:
        if method:
            account = mappings.payments.lookup(method, currency)
            if account:
                return account
    return mappings.payments.fallback(currency)


def _payment_problem(order, method, currency) -> tuple[str, str, str]:
    return (
        "payment_method",
        method,
        f"Payment method '{method}' (order {order['id']}, {currency}) has no Sage bank account: "
        "add it under Mappings → Payment methods, or set a default bank account",
    )


def _payments(order, reference, date, currency, customer, transactions, amount_due, mappings, problems):
    """Rule "receipts": one receipt per payment gateway for the money actually captured
    (successful capture/purchase transactions, gift certificates and store credit excluded),
    on the bank account mapped for that method. Without transactions, the amount due after gift
    certificates and store credit is the payment, by the order's ``payment_method``."""
    groups: dict[str, dict] = {}
    for t in transactions:
        if t.get("event") in rules.CAPTURE_EVENTS and t.get("status") == "ok" and rules.tender_kind(t) is None:
            name = t.get("gateway") or t.get("method") or order.get("payment_method") or "unknown"
            group = groups.setdefault(name, {"amount": ZERO, "refs": [], "methods": [t.get("method")], "date": None})
            group["amount"] += money(t.get("amount"))
            if t.get("gateway_transaction_id"):
                group["refs"].append(str(t["gateway_transaction_id"]))
            if t.get("date_created") and group["date"] is None:
                group["date"] = bc_order.local_date(t["date_created"], mappings.timezone)
    if not groups and amount_due > ZERO:
        name = order.get("payment_method") or "unknown"
        groups[name] = {"amount": amount_due, "refs": [], "methods": [], "date": None}
    tenders, receipts, paid_total = [], [], ZERO
    for n, (name, group) in enumerate(groups.items(), start=1):
        account = _bank_account(mappings, currency, name, *group["methods"], order.get("payment_method"))
        if not account:
            problems.add(*_payment_problem(order, order.get("payment_method") or name, currency))
        payment_reference = ", ".join(group["refs"])
        tenders.append(Tender("payment", name, group["amount"], account, payment_reference))
        receipts.append(
            Receipt(
                reference=f"{reference}-P" if n == 1 else f"{reference}-P{n}",
                invoice_reference=reference,
                date=group["date"] or date,
                currency=currency,
                amount=group["amount"],
                bank_account=account or "",
                method=name,
                account_ref=customer.account_ref,
                customer_email=customer.email,
                payment_reference=payment_reference,
            )
        )
        paid_total += group["amount"]
    return tenders, receipts, paid_total


def _tender_for(order, kind, amount, transactions, mappings, problems) -> Tender:
    """Rule "tenders": gift certificates and store credit spent on the order are tenders, not
    revenue and not bank receipts: they settle the invoice against their liability nominal."""
    nominal = getattr(mappings.nominals, kind)
    label = "gift certificate" if kind == "gift_certificate" else "store credit"
    if not nominal:
        problems.extend([_nominal_problem(order, kind, f"{label} spent on it")])
    codes = [
        (t.get("gift_certificate") or {}).get("code")
        for t in transactions
        if rules.tender_kind(t) == kind and (t.get("gift_certificate") or {}).get("code")
    ]
    return Tender(kind, label, amount, nominal, ", ".join(codes))


def _notes(order: dict, source_lines: list[dict], coupons) -> str:
    codes = [c.get("code") for c in coupons or [] if c.get("code")]
    if not codes:
        for line in source_lines:
            for applied in line.get("applied_discounts") or []:
                if applied.get("code") and applied["code"] not in codes:
                    codes.append(applied["code"])
    notes = [f"BigCommerce order {order['id']}"]
    if order.get("payment_method"):
        notes.append(f"Paid by {order['payment_method']}")
    if codes:
        notes.append(f"Coupons: {', '.join(codes)}")
    if (order.get("customer_message") or "").strip():
        notes.append(f"Customer message: {order['customer_message'].strip()}")
    return "; ".join(notes)


# --- refunds ---------------------------------------------------------------------------------

_CHARGE_ITEM_TYPES = {"SHIPPING": "shipping", "HANDLING": "handling", "GIFT_WRAPPING": "wrapping"}


def map_refund(
    order: dict,
    refund: dict,
    invoice_reference: str,
    mappings: Sage50Mappings,
    *,
    products: list[dict] | None = None,
    taxes: list[dict] | None = None,
    customer_account_ref: str | None = None,
) -> RefundPosting:
    """Map one v3 refund (money parsed to Decimal) to a credit note against ``invoice_reference``
    and the refund payment(s).

    Rule "credit notes":
    * The reference is ``BC-<order>-R<refund id>``, so several refunds on one order never collide.
    * PRODUCT items credit the invoice line pro rata: quantity refunded / quantity sold of the
      line's net, tax and discount (same stock code and tax code), less any adjustments.
    * SHIPPING, HANDLING and GIFT_WRAPPING credit the charge's line for the requested amount
      (gross), its tax in the charge's own proportion.
    * ORDER and FEE items (an amount not tied to items) carry no tax - BigCommerce says an
      order-level amount does not change tax liability - and go to the discount nominal,
      outside the scope of VAT.
    * A tax-only refund (no items) is one line with no net and the refunded tax, on the
      discount nominal with the order's main tax code.
    * The refund's own ``total_tax`` is then spread over the taxed lines in proportion to their
      pro-rata tax, so the credit note's VAT is exactly what BigCommerce refunded; net = gross - tax.
    * The credit note must add up to ``total_amount`` (rounding rule as for invoices).
    * Each non-declined payment becomes a refund payment on the bank account mapped for its
      provider; store credit given back is a tender on the store-credit nominal instead.
    """
    reference = f"{order_reference(order, mappings)}-R{refund['id']}"
    if str(refund.get("order_id", order["id"])) != str(order["id"]):
        raise ValueError(f"refund {refund['id']} belongs to order {refund.get('order_id')}, not {order['id']}")
    total = money(refund.get("total_amount"))
    if total <= ZERO:
        raise NotPostable(reference, "the refund has no amount")
    problems = _Problems()
    currency = transactional_currency(order)
    customer = build_customer(order, currency, mappings, problems, customer_account_ref)
    date = bc_order.local_date(refund.get("created") or order.get("date_created"), mappings.timezone)
    source = {str(line["id"]): line for line in bc_order.order_lines(order, products)}

    drafts = []  # (DocumentLine, natural tax, taxable)
    for item in refund.get("items") or []:
        item_type = (item.get("item_type") or "").upper()
        adjustments = sum((money(a.get("amount")) for a in item.get("adjustments") or []), ZERO)
        if item_type == "PRODUCT":
            line = source.get(str(item.get("item_id")))
            if line is None:
                raise ValueError(f"refund {refund['id']} refunds order product {item.get('item_id')}, not on the order")
            doc, missing = item_line(order, line, taxes, mappings)
            problems.extend(missing)
            sold = doc.quantity or Decimal(1)
            quantity = Decimal(str(item.get("quantity") or sold))
            tax = money(doc.tax * quantity / sold)
            gross = money(doc.gross * quantity / sold) + adjustments
            doc.quantity, doc.tax, doc.net = quantity, tax, gross - tax
            doc.discount = money(doc.discount * quantity / sold)
            drafts.append((doc, tax, True))
        elif item_type in _CHARGE_ITEM_TYPES:
            doc, missing = charge_line(order, _CHARGE_ITEM_TYPES[item_type], taxes, mappings)
            if doc is None:
                raise ValueError(f"refund {refund['id']} refunds {item_type.lower()} the order never charged")
            problems.extend(missing)
            requested = item.get("requested_amount")
            gross = (money(requested) if requested is not None else doc.gross) + adjustments
            tax = money(doc.tax * gross / doc.gross) if doc.gross else ZERO
            doc.tax, doc.net = tax, gross - tax
            doc.unit_net = doc.net
            drafts.append((doc, tax, True))
        else:  # ORDER, FEE: an amount not tied to items
            gross = money(item.get("requested_amount")) + adjustments
            if not mappings.nominals.discount:
                problems.extend([_nominal_problem(order, "discount", "a refund amount not tied to items")])
            text = "Refund not tied to items" + (f": {item['reason']}" if item.get("reason") else "")
            drafts.append(
                (
                    DocumentLine(
                        kind=LineKind.SERVICE,
                        description=text,
                        quantity=Decimal("1"),
                        unit_net=gross,
                        net=gross,
                        tax=ZERO,
                        tax_code=mappings.tax.outside_scope,
                        nominal_code=mappings.nominals.discount,
                    ),
                    ZERO,
                    False,
                )
            )

    refund_tax = money(refund.get("total_tax"))
    if not drafts:
        drafts.append(_tax_only_line(order, refund, products, taxes, mappings, problems, total, refund_tax))
    taxed = [d for d in drafts if d[2]]
    if taxed and sum((d[1] for d in taxed), ZERO) != refund_tax:
        weights = [d[1] for d in taxed]
        if not any(weights):
            weights = [d[0].gross for d in taxed]
        for (doc, _, _), tax in zip(taxed, rules.allocate(refund_tax, weights), strict=True):
            doc.net, doc.tax = doc.gross - tax, tax
    lines = [d[0] for d in drafts]

    refunds, tenders = _refund_payments(order, refund, reference, date, currency, customer, mappings, problems)
    problems.raise_if_any(reference)
    _reconcile(reference, lines, total, mappings)
    credit_note = CreditNote(
        reference=reference,
        date=date,
        currency=currency,
        lines=lines,
        customer=customer,
        invoice_reference=invoice_reference,
        refund_id=str(refund["id"]),
        store_total=total,
        refund_tenders=tenders,
    )
    return RefundPosting(credit_note=credit_note, refunds=refunds)


def _tax_only_line(order, refund, products, taxes, mappings, problems, total, refund_tax):
    invoice_lines = []
    for line in bc_order.order_lines(order, products):
        doc, _ = item_line(order, line, taxes, mappings)
        invoice_lines.append(doc)
    code = _dominant_tax_code(invoice_lines, mappings.tax.default or mappings.tax.outside_scope)
    if not mappings.nominals.discount:
        problems.extend([_nominal_problem(order, "discount", "a tax-only refund")])
    net = total - refund_tax
    doc = DocumentLine(
        kind=LineKind.SERVICE,
        description="Tax refund" + (f": {refund['reason']}" if refund.get("reason") else ""),
        quantity=Decimal("1"),
        unit_net=net,
        net=net,
        tax=refund_tax,
        tax_code=code,
        nominal_code=mappings.nominals.discount,
    )
    return doc, refund_tax, False


def _refund_payments(order, refund, reference, date, currency, customer, mappings, problems):
    refunds, tenders = [], []
    for payment in refund.get("payments") or []:
        if payment.get("is_declined"):
            continue  # no money went back through this provider
        provider = payment.get("provider_id") or ""
        amount = money(payment.get("amount"))
        kind = rules.TENDER_GATEWAYS.get(provider.lower())
        if kind:
            nominal = getattr(mappings.nominals, kind)
            if not nominal:
                problems.extend([_nominal_problem(order, kind, f"a refund to {kind.replace('_', ' ')}")])
            tenders.append(Tender(kind, provider, amount, nominal, str(payment.get("transaction_id") or "")))
            continue
        account = _bank_account(mappings, currency, provider, order.get("payment_method"))
        if not account:
            problems.add(*_payment_problem(order, provider or order.get("payment_method") or "unknown", currency))
        n = len(refunds) + 1
        refunds.append(
            Refund(
                reference=f"{reference}-P" if n == 1 else f"{reference}-P{n}",
                credit_note_reference=reference,
                date=date,
                currency=currency,
                amount=amount,
                bank_account=account or "",
                method=provider,
                account_ref=customer.account_ref,
            )
        )
    return refunds, tenders
