"""Admin actions for Adobe Commerce stores and integrations (attached in accounts/admin.py)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError

from accounts import roles
from accounts.models import Integration, StoreConnection
from accounts.roles import Capability
from connector.security import check_outbound_url

from . import connection

ADOBE = StoreConnection.Platform.ADOBE_COMMERCE


def _stores(queryset):
    if queryset.model is StoreConnection:
        return [s for s in queryset if s.platform == ADOBE]
    return list({i.store_id: i.store for i in queryset.select_related("store") if i.store.platform == ADOBE}.values())


@roles.admin_action(Capability.TEST_CONNECTION, description="Test the Adobe Commerce connection")
def test_adobe_connection(modeladmin, request, queryset):
    for store in _stores(queryset):
        try:
            # The stored URLs were checked when saved; checked again here in case they were saved
            # before the check existed: the test sends the store's credentials to them.
            for url in (store.base_url, store.ims_token_url):
                if url:
                    check_outbound_url(url)
        except ValidationError as error:
            modeladmin.message_user(request, f"{store}: not tested: {' '.join(error.messages)} Fix the URL (and "
                                             f"enter the secrets again) first.", messages.ERROR)
            continue
        try:
            report = connection.check_connection(store)
        except Exception as error:  # the admin says what failed, never a 500
            modeladmin.message_user(request, f"{store}: could not test the connection: {error}", messages.ERROR)
            continue
        modeladmin.message_user(request, f"{store}: {report.message}", messages.SUCCESS if report.ok else messages.ERROR)


test_adobe_connection.__test__ = False  # a Django admin action, not a pytest test


@roles.admin_action(Capability.POLL, description="Poll the Adobe Commerce store now")
def poll_adobe_now(modeladmin, request, queryset):
    from .tasks import poll_integration

    integrations = Integration.objects.filter(pk__in=queryset.values("pk"), is_active=True, store__platform=ADOBE) \
        if queryset.model is Integration else Integration.objects.filter(store__in=queryset, is_active=True)
    for integration in integrations:
        poll_integration.delay(integration.pk)
    modeladmin.message_user(request, f"Polling {len(integrations)} Adobe integration(s).")
