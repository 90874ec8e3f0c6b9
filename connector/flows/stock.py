"""Sage stock → store inventory.

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

from connector import commerce
from connector.models import PriceLevel, StockLevel, SyncRun
from connector.services.polling import roll_up_idle
from connector.stores import StoreAdapter, adapter_for
from mappings.models import ItemMapping


def quantity_for(level: StockLevel, mode: str) -> int:
    quantity = level.sage_in_stock - (level.sage_allocated if mode == "available" else Decimal(0))
    return max(0, int(quantity.to_integral_value(rounding=ROUND_FLOOR)))


def store_skus_by_code(integration) -> dict[str, list[str]]:
    skus = defaultdict(list)
    for sku, code in ItemMapping.objects.filter(integration=integration).values_list("store_sku", "sage_code"):
        skus[code].append(sku)
    return skus


def push_stock(integration, adapter: StoreAdapter | None = None) -> SyncRun:
    started_at = timezone.now()
    mode = integration.stock_quantity
    changed = [(level, quantity_for(level, mode)) for level in StockLevel.objects.filter(integration=integration)]
    changed = [(level, qty) for level, qty in changed if level.pushed_quantity != qty]
    if not changed:  # one roll-up row a day, not one row per push (thousands of idle integrations)
        return roll_up_idle(integration, SyncRun.Kind.STOCK_PUSH, started_at=started_at, finished_at=timezone.now())
    run = SyncRun.objects.create(integration=integration, kind=SyncRun.Kind.STOCK_PUSH, started_at=started_at)
    run.total = len(changed)
    adapter = adapter or adapter_for(integration.store)
    before = adapter.request_count
    by_code = store_skus_by_code(integration)
    refused = adapter.push_stock([commerce.StockLevel(sku=sku, quantity=Decimal(qty))
                                  for level, qty in changed for sku in by_code.get(level.sku, [level.sku])])
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
                f"{adapter.store_name}, or map Sage code '{level.sku}' to the store's SKU under Mappings → Item mappings."
            )[:255]
            unmatched += bool(missing)
        StockLevel.objects.bulk_update([level for level, _ in changed],
                                       ["matched", "message", "pushed_quantity", "pushed_at"], batch_size=1000)
    run.seen = len(changed)
    run.failed = unmatched
    run.succeeded = len(changed) - unmatched
    run.api_calls = adapter.request_count - before
    run.state, run.finished_at = SyncRun.State.DONE, timezone.now()
    run.message = f"Pushed {run.succeeded} SKU(s) in {run.api_calls} call(s); {run.failed} matched nothing."
    run.save()
    return run


def push_prices(integration, adapter: StoreAdapter | None = None) -> SyncRun:
    """Sage prices → store variant prices: only the codes whose Sage price differs from what we
    last pushed, through the item mapping read backwards (as stock), batched by the adapter."""
    run = SyncRun.objects.create(integration=integration, kind=SyncRun.Kind.PRICE_PUSH)
    changed = [level for level in PriceLevel.objects.filter(integration=integration)
               if level.pushed_price != level.sage_price]
    run.total = len(changed)
    if not changed:
        run.state, run.finished_at, run.message = SyncRun.State.DONE, timezone.now(), "Nothing changed."
        run.save()
        return run
    adapter = adapter or adapter_for(integration.store)
    before = adapter.request_count
    by_code = store_skus_by_code(integration)
    refused = adapter.push_prices([commerce.StorePrice(sku=sku, price=level.sage_price.quantize(Decimal("0.01")))
                                   for level in changed for sku in by_code.get(level.sku, [level.sku])])
    now = timezone.now()
    unmatched = 0
    for level in changed:
        missing = [sku for sku in by_code.get(level.sku, [level.sku]) if sku in refused]
        level.pushed_price, level.pushed_at, level.matched = level.sage_price, now, not missing
        level.message = "" if not missing else (
            f"The store has no variant with SKU {', '.join(repr(s) for s in missing)}: add it in {adapter.store_name}, "
            f"or map Sage code '{level.sku}' to the store's SKU under Mappings → Item mappings.")[:255]
        unmatched += bool(missing)
    PriceLevel.objects.bulk_update(changed, ["pushed_price", "pushed_at", "matched", "message"], batch_size=1000)
    run.seen, run.failed, run.succeeded = len(changed), unmatched, len(changed) - unmatched
    run.api_calls = adapter.request_count - before
    run.state, run.finished_at = SyncRun.State.DONE, timezone.now()
    run.message = f"Pushed {run.succeeded} price(s) in {run.api_calls} call(s); {run.failed} matched nothing."
    run.save()
    return run
