"""Sage stock → BigCommerce inventory.

The agent pushes Sage quantities into StockLevel (POST /agent/v1/changes). This flow sends only
the SKUs whose quantity differs from what we last pushed, as absolute adjustments (safe to
repeat) in batches of up to 2,000, and remembers per SKU what it pushed and whether the store
knew the SKU, so the accountant sees which SKUs match nothing.

Sage reports stock codes; the store wants its SKUs: an item mapping (store SKU → Sage code) is
read backwards, and a code with no mapping is taken as the SKU itself.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_FLOOR, Decimal

from django.db import transaction
from django.utils import timezone

from connector.bigcommerce.client import BigCommerceClient
from connector.models import StockLevel, SyncRun
from mappings.models import ItemMapping

DEFAULT_LOCATION_ID = 1
BATCH = 2000


def quantity_for(level: StockLevel, mode: str) -> int:
    quantity = level.sage_in_stock - (level.sage_allocated if mode == "available" else Decimal(0))
    return max(0, int(quantity.to_integral_value(rounding=ROUND_FLOOR)))


def store_skus_by_code(integration) -> dict[str, list[str]]:
    skus = defaultdict(list)
    for sku, code in ItemMapping.objects.filter(integration=integration).values_list("store_sku", "sage_code"):
        skus[code].append(sku)
    return skus


def _refused(client: BigCommerceClient, items: list[dict]) -> set[str]:
    """Send items; return the SKUs the store refused. The store validates an absolute adjustment
    as a whole (one unknown SKU refuses the batch). After a refusal the batch's SKUs are looked up
    (GET /v3/inventory/items?sku:in=, 50 a call) and the batch is sent again without the unknown
    ones: a handful of calls however many SKUs match nothing, none extra when all match. Only
    when every SKU exists and the store still refuses is the batch split in halves to find the
    items it objects to."""
    result = client.set_absolute_stock(items)
    if result.ok:
        return set()
    known = {(item.get("identity") or {}).get("sku") for item in client.inventory_items(i["sku"] for i in items)}
    unknown = {item["sku"] for item in items if item["sku"] not in known}
    if unknown:
        rest = [item for item in items if item["sku"] not in unknown]
        return unknown | (_refused(client, rest) if rest else set())
    if len(items) == 1:
        return {items[0]["sku"]}
    middle = len(items) // 2
    return _refused(client, items[:middle]) | _refused(client, items[middle:])


def push_stock(integration, client: BigCommerceClient | None = None) -> SyncRun:
    run = SyncRun.objects.create(integration=integration, kind=SyncRun.Kind.STOCK_PUSH)
    mode = integration.stock_quantity
    changed = [(level, quantity_for(level, mode)) for level in StockLevel.objects.filter(integration=integration)]
    changed = [(level, qty) for level, qty in changed if level.pushed_quantity != qty]
    run.total = len(changed)
    if not changed:
        run.state, run.finished_at, run.message = SyncRun.State.DONE, timezone.now(), "Nothing changed."
        run.save()
        return run
    client = client or BigCommerceClient.for_store(integration.store)
    before = client.request_count
    by_code = store_skus_by_code(integration)
    items = [{"location_id": DEFAULT_LOCATION_ID, "sku": sku, "quantity": qty}
             for level, qty in changed for sku in by_code.get(level.sku, [level.sku])]
    refused: set[str] = set()
    for start in range(0, len(items), BATCH):
        refused |= _refused(client, items[start:start + BATCH])
    now = timezone.now()
    unmatched = 0
    with transaction.atomic():
        for level, qty in changed:
            missing = [sku for sku in by_code.get(level.sku, [level.sku]) if sku in refused]
            # What we tried is remembered either way, so an unknown SKU is not re-sent on every
            # push; it is tried again when its quantity changes (or after "push again" in admin).
            level.pushed_quantity, level.pushed_at = qty, now
            level.matched = not missing
            level.message = "" if not missing else (
                f"The store has no product or variant with SKU {', '.join(repr(s) for s in missing)}: add it in "
                f"BigCommerce, or map Sage code '{level.sku}' to the store's SKU under Mappings → Item mappings."
            )[:255]
            unmatched += bool(missing)
        StockLevel.objects.bulk_update([level for level, _ in changed],
                                       ["matched", "message", "pushed_quantity", "pushed_at"], batch_size=1000)
    run.seen = len(changed)
    run.failed = unmatched
    run.succeeded = len(changed) - unmatched
    run.api_calls = client.request_count - before
    run.state, run.finished_at = SyncRun.State.DONE, timezone.now()
    run.message = f"Pushed {run.succeeded} SKU(s) in {run.api_calls} call(s); {run.failed} matched nothing."
    run.save()
    return run
