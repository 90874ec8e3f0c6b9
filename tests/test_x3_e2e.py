"""End to end, real processes: the BigCommerce sandbox delivers every webhook twice to our uvicorn web
process, a Celery worker posts GL journal entries to two X3 sandboxes (one over REST api1 with Basic,
one over GraphQL with OAuth2 whose tokens are expired mid-run), and the X3 entry lists are reconciled
against the store: exactly one entry per postable order and per refund, on the channel's accounts.

The sandbox store knows sales channel 1 only, so it is started through a tiny launcher that puts
order N on channel 1 + N % 3 (see the report: the sandbox needs a channel knob)."""

from __future__ import annotations

import os
import time
from collections import Counter
from decimal import Decimal as D

import pytest
import requests
from django.test import override_settings

from accounts.models import Integration, SageConnection, Tenant
from connector.bigcommerce.client import BigCommerceClient
from connector.bigcommerce.hooks import ensure_hooks
from connector.bigcommerce.normalize import DEFAULT_PAID_STATUS_IDS
from connector.bigcommerce.poller import poll_integration
from connector.devstack import PYTHON, Stack, free_port, wait_for
from connector.flows import x3 as x3_flow
from connector.models import InboundEvent, SyncRecord
from mappings.models import AccountMapping, RecordLink
from tests.support.factories import TenantFactory, make_integration

pytestmark = pytest.mark.e2e

# Measured on 2 cores, both transports: 200 orders + 51 refunds in 90 s on the embedded broker (SQLite),
# 57-83 s on Redis + SQLite, 106 s on Redis + PostgreSQL.
ORDERS = int(os.environ.get("X3_E2E_ORDERS") or 200)
EXTRA_REFUNDS = max(2, ORDERS // 7)
BC_TOKEN, BC_SECRET, STORE_HASH = "e2e-bc-token", "e2e-bc-client-secret", "x3e2e"
X3_USER, X3_PASSWORD, X3_CLIENT_ID, X3_SECRET = "WEBAPI", "e2e-x3-pw", "e2e-x3-client", "e2e-x3-secret"
State = SyncRecord.State

BC_LAUNCHER = (
    "import sys\n"
    "from sandbox.bigcommerce import render, __main__ as cli\n"
    "plain = render.order_v2\n"
    "render.order_v2 = lambda order, *a, **k: {**plain(order, *a, **k), 'channel_id': 1 + order.id % 3}\n"
    "sys.exit(cli.main(sys.argv[1:]))\n"
)


def channel_of(order_id: int) -> int:
    return 1 + order_id % 3


def start_sandboxes(stack: Stack) -> dict[str, str]:
    urls = {}
    port = free_port()
    stack.start("bc-sandbox", [PYTHON, "-c", BC_LAUNCHER, "--port", str(port), "--store-hash", STORE_HASH,
                               "--token", BC_TOKEN, "--client-secret", BC_SECRET, "--orders", "0",
                               "--webhook-repeat", "2", "--quota", "1000000", "--seed", "11"])
    urls["bc"] = f"http://127.0.0.1:{port}"
    for name in ("x3-rest", "x3-graphql"):
        port = free_port()
        stack.start(name, [PYTHON, "-m", "sandbox.x3", "--port", str(port), "--user", X3_USER,
                           "--password", X3_PASSWORD, "--client-id", X3_CLIENT_ID, "--client-secret", X3_SECRET,
                           "--folder", "SEED", "--access-token-ttl", "60"])
        urls[name] = f"http://127.0.0.1:{port}"
    for name, url in (("bc-sandbox", urls["bc"]), ("x3-rest", urls["x3-rest"]), ("x3-graphql", urls["x3-graphql"])):
        stack.wait_http(f"{url}/__sandbox__/faults", name)
    return urls


def x3_integration(tenant: Tenant, store, name: str, x3_url: str, transport: str) -> Integration:
    sage = {"transport": transport, "server_url": x3_url,
            "folder": "SEED", "username": X3_USER, "password": X3_PASSWORD, "company_path": "",
            "x3_graphql_endpoint": "SEED"}
    if transport == SageConnection.Transport.X3_GRAPHQL:
        sage.update(x3_auth=SageConnection.X3Auth.OAUTH, oauth_client_id=X3_CLIENT_ID,
                    oauth_client_secret=X3_SECRET, oauth_token_url=f"{x3_url}/v1/token")
    else:
        sage["x3_auth"] = SageConnection.X3Auth.BASIC
    integration = make_integration(
        store, SageConnection.Edition.SAGEX3, tenant=tenant, name=name, **{f"sage__{k}": v for k, v in sage.items()},
        post_gl_entries=True, x3_entry_type="ODIV", x3_journal="VEN", x3_site="FR011", x3_company="FR10")
    mappings = [(0, "receivable", "411000"), (0, "business_partner", "WEB001"), (0, "gift_certificate", "419100"),
                (0, "store_credit", "467100"), (0, "revenue", "707000"), (0, "tax", "445710"),
                (0, "shipping", "708500"), (0, "discount", "709000"),
                (2, "revenue", "706000"), (3, "receivable", "467000")]
    for channel, purpose, code in mappings:
        AccountMapping.objects.create(integration=integration, channel_id=channel, purpose=purpose, account_code=code)
    if transport == SageConnection.Transport.X3_GRAPHQL:
        code = requests.post(f"{x3_url}/__sandbox__/authorization_codes", timeout=5).json()["code"]
        x3_flow.StoredOAuth2Tokens(integration.sage_id, f"{x3_url}/v1/token", X3_CLIENT_ID, X3_SECRET,
                                   on_tokens=x3_flow.save_tokens(integration.sage_id)
                                   ).exchange_code(code, "https://connector.example/x3/callback")
    return integration


def x3_entries(url: str) -> list[dict]:
    return requests.get(f"{url}/__sandbox__/entries", timeout=10).json()["entries"]


def settled(integrations) -> bool:
    """Every record reached a final state (a retry waiting for its countdown is still PENDING)."""
    if InboundEvent.objects.filter(integration__in=integrations, processed_at__isnull=True).exists():
        return False
    records = SyncRecord.objects.filter(integration__in=integrations)
    return records.exists() and not records.filter(state__in=(State.PENDING, State.DISPATCHED)).exists()


def wait_settled(integrations, stack: Stack, timeout: float, what: str) -> None:
    try:
        wait_for(lambda: settled(integrations), timeout=timeout, interval=1, what=what)
    except TimeoutError:
        states = Counter(SyncRecord.objects.filter(integration__in=integrations).values_list("state", flat=True))
        events = InboundEvent.objects.filter(integration__in=integrations)
        stuck = list(SyncRecord.objects.filter(integration__in=integrations, state=State.PENDING)
                     .values_list("external_id", "message")[:3])
        raise AssertionError(f"{what}: records {dict(states)}, events {events.count()} "
                             f"({events.filter(processed_at__isnull=True).count()} unprocessed), pending {stuck}\n"
                             f"{stack.log('worker')[-3000:]}") from None


def store_truth(bc_url: str) -> tuple[dict[int, dict], list[dict]]:
    client = BigCommerceClient(bc_url, STORE_HASH, BC_TOKEN)
    orders = {o["id"]: o for o in client.iter_v2("/v2/orders")}
    refunds = list(client.iter_refunds())
    return orders, refunds


def check_accounts(entry: dict, order_id: int) -> None:
    channel = channel_of(order_id)
    accounts = {line["ACC"] for line in entry["lines"]}
    receivable = "467000" if channel == 3 else "411000"
    # The receivable is the first line, unless gift certificates or store credit paid the whole order.
    assert entry["lines"][0]["ACC"] in (receivable, "419100", "467100"), entry
    assert all(line["BPR"] == "WEB001" for line in entry["lines"] if line["ACC"] == "411000"), entry
    revenue = {"706000", "707000"} & accounts
    if revenue:
        assert revenue == {"706000" if channel == 2 else "707000"}, entry
    debit = sum((D(str(line["AMTCUR"])) for line in entry["lines"] if line["SNS"] == 1), D(0))
    credit = sum((D(str(line["AMTCUR"])) for line in entry["lines"] if line["SNS"] == -1), D(0))
    assert debit == credit, entry


def test_orders_and_refunds_post_exactly_once_over_both_transports(process_env):
    started = time.monotonic()
    with Stack(env=process_env) as stack:
        urls = start_sandboxes(stack)
        web_port = free_port()
        web_url = f"http://127.0.0.1:{web_port}"
        stack.env["PUBLIC_BASE_URL"] = web_url
        stack.web(web_port)
        stack.worker(concurrency=2)
        stack.wait_http(f"{web_url}/admin/login/", "web")

        tenant = TenantFactory()
        from tests.support.factories import StoreConnectionFactory

        store = StoreConnectionFactory(tenant=tenant, api_base_url=urls["bc"], store_hash=STORE_HASH,
                                       access_token=BC_TOKEN, client_secret=BC_SECRET)
        rest = x3_integration(tenant, store, "X3 REST", urls["x3-rest"], SageConnection.Transport.X3_REST)
        graphql = x3_integration(tenant, store, "X3 GraphQL", urls["x3-graphql"],
                                 SageConnection.Transport.X3_GRAPHQL)
        integrations = [rest, graphql]
        with override_settings(PUBLIC_BASE_URL=web_url):
            for integration in integrations:
                assert ensure_hooks(integration).ok

        bc = urls["bc"]
        created = requests.post(f"{bc}/__sandbox__/orders/generate", json={"count": ORDERS // 2},
                                timeout=30).json()["created"]
        # Forced expiry of every GraphQL access token mid-run: the worker refreshes and carries on.
        requests.post(f"{urls['x3-graphql']}/__sandbox__/faults", json={"expire_tokens_now": True}, timeout=5)
        created += requests.post(f"{bc}/__sandbox__/orders/generate", json={"count": ORDERS - ORDERS // 2},
                                 timeout=30).json()["created"]
        orders, _ = store_truth(bc)
        refundable = [i for i in created if orders[i]["status_id"] in (2, 3, 8, 9, 10, 11)][:EXTRA_REFUNDS]
        for order_id in refundable:
            answer = requests.post(f"{bc}/__sandbox__/orders/{order_id}/refunds", json={"kind": "item"}, timeout=10)
            assert answer.status_code == 201, answer.text

        # Refunds seeded with already-refunded orders send no webhook: the poll (source of truth) reads them.
        wait_settled(integrations, stack, 150, "webhook-driven records to settle")
        for integration in integrations:
            poll_integration(integration, BigCommerceClient(bc, STORE_HASH, BC_TOKEN))
        time.sleep(1)
        wait_settled(integrations, stack, 60, "polled records to settle")

        orders, refunds = store_truth(bc)
        deliveries = requests.get(f"{bc}/__sandbox__/webhooks", timeout=10).json()["deliveries"]
        token_grants = requests.get(f"{urls['x3-graphql']}/__sandbox__/tokens", timeout=5).json()["grants"]
        rest_entries, graphql_entries = x3_entries(urls["x3-rest"]), x3_entries(urls["x3-graphql"])
        elapsed = time.monotonic() - started
        timeline = _timeline(integrations)
        failed = list(SyncRecord.objects.filter(integration__in=integrations, state=State.FAILED)
                      .values_list("external_id", "message")[:5])
        assert not failed, f"{failed}\n{stack.log('worker')[-4000:]}"

    assert len(orders) == ORDERS
    assert sum(1 for d in deliveries if d.get("status") == 200) >= 2 * ORDERS  # every event sent twice
    postable = {i for i, o in orders.items() if o["status_id"] in DEFAULT_PAID_STATUS_IDS}
    with_money = {r["id"]: r for r in refunds if D(str(r["total_amount"])) != 0}
    assert len(with_money) >= EXTRA_REFUNDS

    held_counts: list[int] = []
    for integration, entries in ((rest, rest_entries), (graphql, graphql_entries)):
        records = SyncRecord.objects.filter(integration=integration)
        held = {(r.kind, r.external_id): r.message for r in records.filter(state=State.HELD)}
        held_counts.append(len(held))
        # The journal refuses tax-inclusive orders whose ex-tax parts round a cent away from
        # total_ex_tax (reported to the lead); those are held, with the difference, never posted.
        assert all("does not balance" in message for message in held.values()), held
        assert len(held) <= (len(postable) + len(with_money)) // 5, held
        refs = Counter(e["REF"] for e in entries)
        assert max(refs.values()) == 1, [ref for ref, n in refs.items() if n > 1]  # exactly once
        expected = {f"BC-{i}" for i in postable if ("order", str(i)) not in held}
        expected |= {f"BC-{r['order_id']}-R{r['id']}" for r in with_money.values()
                     if ("refund", str(r["id"])) not in held}
        assert set(refs) == expected, (sorted(set(refs) - expected)[:5], sorted(expected - set(refs))[:5])
        for entry in entries:
            check_accounts(entry, int(entry["REF"][3:].split("-R")[0]))
        links = RecordLink.objects.filter(integration=integration, kind=RecordLink.Kind.JOURNAL_ENTRY)
        assert links.count() == len(entries)
        assert set(links.values_list("sage_id", flat=True)) == {e["NUM"] for e in entries}
        assert not records.filter(state=State.WAITING_MAPPING).exists()

    assert "refresh_token" in token_grants  # the forced expiry was recovered by a refresh
    sage = SageConnection.objects.get(pk=graphql.sage_id)
    assert sage.refresh_token_expires_at is not None and sage.access_token
    print(f"\nX3 e2e: {ORDERS} orders, {len(with_money)} refunds, {len(rest_entries)} REST + "
          f"{len(graphql_entries)} GraphQL entries, held {held_counts}, {len(deliveries)} webhook deliveries, "
          f"token grants {Counter(token_grants)}, {elapsed:.0f} s; {timeline}")


def _timeline(integrations) -> str:
    from django.db.models import Max, Min

    from connector.models import AuditEntry

    records = SyncRecord.objects.filter(integration__in=integrations)
    span = records.aggregate(first=Min("created_at"), last=Max("posted_at"))
    retries = AuditEntry.objects.filter(record__in=records, step="retry")
    sample = list(retries.values_list("message", flat=True)[:2])
    events = InboundEvent.objects.filter(integration__in=integrations).aggregate(first=Min("received_at"),
                                                                                  last=Max("processed_at"))
    return f"records {span}, events {events}, {retries.count()} retries {sample}"
