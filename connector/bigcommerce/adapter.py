"""The BigCommerce store adapter: its client behind the interface the flows use
(``connector.stores.StoreAdapter``), and its normaliser into the neutral model."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping

from connector.commerce import Settlement, StockLevel, StoreOrder, StorePrice, StoreRefund
from connector.stores import SalesChannel
from mlcommon.ledger import ZERO, money

from . import normalize
from .client import BigCommerceClient
from .formats import jsonable
from .statuses import ORDER_STATUS_NAMES

PLATFORM = "bigcommerce"
DEFAULT_LOCATION_ID = 1
STOCK_BATCH = 2000


class BigCommerceAdapter:
    platform = PLATFORM
    store_name = normalize.STORE_NAME
    order_currency_field = "currency_code"

    def __init__(self, client: BigCommerceClient | None, store=None):
        self._client = client
        self._store = store

    @classmethod
    def for_store(cls, store) -> BigCommerceAdapter:
        """``store``: a StoreConnection, or a callable that returns one. The client is made on
        first use: mapping a stored order needs no connection at all."""
        return cls(None, store)

    @property
    def client(self) -> BigCommerceClient:
        if self._client is None:
            store = self._store() if callable(self._store) else self._store
            self._client = BigCommerceClient.for_store(store)
        return self._client

    # -- reading -------------------------------------------------------------------------------

    def fetch_order(self, order_id) -> dict:
        return self.client.get_order(int(order_id), with_lines=True)

    def fetch_refund(self, refund_id) -> dict | None:
        found = [r for r in self.client.iter_v3("/v3/orders/payment_actions/refunds", {"id:in": str(refund_id)})
                 if str(r.get("id")) == str(refund_id)]
        return found[0] if found else None

    def order_refunds(self, order_id) -> list[dict]:
        return self.client.order_refunds(int(order_id))

    def is_full_order(self, raw_order, *, with_lines: bool) -> bool:
        """Whether a stored order can be mapped as it is: a whole order (a webhook's record holds
        only its id), with its lines when the mapping needs them."""
        if not (isinstance(raw_order, Mapping) and raw_order.get("id") and "total_inc_tax" in raw_order):
            return False
        return not with_lines or self.has_lines(raw_order)

    def order_payments(self, order_id) -> list[dict]:
        return self.client.order_transactions(int(order_id))

    def order_settlement(self, order_id) -> Settlement:
        """GET /v3/orders/{id}/transactions and /v3/orders/{id}/payment_actions/refunds: captured
        money by gateway (gift certificates and store credit are not captures) and the refunds."""
        captures = [t for t in self.order_payments(order_id) if normalize.is_capture(t)]
        return Settlement(
            order_id=str(order_id), captured=sum((money(t.get("amount")) for t in captures), ZERO),
            gateways=sorted({str(t.get("gateway") or t.get("method") or "") for t in captures} - {""}),
            refunds=[self.normalize_refund(refund, order_id=order_id) for refund in self.order_refunds(order_id)])

    def needs_payments(self, raw_order: Mapping, paid_status_ids) -> bool:
        return normalize.needs_transactions(raw_order, self.paid_statuses(paid_status_ids))

    def has_lines(self, raw_order: Mapping) -> bool:
        return bool(raw_order.get("consignments")) or isinstance(raw_order.get("products"), list)

    def changed_orders(self, since: dt.datetime, until: dt.datetime | None = None) -> Iterator[dict]:
        return self.client.iter_orders(BigCommerceClient.order_filters(modified_since=since, modified_until=until))

    def changed_refunds(self, since: dt.datetime, until: dt.datetime | None = None) -> Iterator[dict]:
        return self.client.iter_refunds(created_since=since, created_until=until)

    def orders_created_between(self, start: dt.datetime, end: dt.datetime) -> Iterator[dict]:
        """v2 lists leave deleted (archived) orders out unless asked; the check holds if one slips in."""
        orders = self.client.iter_orders(BigCommerceClient.order_filters(created_since=start, created_until=end),
                                         with_lines=False)
        return (order for order in orders if not order.get("is_deleted"))

    def refunds_created_between(self, start: dt.datetime, end: dt.datetime) -> Iterator[dict]:
        return self.client.iter_refunds(created_since=start, created_until=end)

    # -- writing -------------------------------------------------------------------------------

    def set_order_status(self, order_id, status) -> None:
        self.client.update_order_status(int(order_id), int(status))

    @property
    def request_count(self) -> int:
        return self.client.request_count

    def push_stock(self, levels: Iterable[StockLevel]) -> set[str]:
        """Absolute on-hand quantities per SKU at the default location, in batches of 2,000;
        returns the SKUs the store refused (it has no product or variant with that SKU)."""
        items = [{"location_id": DEFAULT_LOCATION_ID, "sku": level.sku, "quantity": int(level.quantity)}
                 for level in levels]
        refused: set[str] = set()
        for start in range(0, len(items), STOCK_BATCH):
            refused |= self._refused(items[start:start + STOCK_BATCH])
        return refused

    def push_prices(self, prices: Iterable[StorePrice]) -> set[str]:
        """Variant prices by SKU: the variants looked up 50 SKUs a call, then PUT
        /v3/catalog/variants 50 variants a call (the store's limit); SKUs with no variant are
        returned, not sent (one unknown id would refuse its whole batch)."""
        prices = list(prices)
        variants = self.client.variants_by_sku(price.sku for price in prices)
        # v3 wants a JSON number; a two-decimal price survives float's shortest repr exactly ("9.5").
        items = [{"id": variants[price.sku]["id"], "price": float(price.price)} for price in prices
                 if price.sku in variants]
        if items:
            self.client.update_variants(items)
        return {price.sku for price in prices if price.sku not in variants}

    def _refused(self, items: list[dict]) -> set[str]:
        """Send items; return the SKUs the store refused. The store validates an absolute
        adjustment as a whole (one unknown SKU refuses the batch). After a refusal the batch's
        SKUs are looked up (GET /v3/inventory/items?sku:in=, 50 a call) and the batch is sent
        again without the unknown ones: a handful of calls however many SKUs match nothing, none
        extra when all match. Only when every SKU exists and the store still refuses is the batch
        split in halves to find the items it objects to."""
        client = self.client
        result = client.set_absolute_stock(items)
        if result.ok:
            return set()
        known = {(item.get("identity") or {}).get("sku") for item in client.inventory_items(i["sku"] for i in items)}
        unknown = {item["sku"] for item in items if item["sku"] not in known}
        if unknown:
            rest = [item for item in items if item["sku"] not in unknown]
            return unknown | (self._refused(rest) if rest else set())
        if len(items) == 1:
            return {items[0]["sku"]}
        middle = len(items) // 2
        return self._refused(items[:middle]) | self._refused(items[middle:])

    # -- what the admin offers ------------------------------------------------------------------

    @classmethod
    def order_status_choices(cls) -> list[tuple[int, str]]:
        return [(status_id, f"{name} ({status_id})") for status_id, name in sorted(ORDER_STATUS_NAMES.items())]

    @classmethod
    def default_paid_statuses(cls) -> frozenset[int]:
        return normalize.DEFAULT_PAID_STATUS_IDS

    @classmethod
    def status_after_import_choices(cls) -> list[tuple[int, str]]:
        return cls.order_status_choices()

    def sales_channels(self) -> list[SalesChannel]:
        """``GET /v3/channels``: the storefronts and marketplaces orders come from."""
        return [SalesChannel(int(c["id"]), str(c.get("name") or f"Channel {c['id']}"))
                for c in self.client.v3_data("/v3/channels") if c.get("id") is not None]

    # -- the neutral model ---------------------------------------------------------------------

    @staticmethod
    def paid_statuses(paid_status_ids) -> frozenset[int]:
        """The integration's paid status ids, or BigCommerce's own paid group when none is set."""
        return frozenset(int(s) for s in paid_status_ids or ()) or normalize.DEFAULT_PAID_STATUS_IDS

    def normalize_order(self, raw_order: Mapping, *, paid_status_ids=None,
                        payments: Iterable[Mapping] | None = None) -> StoreOrder:
        return normalize.normalize_order(raw_order, paid_status_ids=self.paid_statuses(paid_status_ids),
                                         transactions=payments)

    def normalize_refund(self, raw_refund: Mapping, *, order_id=None) -> StoreRefund:
        return normalize.normalize_refund(raw_refund, order_id=order_id)

    def storable(self, raw) -> dict:
        return jsonable(raw)
