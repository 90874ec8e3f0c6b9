"""BigCommerce → Sage 100 over eBusiness Web Services, end to end with real processes and no agent:
the sandbox store delivers every webhook twice to our uvicorn web process, a Celery worker maps each
paid order and posts it over SOAP 1.1 to the eBusiness emulator over HTTPS with a self-signed
certificate (uploaded on the Sage connection), while the emulator answers some calls 503 and loses
the reply of some creates it applied. Then the poll reads everything again (overlapping the webhooks).

Every postable order must be in Sage 100 exactly once (by its customer PO number and its own
SalesOrderNo), equal to the store's total to the cent, with one AR customer per buyer email however
many of that buyer's orders were posted at once."""

from __future__ import annotations

import os
import time
from collections import Counter
from decimal import Decimal as D
from pathlib import Path

import pytest
import requests
from django.test import override_settings

from accounts.models import SageConnection
from connector.bigcommerce.client import BigCommerceClient
from connector.bigcommerce.hooks import ensure_hooks
from connector.bigcommerce.normalize import DEFAULT_PAID_STATUS_IDS, NEVER_PAID_STATUS_IDS
from connector.bigcommerce.poller import poll_integration
from connector.devstack import PYTHON, Stack, free_port, wait_for
from connector.models import AuditEntry, InboundEvent, SyncRecord
from mappings.models import RecordLink
from tests.support.factories import StoreConnectionFactory, TenantFactory, make_integration

pytestmark = pytest.mark.e2e

ORDERS = int(os.environ.get("SAGE100_SOAP_E2E_ORDERS") or 300)
BC_TOKEN, BC_SECRET, STORE_HASH = "e2e-bc-token", "e2e-bc-client-secret", "s100soap"
SAGE_USER, SAGE_PASSWORD, COMPANY = "WEBUSER", "e2e-sage100-pw", "ABC"
POSTABLE = DEFAULT_PAID_STATUS_IDS - NEVER_PAID_STATUS_IDS
State = SyncRecord.State
CENT = D("0.01")


def money(value) -> D:
    return D(str(value)).quantize(CENT)


def start_sandboxes(stack: Stack, tls_dir: Path) -> dict[str, str]:
    bc_port, soap_port = free_port(), free_port()
    stack.start("bc-sandbox", [PYTHON, "-m", "sandbox.bigcommerce", "--port", str(bc_port), "--store-hash",
                               STORE_HASH, "--token", BC_TOKEN, "--client-secret", BC_SECRET, "--orders", "0",
                               "--webhook-repeat", "2", "--quota", "1000000", "--seed", "23"])
    stack.start("sage100-soap", [PYTHON, "-m", "sandbox.sage100", "serve", "--https", "--port", str(soap_port),
                                 "--cert-dir", str(tls_dir), "--user", f"{SAGE_USER}:{SAGE_PASSWORD}",
                                 "--company", COMPANY, "--error-rate", "0.03", "--lost-reply-rate", "0.05",
                                 "--seed", "5"])
    urls = {"bc": f"http://127.0.0.1:{bc_port}", "soap": f"https://127.0.0.1:{soap_port}"}
    stack.wait_http(f"{urls['bc']}/__sandbox__/faults", "bc-sandbox")
    cert = tls_dir / "cert.pem"

    def soap_up() -> bool:
        if not stack.alive("sage100-soap"):
            raise RuntimeError(stack.log("sage100-soap"))
        try:
            return requests.get(f"{urls['soap']}/__sandbox__/faults", verify=str(cert), timeout=2).ok
        except (requests.RequestException, OSError):
            return False

    wait_for(soap_up, timeout=60, what="the eBusiness emulator over HTTPS")
    urls["cert"] = str(cert)
    return urls


def sage_state(urls: dict, what: str):
    return requests.get(f"{urls['soap']}/__sandbox__/sage100/{what}", verify=urls["cert"], timeout=30).json()


def settled(integration) -> bool:
    if InboundEvent.objects.filter(integration=integration, processed_at__isnull=True).exists():
        return False
    records = SyncRecord.objects.filter(integration=integration)
    return records.exists() and not records.filter(state__in=(State.PENDING, State.DISPATCHED)).exists()


def wait_settled(integration, stack: Stack, timeout: float, what: str) -> None:
    try:
        wait_for(lambda: settled(integration), timeout=timeout, interval=1, what=what)
    except TimeoutError:
        states = Counter(SyncRecord.objects.filter(integration=integration).values_list("state", flat=True))
        stuck = list(SyncRecord.objects.filter(integration=integration, state=State.PENDING)
                     .values_list("external_id", "message")[:3])
        raise AssertionError(f"{what}: records {dict(states)}, pending {stuck}\n{stack.log('worker')[-3000:]}") \
            from None


def test_orders_post_once_over_soap_https_to_the_cent(process_env, tmp_path):
    started = time.monotonic()
    with Stack(env=process_env) as stack:
        urls = start_sandboxes(stack, tmp_path / "sage100-tls")
        web_port = free_port()
        web_url = f"http://127.0.0.1:{web_port}"
        stack.env["PUBLIC_BASE_URL"] = web_url
        stack.web(web_port)
        stack.worker(concurrency=2)
        stack.wait_http(f"{web_url}/admin/login/", "web")

        tenant = TenantFactory()
        store = StoreConnectionFactory(tenant=tenant, api_base_url=urls["bc"], store_hash=STORE_HASH,
                                       access_token=BC_TOKEN, client_secret=BC_SECRET)
        integration = make_integration(
            store, SageConnection.Edition.SAGE100, tenant=tenant, name="Sage 100 over SOAP",
            sage__transport=SageConnection.Transport.EBUSINESS_SOAP,
            sage__server_url=f"{urls['soap']}/eBusinessWebServices/eBusinessWebServices.svc",
            sage__company_code=COMPANY, sage__username=SAGE_USER, sage__password=SAGE_PASSWORD, sage__company_path="",
            sage__verify_tls=True, sage__tls_ca_pem=Path(urls["cert"]).read_text(),
            same_code_fallback=True, sage100_settings={"default_ship_via": "UPS GROUND", "numbering": "W"})
        with override_settings(PUBLIC_BASE_URL=web_url):
            assert ensure_hooks(integration).ok

        bc = urls["bc"]
        for count in (ORDERS // 2, ORDERS - ORDERS // 2):  # two waves: the second lands on a busy worker
            created = requests.post(f"{bc}/__sandbox__/orders/generate", json={"count": count}, timeout=60)
            assert created.status_code in (200, 201), created.text
        wait_settled(integration, stack, 420, "webhook-driven records to settle")
        poll_integration(integration, BigCommerceClient(bc, STORE_HASH, BC_TOKEN))  # the poll overlaps them all
        wait_settled(integration, stack, 300, "polled records (and the refund notes only the poll finds) to settle")

        client = BigCommerceClient(bc, STORE_HASH, BC_TOKEN)
        orders = {o["id"]: o for o in client.iter_v2("/v2/orders")}
        deliveries = requests.get(f"{bc}/__sandbox__/webhooks", timeout=10).json()["deliveries"]
        sales_orders = sage_state(urls, f"companies/{COMPANY}/sales-orders")
        customers = sage_state(urls, f"companies/{COMPANY}/customers")
        operations = sage_state(urls, "operations")
        records = SyncRecord.objects.filter(integration=integration)
        failed = list(records.filter(state=State.FAILED).values_list("external_id", "message")[:5])
        assert not failed, f"{failed}\n{stack.log('worker')[-4000:]}"
        retries = AuditEntry.objects.filter(record__in=records, step="retry").count()
        elapsed = time.monotonic() - started

    assert len(orders) == ORDERS
    assert sum(1 for d in deliveries if d.get("status") == 200) >= 2 * ORDERS  # every event delivered twice
    postable = {i for i, o in orders.items() if o["status_id"] in POSTABLE}
    held = dict(records.filter(state=State.HELD).values_list("external_id", "message"))
    waiting = dict(records.filter(state=State.WAITING_MAPPING).values_list("external_id", "message"))
    # Every paid order is posted: none held for a totals difference, none waiting for a mapping.
    assert not held, list(held.items())[:3]
    assert not waiting, list(waiting.items())[:3]

    # Exactly once: one Sage sales order per posted store order, under its own number.
    by_po = Counter(o["CustomerPONo"] for o in sales_orders)
    assert max(by_po.values()) == 1, [po for po, n in by_po.items() if n > 1]
    expected = {str(i) for i in postable if str(i) not in held}
    assert expected
    assert set(by_po) == expected, (sorted(set(by_po) - expected)[:5], sorted(expected - set(by_po))[:5])
    posted = {r.external_id: r for r in records.filter(state=State.POSTED)}
    assert set(posted) == expected
    links = RecordLink.objects.filter(integration=integration, kind=RecordLink.Kind.SALES_ORDER)
    assert links.count() == len(sales_orders)
    assert {o["SalesOrderNo"] for o in sales_orders} == set(links.values_list("sage_id", flat=True))

    # To the cent: Sage's own total (its line extensions + freight − discount + tax) is the store's.
    for order in sales_orders:
        lines = sum((money(line["ExtensionAmt"]) for line in order["Lines"]["SalesOrderLine"]
                     if line["ItemCode"] != "/C"), D("0.00"))
        sage_total = lines + money(order["FreightAmt"]) - money(order["DiscountAmt"]) + money(order["SalesTaxAmt"])
        store_total = money(orders[int(order["CustomerPONo"])]["total_inc_tax"])
        assert sage_total == store_total, (order["SalesOrderNo"], sage_total, store_total)

    # One AR customer per buyer email, however many of their orders were posted at once.
    emails = Counter((c.get("EmailAddress") or "").lower() for c in customers)
    assert max(emails.values()) == 1, [e for e, n in emails.items() if n > 1]
    buyers = {(orders[int(o["CustomerPONo"])]["billing_address"]["email"] or "").lower() for o in sales_orders}
    assert set(emails) == buyers
    repeat_buyers = sum(1 for n in Counter(o["CustomerNo"] for o in sales_orders).values() if n > 1)
    assert repeat_buyers > 0  # the run did exercise several orders from one email

    print(f"\nSage 100 SOAP e2e: {ORDERS} orders, {len(sales_orders)} sales orders, {len(customers)} customers "
          f"({repeat_buyers} with several orders), {retries} retries after 503s and lost replies, "
          f"{len(deliveries)} webhook deliveries, SOAP calls {dict(operations)}, {elapsed:.0f} s")
