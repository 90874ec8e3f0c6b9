"""The store-adapter interface and its registry (pure: no Django import here)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from connector.commerce import Settlement, StockLevel, StoreOrder, StorePrice, StoreRefund


class UnknownPlatform(LookupError):
    pass


class StoreAdapter(Protocol):
    """What the flows need from a store; one implementation per store package.

    Records travel in two forms: ``raw`` (the store's own JSON, as stored on a sync record and
    shown in admin) and normalised (the neutral model, what the ledger mappers read)."""

    platform: str
    store_name: str  # for people: "BigCommerce"
    # The key of the transactional currency in a stored raw order (a sync record's payload), for
    # queries that read it in the database (the admin's refund rows show their order's currency).
    order_currency_field: str

    def fetch_order(self, order_id: str) -> dict: ...

    def fetch_refund(self, refund_id: str) -> dict | None: ...

    def order_refunds(self, order_id: str) -> list[dict]: ...

    def order_payments(self, order_id: str) -> list[dict]: ...

    def is_full_order(self, raw_order, *, with_lines: bool) -> bool:
        """Whether a stored order can be mapped as it is (with its lines when ``with_lines``)."""
        ...

    def needs_payments(self, raw_order: Mapping, paid_status_ids) -> bool:
        """Whether only the store's payment records can tell if the order is paid (one more call)."""
        ...

    def has_lines(self, raw_order: Mapping) -> bool: ...

    def changed_orders(self, since, until=None) -> Iterator[dict]: ...

    def changed_refunds(self, since, until=None) -> Iterator[dict]: ...

    def orders_created_between(self, start: dt.datetime, end: dt.datetime) -> Iterator[dict]:
        """The orders placed from ``start`` to ``end`` (aware, both included), raw, as the store
        lists them (lines may be left out), without the orders deleted or archived in the store.
        For reconciliation: the store's own account of a day."""
        ...

    def refunds_created_between(self, start: dt.datetime, end: dt.datetime) -> Iterator[dict]:
        """The refunds made from ``start`` to ``end`` (aware, both included), raw."""
        ...

    def set_order_status(self, order_id: str, status) -> None: ...

    def push_stock(self, levels: Iterable[StockLevel]) -> set[str]:
        """Set absolute on-hand quantities per SKU; returns the SKUs the store does not know."""
        ...

    def order_settlement(self, order_id) -> Settlement:
        """The order's captured payments and refunds, read from the store for reconciliation."""
        ...

    def push_prices(self, prices: Iterable[StorePrice]) -> set[str]:
        """Set selling prices per SKU, batched as the store allows; returns the SKUs it does not know."""
        ...

    @property
    def request_count(self) -> int:
        """Calls made to the store so far (for run statistics)."""
        ...

    def normalize_order(self, raw_order: Mapping, *, paid_status_ids=None,
                        payments: Iterable[Mapping] | None = None) -> StoreOrder: ...

    def normalize_refund(self, raw_refund: Mapping, *, order_id=None) -> StoreRefund: ...

    def storable(self, raw) -> dict:
        """The raw record as JSON-safe data for a sync record's payload."""
        ...

    # -- what the admin offers for an integration of this store (class level: no store call) ------

    @classmethod
    def order_status_choices(cls) -> list[tuple[object, str]]:
        """(value kept in Integration.paid_status_ids, label for people): the statuses (BigCommerce's
        ids) or states (Adobe's codes) an order can count as paid by."""
        ...

    @classmethod
    def default_paid_statuses(cls) -> frozenset:
        """What an empty paid-status setting means for this store."""
        ...

    @classmethod
    def status_after_import_choices(cls) -> list[tuple[object, str]]:
        """Statuses the connector can set on an order once posted; empty when the store cannot."""
        ...

    def sales_channels(self) -> list[SalesChannel]:
        """The store's sales channels, read from the store, for the account-mapping picker."""
        ...


@dataclass(frozen=True)
class SalesChannel:
    """A sales channel as the account mappings know it: ``channel_id`` is what orders carry in
    StoreOrder.channel_id (BigCommerce's channel id; Adobe's store view id, or a website's
    ``website_channel_id``), ``parent_id`` the channel whose accounts apply when this one has none
    (an Adobe store view's website)."""

    channel_id: int
    name: str
    kind: str = "channel"  # for people: "channel", "store view", "website"
    parent_id: int | None = None


_ADAPTERS: dict[str, type] = {}


def register(platform: str, adapter: type) -> None:
    _ADAPTERS[platform] = adapter


def registered_adapters() -> dict[str, type]:
    """Every registered adapter class by platform (the installed store packages)."""
    return dict(_ADAPTERS)


def adapter_class(platform: str) -> type:
    try:
        return _ADAPTERS[platform]
    except KeyError:
        raise UnknownPlatform(f"no store adapter for platform {platform!r} (known: {sorted(_ADAPTERS)})") from None


def adapter_for(store) -> StoreAdapter:
    """The adapter for a store connection (anything with ``platform``)."""
    return adapter_class(store.platform).for_store(store)
