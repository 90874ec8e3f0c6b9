"""Admin actions the lead attaches to the Integration and StoreConnection admins:
``actions = [register_hooks, test_connection]``."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

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


class BackfillForm(forms.Form):
    since = forms.DateField(help_text="First order date to read (orders created on or after this day).",
                            widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, help_text="Last day (empty: up to now).",
                            widget=forms.DateInput(attrs={"type": "date"}))


@roles.admin_action(Capability.BACKFILL, description="Backfill orders from a date range…")
def backfill_orders(modeladmin, request, queryset):
    """Two steps: the action shows a date form; its submit starts one backfill run per
    integration, whose progress (seen / total) shows under Sync runs."""
    from .poller import start_backfill
    from .tasks import backfill

    form = BackfillForm(request.POST if "apply" in request.POST else None)
    if "apply" in request.POST and form.is_valid():
        since = dt.datetime.combine(form.cleaned_data["since"], dt.time.min, tzinfo=dt.UTC)
        until_day = form.cleaned_data["until"]
        until = dt.datetime.combine(until_day, dt.time.max, tzinfo=dt.UTC) if until_day else None
        for integration in _integrations(queryset).filter(is_active=True):
            run = start_backfill(integration, since, until)
            transaction.on_commit(lambda i=integration.pk, r=run.pk: backfill.delay(
                i, since.isoformat(), until.isoformat() if until else None, r))
            url = reverse("admin:connector_syncrun_change", args=[run.pk])
            modeladmin.message_user(request, format_html(
                '{}: backfill started — <a href="{}">follow its progress</a>.', integration, url))
        return None
    context = {**modeladmin.admin_site.each_context(request), "title": "Backfill orders", "form": form,
               "queryset": queryset, "action": "backfill_orders", "opts": modeladmin.model._meta,
               "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME}
    return TemplateResponse(request, "admin/connector/backfill_form.html", context)
