"""The store-neutral "Backfill orders from a date range…" admin action (attached to the Integration
admin in accounts/admin.py): a date form, then one backfill run per selected integration, sent to
the backfill task its store package registered (connector.services.sweeper's store work tasks: the
same task the sweeper resumes a stalled backfill with). Progress (seen / total) shows on the run
under Sync runs; the message links to it."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from accounts import roles
from accounts.models import StoreConnection
from accounts.roles import Capability
from connector.models import SyncRun
from connector.services.sweeper import store_work_tasks
from connector.services.taskqueue import task_named


class BackfillForm(forms.Form):
    since = forms.DateField(help_text="First order date to read (orders created on or after this day).",
                            widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, help_text="Last day (empty: up to now).",
                            widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until < since:
            self.add_error("until", "The last day is before the first.")
        if since and since > dt.date.today() + dt.timedelta(days=1):
            self.add_error("since", "This day has not come yet.")
        return cleaned


def start_backfill(integration, since: dt.datetime, until: dt.datetime | None) -> SyncRun | None:
    """Create the run and send it to the store's backfill task once the transaction commits
    (None: no installed store package handles this integration's store)."""
    tasks = store_work_tasks(integration.store.platform)
    if tasks is None:
        return None
    run = SyncRun.objects.create(integration=integration, kind=SyncRun.Kind.BACKFILL,
                                 params={"since": since.isoformat(), "until": until.isoformat() if until else None})
    transaction.on_commit(lambda: task_named(tasks.backfill).delay(
        integration.pk, since.isoformat(), until.isoformat() if until else None, run.pk))
    return run


@roles.admin_action(Capability.BACKFILL, description="Backfill orders from a date range…")
def backfill_orders(modeladmin, request, queryset):
    """Two steps: the action shows the date form; its submit starts one backfill run per active
    integration, whatever its store."""
    form = BackfillForm(request.POST if "apply" in request.POST else None)
    integrations = list(queryset.select_related("store"))
    if "apply" in request.POST and form.is_valid():
        since = dt.datetime.combine(form.cleaned_data["since"], dt.time.min, tzinfo=dt.UTC)
        until_day = form.cleaned_data["until"]
        until = dt.datetime.combine(until_day, dt.time.max, tzinfo=dt.UTC) if until_day else None
        labels = dict(StoreConnection.Platform.choices)
        for integration in integrations:
            if not integration.is_active:
                modeladmin.message_user(request, f"{integration}: switched off, not backfilled.", messages.WARNING)
                continue
            run = start_backfill(integration, since, until)
            if run is None:
                modeladmin.message_user(request, f"{integration}: {labels.get(integration.store.platform)} stores "
                                                 "cannot be backfilled here.", messages.ERROR)
                continue
            url = reverse("admin:connector_syncrun_change", args=[run.pk])
            modeladmin.message_user(request, format_html(
                '{}: backfill of the {} store started — <a href="{}">follow its progress</a>.', integration,
                labels.get(integration.store.platform, ""), url))
        return None
    context = {**modeladmin.admin_site.each_context(request), "title": "Backfill orders", "form": form,
               "queryset": integrations, "action": "backfill_orders", "opts": modeladmin.model._meta,
               "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME}
    return TemplateResponse(request, "admin/connector/backfill_form.html", context)
