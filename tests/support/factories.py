"""Model factories for every test folder: factory_boy classes, and ``make_integration``, the one way
to get an integration (a tenant, a store connection, a Sage connection and the integration)."""

import factory
from django.contrib.auth import get_user_model

from accounts.models import Agent, Integration, Membership, SageConnection, StoreConnection, Tenant
from mappings.models import AccountMapping, ItemMapping, PaymentMethodMapping, TaxMapping
from tests.support.bigcommerce import SANDBOX_SECRET, SANDBOX_TOKEN, STORE_HASH


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    is_staff = True
    @factory.post_generation
    def password(obj, create, extracted, **kwargs):
        obj.set_password(extracted or "pw-for-tests-only")
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.ACCOUNTANT


class StoreConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = StoreConnection

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Store {n}")
    store_hash = factory.Sequence(lambda n: f"store{n:04d}")
    client_id = "client-id"
    access_token = factory.Sequence(lambda n: f"token-value-{n}")
    client_secret = factory.Sequence(lambda n: f"client-secret-value-{n}")


class SageConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SageConnection

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Sage company {n}")
    edition = SageConnection.Edition.SAGE50_UK
    transport = SageConnection.Transport.AGENT
    company_path = "C:\\ProgramData\\Sage\\Accounts\\2024\\Company.000"


class IntegrationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Integration

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Integration {n}")
    store = factory.SubFactory(StoreConnectionFactory, tenant=factory.SelfAttribute("..tenant"))
    sage = factory.SubFactory(SageConnectionFactory, tenant=factory.SelfAttribute("..tenant"))


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent
        skip_postgeneration_save = True

    integration = factory.SubFactory(IntegrationFactory)
    tenant = factory.SelfAttribute("integration.tenant")
    name = factory.Sequence(lambda n: f"Agent {n}")

    @factory.post_generation
    def key(obj, create, extracted, **kwargs):
        obj.plain_key = obj.issue_key()
        if create:
            obj.save()


class ItemMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ItemMapping

    integration = factory.SubFactory(IntegrationFactory)
    store_sku = factory.Sequence(lambda n: f"SKU-{n:04d}")
    sage_code = factory.Sequence(lambda n: f"STK{n:04d}")


class TaxMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TaxMapping

    integration = factory.SubFactory(IntegrationFactory)
    store_tax_class = "Default Tax Class"
    sage_tax_code = "T1"


class AccountMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = AccountMapping

    integration = factory.SubFactory(IntegrationFactory)
    purpose = AccountMapping.Purpose.REVENUE
    account_code = "4000"


class PaymentMethodMappingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PaymentMethodMapping

    integration = factory.SubFactory(IntegrationFactory)
    store_method = "*"
    bank_account = "1200"


# -- plain functions over the factories ---------------------------------------------------------------

# A store connection to tests.support.bigcommerce.Sandbox (point api_base_url at the running one).
SANDBOX_STORE = {"name": "Sandbox store", "platform": StoreConnection.Platform.BIGCOMMERCE, "store_hash": STORE_HASH,
                 "api_base_url": "http://127.0.0.1:9", "access_token": SANDBOX_TOKEN,
                 "client_id": "sandbox-client", "client_secret": SANDBOX_SECRET}


def make_tenant(**fields) -> Tenant:
    return TenantFactory(**fields)


def make_store(tenant: Tenant | None = None, **fields) -> StoreConnection:
    """A BigCommerce store connection with the sandbox store's credentials."""
    return StoreConnectionFactory(tenant=tenant or TenantFactory(), **{**SANDBOX_STORE, **fields})


def make_sage(tenant: Tenant, edition: str = SageConnection.Edition.SAGE50_UK, **fields) -> SageConnection:
    return SageConnectionFactory(tenant=tenant, **{"name": f"Sage {edition}", "edition": edition, **fields})


def make_integration(store: StoreConnection | None = None, edition: str = SageConnection.Edition.SAGE50_UK,
                     **fields) -> Integration:
    """An integration of ``store`` (default: a new sandbox store of a new tenant) with a new Sage
    connection of ``edition``. ``store__<field>`` and ``sage__<field>`` set fields of the two
    connections; anything else is a field of the integration."""
    store_fields = {k.removeprefix("store__"): fields.pop(k) for k in list(fields) if k.startswith("store__")}
    sage_fields = {k.removeprefix("sage__"): fields.pop(k) for k in list(fields) if k.startswith("sage__")}
    if store is None:
        store = make_store(fields.pop("tenant", None), **store_fields)
    elif store_fields:
        raise TypeError("store__ fields are for the store make_integration creates; save them on `store`")
    tenant = fields.pop("tenant", store.tenant)
    return IntegrationFactory(tenant=tenant, store=store, sage=make_sage(tenant, edition, **sage_fields), **fields)
