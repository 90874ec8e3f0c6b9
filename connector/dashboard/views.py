"""The morning check's pages, inside admin (login, look and tenant isolation as admin's own)."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.models import Membership
from accounts.roles import Capability
from connector.dashboard import access
from connector.dashboard.export import to_csv, to_pdf
from connector.dashboard.facts import skus_waited_for, store_zone
from connector.dashboard.preview import preview_order
from connector.dashboard.reconcile import reconcile_day
from connector.dashboard.store_side import adapter_of
from connector.dashboard.summary import agents_of, chart_30_days, integration_day, oldest_problem
from connector.models import StockLevel, SyncRecord
from connector.services.records import replay
from mappings.models import ItemMapping


def _page(request, template: str, title: str, **context):
    return TemplateResponse(request, template, {**admin.site.each_context(request), "title": title, **context})


def _parse_day(value: str | None, default: dt.date) -> dt.date:
    if not value:
        return default
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Http404("Give the day as YYYY-MM-DD.") from None


def home(request):
    tenants = list(access.visible_tenants(request))
    if not tenants:
        raise PermissionDenied("You are not a member of any tenant.")
    tenant = next((t for t in tenants if str(t.pk) == request.GET.get("tenant")), tenants[0])
    integrations = list(access.visible_integrations(request).filter(tenant=tenant))
    zone = store_zone(integrations[0]) if integrations else dt.UTC
    today = timezone.now().astimezone(zone).date()
    chosen = _parse_day(request.GET.get("day"), today - dt.timedelta(days=2))
    days = [("Today", today), ("Yesterday", today - dt.timedelta(days=1))]
    if chosen not in (today, today - dt.timedelta(days=1)):
        days.append((f"{chosen:%a %d %b %Y}", chosen))
    columns = []
    for label, day in days:
        per_integration = [integration_day(integration, day) for integration in integrations]
        columns.append({"label": label, "day": day, "items": per_integration, "chosen": len(columns) == 2,
                        "sold": any(item.reconciliation.orders or item.reconciliation.refunds
                                    for item in per_integration),
                        "reconciles": all(item.reconciliation.reconciles for item in per_integration)})
    chart = chart_30_days(integrations, today)
    return _page(request, "dashboard/home.html", f"Morning check — {tenant.name}", tenant=tenant, tenants=tenants,
                 integrations=integrations, columns=columns, chosen=chosen, agents=agents_of(integrations),
                 oldest=oldest_problem(integrations), chart_json=json.dumps(chart),
                 list_url=reverse("admin:connector_syncrecord_changelist"))


def reconciliation(request, integration_id: int, day: str):
    integration = access.integration_or_403(request, integration_id)
    report = reconcile_day(integration, _parse_day(day, timezone.now().date()))
    fmt = request.GET.get("format", "html")
    filename = f"reconciliation-{integration.pk}-{report.day.isoformat()}"
    if fmt == "csv":
        record_url = lambda pk: request.build_absolute_uri(  # noqa: E731
            reverse("admin:connector_syncrecord_change", args=[pk]))
        response = HttpResponse(to_csv(report, record_url), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
        return response
    if fmt == "pdf":
        response = HttpResponse(to_pdf(report), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{filename}.pdf"'
        return response
    if fmt != "html":
        raise Http404("format is html, csv or pdf")
    return _page(request, "dashboard/reconciliation.html", f"Reconciliation — {integration.name}, {report.day:%d %b %Y}",
                 integration=integration, report=report,
                 previous_day=report.day - dt.timedelta(days=1), next_day=report.day + dt.timedelta(days=1))


@require_POST
def repost(request, record_id: int):
    record = SyncRecord.objects.select_related("integration").filter(pk=record_id).first()
    if record is None:
        raise Http404("No such record")
    access.integration_or_403(request, record.integration_id)
    access.require(request, Capability.REPLAY, record.integration.tenant_id)
    count = replay([record], user=request.user, refetch=request.POST.get("refetch") == "1")
    if count:
        messages.success(request, f"{record} is queued to post again; it will not be posted twice.")
    else:
        messages.info(request, f"{record} is already posted; nothing to do.")
    return HttpResponseRedirect(reverse("admin:connector_syncrecord_change", args=[record.pk]))


def _unmapped(integrations) -> dict:
    """(integration, sku) → the waiting records it blocks."""
    blocked = defaultdict(list)
    for record in (SyncRecord.objects.filter(integration__in=integrations, state=SyncRecord.State.WAITING_MAPPING)
                   .select_related("integration").order_by("created_at")):
        for sku in skus_waited_for(record):
            blocked[(record.integration, sku)].append(record)
    return blocked


def unmapped_skus(request):
    integrations = list(access.visible_integrations(request))
    blocked = _unmapped(integrations)
    if request.method == "POST":
        created = 0
        for index, ((integration, sku), _records) in enumerate(sorted(blocked.items(), key=_sort_key)):
            code = (request.POST.get(f"code_{index}") or "").strip()
            if not code or request.POST.get(f"sku_{index}") != sku:
                continue
            access.require(request, Capability.EDIT_MAPPINGS, integration.tenant_id)
            if len(code) > ItemMapping._meta.get_field("sage_code").max_length:
                messages.error(request, f"{sku}: the Sage stock code is too long.")
                continue
            try:
                ItemMapping.objects.update_or_create(integration=integration, store_sku=sku,
                                                     defaults={"sage_code": code})
                created += 1
            except IntegrityError:
                messages.error(request, f"{sku}: could not be saved; try again.")
        messages.success(request, f"Saved {created} mapping(s); the orders they blocked are posting again.")
        return HttpResponseRedirect(reverse("mlc_dashboard:unmapped"))
    codes = defaultdict(list)
    for integration_id, sku in StockLevel.objects.filter(integration__in=integrations).values_list(
            "integration_id", "sku"):
        codes[integration_id].append(sku)
    rows = [{"index": i, "integration": integration, "sku": sku, "records": records[:10], "count": len(records),
             "codes": codes.get(integration.pk, [])}
            for i, ((integration, sku), records) in enumerate(sorted(blocked.items(), key=_sort_key))]
    return _page(request, "dashboard/unmapped.html", "SKUs to map", rows=rows)


def _sort_key(item):
    (integration, sku), _records = item
    return (integration.pk, sku)


class PreviewForm(forms.Form):
    order_id = forms.IntegerField(min_value=1, label="Store order number")


def preview(request, integration_id: int):
    integration = access.integration_or_403(request, integration_id)
    form = PreviewForm(request.GET or None)
    result = None
    if form.is_valid():
        order_id = form.cleaned_data["order_id"]
        record = SyncRecord.objects.filter(integration=integration, kind=SyncRecord.Kind.ORDER,
                                           external_id=str(order_id)).first()
        adapter = adapter_of(integration)
        stored = record.payload if record and adapter and adapter.is_full_order(record.payload, with_lines=True) \
            else None
        result = preview_order(integration, order_id, stored_order=stored if integration.sage.edition != "sagex3"
                               else None)
    return _page(request, "dashboard/preview.html", f"Preview what would be posted — {integration.name}",
                 integration=integration, form=form, result=result)


class NotificationForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ("notify_failures", "notify_agent_offline", "agent_offline_minutes", "daily_digest")


def notifications(request):
    rows = []
    for membership in Membership.objects.filter(user=request.user).select_related("tenant"):
        form = NotificationForm(request.POST or None, instance=membership, prefix=f"m{membership.pk}")
        rows.append((membership, form))
    if request.method == "POST":
        if all(form.is_valid() for _, form in rows):
            for _, form in rows:
                form.save()
            messages.success(request, "Notification settings saved.")
            return HttpResponseRedirect(reverse("mlc_dashboard:notifications"))
    return _page(request, "dashboard/notifications.html", "My e-mail notifications", rows=rows,
                 email=request.user.email)
