"""Two tenants and the five kinds of admin user the security tests act as (issue 16):
an owner, an accountant and a viewer of Alpha, and two users in both tenants with different roles."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model

from accounts.models import Agent, Integration, Membership, SageConnection, StoreConnection, Tenant
from connector.models import SyncRecord
from tests.support.factories import AgentFactory, IntegrationFactory, ItemMappingFactory, TenantFactory

# Secret values that must never appear on any page (each unique, so a hit says which leaked).
STORE_TOKEN = "store-access-token-SECRETVALUE-1"
STORE_CLIENT_SECRET = "store-client-secret-SECRETVALUE-2"
SAGE_PASSWORD = "sage-password-SECRETVALUE-3"
SAGE_REFRESH = "sage-refresh-token-SECRETVALUE-4"
SAGE_ACCESS = "sage-access-token-SECRETVALUE-5"
SAGE_OAUTH_SECRET = "sage-oauth-secret-SECRETVALUE-6"
HOOK_SECRET = "webhook-secret-SECRETVALUE-7"
ALL_SECRETS = (STORE_TOKEN, STORE_CLIENT_SECRET, SAGE_PASSWORD, SAGE_REFRESH, SAGE_ACCESS, SAGE_OAUTH_SECRET,
               HOOK_SECRET)


@dataclass
class World:
    alpha: Tenant
    beta: Tenant
    integration_a: Integration
    integration_b: Integration
    store_a: StoreConnection
    sage_a: SageConnection
    agent_a: Agent
    agent_b: Agent
    record_a: SyncRecord
    record_b: SyncRecord
    owner: object
    accountant: object
    viewer: object
    accountant_a_viewer_b: object
    owner_a_viewer_b: object
    outsider: object  # a user of Beta only (a target for "make anyone owner")


def build_world() -> World:
    alpha = TenantFactory(name="Alpha Ltd", slug="alpha")
    beta = TenantFactory(name="Beta Ltd", slug="beta")
    ia = IntegrationFactory(tenant=alpha, name="Alpha shop", store__name="Alpha store", sage__name="Alpha books",
                            store__access_token=STORE_TOKEN, store__client_secret=STORE_CLIENT_SECRET,
                            store__api_base_url="https://api.bigcommerce.com")
    ib = IntegrationFactory(tenant=beta, name="Beta shop", store__name="Beta store", sage__name="Beta books")
    ia.webhook_secret = HOOK_SECRET
    ia.save()
    sage = ia.sage
    sage.edition = SageConnection.Edition.SAGEX3
    sage.transport = SageConnection.Transport.X3_REST
    sage.server_url = "https://x3.example.com"
    sage.password, sage.refresh_token, sage.access_token = SAGE_PASSWORD, SAGE_REFRESH, SAGE_ACCESS
    sage.oauth_client_secret = SAGE_OAUTH_SECRET
    sage.save()
    ItemMappingFactory(integration=ia, store_sku="ALPHA-SKU", sage_code="ALPHA1")
    ItemMappingFactory(integration=ib, store_sku="BETA-SKU", sage_code="BETA1")
    record_a = SyncRecord.objects.create(integration=ia, kind="order", external_id="1001", action="post_invoice",
                                         state="failed", message="failed once")
    record_b = SyncRecord.objects.create(integration=ib, kind="order", external_id="2002", action="post_invoice",
                                         state="failed", message="failed once")
    owner = member("owner", alpha, "owner")
    accountant = member("accountant", alpha, "accountant")
    viewer = member("viewer", alpha, "viewer")
    mixed1 = member("acct_a_viewer_b", alpha, "accountant", beta, "viewer")
    mixed2 = member("owner_a_viewer_b", alpha, "owner", beta, "viewer")
    outsider = member("beta_viewer", beta, "viewer")
    return World(alpha=alpha, beta=beta, integration_a=ia, integration_b=ib, store_a=ia.store, sage_a=sage,
                 agent_a=AgentFactory(integration=ia, name="Alpha agent"),
                 agent_b=AgentFactory(integration=ib, name="Beta agent"),
                 record_a=record_a, record_b=record_b, owner=owner, accountant=accountant, viewer=viewer,
                 accountant_a_viewer_b=mixed1, owner_a_viewer_b=mixed2, outsider=outsider)


def member(username: str, *tenants_and_roles):
    """A staff user with these memberships. No password: the tests log in with force_login, and
    hashing one costs half a second (the login tests make their own)."""
    user = get_user_model().objects.create(username=username, is_staff=True)
    pairs = zip(tenants_and_roles[::2], tenants_and_roles[1::2], strict=True)
    Membership.objects.bulk_create([Membership(tenant=t, user=user, role=r) for t, r in pairs])
    return user


def action(client, changelist: str, name: str, *pks, **extra):
    """Run an admin action the way the change list's form does."""
    data = {"action": name, "_selected_action": [str(pk) for pk in pks], "index": "0", **extra}
    return client.post(changelist, data, follow=True)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []
