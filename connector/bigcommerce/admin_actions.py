"""Admin actions the lead attaches to the Integration and StoreConnection admins:
``actions = [register_hooks, test_connection]``."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError

from accounts import roles
from accounts.models import Integration, StoreConnection
from accounts.roles import Capability
from connector.security import check_outbound_url

from . import connection, hooks


def _integrations(queryset):
    if queryset.model is StoreConnection:
        return Integration.objects.filter(store__in=queryset).select_related("store")
    return queryset.select_related("store")


def _stores(queryset):
    if queryset.model is StoreConnection:
        return list(queryset)
    return list({i.store_id: i.store for i in queryset.select_related("store")}.values())


@roles.admin_action(Capability.MANAGE_WEBHOOKS, description="Register / repair BigCommerce webhooks")
def register_hooks(modeladmin, request, queryset):
    for integration in _integrations(queryset):
        if integration.store.platform != StoreConnection.Platform.BIGCOMMERCE:
            continue
        try:
            check_outbound_url(integration.store.api_base_url)
        except ValidationError as error:
            modeladmin.message_user(request, f"{integration}: webhooks not registered: {' '.join(error.messages)}",
                                    messages.ERROR)
            continue
        try:
            report = hooks.ensure_hooks(integration)
        except Exception as error:  # the admin should say what failed, never show a 500
            modeladmin.message_user(request, f"{integration}: could not manage webhooks: {error}", messages.ERROR)
            continue
        level = messages.SUCCESS if report.ok and not report.reactivated else messages.WARNING
        modeladmin.message_user(request, f"{integration}: {report.summary()}", level)


@roles.admin_action(Capability.TEST_CONNECTION, description="Test the BigCommerce connection")
def test_connection(modeladmin, request, queryset):
    for store in _stores(queryset):
        if store.platform != StoreConnection.Platform.BIGCOMMERCE:
            continue
        try:
            check_outbound_url(store.api_base_url)
        except ValidationError as error:
            modeladmin.message_user(request, f"{store}: not tested: {' '.join(error.messages)} Fix the API base URL "
                                             f"(and enter the token again) first.", messages.ERROR)
            continue
        report = connection.test_connection(store)
        level = messages.SUCCESS if report.ok else messages.ERROR if not report.token_valid else messages.WARNING
        modeladmin.message_user(request, f"{store}: " + " ".join(text for _, text in report.lines), level)


test_connection.__test__ = False  # a Django admin action, not a pytest test


@roles.admin_action(Capability.POLL, description="Poll the store now")
def poll_now(modeladmin, request, queryset):
    from .tasks import poll_integration

    count = 0
    for integration in _integrations(queryset).filter(is_active=True):
        poll_integration.delay(integration.pk)
        count += 1
    modeladmin.message_user(request, f"Polling {count} integration(s); new orders appear under Sync records.")


# "Backfill orders from a date range…" is store-neutral: connector/flows/backfill_admin.py.
