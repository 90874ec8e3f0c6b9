"""factory_boy factories for the project's models (cross-app tests import these)."""

import factory
from django.contrib.auth import get_user_model

from accounts.models import Agent, Integration, Membership, SageConnection, StoreConnection, Tenant
from mappings.models import AccountMapping, ItemMapping, PaymentMethodMapping, TaxMapping


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
