"""One Adobe Commerce (Magento 2) instance held in memory: websites and store views, catalog and
stock (MSI source items and the legacy stock item), customers, orders, invoices, credit memos.

Usable without HTTP (tests build one directly); ``sandbox.adobe.app`` serves it. Everything
seeded is deterministic for a given ``seed`` and ``anchor`` (the moment the seeded history ends).
Changes made at run time (place, invoice, refund, comment, stock) use the store's clock, bump the
record's ``updated_at`` like Magento does (an invoice or credit memo also touches its order) and
are announced to listeners as ``listener(event, record)`` with event one of ``order_placed``,
``order_saved``, ``invoice_saved``, ``creditmemo_saved``, ``stock_changed``.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from .models import (
    ZERO,
    Address,
    Comment,
    CreditMemo,
    DocItem,
    GiftCard,
    Invoice,
    LegacyStockItem,
    LineAmounts,
    Order,
    OrderItem,
    Pair,
    Product,
    SourceItem,
    StoreGroup,
    StoreView,
    Website,
    money,
    psum,
    totals_from_items,
)

FIRST_NAMES = ("Veronica", "John", "Amara", "Luis", "Mei", "Olga", "Sam", "Priya", "Tom", "Zoe", "Ravi", "Ines")
LAST_NAMES = ("Costello", "Smith", "Okafor", "Garcia", "Chen", "Ivanova", "Taylor", "Patel", "Brown", "Muller")
CITIES = {
    "US": (("Calder", "Michigan", "MI", "49628-7978"), ("Austin", "Texas", "TX", "78701"),
           ("Portland", "Oregon", "OR", "97201")),
    "FR": (("Paris", "Paris", "75", "75002"), ("Lyon", "Rhone", "69", "69001")),
    "GB": (("London", "London", "LND", "SW1A 1AA"), ("Leeds", "West Yorkshire", "WYK", "LS1 4AP")),
}
PAYMENT_METHODS = (
    # (method code, title, captured online?)
    ("checkmo", "Check / Money order", False),
    ("banktransfer", "Bank Transfer Payment", False),
    ("braintree", "Credit Card (Braintree)", True),
    ("paypal_express", "PayPal Express Checkout", True),
)
SHIPPING_METHODS = (("flatrate_flatrate", "Flat Rate - Fixed"), ("tablerate_bestway", "Best Way - Table Rate"))
ORDER_STATES = ("new", "pending_payment", "processing", "complete", "closed", "canceled", "holded", "payment_review")
# Default status per state (Magento's sales_order_status_state defaults).
DEFAULT_STATUS = {"new": "pending", "pending_payment": "pending_payment", "processing": "processing",
                  "complete": "complete", "closed": "closed", "canceled": "canceled", "holded": "holded",
                  "payment_review": "payment_review"}


class StoreError(Exception):
    """A request the real store would refuse. ``message`` is Magento's template (``%1``, ``%name``)
    and ``parameters`` its values, exactly as the REST error body carries them."""

    def __init__(self, status: int, message: str, parameters=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.parameters = parameters


def _seed_stores() -> tuple[dict[int, Website], dict[int, StoreGroup], dict[int, StoreView]]:
    websites = {
        0: Website(0, "admin", "Admin", 0, "USD"),
        1: Website(1, "base", "Main Website", 1, "USD"),
        2: Website(2, "uk_site", "UK Website", 2, "GBP"),
    }
    groups = {
        0: StoreGroup(0, 0, "Default", "default", 0, 0),
        1: StoreGroup(1, 1, "Main Website Store", "main_website_store", 1),
        2: StoreGroup(2, 2, "UK Store", "uk_store", 3),
    }
    views = {
        0: StoreView(0, "admin", "Admin", 0, 0, "en_US", "USD", "UTC", ZERO, ZERO, "US", ""),
        1: StoreView(1, "default", "Default Store View", 1, 1, "en_US", "USD", "America/Chicago",
                     Decimal("8.25"), ZERO, "US", ""),
        # Same website (base USD), shown and charged in euros: order currency differs from base.
        2: StoreView(2, "french", "French Store View", 1, 1, "fr_FR", "EUR", "Europe/Paris",
                     Decimal("20"), Decimal("20"), "FR", "2"),
        3: StoreView(3, "uk", "UK Store View", 2, 2, "en_GB", "GBP", "Europe/London",
                     Decimal("20"), Decimal("20"), "GB", "3"),
    }
    return websites, groups, views


# Display-currency rates from each website's base currency (base_to_order_rate).
RATES = {("USD", "USD"): Decimal("1"), ("USD", "EUR"): Decimal("0.9215"), ("GBP", "GBP"): Decimal("1")}


class AdobeCommerceStore:
    def __init__(self, seed: int = 1, orders: int = 300, anchor: datetime | None = None,
                 clock: Callable[[], float] = time.time, n_customers: int = 40,
                 shared_increment_sequence: bool = False):
        self.seed = seed
        self.clock = clock
        if anchor is None:
            anchor = datetime.fromtimestamp(clock(), UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.anchor = anchor
        self.lock = threading.RLock()
        self.listeners: list[Callable[[str, object], None]] = []
        self.websites, self.groups, self.views = _seed_stores()
        # Magento keeps one sequence per store and entity; increment_id is unique only per store
        # (magento2#33457). With shared_increment_sequence the UK store reuses the default store's
        # prefix, so the same increment_id appears in two stores, as on real multi-store sites.
        if shared_increment_sequence:
            self.views[3].increment_prefix = ""
        self.products: dict[int, Product] = {}
        self.source_items: dict[tuple[str, str], SourceItem] = {}
        self.stock_items: dict[int, LegacyStockItem] = {}  # by product id
        self.customers: dict[int, dict] = {}
        self.orders: dict[int, Order] = {}
        self.invoices: dict[int, Invoice] = {}
        self.creditmemos: dict[int, CreditMemo] = {}
        self.msi_enabled = True
        self._ids: dict[str, int] = {}
        self._sequences: dict[tuple[str, int], int] = {}
        rng = random.Random(seed)
        self._seed_catalog(rng)
        for _ in range(n_customers):
            self._seed_customer(rng)
        self.rng = random.Random(seed * 7919 + 1)  # run-time changes draw from their own stream
        for i in range(orders):
            created = anchor - timedelta(seconds=rng.randint(3600, 60 * 86400))
            self._seed_order(rng, i, created)

    # -- helpers ---------------------------------------------------------------------------------
    def now(self) -> datetime:
        return datetime.fromtimestamp(int(self.clock()), UTC)

    def next_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def next_increment(self, entity: str, store: StoreView) -> str:
        key = (entity, store.id)
        self._sequences[key] = self._sequences.get(key, 0) + 1
        return f"{store.increment_prefix}{self._sequences[key]:09d}"

    def emit(self, event: str, record) -> None:
        for listener in list(self.listeners):
            listener(event, record)

    def view_by_code(self, code: str) -> StoreView | None:
        return next((v for v in self.views.values() if v.code == code), None)

    # -- catalog and stock -----------------------------------------------------------------------
    def _product(self, sku: str, name: str, type_id: str, price: Decimal, rng: random.Random, **kw) -> Product:
        pid = self.next_id("product")
        product = Product(pid, sku, name, type_id, price, money(price * Decimal("0.55")),
                          updated_at=self.anchor - timedelta(days=rng.randint(30, 400)), **kw)
        self.products[pid] = product
        if type_id in ("simple", "virtual"):
            qty = Decimal(rng.randint(0, 150))
            self.stock_items[pid] = LegacyStockItem(self.next_id("stock_item"), pid, qty, qty > 0)
            self.source_items[(sku, "default")] = SourceItem(sku, "default", qty, 1 if qty > 0 else 0)
            if pid % 3 == 0:
                extra = Decimal(rng.randint(0, 40))
                self.source_items[(sku, "warehouse_east")] = SourceItem(sku, "warehouse_east", extra,
                                                                        1 if extra > 0 else 0)
        return product

    def _seed_catalog(self, rng: random.Random) -> None:
        simple_names = ("Joust Duffle Bag", "Strive Shoulder Pack", "Crown Summit Backpack", "Wayfarer Messenger Bag",
                        "Rival Field Messenger", "Fusion Backpack", "Impulse Duffle", "Voyage Yoga Bag",
                        "Compete Track Tote", "Savvy Shoulder Tote", "Endeavor Daytrip Backpack", "Driven Backpack")
        for n, name in enumerate(simple_names):
            self._product(f"24-MB{n + 1:02d}", name, "simple", Decimal(rng.randint(1500, 9900)) / 100, rng)
        for n, (code, name) in enumerate((("MH01", "Chaz Kangeroo Hoodie"), ("WS03", "Iris Workout Top"),
                                          ("MP05", "Kratos Gym Pant"))):
            price = Decimal(rng.randint(2900, 7900)) / 100
            parent = self._product(code, name, "configurable", ZERO, rng)
            for m, (size, color) in enumerate((("S", "Black"), ("M", "Blue"), ("L", "Orange"))):
                child = self._product(f"{code}-{size}-{color}", f"{name}-{size}-{color}", "simple", price, rng,
                                      parent_id=parent.id, option_value=167 + m + n * 3)
                parent.children.append(child.id)
        for code, name, price_type in (("24-WG080", "Sprite Yoga Companion Kit", "dynamic"),
                                       ("24-WG081", "Fixed Price Gym Set", "fixed")):
            price = Decimal(rng.randint(6000, 9000)) / 100 if price_type == "fixed" else ZERO
            bundle = self._product(code, name, "bundle", price, rng, bundle_price_type=price_type)
            for m, part in enumerate(("Sprite Stasis Ball 55 cm", "Sprite Foam Yoga Brick")):
                child = self._product(f"{code}-P{m + 1}", part, "simple", Decimal(rng.randint(500, 3200)) / 100, rng,
                                      parent_id=bundle.id)
                bundle.children.append(child.id)
        self._product("WARRANTY-1Y", "One-year extended warranty", "virtual", Decimal("19.00"), rng)

    def product_by_sku(self, sku: str) -> Product | None:
        return next((p for p in self.products.values() if p.sku == sku), None)

    def set_source_items(self, items: list[dict]) -> list[SourceItem]:
        """MSI ``POST /V1/inventory/source-items``: absolute quantities per (sku, source)."""
        changed = []
        with self.lock:
            for raw in items:
                sku, source = str(raw.get("sku") or ""), str(raw.get("source_code") or "")
                product = self.product_by_sku(sku)
                if product is None:
                    raise StoreError(400, 'The product that was requested doesn\'t exist. Verify the product '
                                          'and try again.')
                if source not in ("default", "warehouse_east"):
                    raise StoreError(400, "Validation Failed", None)
                qty = Decimal(str(raw.get("quantity", 0)))
                status = int(raw.get("status", 1 if qty > 0 else 0))
                item = SourceItem(sku, source, qty, status)
                self.source_items[(sku, source)] = item
                if source == "default" and product.id in self.stock_items:
                    legacy = self.stock_items[product.id]
                    legacy.qty, legacy.is_in_stock = qty, bool(status)
                product.updated_at = self.now()
                changed.append(item)
        for item in changed:
            self.emit("stock_changed", item)
        return changed

    def set_legacy_stock(self, sku: str, item_id: int, qty: Decimal, is_in_stock: bool | None) -> LegacyStockItem:
        with self.lock:
            product = self.product_by_sku(sku)
            if product is None:
                raise StoreError(404, "The Product with the \"%1\" SKU doesn't exist.", [sku])
            legacy = self.stock_items.get(product.id)
            if legacy is None:
                raise StoreError(400, "The stock item was unable to be saved. Please try again.")
            # Magento saves the product's own stock item whatever itemId the path names.
            legacy.qty = qty
            legacy.is_in_stock = bool(qty > 0) if is_in_stock is None else is_in_stock
            self.source_items[(sku, "default")] = SourceItem(sku, "default", qty, 1 if legacy.is_in_stock else 0)
            product.updated_at = self.now()
        self.emit("stock_changed", self.source_items[(sku, "default")])
        return legacy

    # -- customers -------------------------------------------------------------------------------
    def _seed_customer(self, rng: random.Random) -> dict:
        cid = self.next_id("customer")
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        view = self.views[rng.choice((1, 1, 2, 3))]
        created = self.anchor - timedelta(days=rng.randint(61, 700))
        city, region, region_code, postcode = rng.choice(CITIES[view.country])
        customer = {
            "id": cid, "group_id": 1, "created_at": created, "updated_at": created,
            "email": f"{first.lower()}.{last.lower()}{cid}@example.com", "firstname": first, "lastname": last,
            "store_id": view.id, "website_id": view.website_id, "country": view.country,
            "city": city, "region": region, "region_code": region_code, "postcode": postcode,
            "street": f"{rng.randint(1, 999)} {rng.choice(('Oak', 'High', 'Main', 'Rue de la Paix'))} Street",
            "telephone": f"+1555{cid:07d}", "company": rng.choice((None, None, "Acme Ltd", "Globex")),
        }
        self.customers[cid] = customer
        return customer

    # -- orders ----------------------------------------------------------------------------------
    def _address(self, kind: str, who: dict, email: str) -> Address:
        return Address(self.next_id("address"), kind, who["firstname"], who["lastname"], [who["street"]],
                       who["city"], who["region"], who["region_code"], who["postcode"], who["country"],
                       who["telephone"], email, who.get("id"), who.get("company"))

    def _line(self, order_id: int, product: Product, qty: Decimal, rate: Decimal, tax_percent: Decimal,
              discount_percent: Decimal, created: datetime, *, product_type: str | None = None,
              name: str | None = None, sku: str | None = None, carries_money: bool = True,
              parent: OrderItem | None = None, base_price: Decimal | None = None) -> OrderItem:
        base_price = product.base_price if base_price is None else base_price
        if not carries_money:
            amounts = LineAmounts()
        else:
            price = Pair(money(base_price * rate), base_price)
            row = Pair(money(price.order * qty), money(price.base * qty))
            discount = Pair(money(row.order * discount_percent / 100), money(row.base * discount_percent / 100))
            taxable = row - discount
            tax = Pair(money(taxable.order * tax_percent / 100), money(taxable.base * tax_percent / 100))
            amounts = LineAmounts(price, row, tax, discount)
        return OrderItem(
            item_id=self.next_id("order_item"), order_id=order_id, product=product, sku=sku or product.sku,
            name=name or product.name, product_type=product_type or product.type_id, qty_ordered=qty,
            tax_percent=tax_percent if carries_money else ZERO,
            discount_percent=discount_percent if carries_money else ZERO, amounts=amounts,
            parent_item_id=parent.item_id if parent else None, carries_money=carries_money, created_at=created)

    def _lines_for(self, order_id: int, product: Product, qty: Decimal, rate: Decimal, tax: Decimal,
                   discount: Decimal, created: datetime) -> list[OrderItem]:
        """The order items one cart line becomes, parent/child pairs included (reference §4)."""
        if product.type_id == "configurable":
            raise ValueError("order a configurable product through one of its variants")
        if product.parent_id is not None and self.products[product.parent_id].type_id == "configurable":
            parent_product = self.products[product.parent_id]
            # Parent line: type configurable, the child's SKU, the parent's name, all the money.
            parent = self._line(order_id, parent_product, qty, rate, tax, discount, created,
                                product_type="configurable", sku=product.sku, base_price=product.base_price)
            child = self._line(order_id, product, qty, rate, tax, discount, created, product_type="simple",
                               carries_money=False, parent=parent)
            parent.product_option = {"extension_attributes": {"configurable_item_options": [
                {"option_id": "93", "option_value": product.option_value}]}}
            return [parent, child]
        if product.type_id == "bundle":
            fixed = product.bundle_price_type == "fixed"
            parent = self._line(order_id, product, qty, rate, tax, discount, created, carries_money=fixed)
            parent.bundle_price_type = product.bundle_price_type
            lines = [parent]
            for child_id in product.children:
                lines.append(self._line(order_id, self.products[child_id], qty, rate, tax, discount, created,
                                        carries_money=not fixed, parent=parent))
            return lines
        return [self._line(order_id, product, qty, rate, tax, discount, created)]

    def sellable_products(self) -> list[Product]:
        return [p for p in self.products.values()
                if p.type_id in ("simple", "virtual", "bundle")
                and (p.parent_id is None or self.products[p.parent_id].type_id == "configurable")]

    def place_order(self, spec: dict | None = None, created: datetime | None = None,
                    rng: random.Random | None = None, emit: bool = True) -> Order:
        """Place an order. ``spec`` keys (all optional): store (code), customer_id, guest (bool),
        lines [{sku, qty}], coupon (bool), gift_card (amount in order currency), store_credit,
        payment_method, virtual (bool)."""
        spec = spec or {}
        rng = rng or self.rng
        with self.lock:
            created = created or self.now()
            view = self.view_by_code(spec["store"]) if spec.get("store") else self.views[rng.choice((1, 1, 1, 2, 3))]
            if view is None or view.id == 0:
                raise StoreError(400, "The store that was requested wasn't found. Verify the store and try again.")
            website = self.websites[view.website_id]
            rate = RATES[(website.base_currency, view.display_currency)]
            guest = bool(spec.get("guest", rng.random() < 0.25))
            if spec.get("customer_id"):
                who = self.customers.get(int(spec["customer_id"]))
                if who is None:
                    raise StoreError(404, 'No such entity with %fieldName = %fieldValue',
                                     {"fieldName": "customerId", "fieldValue": str(spec["customer_id"])})
                guest = False
            elif guest:
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                city, region, region_code, postcode = rng.choice(CITIES[view.country])
                who = {"id": None, "firstname": first, "lastname": last, "city": city, "region": region,
                       "region_code": region_code, "postcode": postcode, "country": view.country,
                       "street": f"{rng.randint(1, 99)} Guest Lane", "telephone": "+15550000000", "company": None,
                       "email": f"guest.{first.lower()}{rng.randint(100, 999)}@example.net"}
            else:
                who = self.customers[rng.choice(sorted(self.customers))]
            email = who["email"]
            entity_id = self.next_id("order")
            discount = Decimal("10") if spec.get("coupon", rng.random() < 0.3) else ZERO
            items: list[OrderItem] = []
            if spec.get("lines"):
                for raw in spec["lines"]:
                    product = self.product_by_sku(str(raw.get("sku")))
                    if product is None:
                        raise StoreError(404, "The product that was requested doesn't exist. Verify the product "
                                              "and try again.")
                    items += self._lines_for(entity_id, product, Decimal(str(raw.get("qty", 1))), rate,
                                             view.tax_rate, discount, created)
            else:
                choices = self.sellable_products()
                for product in rng.sample(choices, rng.randint(1, 3)):
                    items += self._lines_for(entity_id, product, Decimal(rng.randint(1, 3)), rate, view.tax_rate,
                                             discount, created)
            virtual = all(i.product_type == "virtual" for i in items) or bool(spec.get("virtual"))
            if virtual:
                shipping = Pair()
                method = ("", "")
            else:
                method = rng.choice(SHIPPING_METHODS)
                qty = sum(i.qty_ordered for i in items if i.parent_item_id is None)
                base_ship = money(Decimal("5") * qty)
                shipping = Pair(money(base_ship * rate), base_ship)
            shipping_tax = Pair(money(shipping.order * view.shipping_tax_rate / 100),
                                money(shipping.base * view.shipping_tax_rate / 100))
            totals = totals_from_items([i.amounts for i in items if i.carries_money], shipping, shipping_tax)
            pay = next((p for p in PAYMENT_METHODS if p[0] == spec.get("payment_method")), None) or rng.choice(
                PAYMENT_METHODS)
            order = Order(
                entity_id=entity_id, increment_id=self.next_increment("order", view), store=view,
                base_currency=website.base_currency, order_currency=view.display_currency, base_to_order_rate=rate,
                state="new", status="pending", created_at=created, updated_at=created,
                customer_id=who["id"], customer_email=email, customer_firstname=who["firstname"],
                customer_lastname=who["lastname"], customer_group_id=0 if guest else 1,
                billing=self._address("billing", who, email),
                shipping_address=None if virtual else self._address("shipping", who, email),
                shipping_method=method[0], shipping_description=method[1], payment_method=pay[0],
                payment_title=pay[1], items=items, totals=totals,
                coupon_code="H20" if discount else None, discount_description="H20" if discount else None,
                quote_id=entity_id + 1000)
            order.captured_online = pay[2]
            pre_total = totals.grand_total
            gift = spec.get("gift_card")
            if gift is None and rng.random() < 0.06:
                gift = money(min(Decimal(rng.choice((10, 25))), pre_total.order * Decimal("0.5")))
            if gift:
                amount = Pair(money(Decimal(str(gift))), money(Decimal(str(gift)) / rate))
                order.gift_cards.append(GiftCard(self.next_id("giftcard"), f"GC{entity_id:05d}XY", amount))
                totals.gift_cards = amount
            credit = spec.get("store_credit")
            if credit is None and not guest and rng.random() < 0.05:
                credit = money(min(Decimal("15"), totals.grand_total.order * Decimal("0.5")))
            if credit and not guest:
                totals.customer_balance = Pair(money(Decimal(str(credit))), money(Decimal(str(credit)) / rate))
            order.histories.append(Comment(self.next_id("history"), entity_id, "", created, "pending",
                                           entity_name="order"))
            self.orders[entity_id] = order
        if emit:
            self.emit("order_placed", order)
        return order

    def get_order(self, entity_id: int) -> Order:
        order = self.orders.get(entity_id)
        if order is None:
            raise StoreError(404, "The entity that was requested doesn't exist. Verify the entity and try again.")
        return order

    def touch(self, order: Order, moment: datetime) -> None:
        order.updated_at = max(order.updated_at, moment)

    def _refresh_state(self, order: Order) -> None:
        if order.state in ("canceled", "holded"):
            return
        money_items = order.money_items()
        fully_invoiced = all(i.qty_invoiced >= i.qty_ordered for i in money_items)
        if order.invoices:
            refunded, paid = order.refunded(), order.paid()
            if fully_invoiced and refunded.order and refunded.order >= paid.order:
                state = "closed"
            elif fully_invoiced and (order.shipped or order.is_virtual):
                state = "complete"
            else:
                state = "processing"
        else:
            state = "new"
        if state != order.state:
            order.state, order.status = state, DEFAULT_STATUS[state]

    def set_status(self, entity_id: int, state: str, status: str | None = None) -> Order:
        with self.lock:
            order = self.get_order(entity_id)
            if state not in ORDER_STATES:
                raise StoreError(400, 'The "%1" order state is not valid.', [state])
            order.state, order.status = state, status or DEFAULT_STATUS[state]
            if state == "canceled":
                for item in order.items:
                    item.qty_canceled = item.qty_ordered - item.qty_invoiced
            now = self.now()
            order.histories.append(Comment(self.next_id("history"), order.entity_id, "", now, order.status))
            self.touch(order, now)
        self.emit("order_saved", order)
        return order

    def ship(self, entity_id: int) -> Order:
        with self.lock:
            order = self.get_order(entity_id)
            order.shipped = True
            for item in order.items:
                item.qty_shipped = item.qty_invoiced
            self._refresh_state(order)
            self.touch(order, self.now())
        self.emit("order_saved", order)
        return order

    def add_comment(self, entity_id: int, comment: str, status: str | None = None, notify: int = 0,
                    visible: int = 0) -> Comment:
        with self.lock:
            order = self.get_order(entity_id)
            now = self.now()
            if status:
                order.status = status
            entry = Comment(self.next_id("history"), order.entity_id, comment, now, status or order.status,
                            is_customer_notified=notify, is_visible_on_front=visible)
            order.histories.append(entry)
            self.touch(order, now)
        self.emit("order_saved", order)
        return entry

    # -- invoices --------------------------------------------------------------------------------
    def _children(self, order: Order, parent: OrderItem) -> list[OrderItem]:
        return [i for i in order.items if i.parent_item_id == parent.item_id]

    def invoice(self, entity_id: int, qtys: dict[int, Decimal] | None = None, state: int = 2,
                moment: datetime | None = None, emit: bool = True) -> Invoice:
        """Invoice an order: ``qtys`` maps top-level order item ids to quantities (children follow
        their parent); ``None`` invoices everything left. The first invoice carries the shipping,
        gift cards and store credit; the invoice that finishes an item takes the remainder so that
        the invoices of an order add up to its totals to the cent."""
        with self.lock:
            order = self.get_order(entity_id)
            if order.state in ("canceled", "holded", "closed", "payment_review"):
                raise StoreError(400, "The order does not allow an invoice to be created.")
            moment = moment or self.now()
            inv_id = self.next_id("invoice")
            doc_items: list[DocItem] = []
            for item in order.items:
                if item.parent_item_id is not None:
                    continue
                left = item.qty_ordered - item.qty_invoiced - item.qty_canceled
                qty = left if qtys is None else Decimal(str(qtys.get(item.item_id, 0)))
                if qty < 0 or qty > left:
                    raise StoreError(400, 'We found an invalid quantity to invoice item "%1".', [item.name])
                if not qty:
                    continue
                for line in [item, *self._children(order, item)]:
                    doc_items.append(DocItem(self.next_id("invoice_item"), inv_id, line, qty,
                                             self._take(line, qty, "invoiced")))
            if not doc_items:
                raise StoreError(400, "The invoice can't be created without products. Add products and try again.")
            shipping = order.totals.shipping - order.shipping_invoiced()
            shipping_tax = order.totals.shipping_tax if not order.shipping_invoiced().order and shipping.order \
                else Pair()
            totals = totals_from_items([d.amounts for d in doc_items if d.order_item.carries_money], shipping,
                                       shipping_tax)
            taken_gift = psum(i.totals.gift_cards for i in order.invoices)
            taken_credit = psum(i.totals.customer_balance for i in order.invoices)
            room = totals.grand_total
            gift = order.totals.gift_cards - taken_gift
            gift = gift if gift.order <= room.order else room
            totals.gift_cards = gift
            room = totals.grand_total
            credit = order.totals.customer_balance - taken_credit
            totals.customer_balance = credit if credit.order <= room.order else room
            invoice = Invoice(inv_id, self.next_increment("invoice", order.store), order.entity_id, order.store.id,
                              state, moment, moment, doc_items, totals,
                              transaction_id=f"txn-{inv_id:06d}" if order.captured_online else None)
            for d in doc_items:
                d.order_item.qty_invoiced += d.qty
                d.order_item.invoiced = d.order_item.invoiced + d.amounts
            order.invoices.append(invoice)
            self.invoices[inv_id] = invoice
            verb = "Captured" if invoice.transaction_id else "Invoiced"
            grand = invoice.totals.grand_total.order
            order.histories.append(Comment(self.next_id("history"), order.entity_id,
                                           f"{verb} amount of {order.order_currency} {grand:.2f}.", moment,
                                           "processing"))
            self._refresh_state(order)
            self.touch(order, moment)
        if emit:
            self.emit("invoice_saved", invoice)
            self.emit("order_saved", order)
        return invoice

    def _take(self, line: OrderItem, qty: Decimal, done: str) -> LineAmounts:
        """The share of ``line``'s money that ``qty`` more units invoice (or refund)."""
        if not line.carries_money:
            return LineAmounts(line.amounts.price)
        already = line.qty_invoiced if done == "invoiced" else line.qty_refunded
        taken: LineAmounts = getattr(line, done)
        if already + qty >= line.qty_ordered:
            rest = line.amounts - taken
            return LineAmounts(line.amounts.price, rest.row_total, rest.tax, rest.discount)
        a = line.amounts
        return LineAmounts(a.price, a.row_total.share(qty, line.qty_ordered), a.tax.share(qty, line.qty_ordered),
                           a.discount.share(qty, line.qty_ordered))

    # -- credit memos ----------------------------------------------------------------------------
    def refund(self, entity_id: int, qtys: dict[int, Decimal] | None = None, invoice_id: int | None = None,
               shipping: Decimal | None = None, adjustment_positive: Decimal = ZERO,
               adjustment_negative: Decimal = ZERO, moment: datetime | None = None, emit: bool = True) -> CreditMemo:
        """Create a credit memo. ``invoice_id`` given: an online refund against that invoice (it must
        have been captured online); none: an offline refund against the order, with no invoice link.
        ``qtys`` maps top-level order item ids to quantities (``None``: everything refundable);
        ``shipping`` is the shipping refund in order currency (``None``: what is left of it)."""
        with self.lock:
            order = self.get_order(entity_id)
            moment = moment or self.now()
            invoice = None
            if invoice_id is not None:
                invoice = self.invoices.get(int(invoice_id))
                if invoice is None or invoice.order_id != order.entity_id:
                    raise StoreError(404, "The entity that was requested doesn't exist. Verify the entity and "
                                          "try again.")
                if not invoice.transaction_id:
                    # Online refunds need a captured transaction (magento2#30749).
                    raise StoreError(400, "We can't create creditmemo for the invoice.")
            if not order.invoices:
                raise StoreError(400, "We can't create creditmemo for the order.")
            if invoice is not None and qtys is None:
                # Against an invoice, the default is what that invoice billed and is not refunded yet.
                qtys = {d.order_item.item_id: min(d.qty, d.order_item.qty_invoiced - d.order_item.qty_refunded)
                        for d in invoice.items if d.order_item.parent_item_id is None}
            cm_id = self.next_id("creditmemo")
            doc_items: list[DocItem] = []
            for item in order.items:
                if item.parent_item_id is not None:
                    continue
                left = item.qty_invoiced - item.qty_refunded
                qty = left if qtys is None else Decimal(str(qtys.get(item.item_id, 0)))
                if qty < 0 or qty > left:
                    raise StoreError(400, "The most money available to refund is %1.",
                                     [f"{(order.paid() - order.refunded()).order:.2f}"])
                if not qty:
                    continue
                for line in [item, *self._children(order, item)]:
                    doc_items.append(DocItem(self.next_id("creditmemo_item"), cm_id, line, qty,
                                             self._take(line, qty, "refunded")))
            ship_left = order.shipping_invoiced() - order.shipping_refunded()
            if shipping is None:
                ship = ship_left
                if invoice is not None and invoice.totals.shipping.order < ship_left.order:
                    ship = invoice.totals.shipping
            else:
                amount = money(Decimal(str(shipping)))
                if amount > ship_left.order:
                    raise StoreError(400, "Maximum shipping amount allowed to refund is: %1",
                                     [f"{ship_left.order:.2f}"])
                ship = Pair(amount, money(amount / order.base_to_order_rate))
            ship_tax = order.totals.shipping_tax.share(ship.order, order.totals.shipping.order)
            totals = totals_from_items([d.amounts for d in doc_items if d.order_item.carries_money], ship, ship_tax)
            rate = order.base_to_order_rate
            totals.adjustment_positive = Pair(money(adjustment_positive), money(Decimal(adjustment_positive) / rate))
            totals.adjustment_negative = Pair(money(adjustment_negative), money(Decimal(adjustment_negative) / rate))
            if totals.grand_total.order <= 0:
                raise StoreError(400, "The credit memo's total must be positive.")
            available = order.paid() - order.refunded()
            if totals.grand_total.order > available.order:
                raise StoreError(400, "The most money available to refund is %1.", [f"{available.order:.2f}"])
            memo = CreditMemo(cm_id, self.next_increment("creditmemo", order.store), order.entity_id, order.store.id,
                              invoice.entity_id if invoice else None, 2, moment, moment, doc_items, totals,
                              transaction_id=f"{invoice.transaction_id}-refund" if invoice else None)
            for d in doc_items:
                d.order_item.qty_refunded += d.qty
                d.order_item.refunded = d.order_item.refunded + d.amounts
            order.creditmemos.append(memo)
            self.creditmemos[cm_id] = memo
            how = "online" if invoice else "offline"
            order.histories.append(Comment(self.next_id("history"), order.entity_id,
                                           f"We refunded {order.order_currency} {totals.grand_total.order:.2f} {how}.",
                                           moment, order.status))
            self._refresh_state(order)
            self.touch(order, moment)
        if emit:
            self.emit("creditmemo_saved", memo)
            self.emit("order_saved", order)
        return memo

    # -- seeded history --------------------------------------------------------------------------
    def _seed_order(self, rng: random.Random, index: int, created: datetime | None, live: bool = False) -> Order:
        """One order and its history: invoiced in full or in parts, shipped, refunded online or
        offline, or left pending, canceled or held. ``live``: everything happens now and every step
        is announced to listeners (webhooks), as on a store in use."""
        spec: dict = {}
        emit = live
        # The first orders cover every shape at least once; the rest are drawn.
        forced = ("french", "uk", "default")[index % 3] if index < 9 else None
        if forced:
            spec["store"] = forced
        if index == 3:
            spec["guest"] = True
        if index == 4:
            spec["lines"] = [{"sku": "MH01-M-Blue", "qty": 2}, {"sku": "24-WG080", "qty": 1}]
        if index == 5:
            spec["lines"] = [{"sku": "24-WG081", "qty": 1}, {"sku": "24-MB01", "qty": 4}]
        if index == 6:
            spec["gift_card"] = Decimal("10")
        if index == 7:
            spec["lines"] = [{"sku": "WARRANTY-1Y", "qty": 1}]
        order = self.place_order(spec, created=created, rng=rng, emit=emit)
        # Seeded history ends at the anchor (a real store has nothing updated in the future, and a
        # poll up to now would never see a record updated after it): later steps are clamped to it.
        later = None if live else min(self.anchor, order.created_at + timedelta(minutes=rng.randint(5, 600)))
        roll = rng.random()
        if index in (0, 1, 2, 8):
            roll = (0.5, 0.75, 0.9, 0.97)[index % 4]
        if roll < 0.10:
            return order  # pending, never invoiced
        if roll < 0.15:
            if live:
                self.set_status(order.entity_id, "canceled")
            else:
                self._seed_set_state(order, "canceled", later)
            return order
        if roll < 0.18:
            if live:
                self.set_status(order.entity_id, "holded")
            else:
                self._seed_set_state(order, "holded", later)
            return order
        has_extras = bool(order.gift_cards) or bool(order.totals.customer_balance.order)
        tops = [i for i in order.items if i.parent_item_id is None]
        if roll < 0.70 or has_extras or (len(tops) == 1 and tops[0].qty_ordered == 1):
            self.invoice(order.entity_id, None, moment=later, emit=emit)
        else:
            # Partial invoicing: a first invoice for part of the goods, a second (and maybe third) later.
            first = {tops[0].item_id: max(Decimal(1), tops[0].qty_ordered - 1)} if tops[0].qty_ordered > 1 \
                else {tops[0].item_id: Decimal(1)}
            self.invoice(order.entity_id, first, moment=later, emit=emit)
            if rng.random() < 0.8:
                later = None if live else min(self.anchor, later + timedelta(hours=rng.randint(1, 72)))
                self.invoice(order.entity_id, None, moment=later, emit=emit)
        if rng.random() < 0.6 and all(i.qty_invoiced >= i.qty_ordered for i in order.money_items()):
            if live:
                self.ship(order.entity_id)
            else:
                order.shipped = True
                for item in order.items:
                    item.qty_shipped = item.qty_invoiced
                self._refresh_state(order)
        if roll > 0.82 and not has_extras:
            later = None if live else min(self.anchor, later + timedelta(days=rng.randint(1, 10)))
            online = [i for i in order.invoices if i.transaction_id]
            kind = rng.random()
            if kind < 0.4 and online:
                # Full online refund, invoice by invoice: the order ends closed.
                for invoice in online:
                    self.refund(order.entity_id, None, invoice_id=invoice.entity_id, moment=later, emit=emit)
            elif kind < 0.75:
                # Offline partial refund of one unit of the first item, no invoice link, some shipping back.
                top = tops[0]
                half = money(order.shipping_invoiced().order / 2) if order.shipping_invoiced().order else None
                self.refund(order.entity_id, {top.item_id: Decimal(1)}, shipping=half,
                            adjustment_negative=Decimal("2.00") if rng.random() < 0.5 else ZERO,
                            moment=later, emit=emit)
            else:
                self.refund(order.entity_id, {}, shipping=Decimal("0"), adjustment_positive=Decimal("5.00"),
                            moment=later, emit=emit)
        return order

    def simulate(self, count: int) -> list[Order]:
        """``count`` new orders living their whole lifecycle now (placed, invoiced in full or in parts,
        shipped, some refunded online or offline), every step announced to listeners."""
        made = []
        for _ in range(count):
            with self.lock:
                index = 9 + len(self.orders)  # past the forced shapes: drawn like the seeded tail
                made.append(self._seed_order(self.rng, index, None, live=True))
        return made

    def _seed_set_state(self, order: Order, state: str, moment: datetime) -> None:
        order.state, order.status = state, DEFAULT_STATUS[state]
        if state == "canceled":
            for item in order.items:
                item.qty_canceled = item.qty_ordered
        order.histories.append(Comment(self.next_id("history"), order.entity_id, "", moment, order.status))
        self.touch(order, moment)
