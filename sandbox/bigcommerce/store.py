"""One BigCommerce store held in memory: catalog, customers, orders, refunds, transactions, hooks.

Usable without HTTP (tests build one directly); the HTTP app wraps it. Everything generated is
deterministic for a given ``seed`` and ``anchor`` (the moment the seeded history ends). Orders,
refunds and stock changes made at run time use the store's clock and fire events to listeners
(the webhook dispatcher) as ``listener(scope, data)``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from . import figures as fig
from .catalog import Catalog, seed_catalog
from .formats import cents
from .models import (
    CAPTURED_STATUSES,
    CURRENCIES,
    PAID_STATUSES,
    PAYMENT_STATUS,
    Customer,
    Hook,
    Order,
    OrderLine,
    Refund,
    Transaction,
)

FIRST_NAMES = ("Jane", "John", "Amara", "Luis", "Mei", "Olga", "Sam", "Priya", "Tom", "Zoe", "Ravi", "Ines")
LAST_NAMES = ("Doe", "Smith", "Okafor", "Garcia", "Chen", "Ivanova", "Taylor", "Patel", "Brown", "Muller")
# (currency, tax inclusive?, tax rate, tax name, country, iso2)
MARKETS = (
    ("USD", False, Decimal("0.0825"), "Sales Tax", "United States", "US"),
    ("USD", False, Decimal("0"), "Sales Tax", "United States", "US"),
    ("USD", False, Decimal("0.06"), "Sales Tax", "United States", "US"),
    ("GBP", True, Decimal("0.20"), "VAT", "United Kingdom", "GB"),
    ("EUR", True, Decimal("0.19"), "MwSt", "Germany", "DE"),
    ("CAD", False, Decimal("0.13"), "HST", "Canada", "CA"),
)
PAYMENT_METHODS = (
    # (payment_method label, gateway, v3 transaction method)
    ("Credit Card", "stripe", "credit_card"),
    ("Credit Card", "braintree", "credit_card"),
    ("PayPal", "paypalexpress", "electronic_wallet"),
    ("Cash on Delivery", "cod", "offline"),
)
COUPONS = (
    # code, type (1 percentage, 2 per total), amount
    ("SAVE10", 1, Decimal("10")),
    ("WELCOME5", 2, Decimal("5")),
    ("SPRING15", 1, Decimal("15")),
)


class StoreError(Exception):
    """A request the real store would refuse; ``status`` is the HTTP status it would answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class BigCommerceStore:
    def __init__(self, seed: int = 1, orders: int = 300, store_hash: str = "abc123",
                 anchor: datetime | None = None, clock: Callable[[], float] = time.time,
                 n_products: int = 20, n_customers: int = 40, client_id: str = "sandbox-client",
                 channels: int = 1):
        self.seed = seed
        self.channels = max(1, channels)  # generated orders spread over channel ids 1..channels
        self.store_hash = store_hash
        self.store_id = str(1000000000 + (sum(map(ord, store_hash)) % 999999))
        self.client_id = client_id
        self.clock = clock
        if anchor is None:
            anchor = datetime.fromtimestamp(clock(), UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.anchor = anchor
        self.lock = threading.RLock()
        self.listeners: list[Callable[[str, dict], None]] = []
        rng = random.Random(seed)
        self.catalog: Catalog = seed_catalog(rng, anchor, n_products)
        self.customers: dict[int, Customer] = {}
        self.orders: dict[int, Order] = {}
        self.refunds: dict[int, Refund] = {}
        self.transactions: dict[int, list[Transaction]] = {}
        self.hooks: dict[int, Hook] = {}
        self._ids = {"order": 99, "line": 0, "address": 0, "refund": 0, "txn": 0, "hook": 0, "customer": 0,
                     "coupon": 0, "inventory_txn": 0}
        for _ in range(n_customers):
            self._seed_customer(rng)
        # Live changes draw from their own stream so they stay deterministic too.
        self.rng = random.Random(seed * 7919 + 1)
        for i in range(orders):
            status = i if i < 15 else None  # every status at least once
            created = anchor - timedelta(seconds=rng.randint(3600, 60 * 86400))
            self._build_order(rng, {"status_id": status}, created, emit=False)

    # -- helpers ---------------------------------------------------------------------------------
    def now(self) -> datetime:
        return datetime.fromtimestamp(int(self.clock()), UTC)

    def next_id(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]

    def emit(self, scope: str, data: dict) -> None:
        for listener in list(self.listeners):
            listener(scope, data)

    def _seed_customer(self, rng: random.Random) -> Customer:
        cid = self.next_id("customer")
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        created = self.anchor - timedelta(days=rng.randint(61, 700))
        customer = Customer(
            id=cid, email=f"{first.lower()}.{last.lower()}{cid}@example.com", first_name=first, last_name=last,
            company=rng.choice(["", "", "Acme Ltd", "Globex"]), phone=f"+1 555 01{cid:02d}",
            store_credit=Decimal(rng.choice([0, 0, 0, 20, 50])), date_created=created, date_modified=created,
        )
        self.customers[cid] = customer
        return customer

    # -- orders ----------------------------------------------------------------------------------
    def _pick_status(self, rng: random.Random) -> int:
        return rng.choices(
            range(15), weights=[2, 2, 10, 3, 4, 3, 2, 4, 2, 4, 25, 25, 1, 1, 6], k=1
        )[0]

    def _build_order(self, rng: random.Random, shape: dict, created: datetime, emit: bool) -> Order:
        shape = dict(shape or {})
        status = shape.get("status_id")
        status = self._pick_status(rng) if status is None else int(status)
        market = rng.choice(MARKETS)
        if shape.get("currency"):
            market = next((m for m in MARKETS if m[0] == shape["currency"]), market)
        if "tax_inclusive" in shape:
            market = next((m for m in MARKETS if m[1] == bool(shape["tax_inclusive"])), market)
        currency, inclusive, rate, tax_name, country, iso2 = market
        if shape.get("tax_rate") is not None:
            rate = Decimal(str(shape["tax_rate"]))
        fx = CURRENCIES[currency][1]

        who = shape.get("customer")
        if who == "guest" or (who is None and rng.random() < 0.3):
            customer = None
        elif isinstance(who, int) and who in self.customers:
            customer = self.customers[who]
        else:
            customer = rng.choice(list(self.customers.values()))
        first = customer.first_name if customer else rng.choice(FIRST_NAMES)
        last = customer.last_name if customer else rng.choice(LAST_NAMES)
        order_id = self.next_id("order")
        email = customer.email if customer else f"guest{order_id}@example.net"
        address = {
            "first_name": first, "last_name": last, "company": customer.company if customer else "",
            "street_1": f"{rng.randint(1, 999)} Market Street", "street_2": "", "city": "Springfield",
            "state": "Texas" if iso2 == "US" else "", "zip": f"{rng.randint(10000, 99999)}", "country": country,
            "country_iso2": iso2, "phone": "+1 555 0100", "email": email,
        }

        # Lines: explicit SKUs, or one to five random variants.
        wanted = shape.get("lines")
        if wanted:
            picks = []
            for item in wanted:
                variant = self.catalog.variant_by_sku(item["sku"])
                if variant is None:
                    raise StoreError(422, f"unknown sku {item['sku']}")
                picks.append((variant, int(item.get("quantity", 1))))
        else:
            variants = rng.sample(list(self.catalog.variants.values()), rng.randint(1, 5))
            picks = [(v, rng.randint(1, 3)) for v in variants]
        if status == 14 and sum(q for _, q in picks) < 2:
            picks[0] = (picks[0][0], 2)  # a partial refund needs something left unrefunded
        lines = []
        for variant, qty in picks:
            product = self.catalog.products[variant.product_id]
            line_id = self.next_id("line")
            unit = self.catalog.unit_price(variant)
            options = []
            for ov in variant.option_values:
                options.append(self._option_json(line_id, ov.option_id, ov.id, ov.option_name, ov.label,
                                                 str(ov.id), "Multiple choice", "Dropdown"))
            for mod in product.modifiers:
                if rng.random() < 0.6 or shape.get("modifiers"):
                    if mod.type == "Checkbox":
                        unit += mod.price_adjustment
                        options.append(self._option_json(line_id, mod.option_id, mod.id, mod.name, "Yes",
                                                         "1", "Checkbox", ""))
                    else:
                        options.append(self._option_json(line_id, mod.option_id, mod.id, mod.name,
                                                         "Happy birthday!", "Happy birthday!", "Text field", ""))
            wrapping = Decimal("2.50") if (shape.get("wrapping") or rng.random() < 0.08) else Decimal("0")
            lines.append(OrderLine(line_id, product, variant, qty, cents(unit * fx), options, cents(wrapping * fx)))

        shipping = Decimal(str(shape["shipping"])) if shape.get("shipping") is not None else \
            cents(rng.choice([0, 4.99, 9.95, 12.50]) * float(fx))
        handling = Decimal(str(shape["handling"])) if shape.get("handling") is not None else \
            (cents(Decimal("1.50") * fx) if rng.random() < 0.25 else Decimal("0"))
        goods = sum(((ln.base_price * ln.quantity) for ln in lines), Decimal("0"))
        coupon = None
        coupon_amount = Decimal("0")
        if shape.get("coupon") or (shape.get("coupon") is None and rng.random() < 0.2):
            code, ctype, value = rng.choice(COUPONS)
            coupon_amount = cents(goods * value / 100) if ctype == 1 else min(cents(value * fx), goods / 2)
            coupon_amount = cents(coupon_amount)
            coupon = {"id": self.next_id("coupon"), "coupon_id": COUPONS.index((code, ctype, value)) + 1,
                      "code": code, "type": ctype, "amount": value}
        manual = Decimal("0")
        if shape.get("manual_discount") is not None:
            manual = cents(Decimal(str(shape["manual_discount"])))
        elif rng.random() < 0.1:
            manual = min(cents(Decimal("3.00") * fx), cents((goods - coupon_amount) / 3))
        figures = fig.compute(
            [fig.LineInput(ln.base_price, ln.quantity, ln.wrapping) for ln in lines],
            rate, inclusive, shipping, handling, coupon_amount, manual,
        )
        for ln, lf in zip(lines, figures.lines, strict=True):
            ln.figures = lf
        method, gateway, _ = rng.choice(PAYMENT_METHODS)
        gift = Decimal("0")
        credit = Decimal("0")
        if shape.get("gift_certificate") or (shape.get("gift_certificate") is None and rng.random() < 0.07):
            gift = min(cents(Decimal("25") * fx), cents(figures.total_inc / 2))
            if shape.get("gift_certificate") == "all":  # a test shape: the certificate pays the whole order
                gift = figures.total_inc
        if customer and (shape.get("store_credit") or (shape.get("store_credit") is None and rng.random() < 0.07)):
            credit = min(cents(Decimal("10") * fx), cents((figures.total_inc - gift) / 2))
            if shape.get("store_credit") == "all":  # a test shape: store credit pays what is left
                credit = figures.total_inc - gift
        modified = created
        if status not in (0, 1, 11, 7):
            modified = created + timedelta(seconds=rng.randint(60, 3 * 86400))
        if emit:
            modified = created
        else:
            modified = min(modified, self.anchor - timedelta(seconds=1))
        order = Order(
            id=order_id, customer_id=customer.id if customer else 0, status_id=status,
            date_created=created, date_modified=modified, currency=currency, tax_rate=rate, inclusive=inclusive,
            billing=address, shipping_address=dict(address), address_id=self.next_id("address"),
            shipping_method="Flat Rate" if figures.shipping.inc else "Free Shipping",
            payment_method=method, gateway=gateway, lines=lines, figures=figures, coupon=coupon,
            gift_certificate_amount=gift, store_credit_amount=credit,
            payment_status=PAYMENT_STATUS[status],
            # From the id, not the random stream, so the channel count changes nothing else.
            channel_id=int(shape.get("channel_id") or 1 + (order_id - 1) % self.channels),
            order_source="www" if rng.random() < 0.9 else "manual",
        )
        if status in (2, 10):
            order.date_shipped = modified
            for ln in lines:
                ln.quantity_shipped = ln.quantity
        elif status == 3:
            lines[0].quantity_shipped = 1
            order.date_shipped = modified
        self.orders[order_id] = order
        self.transactions[order_id] = []
        self._seed_transactions(order, rng, created)
        if status in (4, 14):
            # Paid first, refunded later (after creation, no later than date_modified).
            self._seed_refunds(order, rng, full=status == 4)
        if emit:
            self.emit("store/order/created", {"type": "order", "id": order_id})
            if status != 0:
                self.emit("store/order/statusUpdated", {
                    "type": "order", "id": order_id, "status": {"previous_status_id": 0, "new_status_id": status}})
        return order

    @staticmethod
    def _option_json(line_id, option_id, value_id, name, display_value, value, otype, style) -> dict:
        return {
            "id": line_id * 10 + len(name) % 10, "option_id": option_id, "order_product_id": line_id,
            "product_option_id": value_id, "display_name": name, "display_value": display_value,
            "value": value, "type": otype, "name": name, "display_style": style,
            "display_name_customer": name, "display_name_merchant": name,
            "display_value_customer": display_value, "display_value_merchant": display_value,
        }

    def _txn(self, order: Order, event: str, method: str, amount: Decimal, gateway: str, when: datetime,
             status: str = "ok", **extra) -> Transaction:
        t = Transaction(self.next_id("txn"), order.id, event, method, cents(amount), order.currency, gateway,
                        status, when, extra)
        self.transactions[order.id].append(t)
        return t

    def _seed_transactions(self, order: Order, rng: random.Random, when: datetime) -> None:
        status = order.status_id
        _, gateway, method = next(p for p in PAYMENT_METHODS if p[1] == order.gateway)
        card = order.card_amount
        if status in CAPTURED_STATUSES:
            if order.gift_certificate_amount:
                self._txn(order, "purchase", "gift_certificate", order.gift_certificate_amount, "giftcertificate",
                          when, gift_certificate={"code": f"GC-{order.id}", "original_balance": 50.0,
                                                  "starting_balance": 50.0, "remaining_balance":
                                                  float(50 - order.gift_certificate_amount), "status": "active"})
            if order.store_credit_amount:
                self._txn(order, "purchase", "store_credit", order.store_credit_amount, "storecredit", when,
                          store_credit={"remaining_balance": 0.0})
            if card > 0:
                if method == "credit_card" and rng.random() < 0.5:
                    auth = self._txn(order, "authorization", method, card, gateway, when)
                    self._txn(order, "capture", method, card, gateway, when + timedelta(minutes=5),
                              reference_transaction_id=auth.id)
                else:
                    self._txn(order, "purchase", method, card, gateway, when)
        elif status == 7:
            self._txn(order, "authorization", method, card, gateway, when)
        elif status == 5:
            auth = self._txn(order, "authorization", method, card, gateway, when)
            self._txn(order, "void", method, card, gateway, when + timedelta(hours=1),
                      reference_transaction_id=auth.id)
        elif status == 6:
            self._txn(order, "purchase", method, card, gateway, when, status="error")
        elif status == 12:
            self._txn(order, "pending", method, card, gateway, when)

    def _seed_refunds(self, order: Order, rng: random.Random, full: bool) -> None:
        when = order.date_created + (order.date_modified - order.date_created) / 2
        if full:
            self._refund(order, self._full_refund_items(order), "Customer returned everything", when)
            return
        kind = rng.choice(["item", "shipping", "tax"]) if order.figures.shipping.inc else rng.choice(["item", "tax"])
        if kind == "tax" and not order.figures.total_tax:
            kind = "item"
        self._refund(order, self._partial_items(order, kind), f"Partial refund ({kind})", when)

    def _full_refund_items(self, order: Order) -> list[dict]:
        items = []
        for ln in order.lines:
            left = ln.quantity - ln.quantity_refunded
            if left:
                items.append({"item_type": "PRODUCT", "item_id": ln.id, "quantity": left})
            if ln.wrapping and ln.refunded_inc < ln.figures.discounted_total_inc + ln.figures.wrapping.inc:
                items.append({"item_type": "GIFT_WRAPPING", "item_id": ln.id})
        if order.figures.shipping.inc:
            items.append({"item_type": "SHIPPING", "item_id": order.address_id})
        if order.figures.handling.inc:
            items.append({"item_type": "HANDLING", "item_id": order.address_id})
        return items

    def _partial_items(self, order: Order, kind: str) -> list[dict]:
        if kind == "shipping":
            return [{"item_type": "SHIPPING", "item_id": order.address_id}]
        if kind == "tax":
            return [{"tax_adjustment_amount": cents(order.figures.total_tax / 2) or Decimal("0.01")}]
        line = max(order.lines, key=lambda ln: ln.quantity)
        qty = max(1, line.quantity - 1) if len(order.lines) == 1 else 1
        return [{"item_type": "PRODUCT", "item_id": line.id, "quantity": qty}]

    def quote_refund(self, order: Order, items: list[dict]) -> tuple[list[dict], Decimal, Decimal]:
        """Price refund items as BigCommerce's refund quote would, without changing anything.
        Returns (priced items, total incl. tax, tax part)."""
        priced = []
        total = Decimal("0")
        tax = Decimal("0")
        lines = {ln.id: ln for ln in order.lines}
        taken: dict[int, tuple[int, Decimal, Decimal]] = {}  # line id -> (qty, inc, tax) in this refund
        for item in items:
            if "tax_adjustment_amount" in item:
                amount = cents(Decimal(str(item["tax_adjustment_amount"])))
                total += amount
                tax += amount
                continue
            kind = item.get("item_type")
            if kind == "PRODUCT":
                ln = lines.get(item.get("item_id"))
                qty = int(item.get("quantity") or 0)
                q0, inc0, tax0 = taken.get(ln.id, (0, Decimal(0), Decimal(0))) if ln else (0, 0, 0)
                if ln is None or qty < 1 or qty > ln.quantity - ln.quantity_refunded - q0:
                    raise StoreError(422, f"item {item.get('item_id')} cannot be refunded for quantity {qty}")
                lf = ln.figures
                if ln.quantity_refunded + q0 + qty == ln.quantity:
                    # The last units take whatever is left, so a full refund matches the line to the cent.
                    amount = lf.discounted_total_inc - ln.refunded_inc - inc0
                    item_tax = lf.discounted_tax - ln.refunded_tax - tax0
                else:
                    amount = cents(lf.discounted_total_inc * qty / ln.quantity)
                    item_tax = cents(lf.discounted_tax * qty / ln.quantity)
                taken[ln.id] = (q0 + qty, inc0 + amount, tax0 + item_tax)
                priced.append({"item_type": "PRODUCT", "item_id": ln.id, "quantity": qty, "amount": amount,
                               "tax": item_tax})
            elif kind == "GIFT_WRAPPING":
                ln = lines.get(item.get("item_id"))
                if ln is None or not ln.wrapping:
                    raise StoreError(422, "no gift wrapping on that item")
                amount, item_tax = ln.figures.wrapping.inc, ln.figures.wrapping.tax
                priced.append({"item_type": kind, "item_id": ln.id, "amount": amount, "tax": item_tax})
            elif kind in ("SHIPPING", "HANDLING"):
                if item.get("item_id") != order.address_id:
                    raise StoreError(422, f"unknown order address {item.get('item_id')}")
                charge = order.figures.shipping if kind == "SHIPPING" else order.figures.handling
                amount, item_tax = charge.inc, charge.tax
                priced.append({"item_type": kind, "item_id": order.address_id, "amount": amount, "tax": item_tax})
            else:
                raise StoreError(422, f"unsupported item_type {kind}")
            total += amount
            tax += item_tax
        if total <= 0:
            raise StoreError(422, "nothing to refund")
        if order.refunded_total + total > order.figures.total_inc:
            raise StoreError(422, "refund exceeds the amount paid")
        return priced, total, tax

    def _refund_split(self, order: Order, method: str, gateway: str, total: Decimal, card_left: Decimal,
                      payments: list[dict]) -> list[tuple[str, Decimal]]:
        """The merchant's choice among the refund methods BigCommerce offers (orders.v3 refund quote):
        back to the card up to what the card paid, and store credit up to the whole amount. There is
        no refund method to a gift certificate: its share goes to store credit or the card."""
        split = []
        for payment in payments:
            provider, amount = str(payment.get("provider_id") or ""), cents(Decimal(str(payment.get("amount", 0))))
            if provider not in (gateway, "storecredit"):
                raise StoreError(422, f"{provider or 'no provider'} is not a refund method for this order")
            if amount <= 0:
                raise StoreError(422, "a refund payment needs a positive amount")
            split.append((provider, amount))
        if sum((a for _, a in split), Decimal(0)) != total:
            raise StoreError(422, f"Payment total does not match the refund quote {total}")
        if sum((a for p, a in split if p == gateway), Decimal(0)) > max(card_left, Decimal(0)):
            raise StoreError(422, f"at most {card_left} can go back to {method}")
        return split

    def _refund(self, order: Order, items: list[dict], reason: str, when: datetime,
                payments: list[dict] | None = None) -> Refund:
        priced, total, tax = self.quote_refund(order, items)
        lines = {ln.id: ln for ln in order.lines}
        for item in priced:
            if item["item_type"] == "PRODUCT":
                ln = lines[item["item_id"]]
                ln.quantity_refunded += item["quantity"]
                ln.refunded_inc += item["amount"]
                ln.refunded_tax += item["tax"]
        refund_id = self.next_id("refund")
        _, gateway, method = next(p for p in PAYMENT_METHODS if p[1] == order.gateway)
        card_left = order.card_amount - sum(
            (t.amount for t in self.transactions[order.id] if t.event == "refund" and t.method == method), Decimal(0))
        if payments:
            split = self._refund_split(order, method, gateway, total, card_left, payments)
        else:  # by default: back to the card first, the rest (gift certificate, store credit) as store credit
            to_card = min(total, max(card_left, Decimal("0")))
            split = [(p, a) for p, a in ((gateway, to_card), ("storecredit", total - to_card)) if a]
        payments = []
        for n, (provider, amount) in enumerate(split, start=1):
            txn_method = "store_credit" if provider == "storecredit" else method
            txn = self._txn(order, "refund", txn_method, amount, provider, when)
            payments.append({"id": refund_id * 10 + n, "provider_id": provider, "amount": amount,
                             "offline": txn_method == "offline", "is_declined": False, "declined_message": "",
                             "transaction_id": str(txn.id)})
        refund = Refund(refund_id, order.id, when, reason, priced, total, tax, payments)
        self.refunds[refund_id] = refund
        order.refunded_total += total
        order.status_id = 4 if order.refunded_total == order.figures.total_inc else 14
        order.payment_status = PAYMENT_STATUS[order.status_id]
        return refund

    # -- run-time operations (fire webhooks) ------------------------------------------------------
    def create_order(self, shape: dict | None = None) -> Order:
        with self.lock:
            shape = dict(shape or {})
            if shape.get("status_id") is None:
                shape["status_id"] = 11
            return self._build_order(self.rng, shape, self.now(), emit=True)

    def generate_orders(self, count: int) -> list[Order]:
        with self.lock:
            return [self._build_order(self.rng, {}, self.now(), emit=True) for _ in range(count)]

    def get_order(self, order_id: int) -> Order:
        order = self.orders.get(order_id)
        if order is None:
            raise StoreError(404, "The requested resource was not found.")
        return order

    def set_status(self, order_id: int, status_id: int) -> Order:
        with self.lock:
            order = self.get_order(order_id)
            previous = order.status_id
            order.status_id = status_id
            order.payment_status = PAYMENT_STATUS[status_id] if status_id in PAYMENT_STATUS else order.payment_status
            order.date_modified = max(self.now(), order.date_modified)
            if status_id in (2, 10) and order.date_shipped is None:
                order.date_shipped = order.date_modified
            self.emit("store/order/updated", {"type": "order", "id": order_id})
            if previous != status_id:
                self.emit("store/order/statusUpdated", {"type": "order", "id": order_id, "status": {
                    "previous_status_id": previous, "new_status_id": status_id}})
            return order

    def create_refund(self, order_id: int, items: list[dict] | None = None, kind: str = "item",
                      reason: str = "Refund", payments: list[dict] | None = None) -> Refund:
        """Refund an order now. ``items`` follow the v3 create-refund body; without them ``kind``
        (item | shipping | tax | full) picks a typical refund. ``payments`` ([{provider_id, amount}])
        choose the refund methods; without them the card gets back what it paid first."""
        with self.lock:
            order = self.get_order(order_id)
            if order.status_id not in CAPTURED_STATUSES or order.status_id == 4:
                raise StoreError(422, "The order must be paid before it can be refunded.")
            previous = order.status_id
            if not items:
                items = self._full_refund_items(order) if kind == "full" else self._partial_items(order, kind)
            refund = self._refund(order, items, reason, self.now(), payments)
            order.date_modified = max(self.now(), order.date_modified)
            self.emit("store/order/refund/created", {"type": "order", "id": order_id,
                                                     "refund": {"refund_id": refund.id}})
            self.emit("store/order/updated", {"type": "order", "id": order_id})
            if previous != order.status_id:
                self.emit("store/order/statusUpdated", {"type": "order", "id": order_id, "status": {
                    "previous_status_id": previous, "new_status_id": order.status_id}})
            return refund

    # -- inventory -------------------------------------------------------------------------------
    def set_stock(self, items: list[dict]) -> str:
        """Absolute adjustment: each item has location_id, quantity and one of sku / variant_id /
        product_id. Applied at once (the real API is asynchronous; reads may lag there)."""
        with self.lock:
            resolved = []
            for n, item in enumerate(items):
                keys = [k for k in ("sku", "variant_id", "product_id") if item.get(k) is not None]
                if len(keys) != 1:
                    raise StoreError(422, f"items[{n}] needs exactly one of sku, variant_id, product_id")
                location = int(item.get("location_id", 1))
                if location not in (1, 2):
                    raise StoreError(422, f"Location {location} does not exist")
                quantity = int(item["quantity"])
                if quantity < 0 or quantity > 2_147_483_647:
                    raise StoreError(422, f"items[{n}].quantity is out of range")
                if keys[0] == "sku":
                    variant = self.catalog.variant_by_sku(item["sku"])
                elif keys[0] == "variant_id":
                    variant = self.catalog.variants.get(int(item["variant_id"]))
                else:
                    product = self.catalog.products.get(int(item["product_id"]))
                    if product and product.tracking == "variant":
                        raise StoreError(422, f"Item with product_id {product.id} is tracked by variant, "
                                              "please update stock by variant id or sku")
                    variant = product.variants[0] if product else None
                if variant is None:
                    raise StoreError(422, f"items[{n}]: no inventory item for {keys[0]}={item[keys[0]]}")
                product = self.catalog.products[variant.product_id]
                if keys[0] == "variant_id" and product.tracking == "product" and product.has_options:
                    raise StoreError(422, f"Item with variant_id {variant.id} is tracked by product, "
                                          "please update stock by product id")
                resolved.append((variant, location, quantity))
            for variant, location, quantity in resolved:
                self.catalog.stock[(variant.id, location)] = quantity
                product = self.catalog.products[variant.product_id]
                product.date_modified = self.now()
                if product.tracking == "product":
                    self.emit("store/product/inventory/updated", {"type": "product", "id": product.id, "inventory": {
                        "product_id": product.id, "method": "absolute", "value": quantity}})
                else:
                    self.emit("store/sku/inventory/updated", {"type": "sku", "id": variant.sku_id, "inventory": {
                        "product_id": product.id, "method": "absolute", "value": quantity,
                        "variant_id": variant.id}})
            return f"sandbox-{self.next_id('inventory_txn'):06d}"

    def touch_product(self, product_id: int, price: Decimal | None = None) -> None:
        with self.lock:
            product = self.catalog.products.get(product_id)
            if product is None:
                raise StoreError(404, "The requested resource was not found.")
            if price is not None:
                product.price = cents(price)
            product.date_modified = self.now()
            self.emit("store/product/updated", {"type": "product", "id": product_id})

    # -- customers -------------------------------------------------------------------------------
    def create_customers(self, bodies: list[dict]) -> list[Customer]:
        with self.lock:
            known = {c.email.lower() for c in self.customers.values()}
            for n, body in enumerate(bodies):
                for key in ("email", "first_name", "last_name"):
                    if not body.get(key):
                        raise StoreError(422, f"[{n}].{key} is required")
                if body["email"].lower() in known:
                    raise StoreError(422, f"The email address {body['email']} is already in use.")
                known.add(body["email"].lower())
            created = []
            for body in bodies:
                now = self.now()
                customer = Customer(
                    id=self.next_id("customer"), email=body["email"], first_name=body["first_name"],
                    last_name=body["last_name"], company=body.get("company", ""), phone=body.get("phone", ""),
                    customer_group_id=int(body.get("customer_group_id") or 0), notes=body.get("notes", ""),
                    date_created=now, date_modified=now,
                )
                self.customers[customer.id] = customer
                created.append(customer)
                self.emit("store/customer/created", {"type": "customer", "id": customer.id})
            return created

    # -- hooks -----------------------------------------------------------------------------------
    def create_hook(self, body: dict) -> Hook:
        with self.lock:
            scope, destination = body.get("scope"), body.get("destination")
            if not scope or not destination:
                raise StoreError(422, "scope and destination are required")
            for hook in self.hooks.values():
                if hook.scope == scope and hook.destination == destination:
                    raise StoreError(422, "A webhook with this scope and destination already exists.")
            now = int(self.clock())
            hook = Hook(self.next_id("hook"), self.client_id, scope, destination, body.get("headers"),
                        bool(body.get("is_active", True)), now, now)
            self.hooks[hook.id] = hook
            return hook

    def update_hook(self, hook_id: int, body: dict) -> Hook:
        with self.lock:
            hook = self.hooks.get(hook_id)
            if hook is None:
                raise StoreError(404, "Webhook not found")
            for key in ("scope", "destination", "headers"):
                if key in body:
                    setattr(hook, key, body[key])
            if "is_active" in body:
                hook.is_active = bool(body["is_active"])
                if hook.is_active:
                    hook.consecutive_failures = 0
            hook.updated_at = int(self.clock())
            return hook

    def delete_hook(self, hook_id: int) -> Hook:
        with self.lock:
            hook = self.hooks.pop(hook_id, None)
            if hook is None:
                raise StoreError(404, "Webhook not found")
            return hook


def paid(order: Order) -> bool:
    return order.status_id in PAID_STATUSES
