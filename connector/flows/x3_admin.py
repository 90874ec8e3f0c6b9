"""Admin pieces for the Sage X3 GL flow, attached to IntegrationAdmin in accounts/admin.py:

* ``AccountMappingInline``: the channel → GL accounts table, edited on the integration itself;
* ``x3_preview_urls(model_admin)`` + the ``preview_x3_posting`` action: enter an order id and see
  the journal entry it (and its refunds) would produce, balanced or what to map, without posting.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template import engines
from django.urls import path, reverse

from accounts import roles
from accounts.models import Integration
from accounts.roles import Capability
from connector.sagex3 import journal
from mappings.models import AccountMapping
from mlcommon.http import ApiError

from . import x3
from .stores import store_adapter


class AccountMappingInline(admin.TabularInline):
    """Permissions follow the integration's own admin (tenant roles), not Django model perms."""

    model = AccountMapping
    fields = ("channel_id", "channel_name", "purpose", "account_code")
    extra = 0
    verbose_name = "GL account for a sales channel (channel 0 = every channel)"
    verbose_name_plural = "GL accounts by sales channel (Sage X3 journal entries; channel 0 = every channel)"

    def _parent(self):
        return self.admin_site._registry[Integration]

    def has_view_permission(self, request, obj=None):
        return self._parent().has_view_permission(request, obj)

    def has_add_permission(self, request, obj=None):
        return self._parent().has_change_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._parent().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._parent().has_change_permission(request, obj)


class PreviewForm(forms.Form):
    order_id = forms.IntegerField(min_value=1, label="Store order id")


PREVIEW_TEMPLATE = engines["django"].from_string("""{% extends "admin/base_site.html" %}
{% block content %}
<p>Integration <strong>{{ integration }}</strong> → {{ integration.sage }}. Nothing is posted from this page.</p>
<form method="get">{{ form.as_p }}<input type="submit" value="Preview"></form>
{% if error %}<p class="errornote">{{ error }}</p>{% endif %}
{% for item in previews %}
  <h2>{{ item.title }}</h2>
  {% if item.problem %}<p class="errornote">{{ item.problem }}</p>{% else %}
  <p>Reference <code>{{ item.entry.reference }}</code>, GL date {{ item.entry.date }}, {{ item.entry.currency }},
     type {{ item.entry.entry_type }} / journal {{ item.entry.journal }}, site {{ item.entry.site }}.</p>
  <table><thead><tr><th>#</th><th>Account</th><th>Debit</th><th>Credit</th><th>Description</th></tr></thead>
  <tbody>{% for line in item.lines %}<tr><td>{{ forloop.counter }}</td><td>{{ line.account }}</td>
    <td>{{ line.debit }}</td><td>{{ line.credit }}</td><td>{{ line.description }}</td></tr>{% endfor %}</tbody>
  <tfoot><tr><th></th><th>Totals</th><th>{{ item.entry.debit_total }}</th><th>{{ item.entry.credit_total }}</th>
    <th>{% if item.entry.is_balanced %}balanced{% else %}NOT balanced{% endif %}</th></tr></tfoot></table>
  {% endif %}
{% endfor %}
{% endblock %}""")


def _preview_item(title: str, build) -> dict:
    try:
        entry = build()
    except journal.JournalError as error:
        return {"title": title, "problem": x3._translate(error, None).message}
    lines = [{"account": line.account, "description": line.description,
              "debit": line.amount if line.sense > 0 else "", "credit": line.amount if line.sense < 0 else ""}
             for line in entry.lines]
    return {"title": title, "entry": entry, "lines": lines}


def previews_for_order(integration, order_id: int, adapter=None) -> list[dict]:
    """The entries an order and its refunds would produce (or why not), read live from the store."""
    adapter = adapter or store_adapter(integration)
    order = adapter.fetch_order(order_id)
    items = [_preview_item(f"Order {order_id}", lambda: x3.build_entry_for_order(integration, order))]
    for refund in adapter.order_refunds(order_id):
        items.append(_preview_item(f"Refund {refund['id']} of order {order_id}",
                                   lambda refund=refund: x3.build_entry_for_refund(integration, order, refund)))
    return items


def x3_preview_urls(model_admin) -> list:
    def view(request, object_id):
        integration = model_admin.get_queryset(request).select_related("store", "sage").filter(pk=object_id).first()
        if integration is None or not model_admin.has_view_permission(request, integration):
            raise Http404("No such integration")
        form = PreviewForm(request.GET or None)
        previews, error = [], ""
        if form.is_valid():
            try:
                previews = previews_for_order(integration, form.cleaned_data["order_id"])
            except ApiError as exc:
                error = f"Could not read order {form.cleaned_data['order_id']} from the store: {exc}"
        context = {**model_admin.admin_site.each_context(request), "integration": integration, "form": form,
                   "previews": previews, "error": error, "title": "Preview Sage X3 journal entry",
                   "opts": model_admin.model._meta}
        return HttpResponse(PREVIEW_TEMPLATE.render(context, request))

    return [path("<int:object_id>/x3-preview/", model_admin.admin_site.admin_view(view),
                 name="accounts_integration_x3_preview")]


@roles.admin_action(Capability.VIEW, description="Preview the Sage X3 journal entry of an order")
def preview_x3_posting(modeladmin, request, queryset):
    chosen = list(queryset[:2])
    if len(chosen) != 1:
        modeladmin.message_user(request, "Select exactly one integration to preview.", messages.WARNING)
        return None
    return HttpResponseRedirect(reverse("admin:accounts_integration_x3_preview", args=[chosen[0].pk]))
