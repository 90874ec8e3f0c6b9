"""Reading a fetched BigCommerce order: where its lines, dates and tax rows are.

Pure helpers over the JSON shapes of the v2 order (``include=consignments.line_items``, money as
4-decimal strings) and the v3 refunds and transactions (money as numbers, parsed to Decimal).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

from mlcommon.ledger import money

# Consignment groups of ``consignment_structure=object``; each holds ``line_items``.
_CONSIGNMENT_GROUPS = ("shipping", "pickups", "downloads")


def _is_line(obj) -> bool:
    # Without ``.line_items`` the consignment lists {url, resource} links instead of lines.
    return isinstance(obj, dict) and "id" in obj and "quantity" in obj


def order_lines(order: dict, products: list[dict] | None = None) -> list[dict]:
    """The order's product lines, from the ``products`` sub-resource when given, else from the
    consignments embedded by ``include=consignments.line_items``. Sorted by line id, each once."""
    if products is None:
        products = []
        consignments = order.get("consignments")
        groups = consignments if isinstance(consignments, list) else [consignments or {}]
        for group in groups:
            if not isinstance(group, dict):
                continue
            for name in _CONSIGNMENT_GROUPS:
                for consignment in group.get(name) or []:
                    items = consignment.get("line_items") or []
                    products.extend(i for i in (items if isinstance(items, list) else [items]) if _is_line(i))
            for gift in (group.get("email") or {}).get("gift_certificates") or []:
                items = gift.get("line_items") or []
                products.extend(i for i in (items if isinstance(items, list) else [items]) if _is_line(i))
        if not products and isinstance(order.get("products"), list):
            products = order["products"]
    if not products:
        raise ValueError(
            f"order {order.get('id')} has no line items: fetch it with include=consignments.line_items "
            "or pass the /products sub-resource"
        )
    unique = {}
    for line in products:
        unique.setdefault(line["id"], line)
    return [unique[k] for k in sorted(unique)]


def shipping_methods(order: dict) -> list[str]:
    consignments = order.get("consignments")
    groups = consignments if isinstance(consignments, list) else [consignments or {}]
    methods = []
    for group in groups:
        if isinstance(group, dict):
            for consignment in group.get("shipping") or []:
                method = (consignment.get("shipping_method") or "").strip()
                if method and method not in methods:
                    methods.append(method)
    return methods


def local_date(value: str, timezone: str) -> dt.date:
    """BigCommerce v2 dates are RFC 2822 in UTC, v3 dates ISO 8601; Sage wants the local date."""
    if not value:
        raise ValueError("missing date")
    try:
        stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        stamp = parsedate_to_datetime(value)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.astimezone(ZoneInfo(timezone)).date()


def line_description(line: dict) -> str:
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


def tax_rows(taxes: list[dict] | None, line_item_type: str, order_product_id=None) -> list[dict]:
    """Rows of ``GET /v2/orders/{id}/taxes?details=true`` for one line (or one charge)."""
    rows = []
    for row in taxes or []:
        if (row.get("line_item_type") or "item") != line_item_type:
            continue
        if order_product_id is not None and str(row.get("order_product_id")) != str(order_product_id):
            continue
        rows.append(row)
    return rows


def decimal_or_none(value) -> Decimal | None:
    if value is None or value == "":
        return None
    return money(value)
