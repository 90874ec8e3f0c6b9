"""What the agent API does besides the job outbox (which is connector/services/jobs.py):
heartbeats and the Sage changes the agent pushes."""

from __future__ import annotations

import hashlib
import json
import logging

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import Agent
from connector.models import InboundEvent, PriceLevel, StockLevel, SyncCursor
from mappings.models import AccountMapping, ItemMapping, PaymentMethodMapping, TaxMapping

logger = logging.getLogger(__name__)

LEASE_WAIT_SECONDS = 25
# A backfill drains in few round trips, and the agent sends results back in batches of 50 while it
# runs the rest of the lease; an idle agent still gets a job at once. 100 jobs stay well inside the
# 120 s lease even with a slow desktop Sage (about half a second per document).
MAX_JOBS = 100
POLL_CHANGES_SECONDS = 60
CHANGE_KINDS = ("stock", "price", "customer")
UPSERT_BATCH = 500


def cursor_stream(kind: str, price_level: str = "") -> str:
    """The SyncCursor stream of one kind of change. Prices are read at the integration's price
    level: a cursor per level, so a level changed in admin starts its prices from the beginning."""
    if kind == "price" and price_level:
        return f"agent:price@{price_level}"
    return f"agent:{kind}"


def agent_config(agent: Agent) -> dict:
    level = agent.integration.sage100_price_level
    streams = {kind: cursor_stream(kind, level) for kind in CHANGE_KINDS}
    stored = dict(SyncCursor.objects.filter(integration_id=agent.integration_id, stream__in=streams.values())
                  .values_list("stream", "value"))
    return {
        "lease_wait_seconds": LEASE_WAIT_SECONDS,
        "max_jobs": MAX_JOBS,
        "poll_changes_seconds": POLL_CHANGES_SECONDS,
        "stock_quantity": agent.integration.stock_quantity,
        # Sage 100: the integration's price level for the prices its agent reads ("" = standard price).
        "price_level": agent.integration.sage100_price_level,
        "cursors": {kind: stored.get(streams[kind]) or None for kind in CHANGE_KINDS},
    }


# How many mapped stock codes `agent doctor` looks up in Sage (one look-up each on a desktop Sage).
DOCTOR_STOCK_SAMPLE = 50


def mapped_codes(integration_id: int) -> dict:
    """The Sage codes the integration's mappings name, for `agent doctor` to find in the company."""
    nominal = {code: f"{dict(AccountMapping.Purpose.choices).get(purpose, purpose)}"
                     + (f" (channel {channel})" if channel else "")
               for code, purpose, channel in AccountMapping.objects.filter(integration_id=integration_id)
               .values_list("account_code", "purpose", "channel_name")}
    bank = sorted(set(PaymentMethodMapping.objects.filter(integration_id=integration_id)
                      .values_list("bank_account", flat=True)))
    tax = sorted(set(TaxMapping.objects.filter(integration_id=integration_id)
                     .values_list("sage_tax_code", flat=True)))
    stock = list(ItemMapping.objects.filter(integration_id=integration_id).order_by("pk")
                 .values_list("sage_code", flat=True).distinct()[:DOCTOR_STOCK_SAMPLE])
    return {"nominal": nominal, "bank": bank, "tax": tax, "stock": stock}


def record_heartbeat(agent: Agent, info: dict) -> dict:
    """Keep what the agent says about itself on the Agent row (admin shows it) and answer the config."""
    now = timezone.now()
    fields = {name: info.get(name, "") for name in ("agent_version", "backend", "sage_edition", "sage_version",
                                                    "company")}
    changed = {name: value for name, value in fields.items() if getattr(agent, name) != value}
    if changed:
        logger.info("agent %s (integration %s) reports %s", agent.pk, agent.integration_id, changed)
    doctor = info.get("doctor")
    if doctor is not None:
        fields.update(doctor_ok=doctor["ok"], doctor_checked_at=doctor["checked_at"], doctor_checks=doctor["checks"],
                      doctor_problems=list(doctor["problems"]))
        if not doctor["ok"]:
            logger.warning("agent %s (integration %s): its Sage self-check found %d problem(s)", agent.pk,
                           agent.integration_id, len(doctor["problems"]))
    Agent.objects.filter(pk=agent.pk).update(last_heartbeat_at=now, **fields)
    config = agent_config(agent)
    if info.get("include_mapped_codes"):
        config["mapped_codes"] = mapped_codes(agent.integration_id)
    return {"agent_id": agent.pk, "integration_id": agent.integration_id, "server_time": now, "config": config}


def _latest_per_sku(items: list[dict]) -> dict[str, dict]:
    # One row per SKU in one statement: PostgreSQL refuses an upsert that touches a row twice.
    # A later item wins unless both carry a modify date and the later one is older.
    latest: dict[str, dict] = {}
    for item in items:
        seen = latest.get(item["stock_code"])
        if seen is None or not (item["modified_at"] and seen["modified_at"]
                                and item["modified_at"] < seen["modified_at"]):
            latest[item["stock_code"]] = item
    return latest


def upsert_stock(integration_id: int, items: list[dict]) -> int:
    rows = [StockLevel(integration_id=integration_id, sku=sku, sage_in_stock=item["in_stock"],
                       sage_allocated=item["allocated"], sage_modified_at=item["modified_at"])
            for sku, item in _latest_per_sku(items).items()]
    StockLevel.objects.bulk_create(
        rows, batch_size=UPSERT_BATCH, update_conflicts=True, unique_fields=["integration", "sku"],
        update_fields=["sage_in_stock", "sage_allocated", "sage_modified_at"])
    return len(rows)


def upsert_prices(integration_id: int, items: list[dict]) -> int:
    rows = [PriceLevel(integration_id=integration_id, sku=sku, sage_price=item["price"],
                       sage_modified_at=item["modified_at"]) for sku, item in _latest_per_sku(items).items()]
    PriceLevel.objects.bulk_create(rows, batch_size=UPSERT_BATCH, update_conflicts=True,
                                   unique_fields=["integration", "sku"], update_fields=["sage_price", "sage_modified_at"])
    return len(rows)


def kick_price_push(integration_id: int) -> bool:
    from connector.tasks import push_prices

    try:
        push_prices.delay(integration_id)
    except Exception:  # the prices are stored; the next price change kicks the push again
        logger.warning("could not enqueue the price push for integration %s", integration_id, exc_info=True)
        return False
    return True


def _store_inbound(integration_id: int, kind: str, items: list[dict], cursor: str | None,
                   processed: bool) -> None:
    body = json.dumps({"kind": kind, "items": items, "cursor": cursor}, cls=DjangoJSONEncoder, sort_keys=True)
    digest = hashlib.sha256(body.encode()).hexdigest()
    # The same push repeated (an agent retrying after a lost response) is stored once.
    try:
        with transaction.atomic():
            InboundEvent.objects.create(
                integration_id=integration_id, source=InboundEvent.Source.AGENT,
                dedup_key=f"agent:{integration_id}:{kind}:{digest}", scope=f"agent/{kind}",
                resource_id=(cursor or "")[:100], body=body,
                processed_at=timezone.now() if processed else None)
    except IntegrityError:
        pass


def kick_stock_push(integration_id: int) -> bool:
    """Ask a worker to push the changed stock to the store now (the beat tick would otherwise
    pick it up within the integration's stock interval)."""
    from connector.tasks import push_stock

    try:
        push_stock.delay(integration_id)
    except Exception:  # the data is stored; the scheduled stock push picks it up
        logger.warning("could not enqueue the stock push for integration %s", integration_id, exc_info=True)
        return False
    return True


def store_changes(agent: Agent, kind: str, items: list[dict], cursor: str | None) -> str | None:
    """Store what Sage changed and the agent's cursor; returns the cursor now stored.

    Stock goes into StockLevel and prices into PriceLevel (the stock and price pushes read them).
    Customer changes have no consumer yet: they are kept as an InboundEvent (source=agent).
    """
    integration_id = agent.integration_id
    stream = cursor_stream(kind, agent.integration.sage100_price_level)
    with transaction.atomic():
        _store_inbound(integration_id, kind, items, cursor, processed=kind in ("stock", "price"))
        if kind == "stock" and items:
            upsert_stock(integration_id, items)
            transaction.on_commit(lambda: kick_stock_push(integration_id))
        if kind == "price" and items:
            upsert_prices(integration_id, items)
            transaction.on_commit(lambda: kick_price_push(integration_id))
        if cursor:
            SyncCursor.objects.update_or_create(integration_id=integration_id, stream=stream,
                                                defaults={"value": cursor})
        stored = (SyncCursor.objects.filter(integration_id=integration_id, stream=stream)
                  .values_list("value", flat=True).first())
    logger.info("agent %s pushed %d %s change(s) for integration %s, cursor %r", agent.pk, len(items), kind,
                integration_id, cursor)
    return stored or None
