"""A seeded store day for the dashboard tests: orders in three currencies, refunds, one order
placed after the store's midnight in UTC but before it in New York, one order in an unpaid status,
and one paid order the connector never picked up (deliberately unposted)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal

from agent.backends.simulator import SimulatorBackend
from agent.operations import execute
from connector.bigcommerce.client import BigCommerceClient
from connector.bigcommerce.intake import take_orders, take_refunds
from connector.bigcommerce.normalize import DEFAULT_PAID_STATUS_IDS
from connector.models import InboundEvent, SyncRecord
from connector.services.jobs import complete_job, lease_jobs
from connector.services.pipeline import run_record
from demo import seed as demo
from sandbox.bigcommerce.app import build_app
from sandbox.httpserver import SandboxServer
from tests.support.worker import commit_hooks

DAY = dt.date(2026, 3, 10)  # a Tuesday; the store keeps New York time
ZONE = "America/New_York"
PAID = DEFAULT_PAID_STATUS_IDS


class Clock:
    def __init__(self, when: dt.datetime):
        self.when = when

    def __call__(self) -> float:
        return self.when.timestamp()


@dataclass
class SeededDay:
    server: SandboxServer
    clock: Clock
    posted_ids: list[int] = field(default_factory=list)
    unposted_id: int = 0
    pending_id: int = 0
    refund_ids: list[int] = field(default_factory=list)

    @property
    def store(self):
        return self.server.app.store


def start_store() -> SeededDay:
    clock = Clock(dt.datetime(2026, 3, 10, 14, 0, tzinfo=dt.UTC))
    app = build_app(store_hash=demo.STORE_HASH, token=demo.STORE_TOKEN, client_id=demo.CLIENT_ID,
                    client_secret=demo.CLIENT_SECRET, orders=0, seed=3, faults={"quota": 100000}, clock=clock)
    return SeededDay(SandboxServer(app).start(), clock)


def place_orders(day: SeededDay) -> None:
    store = day.store
    at = lambda h, m=0: dt.datetime(2026, 3, 10, h, m, tzinfo=dt.UTC)  # noqa: E731
    for hour, currency in ((13, "USD"), (14, "GBP"), (15, "EUR"), (16, "USD"), (17, "GBP")):
        day.clock.when = at(hour)
        day.posted_ids.append(store.create_order({"currency": currency, "status_id": 11}).id)
    # 02:30 UTC on the 11th is 22:30 on the 10th in New York: the store's day, not UTC's.
    day.clock.when = dt.datetime(2026, 3, 11, 2, 30, tzinfo=dt.UTC)
    day.posted_ids.append(store.create_order({"currency": "USD", "status_id": 10}).id)
    day.clock.when = at(18)
    day.pending_id = store.create_order({"currency": "USD", "status_id": 1}).id  # not paid: not a sale
    day.clock.when = at(19)
    day.refund_ids.append(store.create_refund(day.posted_ids[0], kind="item").id)
    day.refund_ids.append(store.create_refund(day.posted_ids[1], kind="full").id)
    day.clock.when = at(20)


def place_unposted(day: SeededDay) -> None:
    day.clock.when = dt.datetime(2026, 3, 10, 21, 0, tzinfo=dt.UTC)
    day.unposted_id = day.store.create_order({"currency": "EUR", "status_id": 11}).id


def drain_agent(seed) -> int:
    backend = SimulatorBackend(str(seed.company_path))
    count = 0
    try:
        for _ in range(50):
            jobs = lease_jobs(seed.agent, 20)
            if not jobs:
                return count
            backend.connect()
            for job in jobs:
                result = json.loads(json.dumps(execute(backend, job.op, job.payload), default=str))
                assert complete_job(seed.agent, job.pk, job.lease_token, result).status == 200
                count += 1
            backend.disconnect()
    finally:
        backend.disconnect()
    raise AssertionError("the agent never ran out of jobs")


def sync(seed, server_url: str, order_ids, refund_ids=()) -> None:
    """What the poll and the worker do, in this process: take the orders and refunds, run every
    record to the agent, drain the agent, until nothing moves."""
    client = BigCommerceClient(server_url, demo.STORE_HASH, demo.STORE_TOKEN)
    orders = [client.get_order(i) for i in order_ids]
    take_orders(seed.integration, orders, source=InboundEvent.Source.POLL, reason="test")
    if refund_ids:
        refunds = [r for r in client.iter_refunds() if r["id"] in set(refund_ids)]
        take_refunds(seed.integration, refunds, source=InboundEvent.Source.POLL, reason="test")
    for _ in range(4):
        with commit_hooks():  # an order's posting wakes the refunds waiting for it
            for pk in SyncRecord.objects.filter(integration=seed.integration, state=SyncRecord.State.PENDING
                                                ).values_list("pk", flat=True):
                run_record(pk)
            drain_agent(seed)


def store_figures(day: SeededDay, exclude=()) -> dict[str, dict[str, Decimal]]:
    """The sandbox store's own figures for the day, per currency."""
    out: dict[str, dict[str, Decimal]] = {}
    for order in day.store.orders.values():
        if order.status_id not in PAID or order.id in exclude:
            continue
        f = out.setdefault(order.currency, {"sales": Decimal("0"), "tax": Decimal("0"), "refunds": Decimal("0"),
                                            "orders": Decimal("0")})
        f["sales"] += order.figures.total_inc
        f["tax"] += order.figures.total_tax
        f["orders"] += 1
    for refund in day.store.refunds.values():
        currency = day.store.orders[refund.order_id].currency
        out.setdefault(currency, {"sales": Decimal("0"), "tax": Decimal("0"), "refunds": Decimal("0"),
                                  "orders": Decimal("0")})["refunds"] += refund.total_amount
    return out
