"""The demo's data: a sandbox BigCommerce store and a simulated Sage 50 company with its agent.

``seed_demo`` (also behind ``manage.py seed_demo``) creates or refreshes everything the database
needs for the store's orders to post without questions; it is idempotent, so `make run` can be
started any number of times on the same database. ``demo.system`` starts the processes.
The credentials here are the sandbox's own: they open nothing but the local emulator.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import requests
from django.conf import settings
from django.db import transaction

from accounts.models import Agent, Integration, SageConnection, StoreConnection, Tenant
from mappings.models import AccountMapping, ItemMapping, PaymentMethodMapping, TaxMapping, WebSalesAccount

TENANT_NAME, TENANT_SLUG = "Demo Shop", "demo-shop"
STORE_NAME, SAGE_NAME, INTEGRATION_NAME, AGENT_NAME = ("Demo BigCommerce store", "Demo Sage 50 company",
                                                        "Demo Shop → Sage 50", "Demo agent (simulator)")
STORE_HASH, STORE_TOKEN = "demoshop", "demo-sandbox-token"
CLIENT_ID, CLIENT_SECRET = "demo-sandbox-client", "demo-sandbox-client-secret"
SANDBOX_SEED = 1
DEMO_ORDERS = 300
WEBHOOK_REPEAT = 2  # every webhook delivered twice: dedup is part of what the demo shows
BACKFILL_DAYS = 90  # the sandbox's seeded history spans the last 60 days

Purpose = AccountMapping.Purpose
# Sage 50 UK standard chart of accounts.
NOMINAL_CODES = {
    Purpose.SHIPPING: "4905", Purpose.HANDLING: "4905", Purpose.WRAPPING: "4910",
    Purpose.DISCOUNT: "4009", Purpose.GIFT_CERTIFICATE: "2110", Purpose.ROUNDING: "4990",
}
# The sandbox's tax classes by name and by id (its /taxes rows and *_cost_tax_class_id fields).
TAX_CLASSES = {"Default Tax Class": "T1", "Shipping": "T1", "Gift Wrapping": "T1", "0": "T1", "2": "T1", "3": "T1"}
WEB_SALES_ACCOUNTS = {"USD": "WEBUSD", "GBP": "WEBGBP", "EUR": "WEBEUR", "CAD": "WEBCAD"}
DEFAULT_BANK = "1200"


@dataclass(frozen=True)
class DemoNames:
    """Who the demo merchant is. The demo has one; the Black Friday bench seeds fifty, one per store."""

    tenant_name: str = TENANT_NAME
    tenant_slug: str = TENANT_SLUG
    store_hash: str = STORE_HASH
    store_name: str = STORE_NAME
    sage_name: str = SAGE_NAME
    integration_name: str = INTEGRATION_NAME
    agent_name: str = AGENT_NAME

    @classmethod
    def for_store(cls, store_hash: str) -> DemoNames:
        """A merchant of its own for one store of a sandbox fleet (sandbox.bigcommerce.fleet)."""
        return cls(tenant_name=f"{TENANT_NAME} {store_hash}", tenant_slug=f"{TENANT_SLUG}-{store_hash}",
                   store_hash=store_hash, store_name=f"{STORE_NAME} {store_hash}", sage_name=f"{SAGE_NAME} {store_hash}",
                   integration_name=f"{INTEGRATION_NAME} ({store_hash})", agent_name=f"{AGENT_NAME} {store_hash}")


DEMO_NAMES = DemoNames()


@dataclass
class DemoSeed:
    integration: Integration
    agent: Agent
    agent_key: str
    company_path: Path


def data_dir() -> Path:
    return Path(settings.DATA_DIR)


def default_company_path() -> Path:
    return data_dir() / "demo-sage50-company.sqlite3"


def sandbox_skus(seed: int = SANDBOX_SEED) -> list[str]:
    """Every SKU of the sandbox catalog for ``seed`` (the catalog is deterministic per seed)."""
    from sandbox.bigcommerce.store import BigCommerceStore

    store = BigCommerceStore(seed=seed, orders=0, n_customers=0)
    return sorted({v.sku for v in store.catalog.variants.values()})


def sandbox_argv(port: int, *, orders: int = DEMO_ORDERS, seed: int = SANDBOX_SEED,
                 webhook_repeat: int = WEBHOOK_REPEAT, extra: list[str] | None = None,
                 store_hash: str = STORE_HASH) -> list[str]:
    """``store_hash`` with ``extra=["--stores", "N"]``: the fleet's hash prefix (sandbox.bigcommerce.fleet)."""
    from connector.devstack import PYTHON

    return [PYTHON, "-m", "sandbox.bigcommerce", "--port", str(port), "--store-hash", store_hash,
            "--token", STORE_TOKEN, "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET,
            "--orders", str(orders), "--seed", str(seed), "--webhook-repeat", str(webhook_repeat),
            # The demo and the e2e tests measure the connector, not BigCommerce's quota.
            "--quota", "100000", *(extra or [])]


def agent_argv(server: str, company: Path, journal: Path, *, extra: list[str] | None = None,
               backend: str = "simulator") -> list[str]:
    from connector.devstack import PYTHON

    # The key travels in ML_AGENT_KEY, never on the command line (visible in `ps`).
    return [PYTHON, "-m", "agent", "run", "--server", server, "--backend", backend,
            "--company", str(company), "--journal", str(journal), *(extra or [])]


def init_company(path: Path, skus: list[str], *, qty: str = "50") -> None:
    """Create the simulated Sage company (once) with a stock item per SKU and the web-sales accounts."""
    from decimal import Decimal

    from agent.simulator.company import SimCompany

    path.parent.mkdir(parents=True, exist_ok=True)
    company = SimCompany.create(path) if not path.exists() else SimCompany(path)
    try:
        company.seed_stock(skus, qty=Decimal(qty), price=Decimal("10.00"))
        known = {c["account_ref"] for c in company.customers()}
        for currency, ref in WEB_SALES_ACCOUNTS.items():
            if ref not in known:
                company.add_customer(ref, f"Web sales {currency}", currency=currency)
    finally:
        company.close()


@transaction.atomic
def seed_demo(*, store_url: str, company_path: Path | None = None, skus: list[str] | None = None,
              same_code_fallback: bool = False, poll_interval_seconds: int = 60,
              map_items: bool = True, names: DemoNames = DEMO_NAMES) -> DemoSeed:
    """Create or refresh the demo tenant, connections, integration, mappings and agent.

    Returns the agent's fresh key (only its hash is stored; an earlier key stops working).
    Mappings are written with bulk_create, which sends no post_save: saving a mapping one by
    one would queue a "resume waiting records" task per row."""
    company_path = Path(company_path or default_company_path())
    tenant, _ = Tenant.objects.get_or_create(slug=names.tenant_slug, defaults={"name": names.tenant_name})
    store = StoreConnection.objects.filter(tenant=tenant, name=names.store_name).first() or StoreConnection(
        tenant=tenant, name=names.store_name)
    store.platform = StoreConnection.Platform.BIGCOMMERCE
    store.api_base_url = store_url.rstrip("/")
    store.store_hash, store.client_id = names.store_hash, CLIENT_ID
    store.access_token, store.client_secret = STORE_TOKEN, CLIENT_SECRET
    store.save()
    sage, _ = SageConnection.objects.update_or_create(
        tenant=tenant, name=names.sage_name,
        defaults={"edition": SageConnection.Edition.SAGE50_UK, "transport": SageConnection.Transport.AGENT,
                  "company_path": str(company_path)})
    integration = Integration.objects.filter(tenant=tenant, name=names.integration_name).first() or Integration(
        tenant=tenant, name=names.integration_name)
    integration.store, integration.sage = store, sage
    integration.is_active = True
    integration.post_invoices = integration.post_receipts = integration.post_refunds = True
    integration.push_stock = True
    integration.same_code_fallback = same_code_fallback
    integration.default_tax_code = "T1"
    integration.poll_interval_seconds = poll_interval_seconds
    integration.save()

    _seed_mappings(integration, {sku: sku for sku in (skus or sandbox_skus())} if map_items else {})
    agent, key = _fresh_agent(tenant, integration, names.agent_name)
    return DemoSeed(integration, agent, key, company_path)


def _seed_mappings(integration, items: dict[str, str]) -> None:
    """Item mappings (store SKU → Sage code), tax codes, default nominal codes, one bank account for
    every payment method and a web-sales customer per currency."""
    ItemMapping.objects.bulk_create(
        [ItemMapping(integration=integration, store_sku=sku, sage_code=code) for sku, code in items.items()],
        ignore_conflicts=True)
    TaxMapping.objects.bulk_create(
        [TaxMapping(integration=integration, store_tax_class=name, sage_tax_code=code)
         for name, code in TAX_CLASSES.items()], ignore_conflicts=True)
    AccountMapping.objects.bulk_create(
        [AccountMapping(integration=integration, channel_id=0, purpose=purpose, account_code=code)
         for purpose, code in NOMINAL_CODES.items()], ignore_conflicts=True)
    PaymentMethodMapping.objects.bulk_create(
        [PaymentMethodMapping(integration=integration, store_method="*", bank_account=DEFAULT_BANK)],
        ignore_conflicts=True)
    WebSalesAccount.objects.bulk_create(
        [WebSalesAccount(integration=integration, currency=cur, account_ref=ref)
         for cur, ref in WEB_SALES_ACCOUNTS.items()], ignore_conflicts=True)


def _fresh_agent(tenant, integration, name: str) -> tuple[Agent, str]:
    agent = Agent.objects.filter(integration=integration, name=name).first() or Agent(
        tenant=tenant, integration=integration, name=name)
    agent.revoked_at = None
    key = agent.issue_key()
    agent.save()
    return agent, key


SAGE100_SETTINGS = {"default_ship_via": "UPS GROUND", "default_warehouse": "000", "numbering": "W"}


def seed_sage100(seed: DemoSeed, company_path: Path, skus: list[str], *, qty: str = "100000") -> DemoSeed:
    """Turn the demo integration into BigCommerce → Sage 100 (agent transport) and create the
    simulated Sage 100 company: an item per SKU with a quantity in warehouse 000."""
    from agent.simulator.sage100 import Sage100Company

    SageConnection.objects.filter(pk=seed.integration.sage_id).update(
        edition=SageConnection.Edition.SAGE100, company_code="ABC", name="Sage 100 (simulated)")
    integration = Integration.objects.select_related("store", "sage").get(pk=seed.integration.pk)
    integration.sage100_settings = dict(SAGE100_SETTINGS)
    integration.post_sales_orders = True
    integration.save(update_fields=["sage100_settings", "post_sales_orders"])
    company = Sage100Company.create(company_path) if not company_path.exists() else Sage100Company(company_path)
    try:
        known = {item["ItemCode"] for item in company.query("SELECT ItemCode FROM ci_item")}
        for sku in skus:
            if sku not in known:
                company.set_item(sku, price="10.00", warehouses={"000": qty})
    finally:
        company.close()
    return DemoSeed(integration, seed.agent, seed.agent_key, company_path)


SOAP_USER, SOAP_PASSWORD, SOAP_COMPANY = "WEBUSER", "demo-sandbox-sage100-password", "ABC"


def sage100_soap_argv(port: int, cert_dir: Path, *, seed: int = SANDBOX_SEED, extra: list[str] | None = None) -> list[str]:
    """The Sage 100 eBusiness Web Services emulator over HTTPS with a self-signed certificate
    (written to ``cert_dir``/cert.pem), one company and one web-services user."""
    from connector.devstack import PYTHON

    return [PYTHON, "-m", "sandbox.sage100", "serve", "--https", "--port", str(port), "--cert-dir", str(cert_dir),
            "--user", f"{SOAP_USER}:{SOAP_PASSWORD}", "--company", SOAP_COMPANY, "--seed", str(seed), *(extra or [])]


def seed_sage100_soap(seed: DemoSeed, service_url: str, cert_pem: str) -> DemoSeed:
    """Turn the demo integration into BigCommerce → Sage 100 over eBusiness Web Services: no agent
    posts; a worker calls the emulator at ``service_url``, trusting only its certificate."""
    SageConnection.objects.filter(pk=seed.integration.sage_id).update(
        edition=SageConnection.Edition.SAGE100, transport=SageConnection.Transport.EBUSINESS_SOAP,
        name="Sage 100 (eBusiness Web Services emulator)", server_url=service_url, company_code=SOAP_COMPANY,
        company_path="", verify_tls=True, tls_ca_pem=cert_pem)
    connection = SageConnection.objects.get(pk=seed.integration.sage_id)
    connection.username, connection.password = SOAP_USER, SOAP_PASSWORD  # encrypted fields: through save()
    connection.save(update_fields=["username", "password"])
    integration = Integration.objects.select_related("store", "sage").get(pk=seed.integration.pk)
    integration.sage100_settings = dict(SAGE100_SETTINGS)
    integration.post_sales_orders = True
    integration.save(update_fields=["sage100_settings", "post_sales_orders"])
    return DemoSeed(integration, seed.agent, seed.agent_key, seed.company_path)


def register_hooks(integration, public_base_url: str) -> str:
    """Point the sandbox store's webhooks at our web process (the BigCommerce package's service)."""
    from connector.bigcommerce.hooks import ensure_hooks

    # The web process's own address, passed in: this process's PUBLIC_BASE_URL is not the web's
    # (make run and the tests choose the web's port when they start it).
    return ensure_hooks(integration, public_base_url=public_base_url).summary()


def ensure_poll_schedule() -> None:
    from connector.bigcommerce.schedules import ensure_schedules

    ensure_schedules()


def kick_first_sync(integration, *, days: int = BACKFILL_DAYS) -> None:
    """The seeded orders predate the integration, so the watermark poll would never read them:
    a backfill over the sandbox's history brings them in, and a poll starts the watermark."""
    from connector.bigcommerce.poller import start_backfill
    from connector.bigcommerce.tasks import backfill, poll_integration

    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    run = start_backfill(integration, since)
    backfill.delay(integration.pk, since.isoformat(), None, run.pk)
    poll_integration.delay(integration.pk)


def place_order(store_url: str, shape: dict | None = None, timeout: float = 10) -> dict:
    """POST /__sandbox__/orders on the running sandbox: a new paid order, with its webhooks."""
    response = requests.post(f"{store_url.rstrip('/')}/__sandbox__/orders", json=shape or {}, timeout=timeout)
    response.raise_for_status()
    return response.json()


def demo_store_url() -> str | None:
    store = StoreConnection.objects.filter(tenant__slug=TENANT_SLUG, name=STORE_NAME).first()
    return store.api_base_url if store else None


# -- the Adobe Commerce demo store (make run ADOBE=1): its own integration → its own simulated Sage 50 --
ADOBE_STORE_NAME, ADOBE_SAGE_NAME = "Demo Adobe Commerce store", "Demo Sage 50 company (Adobe)"
ADOBE_INTEGRATION_NAME, ADOBE_AGENT_NAME = "Demo Adobe store → Sage 50", "Demo Adobe agent (simulator)"
ADOBE_DEMO_ORDERS = 200
# The sandbox integration's four OAuth 1.0a values (Magento's are 32 characters); they open nothing
# but the local emulator.
ADOBE_KEYS = {"consumer_key": "demoadobeconsumerkey000000000001", "consumer_secret": "demoadobeconsumersecret000000001",
              "access_token": "demoadobeaccesstoken000000000001", "access_token_secret": "demoadobetokensecret000000000001"}


def default_adobe_company_path() -> Path:
    return data_dir() / "demo-adobe-sage50-company.sqlite3"


def adobe_sandbox_argv(port: int, *, orders: int = ADOBE_DEMO_ORDERS, seed: int = SANDBOX_SEED,
                       webhook_repeat: int = WEBHOOK_REPEAT, extra: list[str] | None = None) -> list[str]:
    from connector.devstack import PYTHON

    keys = [arg for name, value in ADOBE_KEYS.items() for arg in (f"--{name.replace('_', '-')}", value)]
    return [PYTHON, "-m", "sandbox.adobe", "--port", str(port), "--orders", str(orders), "--seed", str(seed),
            "--webhook-repeat", str(webhook_repeat), *keys, *(extra or [])]


def adobe_sandbox_skus(store_url: str) -> list[str]:
    """Every SKU the running sandbox Adobe store sells (its catalog, its stock: MSI and legacy)."""
    stock = requests.get(f"{store_url.rstrip('/')}/__sandbox__/stock", timeout=10).json()
    return sorted(set(stock.get("skus") or ()) | set(stock["stock_items"]) | {i["sku"] for i in stock["source_items"]})


@transaction.atomic
def seed_adobe_demo(*, store_url: str, webhook_public_key: str, company_path: Path | None = None,
                    skus: list[str], poll_interval_seconds: int = 60) -> DemoSeed:
    """The demo tenant's Adobe Commerce store (OAuth 1.0a integration of the sandbox), its own
    simulated Sage 50 company, integration, mappings and agent; idempotent like ``seed_demo``.
    Adobe SKUs keep their case ("MH01-L-Orange"); Sage stock codes are upper case, so each SKU is
    mapped to its upper-case code."""
    company_path = Path(company_path or default_adobe_company_path())
    tenant, _ = Tenant.objects.get_or_create(slug=TENANT_SLUG, defaults={"name": TENANT_NAME})
    store = StoreConnection.objects.filter(tenant=tenant, name=ADOBE_STORE_NAME).first() or StoreConnection(
        tenant=tenant, name=ADOBE_STORE_NAME)
    store.platform = StoreConnection.Platform.ADOBE_COMMERCE
    store.base_url, store.store_code = store_url.rstrip("/"), "default"
    store.adobe_auth = StoreConnection.AdobeAuth.OAUTH1
    for name, value in ADOBE_KEYS.items():
        setattr(store, name, value)
    store.adobe_webhook_public_key = webhook_public_key
    store.save()
    sage, _ = SageConnection.objects.update_or_create(
        tenant=tenant, name=ADOBE_SAGE_NAME,
        defaults={"edition": SageConnection.Edition.SAGE50_UK, "transport": SageConnection.Transport.AGENT,
                  "company_path": str(company_path)})
    integration = Integration.objects.filter(tenant=tenant, name=ADOBE_INTEGRATION_NAME).first() or Integration(
        tenant=tenant, name=ADOBE_INTEGRATION_NAME)
    integration.store, integration.sage = store, sage
    integration.is_active = True
    integration.post_invoices = integration.post_receipts = integration.post_refunds = True
    integration.push_stock = True
    integration.default_tax_code = "T1"
    integration.poll_interval_seconds = poll_interval_seconds
    # A credit memo's items are rounded one by one in Magento: a cent against the pro-rata credit
    # is the rounding line's (as in the Adobe end-to-end test).
    integration.rounding_tolerance = Decimal("0.01")
    integration.save()
    _seed_mappings(integration, {sku: sku.upper() for sku in skus})
    agent, key = _fresh_agent(tenant, integration, ADOBE_AGENT_NAME)
    return DemoSeed(integration, agent, key, company_path)


def subscribe_adobe_webhooks(store_url: str, integration, public_base_url: str) -> str:
    """Point the sandbox Adobe store's webhooks at our web process: Commerce Webhooks (RSA-signed
    with the key pasted on the connection) and Adobe I/O Events (signed with keys the sandbox serves
    at Adobe's key path shape: the web process's ADOBE_IO_KEY_HOST must be the sandbox)."""
    hook = f"{public_base_url.rstrip('/')}{integration.webhook_path}"
    existing = requests.get(f"{store_url}/__sandbox__/webhooks", timeout=10).json().get("subscriptions", [])
    made = []
    for kind in ("commerce", "io_events"):
        if any(s.get("kind") == kind and s.get("url") == hook for s in existing):
            continue
        answer = requests.post(f"{store_url}/__sandbox__/webhooks", json={"kind": kind, "url": hook}, timeout=30)
        answer.raise_for_status()
        made.append(f"{kind} ({answer.json().get('status', 'active')})")
    return ", ".join(made) or "already subscribed"


def kick_first_adobe_sync(integration, *, days: int = BACKFILL_DAYS) -> None:
    """As ``kick_first_sync``: a backfill over the seeded history, then the first poll."""
    from connector.adobe.tasks import backfill, poll_integration
    from connector.models import SyncRun

    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    run = SyncRun.objects.create(integration=integration, kind=SyncRun.Kind.BACKFILL,
                                 params={"since": since.isoformat(), "until": None})
    backfill.delay(integration.pk, since.isoformat(), None, run.pk)
    poll_integration.delay(integration.pk)


def place_adobe_order(store_url: str, shape: dict | None = None, timeout: float = 30) -> dict:
    """A new order in the running sandbox Adobe store, invoiced in full (paid): Magento's
    "processing" state, its webhooks sent as on a live store."""
    base = store_url.rstrip("/")
    placed = requests.post(f"{base}/__sandbox__/orders", json=shape or {}, timeout=timeout)
    placed.raise_for_status()
    order = placed.json()
    requests.post(f"{base}/__sandbox__/orders/{order['entity_id']}/invoice", json={}, timeout=timeout) \
        .raise_for_status()
    return {**order, "state": "processing"}


def demo_adobe_store_url() -> str | None:
    store = StoreConnection.objects.filter(tenant__slug=TENANT_SLUG, name=ADOBE_STORE_NAME).first()
    return store.base_url if store else None
