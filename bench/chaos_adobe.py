"""`make chaos` for an Adobe Commerce integration: ``python -m bench.chaos_adobe [--quick] [--orders N]``.

The same run as bench/chaos.py's BigCommerce one, on the same processes (uvicorn web, two Celery
workers, beat, the agent with the simulated Sage 50 company under its crash hook, a Redis of the
run's own), with the store swapped for the sandbox Adobe Commerce as its own process
(``python -m sandbox.adobe``). Its own fault injection is used: 429 storms (``throttle_storm``,
with ``Retry-After``), 503s (``error_rate``), every Commerce Webhooks delivery (RSA-signed) sent two
or three times (``webhook_repeat``) and 20 % dropped (``webhook_drop_rate``); the poll overlaps
the last one (``poll_overlap_seconds``) and finds what the dropped webhooks did not bring.

Orders are driven through the sandbox's control endpoints, so the run knows each order's story:
placed, left unpaid now and then, invoiced in one go or in two parts (partial invoicing), refunded
online against an invoice, offline without one (part of the goods, some shipping, an adjustment
fee) or by an adjustment alone. Some orders stay partly invoiced (the rules hold them and say
why), two seeded ones with a credit memo: that memo must be set aside with its order rather than
post or fail; the live phase invoices the rest of one of them (and of a few others), and then the
order and its memo must post, in that order.

Reconciled from the store (faults off) and the simulated Sage company: an invoice per fully paid
order, once, equal to the order's total; receipts once each, adding up to what was paid; a credit
note per credit memo of a posted order, once, equal to the memo and against the order's invoice;
nothing posted for a held order; nothing stuck (records of held orders may stay held).
"""

from __future__ import annotations

import datetime as dt
import random
import re
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from pathlib import Path

import requests

from bench import chaos
from bench.chaos import ChaosRun, DedicatedRedis, Plan, money, start_chaos_system

ADOBE_SEED = 3  # the sandbox catalog and customers (deterministic per seed)
EVER = (dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
ZERO = Decimal("0.00")


# -- the sandbox Adobe Commerce as a process of the system ---------------------------------------
@dataclass
class AdobeStore:
    url: str
    credentials: object  # connector.adobe.client.OAuth1Credentials
    public_key_pem: str

    def control(self, method: str, path: str, body: dict | None = None, *, ok=(200, 201)) -> requests.Response:
        response = requests.request(method, f"{self.url}/__sandbox__/{path}", json=body, timeout=30)
        if ok and response.status_code not in ok:
            response.raise_for_status()
        return response

    def adapter(self):
        from connector.adobe.adapter import AdobeCommerceAdapter
        from connector.adobe.client import AdobeCommerceClient

        return AdobeCommerceAdapter(AdobeCommerceClient(self.url, auth="oauth1", oauth1=self.credentials))

    def orders(self) -> dict[str, dict]:
        return {str(o["entity_id"]): o for o in self.adapter().changed_orders(*EVER)}

    def creditmemos(self) -> dict[str, dict]:
        return {str(m["entity_id"]): m for m in self.adapter().changed_refunds(*EVER)}


def catalog_skus(seed: int = ADOBE_SEED) -> list[str]:
    """Every SKU of the sandbox catalog for ``seed``, as the store spells it."""
    from sandbox.adobe.store import AdobeCommerceStore

    store = AdobeCommerceStore(seed=seed, orders=0, n_customers=0)
    return sorted({p.sku for p in store.products.values()})


def attach_adobe(system, *, seed: int = ADOBE_SEED, poll_seconds: int = 5, overlap_seconds: int = 120,
                 webhook_kinds: tuple[str, ...] = ("commerce",), extra: list[str] | None = None) -> AdobeStore:
    """Start the sandbox Adobe Commerce in ``system``'s stack and turn the system's integration into
    an Adobe → Sage 50 one (OAuth 1.0a, the sandbox's webhook key, item mappings); subscribe
    the web process to the store's webhooks. The system's BigCommerce sandbox stays idle."""
    from accounts.models import StoreConnection
    from connector.adobe.client import OAuth1Credentials
    from connector.devstack import PYTHON, free_port
    from demo import seed as demo
    from mappings.models import ItemMapping

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    system.stack.start("adobe", [PYTHON, "-m", "sandbox.adobe", "--port", str(port), "--orders", "0",
                                 "--seed", str(seed), *(extra or [])])
    system.stack.wait_http(f"{url}/__sandbox__/info", "adobe")
    info = requests.get(f"{url}/__sandbox__/info", timeout=10).json()
    keys = info["integrations"][0]
    creds = OAuth1Credentials(keys["consumer_key"], keys["consumer_secret"], keys["access_token"],
                              keys["access_token_secret"])
    skus = catalog_skus(seed)
    demo.init_company(system.company_path, sorted({sku.upper() for sku in skus}), qty="100000")
    integration = system.integration
    # Sage item codes are upper case, Adobe SKUs are not: mapped, as an accountant would, so orders
    # find their items and the stock push (Sage → store) finds the store's SKUs.
    ItemMapping.objects.bulk_create([ItemMapping(integration=integration, store_sku=sku, sage_code=sku.upper())
                                     for sku in skus], ignore_conflicts=True)
    store = integration.store
    store.platform = StoreConnection.Platform.ADOBE_COMMERCE
    store.base_url, store.store_code, store.adobe_auth = url, "default", "oauth1"
    store.consumer_key, store.consumer_secret = creds.consumer_key, creds.consumer_secret
    store.access_token, store.access_token_secret = creds.access_token, creds.access_token_secret
    store.adobe_webhook_public_key = info["webhooks"]["public_key_pem"]
    store.save()
    type(integration).objects.filter(pk=integration.pk).update(
        same_code_fallback=True, poll_overlap_seconds=overlap_seconds, poll_interval_seconds=poll_seconds,
        # Magento rounds each credit memo item on its own; crediting pro rata to the order lines can
        # differ from that by a cent, which the rounding line takes (as in the sandbox e2e test).
        rounding_tolerance=Decimal("0.01"))
    integration.refresh_from_db()
    adobe = AdobeStore(url, creds, info["webhooks"]["public_key_pem"])
    hook = f"{system.web_url}/webhooks/adobe/{integration.webhook_token}/"
    for kind in webhook_kinds:
        adobe.control("POST", "webhooks", {"kind": kind, "url": hook, "secret": integration.webhook_secret})
    system.extra["adobe"] = adobe
    return adobe


def kick_adobe_sync(integration, since: dt.datetime) -> None:
    """A backfill from ``since`` (the orders placed before the run) and a first poll."""
    from connector.adobe.tasks import backfill, poll_integration
    from connector.models import SyncRun

    until = dt.datetime.now(dt.UTC)
    run = SyncRun.objects.create(integration=integration, kind=SyncRun.Kind.BACKFILL,
                                 params={"since": since.isoformat(), "until": until.isoformat()})
    backfill.delay(integration.pk, since.isoformat(), until.isoformat(), run.pk)
    poll_integration.delay(integration.pk)


# -- orders with a story ------------------------------------------------------------------------------
@dataclass
class OrderStory:
    entity_id: int
    tops: list[dict]  # top-level order items: item_id, qty_ordered
    invoices: list[dict] = field(default_factory=list)  # rendered invoices (entity_id, transaction_id)
    extras: bool = False  # gift card or store credit: no partial invoice, no refund (as the sandbox's own seed)
    partly_invoiced: bool = False
    refunds: int = 0
    memo_ids: list[int] = field(default_factory=list)
    keep_held: bool = False  # never invoiced in full: its credit memo waits to the end


@dataclass
class OrderMaker:
    """Places orders in the sandbox and takes them through invoicing, as a store in use would."""

    store: AdobeStore
    rng: random.Random
    held_share: float = 0.0  # of the partly invoiced orders, the share left partly invoiced
    unpaid_share: float = 0.08
    partial_share: float = 0.3
    stories: dict[int, OrderStory] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)

    def place(self, *, held: bool = False) -> OrderStory:
        """One order and its invoicing; ``held``: invoiced in part and left so (of more than one unit)."""
        partial = held or self.rng.random() < self.partial_share
        spec = {"gift_card": 0, "store_credit": 0} if partial else {}
        if held:
            spec["lines"] = [{"sku": "24-MB01", "qty": 3}]
        order = self.store.control("POST", "orders", spec).json()
        tops = [{"item_id": i["item_id"], "qty": Decimal(str(i["qty_ordered"]))} for i in order["items"]
                if not i.get("parent_item_id")]
        ext = order.get("extension_attributes") or {}
        story = OrderStory(order["entity_id"], tops, extras=bool(money(ext.get("gift_cards_amount") or 0)
                                                                  or money(ext.get("customer_balance_amount") or 0)))
        self.stories[story.entity_id] = story
        self.counts["orders"] += 1
        if not held and self.rng.random() < self.unpaid_share:
            self.counts["unpaid"] += 1
            return story  # never invoiced: not a sale yet
        if partial and not story.extras and sum(t["qty"] for t in tops) > 1:
            first = tops[0]
            qty = first["qty"] - 1 if first["qty"] > 1 else Decimal(1)
            self._invoice(story, {str(first["item_id"]): str(qty)})
            self.counts["partial_invoices"] += 1
            if held or self.rng.random() < self.held_share:
                story.partly_invoiced = True
                self.counts["left_partly_invoiced"] += 1
                return story
        self._invoice(story, None)
        return story

    def complete(self, story: OrderStory) -> None:
        """Invoice the rest of a partly invoiced order: it posts, and its waiting credit memos after it."""
        self._invoice(story, None)
        story.partly_invoiced = False
        self.counts["completed_later"] += 1
        self.counts["completed_after_refund"] += bool(story.refunds)

    def _invoice(self, story: OrderStory, items: dict | None) -> None:
        body = {} if items is None else {"items": items}
        story.invoices.append(self.store.control("POST", f"orders/{story.entity_id}/invoice", body).json())
        self.counts["invoices"] += 1

    def refund(self, story: OrderStory) -> list[int]:
        """One refund of a kind drawn at random; the memo ids made (the store may refuse: [])."""
        online = [i for i in story.invoices if i.get("transaction_id")]
        kind = self.rng.choice(("online", "item", "item", "adjustment"))
        bodies: list[dict]
        if story.partly_invoiced:
            bodies = [{"items": {str(story.tops[0]["item_id"]): 1}, "shipping": 0}]
        elif kind == "online" and online and not story.refunds:
            bodies = [{"invoice_id": i["entity_id"]} for i in online]  # in full, invoice by invoice
        elif kind == "adjustment":
            bodies = [{"items": {}, "shipping": 0, "adjustment_positive": "5.00"}]
        else:
            bodies = [{"items": {str(story.tops[0]["item_id"]): 1}, "shipping": None if self.rng.random() < 0.5
                       else 0, "adjustment_negative": "2.00" if self.rng.random() < 0.5 else "0"}]
        made = []
        for body in bodies:
            body = {k: v for k, v in body.items() if v is not None}
            response = self.store.control("POST", f"orders/{story.entity_id}/refund", body, ok=())
            self.counts["refund_attempts"] += 1
            if response.status_code == 201:
                made.append(response.json()["entity_id"])
                story.memo_ids.append(made[-1])
                story.refunds += 1
        return made

    def refundable(self) -> list[OrderStory]:
        return [s for s in self.stories.values() if s.invoices and not s.extras]


# -- the chaos run ---------------------------------------------------------------------------------------
# bench/chaos.py's fault names → the Adobe sandbox's knobs.
ADOBE_KNOBS = {"rate_limit_storm": "throttle_storm", "error_rate": "error_rate", "webhook_repeat": "webhook_repeat",
               "webhook_drop_rate": "webhook_drop_rate"}


class AdobeChaosRun(ChaosRun):
    """ChaosRun with the Adobe sandbox as the store: its faults, its orders and refunds."""

    def __init__(self, system, plan: Plan, *, maker: OrderMaker, **kwargs):
        super().__init__(system, plan, **kwargs)
        self.maker = maker

    store_name = "Adobe Commerce"

    def faults(self, **knobs) -> None:
        self.maker.store.control("POST", "faults", {ADOBE_KNOBS[k]: v for k, v in knobs.items()})
        if knobs.get("rate_limit_storm"):
            from connector.adobe.tasks import poll_integration

            # A poll now as well, overlapping the scheduled ones: the storm meets the poller for
            # sure, not only whichever webhook fetches happen to fall in it.
            poll_integration.delay(self.system.integration.pk)
            self.timeline.note("a poll started in the 429 storm")

    def generate(self, count: int) -> None:
        for _ in range(count):
            self.live_ids.append(self.maker.place().entity_id)
        # Now and then a held order gets the rest of its invoice: it posts, then the credit memo
        # that was waiting for it. One with a memo goes once the memo's record is seen waiting
        # (or half the fault phase is over); the others by chance.
        from connector.models import SyncRecord

        halfway = time.monotonic() - self.timeline.t0 > self.plan.flow_seconds / 2
        for story in [s for s in self.maker.stories.values() if s.partly_invoiced and not s.keep_held]:
            if story.memo_ids:
                # Set aside: waiting for its order, or skipped with it (it comes back when the order does).
                states = set(SyncRecord.objects.filter(kind="refund", external_id__in=[str(m) for m in story.memo_ids])
                             .values_list("state", flat=True))
                aside = bool(states) and states <= {SyncRecord.State.WAITING_ORDER, SyncRecord.State.SKIPPED}
                if not (aside or halfway):
                    continue
                self.maker.complete(story)
                self.counts["held_memo_resumed" if aside else "held_memo_not_seen_aside"] += 1
                self.timeline.note(f"order {story.entity_id}, held as partly invoiced with its credit memo "
                                   f"{'/'.join(sorted(states)) or 'not read yet'}, invoiced in full")
            elif self.rng.random() < 0.15:
                self.maker.complete(story)
                self.timeline.note(f"order {story.entity_id}, held as partly invoiced, invoiced in full")

    def maybe_refund(self, due: int) -> None:
        while len(self.refunds_placed) < min(due, self.plan.refunds):
            candidates = [s for s in self.maker.refundable() if s.entity_id in set(self.live_ids)]
            if not candidates or self.counts["refund_attempts"] > 20 * self.plan.refunds:
                return
            self.counts["refund_attempts"] += 1
            self.refunds_placed += self.maker.refund(self.rng.choice(candidates))


# -- reconciliation (pure) ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Expectations:
    postable: frozenset[str]  # order ids that must be invoiced in Sage
    held: frozenset[str]  # paid in part: held by the rules, nothing in Sage
    credited: frozenset[str]  # credit memo ids that must be credit notes
    waiting: frozenset[str]  # credit memos of held orders: nothing in Sage yet (waiting, not failed)

    @property
    def allowed_open(self) -> set[tuple[str, str]]:
        return {("order", i) for i in self.held} | {("refund", i) for i in self.waiting}


def expectations(orders: dict[str, dict], memos: dict[str, dict]) -> Expectations:
    from connector.adobe import normalize

    postable, held = set(), set()
    for entity_id, order in orders.items():
        neutral = normalize.normalize_order(order)
        if neutral.status.counts_as_paid and neutral.payment_pending is None:
            postable.add(entity_id)
        elif money(order.get("total_paid") or 0) > ZERO:
            held.add(entity_id)
    credited = {i for i, m in memos.items() if str(m["order_id"]) in postable}
    waiting = {i for i, m in memos.items() if str(m["order_id"]) in held}
    return Expectations(frozenset(postable), frozenset(held), frozenset(credited), frozenset(waiting))


def paid_in_all(order: dict) -> Decimal:
    """What settled the order in the store: money invoiced and paid, plus gift cards, store credit
    and reward points (each posts as a receipt of its own)."""
    ext = order.get("extension_attributes") or {}
    return money(order.get("total_paid") or 0) + sum(
        (money(ext.get(k) or 0) for k in ("gift_cards_amount", "customer_balance_amount", "reward_currency_amount")),
        ZERO)


def reconcile_adobe(orders: dict[str, dict], memos: dict[str, dict], docs: dict[str, dict[str, list[dict]]],
                    records: list[dict]) -> dict:
    """Compare the Adobe store with the Sage 50 company; every list in the answer is a difference
    except ``skipped``. References: ``AC-<order>`` invoices, ``AC-<order>-P…`` receipts,
    ``AC-<order>-GC`` / ``-SC`` … receipts of other tenders, ``AC-<order>-R<memo>`` credit notes."""
    from connector.adobe import normalize

    want = expectations(orders, memos)
    invoices, credits = docs.get("invoice", {}), docs.get("credit", {})
    expected_inv = {f"AC-{i}" for i in want.postable}
    out: dict = {"orders": len(orders), "postable_orders": len(want.postable), "held_orders": len(want.held),
                 "refunds": len(want.credited), "refunds_waiting": len(want.waiting)}
    out["invoice_duplicates"] = sorted(r for r, rows in invoices.items() if len(rows) > 1)
    out["invoices_lost"] = sorted(expected_inv - set(invoices))
    out["invoices_unexpected"] = sorted(set(invoices) - expected_inv)
    cents: list[dict] = []
    receipts: dict[str, list[dict]] = defaultdict(list)
    for reference, rows in docs.get("SR", {}).items():
        receipts[reference.rsplit("-", 1)[0]].extend(rows)  # AC-<order>-P (money), -GC (gift card), …
    out["receipt_duplicates"] = sorted(r for r, rows in docs.get("SR", {}).items() if len(rows) > 1)
    for entity_id in sorted(want.postable, key=int):
        order, reference = orders[entity_id], f"AC-{entity_id}"
        rows = invoices.get(reference) or []
        total = normalize.normalize_order(order).totals.total_inc_tax
        if rows and money(rows[0]["gross"]) != total:
            cents.append({"reference": reference, "what": "invoice gross", "sage": str(money(rows[0]["gross"])),
                          "store": str(total)})
        got = sum((money(r["amount"]) for r in receipts.get(reference, [])), ZERO)
        if rows and got != paid_in_all(order):
            cents.append({"reference": reference, "what": "receipts", "sage": str(got),
                          "store": str(paid_in_all(order))})
    expected_cn = {f"AC-{memos[i]['order_id']}-R{i}": memos[i] for i in want.credited}
    out["credit_duplicates"] = sorted(r for r, rows in credits.items() if len(rows) > 1)
    out["credits_lost"] = sorted(set(expected_cn) - set(credits))
    out["credits_unexpected"] = sorted(set(credits) - set(expected_cn))
    out["refund_payment_duplicates"] = sorted(r for r, rows in docs.get("SP", {}).items() if len(rows) > 1)
    for reference, memo in sorted(expected_cn.items()):
        rows = credits.get(reference) or []
        total = normalize.normalize_refund(memo).total
        if rows and money(rows[0]["gross"]) != total:
            cents.append({"reference": reference, "what": "credit note gross", "sage": str(money(rows[0]["gross"])),
                          "store": str(total)})
        invoice = (invoices.get(f"AC-{memo['order_id']}") or [{}])[0]
        if rows and rows[0].get("against_invoice") != invoice.get("number"):
            cents.append({"reference": reference, "what": "credited against", "sage": str(rows[0].get(
                "against_invoice")), "store": f"invoice {invoice.get('number')}"})
    out["cent_differences"] = cents
    allowed = want.allowed_open
    out["stuck"] = [{k: r[k] for k in ("kind", "external_id", "action", "state", "message")} for r in records
                    if r["state"] not in ("posted", "skipped")
                    and (r["state"] == "failed" or (r["kind"], r["external_id"]) not in allowed)]
    out["held_as_expected"] = sum(1 for r in records if (r["kind"], r["external_id"]) in allowed
                                  and r["state"] not in ("posted", "failed"))
    skipped = [r for r in records if r["state"] == "skipped"]
    out["skipped_but_postable"] = sorted(f"AC-{r['external_id']}" for r in skipped
                                         if r["kind"] == "order" and r["external_id"] in want.postable)
    out["skipped"] = dict(Counter(re.split(r"[.;] ", re.sub(r"^AC-\d+ is not posted: ", "", r["message"]))[0][:90]
                                  for r in skipped))
    out["duplicates"] = sum(len(out[k]) for k in ("invoice_duplicates", "receipt_duplicates", "credit_duplicates",
                                                   "refund_payment_duplicates"))
    out["lost"] = len(out["invoices_lost"]) + len(out["credits_lost"])
    out["cent_difference_count"] = len(cents)
    out["ok"] = not (out["duplicates"] or out["lost"] or cents or out["stuck"] or out["invoices_unexpected"]
                     or out["credits_unexpected"] or out["skipped_but_postable"])
    return out


# -- one whole run ----------------------------------------------------------------------------------------
def start_adobe_chaos_system(process_env: dict, work_dir: Path, plan: Plan):
    """bench/chaos.py's system (its BigCommerce sandbox left empty) with the Adobe store attached."""
    system = start_chaos_system(process_env, work_dir, replace(plan, seeded_orders=0, sage="sage50"))
    try:
        attach_adobe(system, poll_seconds=plan.poll_seconds)
    except BaseException:
        system.stop()
        raise
    return system


# Of the orders invoiced in two parts, the share left partly invoiced: the connector holds them
# (the Sage invoice must equal the grand total), and a credit memo of one waits for its order
# ("Waiting for its order") instead of posting or failing.
HELD_SHARE = 0.25


def run_adobe_chaos(system, plan: Plan, work_dir: Path, *, redis: DedicatedRedis | None = None, echo: bool = True,
                    held_share: float | None = None) -> dict:
    """Seed the plan's orders (read by the backfill), then drive the faults with live orders and
    refunds, settle and reconcile. Returns the result (bench/chaos.py's keys, plus held_orders)."""
    started = time.monotonic()
    adobe: AdobeStore = system.extra["adobe"]
    rng = random.Random(plan.seed)
    maker = OrderMaker(adobe, rng, held_share=HELD_SHARE if held_share is None else held_share)
    # Seeded before any webhook can reach us (the subscription is live: pause it by dropping all).
    adobe.control("POST", "faults", {"webhook_drop_rate": 1.0})
    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    # Two of them held as partly invoiced, each with a credit memo waiting for its order: the live
    # phase invoices the rest of the first (its memo must follow it into Sage), the other stays held.
    held = [maker.place(held=True) for _ in range(min(2, plan.seeded_orders))]
    held[-1].keep_held = len(held) > 1
    seeded = held + [maker.place() for _ in range(plan.seeded_orders - len(held))]
    for story in held + rng.sample(seeded, k=min(len(seeded), max(1, plan.refunds // 3))):
        if story.invoices and not story.extras:
            maker.refund(story)
    adobe.control("POST", "faults", {"webhook_drop_rate": 0.0})
    run = AdobeChaosRun(system, plan, maker=maker, redis=redis, trigger=work_dir / "agent-crash-trigger", echo=echo)
    run.start_agent()
    kick_adobe_sync(system.integration, since)
    run.drive()
    orders, memos = adobe.orders(), adobe.creditmemos()
    want = expectations(orders, memos)
    run.allowed_open = set(want.allowed_open)
    run.must_post = {("order", i) for i in want.postable} | {("refund", i) for i in want.credited}
    expected = len(want.postable) + len(want.credited)
    settled = run.settle(expected)
    run.trigger.unlink(missing_ok=True)
    from connector.models import SyncRecord

    records = list(SyncRecord.objects.values("kind", "external_id", "action", "state", "message"))
    result = reconcile_adobe(orders, memos, system.sage_documents(), records)
    deliveries = adobe.control("GET", "webhooks").json()["deliveries"]
    counters = adobe.control("GET", "counters").json()["endpoints"]
    result.update({
        "store": "adobe", "settled": settled, "expected_postings": expected,
        "wall_s": round(time.monotonic() - started, 1), "faults": dict(run.counts), "orders_made": dict(maker.counts),
        "live_orders": len(run.live_ids), "refunds_placed": len(run.refunds_placed),
        "webhook_deliveries": len(deliveries), "adobe_429": counters.get("429", 0), "adobe_api_calls": counters,
        "timeline": run.timeline.entries, "plan": {k: v for k, v in asdict(plan).items() if k != "events"},
    })
    result["ok"] = result["ok"] and settled
    return result


def main(argv=None) -> int:
    """bench/chaos.py's command line (``--quick``, ``--orders``, ``--seed``, ``--keep``) on this store.
    Its result goes to bench/results/adobe-chaos-<timestamp>.json."""
    return chaos.main(argv, start=start_adobe_chaos_system, run=run_adobe_chaos, store="adobe")


if __name__ == "__main__":
    sys.exit(main())
