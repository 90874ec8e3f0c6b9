"""Adobe Commerce → Sage 50 end to end against the sandbox Adobe Commerce as its own process
(``python -m sandbox.adobe``, with --validate: every request and response checked against the
shipped schemas) beside uvicorn web, Celery worker and beat, and the agent with the simulated Sage
50 company. 240 seeded orders (partial invoices, online and offline credit memos, guests,
configurables, bundles, three store views in USD, EUR and GBP) found by the beat's overlapping
polls, then 60 orders living their lifecycle now, every step's webhook (RSA-signed Commerce
Webhooks and HMAC) delivered twice. Every invoice and credit note reconciles to the store's figures
to the cent, nothing is posted twice, and the sandbox saw no request outside the spec. A credit
memo of an order that is not posted (partly invoiced, unpaid, held) waits for its order or is
skipped saying so, without retrying on a timer."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import requests

from accounts.models import StoreConnection
from connector.adobe import normalize
from connector.adobe.adapter import AdobeCommerceAdapter
from connector.adobe.client import AdobeCommerceClient, OAuth1Credentials
from connector.devstack import PYTHON, free_port, wait_for
from connector.models import AgentJob, SyncRecord
from demo import seed as demo
from demo.system import logs_of
from tests.support import stack

pytestmark = pytest.mark.e2e
system_factory = stack.system_factory
SEEDED, LIVE = 240, 60
EVER = (dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC))


def money(value) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


def test_sandbox_adobe_store_to_sage50_reconciles_and_posts_once(system_factory):
    system = system_factory(orders=0, kick=False, poll_interval_seconds=5)
    port = free_port()
    adobe_url = f"http://127.0.0.1:{port}"
    system.stack.start("adobe", [PYTHON, "-m", "sandbox.adobe", "--port", str(port), "--orders", str(SEEDED),
                                 "--seed", "1", "--webhook-repeat", "2", "--validate"])
    system.stack.wait_http(f"{adobe_url}/__sandbox__/info", "adobe")
    info = requests.get(f"{adobe_url}/__sandbox__/info", timeout=10).json()
    keys = info["integrations"][0]
    creds = OAuth1Credentials(keys["consumer_key"], keys["consumer_secret"], keys["access_token"],
                              keys["access_token_secret"])
    adapter = AdobeCommerceAdapter(AdobeCommerceClient(adobe_url, auth="oauth1", oauth1=creds))
    catalog = requests.get(f"{adobe_url}/__sandbox__/stock", timeout=10).json()
    skus = sorted({i["sku"].upper() for o in adapter.changed_orders(*EVER) for i in o["items"]}
                  | {sku.upper() for sku in catalog["stock_items"]} | {s["sku"].upper() for s in catalog["source_items"]})
    demo.init_company(system.company_path, skus, qty="100000")

    integration = system.integration
    store = integration.store
    store.platform = StoreConnection.Platform.ADOBE_COMMERCE
    store.base_url, store.store_code, store.adobe_auth = adobe_url, "default", "oauth1"
    store.consumer_key, store.consumer_secret = creds.consumer_key, creds.consumer_secret
    store.access_token, store.access_token_secret = creds.access_token, creds.access_token_secret
    store.adobe_webhook_public_key = info["webhooks"]["public_key_pem"]
    store.save()
    demo.ensure_poll_schedule()
    type(integration).objects.filter(pk=integration.pk).update(
        created_at=dt.datetime(2000, 1, 1, tzinfo=dt.UTC), same_code_fallback=True, poll_overlap_seconds=600,
        # A credit memo's lines are credited pro rata to the order lines; Magento rounds each memo
        # item on its own, so a memo can differ from that by a cent: the rounding line takes it.
        rounding_tolerance=Decimal("0.01"))
    integration.refresh_from_db()
    hook = f"{system.web_url}/webhooks/adobe/{integration.webhook_token}/"
    for kind in ("commerce", "hmac"):
        requests.post(f"{adobe_url}/__sandbox__/webhooks", json={"kind": kind, "url": hook,
                                                                  "secret": integration.webhook_secret},
                      timeout=10).raise_for_status()
    requests.post(f"{adobe_url}/__sandbox__/activity", json={"orders": LIVE}, timeout=120).raise_for_status()

    orders = {str(o["entity_id"]): o for o in adapter.changed_orders(*EVER)}
    memos = {str(m["entity_id"]): m for m in adapter.changed_refunds(*EVER)}
    assert len(orders) == SEEDED + LIVE
    neutral = {i: normalize.normalize_order(o) for i, o in orders.items()}
    postable = {i for i, n in neutral.items() if n.status.counts_as_paid and n.payment_pending is None}
    credited = {i for i, m in memos.items() if str(m["order_id"]) in postable}
    assert postable and credited

    def done():
        posted = set(SyncRecord.objects.filter(state=SyncRecord.State.POSTED).values_list("kind", "external_id"))
        return {("order", i) for i in postable} | {("refund", i) for i in credited} <= posted

    try:
        wait_for(done, timeout=360, interval=1, what=f"{len(postable)} invoices and {len(credited)} credit notes")
    except TimeoutError:
        wanted = {("order", i) for i in postable} | {("refund", i) for i in credited}
        records = {(r.kind, r.external_id): (r.state, r.message[:200]) for r in SyncRecord.objects.all()}
        missing = {key: records.get(key, "no record") for key in sorted(wanted) if
                   records.get(key, ("",))[0] != SyncRecord.State.POSTED}
        pytest.fail(f"expected but not posted: {dict(list(missing.items())[:15])}\n{logs_of(system)}")

    docs = system.sage_documents()
    for entity_id in postable:
        rows = docs["invoice"][f"AC-{entity_id}"]
        assert len(rows) == 1, f"AC-{entity_id} posted {len(rows)} times"
        assert money(rows[0]["gross"]) == neutral[entity_id].totals.total_inc_tax, entity_id
    assert not set(docs["invoice"]) - {f"AC-{i}" for i in postable}
    for memo_id in credited:
        memo = memos[memo_id]
        reference = f"AC-{memo['order_id']}-R{memo_id}"
        rows = docs["credit"][reference]
        assert len(rows) == 1, f"{reference} posted {len(rows)} times"
        assert money(rows[0]["gross"]) == normalize.normalize_refund(memo).total, reference
        assert rows[0]["against_invoice"] == docs["invoice"][f"AC-{memo['order_id']}"][0]["number"]
    assert not AgentJob.objects.filter(state__in=(AgentJob.State.FAILED,)).exists()
    # A credit memo of an order that is not posted (partly invoiced, unpaid, cancelled) waited for
    # its order or was skipped saying so; none retried on a timer (the attempts stay few).
    others = SyncRecord.objects.filter(kind=SyncRecord.Kind.REFUND).exclude(external_id__in=credited)
    for record in others:
        assert record.state in (SyncRecord.State.SKIPPED, SyncRecord.State.WAITING_ORDER), (record.external_id,
                                                                                            record.message)
        assert "Sage 50" in record.message and record.waiting_for == [f"order:{memos[record.external_id]['order_id']}"]
    attempts = max(SyncRecord.objects.filter(kind=SyncRecord.Kind.REFUND).values_list("attempts", flat=True))
    assert attempts <= 6, f"a refund ran {attempts} times: retried instead of waiting for its order"
    deliveries = requests.get(f"{adobe_url}/__sandbox__/webhooks", timeout=10).json()["deliveries"]
    assert deliveries and all(d.get("status") in (200, None) or d.get("status_code") == 200 for d in deliveries[:5])
    violations = requests.get(f"{adobe_url}/__sandbox__/violations", timeout=10).json()
    assert violations["violations"] == [] and violations["count"] == 0, violations
