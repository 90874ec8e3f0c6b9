"""The Adobe Commerce store adapter: its client behind the interface the flows use
(``connector.stores.StoreAdapter``), and its normaliser into the neutral model.

Raw records are Adobe's own JSON with one addition: ``id`` (= ``entity_id``), the key every flow
and intake reads a store record by."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal

from connector.commerce import Settlement, StockLevel, StoreOrder, StoreRefund, TenderKind
from connector.stores import SalesChannel
from mlcommon.http import NotFoundError, PermanentError

from . import normalize
from .client import AdobeCommerceClient

PLATFORM = "adobe_commerce"
DEFAULT_SOURCE = "default"  # MSI's default source
SOURCE_ITEMS_BATCH = 500

# What the normaliser reads of an order and of a credit memo, top level (an object or list named
# here comes whole: its lines, payment, addresses, extension attributes). The day listings ask for
# these only (``fields=``): an order's status history, its base-currency duplicates and the other
# hundred-odd figures it carries are left on the store. A name missing here would change the
# reconciliation; the sandbox test compares the trimmed listing's neutral model with the full one.
ORDER_FIELDS = (
    "entity_id", "increment_id", "state", "status", "created_at", "updated_at", "store_id", "items",
    "order_currency_code", "base_currency_code", "base_to_order_rate", "grand_total", "subtotal", "tax_amount",
    "total_paid", "discount_amount", "coupon_code", "customer_note", "payment", "billing_address",
    "extension_attributes", "customer_id", "customer_email", "customer_firstname", "customer_lastname",
    "customer_is_guest", "shipping_amount", "shipping_tax_amount", "shipping_discount_amount",
    "shipping_discount_tax_compensation_amount", "shipping_description", "gift_cards", "gift_cards_amount",
    "customer_balance_amount", "reward_currency_amount", "reward_points_balance", "gw_price", "gw_tax_amount",
    "gw_items_price", "gw_items_tax_amount", "gw_card_price", "gw_card_tax_amount",
)
REFUND_FIELDS = (
    "entity_id", "increment_id", "order_id", "state", "created_at", "updated_at", "items", "grand_total",
    "tax_amount", "shipping_amount", "shipping_tax_amount", "shipping_discount_tax_compensation_amount",
    "adjustment_positive", "adjustment_negative", "transaction_id", "customer_note", "customer_balance_amount",
    "gift_cards_amount", "extension_attributes",
)


def listed(fields: tuple[str, ...]) -> str:
    """``fields=`` for a search result: its items trimmed to ``fields``, and the total count."""
    return f"items[{','.join(fields)}],total_count"


# A website is a channel too, numbered apart from the store views (an order's channel is its store
# view's id; Magento numbers views and websites from 1 each): website 1 is channel 100001.
WEBSITE_CHANNEL_BASE = 100_000


def website_channel_id(website_id: int) -> int:
    return WEBSITE_CHANNEL_BASE + int(website_id)


def with_id(record: dict) -> dict:
    if isinstance(record, dict) and "entity_id" in record:
        record.setdefault("id", record["entity_id"])
    return record


def jsonable(raw):
    """Money parsed as Decimal goes back out as strings (what a sync record's JSON holds)."""
    return json.loads(json.dumps(raw, default=lambda v: str(v) if isinstance(v, Decimal) else v.isoformat()))


def _number(quantity: Decimal) -> int | float:
    """A quantity (not money) as the JSON number the schema asks for."""
    quantity = Decimal(quantity)
    return int(quantity) if quantity == quantity.to_integral_value() else float(quantity)


class AdobeCommerceAdapter:
    platform = PLATFORM
    store_name = normalize.STORE_NAME
    order_currency_field = "order_currency_code"

    def __init__(self, client: AdobeCommerceClient | None, store=None):
        self._client = client
        self._store = store
        self._msi: bool | None = None

    @classmethod
    def for_store(cls, store) -> AdobeCommerceAdapter:
        return cls(None, store)

    @property
    def client(self) -> AdobeCommerceClient:
        if self._client is None:
            store = self._store() if callable(self._store) else self._store
            self._client = AdobeCommerceClient.for_store(store)
        return self._client

    # -- reading -------------------------------------------------------------------------------

    def fetch_order(self, order_id) -> dict:
        return with_id(self.client.get_order(order_id))

    def fetch_refund(self, refund_id) -> dict | None:
        try:
            return with_id(self.client.get_creditmemo(refund_id))
        except NotFoundError:
            return None

    def order_refunds(self, order_id) -> list[dict]:
        return [with_id(m) for m in self.client.order_creditmemos(order_id) if not normalize.is_canceled_memo(m)]

    def order_payments(self, order_id) -> list[dict]:
        """The order's invoices: Adobe's record of what was paid, one per (partial) invoice."""
        return self.client.order_invoices(order_id)

    def order_settlement(self, order_id) -> Settlement:
        """GET /V1/orders/{id}, its invoices and credit memos, for reconciliation beside a posted
        document (read only): the money captured (paid invoices, else total_paid; gift cards, store
        credit and reward points are not captures), the payment method, and the credit memos."""
        order = normalize.normalize_order(self.fetch_order(order_id), invoices=self.order_payments(order_id))
        captures = [t for t in order.tenders if t.kind == TenderKind.PAYMENT]
        return Settlement(
            order_id=str(order_id), captured=sum((t.amount for t in captures), Decimal("0.00")),
            gateways=sorted({t.method for t in captures} - {"", "unknown"}),
            refunds=[self.normalize_refund(memo, order_id=order_id) for memo in self.order_refunds(order_id)])

    def is_full_order(self, raw_order, *, with_lines: bool) -> bool:
        if not (isinstance(raw_order, Mapping) and raw_order.get("entity_id") and "grand_total" in raw_order):
            return False
        return not with_lines or self.has_lines(raw_order)

    def needs_payments(self, raw_order: Mapping, paid_status_ids) -> bool:
        # The order's own total_paid says whether and how much is paid: no extra call per order.
        return False

    def has_lines(self, raw_order: Mapping) -> bool:
        return isinstance(raw_order.get("items"), list) and bool(raw_order["items"])

    def changed_orders(self, since: dt.datetime, until: dt.datetime | None = None) -> Iterator[dict]:
        return (with_id(o) for o in self.client.changed("/V1/orders", since, until))

    def changed_refunds(self, since: dt.datetime, until: dt.datetime | None = None) -> Iterator[dict]:
        return (with_id(m) for m in self.client.changed("/V1/creditmemos", since, until)
                if not normalize.is_canceled_memo(m))

    def orders_created_between(self, start: dt.datetime, end: dt.datetime) -> Iterator[dict]:
        """The orders placed from ``start`` to ``end`` (both included). Adobe keeps created_at in
        UTC and the filter reads UTC, so the caller's day in the store's time zone (aware bounds,
        as for BigCommerce) is converted here. Adobe deletes rather than archives: a deleted order
        is simply not listed."""
        return (with_id(o) for o in self.client.created_between("/V1/orders", start, end, fields=listed(ORDER_FIELDS)))

    def refunds_created_between(self, start: dt.datetime, end: dt.datetime) -> Iterator[dict]:
        """The credit memos made from ``start`` to ``end`` (both included), canceled ones left out."""
        return (with_id(m) for m in self.client.created_between("/V1/creditmemos", start, end,
                                                                fields=listed(REFUND_FIELDS))
                if not normalize.is_canceled_memo(m))

    # -- writing -------------------------------------------------------------------------------

    def set_order_status(self, order_id, status) -> None:
        """The "imported" marker. Adobe statuses are merchant labels on states, not the numeric ids
        the integration's setting holds, so the marker is an order comment; the status stays."""
        self.client.add_order_comment(order_id, f"Imported into Sage by ml-connector (marker {status}).")

    def note_posted(self, order_id, sage_number: str, status: str | None = None) -> None:
        """After posting: an order comment with the Sage invoice number (optional per integration)."""
        self.client.add_order_comment(order_id, f"Posted to Sage as invoice {sage_number}.", status=status)

    @property
    def request_count(self) -> int:
        return self.client.request_count

    def push_stock(self, levels: Iterable[StockLevel]) -> set[str]:
        """Absolute quantities per SKU: MSI source items on the default source, in batches; the legacy
        stockItems API (one SKU a call) when the store has no MSI. Returns the SKUs it refused."""
        levels = list(levels)
        if self._msi is not False:
            items = [{"sku": level.sku, "source_code": DEFAULT_SOURCE, "quantity": _number(level.quantity),
                      "status": 1 if level.quantity > 0 else 0} for level in levels]
            try:
                refused: set[str] = set()
                for start in range(0, len(items), SOURCE_ITEMS_BATCH):
                    refused |= self._save_source_items(items[start:start + SOURCE_ITEMS_BATCH])
                self._msi = True
                return refused
            except NotFoundError:
                self._msi = False  # no MSI route on this store: Inventory modules disabled
        refused = set()
        for level in levels:
            try:
                item = self.client.stock_item(level.sku)
                self.client.update_stock_item(level.sku, item, _number(level.quantity), level.quantity > 0)
            except NotFoundError:
                refused.add(level.sku)
        return refused

    def _save_source_items(self, items: list[dict]) -> set[str]:
        """Send a batch; return the SKUs the store refused. MSI saves a batch as a whole and its
        answer names no SKU (a 400 for the batch), so one SKU the catalog lacks refuses them all.
        After a refusal the batch's SKUs are looked up (client.existing_skus: one call per 300) and
        the batch is sent again without the unknown ones: a handful of calls however many SKUs
        match nothing, none extra when all match. Only when every SKU exists and the store still
        refuses is the batch split in halves to find the items it objects to."""
        try:
            self.client.save_source_items(items)
            return set()
        except NotFoundError:
            raise  # the route itself is missing (no MSI), not a SKU
        except PermanentError:
            if len(items) == 1:
                return {items[0]["sku"]}
        known = {sku.casefold() for sku in self.client.existing_skus(item["sku"] for item in items)}
        unknown = {item["sku"] for item in items if item["sku"].casefold() not in known}
        if unknown:
            rest = [item for item in items if item["sku"] not in unknown]
            return unknown | (self._save_source_items(rest) if rest else set())
        middle = len(items) // 2
        return self._halves(items[:middle]) | self._halves(items[middle:])

    def _halves(self, items: list[dict]) -> set[str]:
        """Every SKU here exists and the store still refused: split until the culprits are found."""
        try:
            self.client.save_source_items(items)
            return set()
        except PermanentError:
            if len(items) == 1:
                return {items[0]["sku"]}
            middle = len(items) // 2
            return self._halves(items[:middle]) | self._halves(items[middle:])

    # -- what the admin offers ------------------------------------------------------------------

    @classmethod
    def order_status_choices(cls) -> list[tuple[str, str]]:
        """Adobe's order states: statuses are labels each merchant defines on them, so the state is
        what holds across stores (the integration's setting keeps state codes)."""
        return [(code, f"{name} ({code})") for code, name in normalize.STATE_NAMES.items()]

    @classmethod
    def default_paid_statuses(cls) -> frozenset[str]:
        return normalize.PAID_STATES_DEFAULT

    @classmethod
    def status_after_import_choices(cls) -> list:
        # Not set: a merchant status is a label on a state, and the marker is an order comment
        # (set_order_status); "Add an order comment after posting" is the Adobe setting.
        return []

    def sales_channels(self) -> list[SalesChannel]:
        """Store views (the channel an order carries: its ``store_id``) under their websites
        (``website_channel_id``): accounts mapped on a website apply to its store views."""
        websites = {int(w["id"]): w for w in self.client.get("/V1/store/websites") if int(w["id"]) != 0}
        channels = [SalesChannel(website_channel_id(wid), str(w.get("name") or w.get("code")), "website")
                    for wid, w in sorted(websites.items())]
        for view in sorted(self.client.get("/V1/store/storeViews"), key=lambda v: int(v["id"])):
            if int(view["id"]) == 0:
                continue  # the admin store view: no order is placed there
            website = int(view.get("website_id") or 0)
            channels.append(SalesChannel(int(view["id"]), str(view.get("name") or view.get("code")), "store view",
                                         parent_id=website_channel_id(website) if website in websites else None))
        return channels

    # -- the neutral model ---------------------------------------------------------------------

    def normalize_order(self, raw_order: Mapping, *, paid_status_ids=None,
                        payments: Iterable[Mapping] | None = None) -> StoreOrder:
        return normalize.normalize_order(raw_order, paid_states_setting=paid_status_ids, invoices=payments)

    def normalize_refund(self, raw_refund: Mapping, *, order_id=None) -> StoreRefund:
        return normalize.normalize_refund(raw_refund, order_id=order_id)

    def storable(self, raw) -> dict:
        return jsonable(raw)
