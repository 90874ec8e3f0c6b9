"""Which document each record becomes, for every (store platform, Sage edition) pair: one table.

Intake asks it which sync records a fetched order or refund needs; the integration form asks it
whether a pair can be saved at all. A pair without a route is refused when the integration is
saved, instead of queueing records no handler takes.
Pure data: no Django, no store or ledger import, so every layer may read it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

# SyncRecord.Action values (connector.models), spelled out to keep this module import-free.
POST_INVOICE = "post_invoice"
POST_CREDIT_NOTE = "post_credit_note"
POST_JOURNAL = "post_journal"
POST_SALES_ORDER = "post_sales_order"
NOTE_REFUND = "note_refund"


@dataclass(frozen=True)
class RecordRoute:
    """One sync record per store record, with this action, when the integration's flag is on."""

    action: str
    enabled_by: str  # an Integration boolean field: the flow the merchant switched on


@dataclass(frozen=True)
class Route:
    ledger: str  # for people: "Sage 50 invoices, receipts and credit notes"
    orders: tuple[RecordRoute, ...]
    refunds: tuple[RecordRoute, ...]
    pushes_prices: bool = False  # Sage's selling prices go to the store's catalog (with the stock)


SAGE50 = Route(
    ledger="Sage 50 sales invoices with their receipts, and credit notes with their refund payments",
    orders=(RecordRoute(POST_INVOICE, enabled_by="post_invoices"),),
    refunds=(RecordRoute(POST_CREDIT_NOTE, enabled_by="post_refunds"),),
)
SAGEX3 = Route(
    ledger="Sage X3 GL journal entries by sales channel",
    orders=(RecordRoute(POST_JOURNAL, enabled_by="post_gl_entries"),),
    refunds=(RecordRoute(POST_JOURNAL, enabled_by="post_gl_entries"),),
)
SAGE100 = Route(
    ledger="Sage 100 sales orders with their AR customers",
    orders=(RecordRoute(POST_SALES_ORDER, enabled_by="post_sales_orders"),),
    # Sage 100 sales orders are not credited: a refund marks the order's record for the accountant.
    refunds=(RecordRoute(NOTE_REFUND, enabled_by="post_sales_orders"),),
    pushes_prices=True,
)
# The Adobe adapter has no price push yet (its stock push exists): Sage 100's on-hand quantities
# reach an Adobe store, its prices do not.
SAGE100_TO_ADOBE = replace(SAGE100, pushes_prices=False)

# (StoreConnection.platform, SageConnection.edition) → route.
ROUTES: dict[tuple[str, str], Route] = {
    ("bigcommerce", "sage50us"): SAGE50,
    ("bigcommerce", "sage50uk"): SAGE50,
    ("bigcommerce", "sagex3"): SAGEX3,
    ("adobe_commerce", "sage50us"): SAGE50,
    ("adobe_commerce", "sage50uk"): SAGE50,
    ("adobe_commerce", "sagex3"): SAGEX3,
    ("bigcommerce", "sage100"): SAGE100,
    # The Sage 100 mapper reads only the neutral order, so an Adobe order is a sales order too; a
    # credit memo after posting is a note on the order's record, as a BigCommerce refund is.
    ("adobe_commerce", "sage100"): SAGE100_TO_ADOBE,
}


def route_for(platform: str, edition: str) -> Route | None:
    return ROUTES.get((str(platform), str(edition)))


def pushes_prices(integration) -> bool:
    """Whether Sage's prices are pushed to this integration's store (the price push's switch)."""
    route = route_for(integration.store.platform, integration.sage.edition)
    return bool(route and route.pushes_prices)


def _actions(integration, kind: str) -> list[str]:
    route = route_for(integration.store.platform, integration.sage.edition)
    if route is None:
        return []
    return [r.action for r in getattr(route, kind) if getattr(integration, r.enabled_by)]


def order_actions(integration) -> list[str]:
    """The sync records a fetched order needs in this integration."""
    return _actions(integration, "orders")


def refund_actions(integration) -> list[str]:
    """The sync records a fetched refund needs in this integration."""
    return _actions(integration, "refunds")


def unrouted_reason(store_label: str, platform: str, sage_label: str, edition: str) -> str | None:
    """Why this pair cannot be saved as an integration, or None when it has a route."""
    if route_for(platform, edition) is not None:
        return None
    pairs = ", ".join(sorted(f"{p} → {e}" for p, e in ROUTES))
    return (f"{store_label} cannot post to {sage_label} yet: no document is defined for this pair, so every "
            f"order would fail. Choose a Sage connection this store can post to (supported: {pairs}).")
