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
from connector.stores import SalesChannel
from mappings.models import AccountMapping
from mlcommon.http import ApiError

from . import x3
from .channels import channel_choices, refresh_store_channels
from .stores import store_adapter


class AccountMappingInline(admin.TabularInline):
    """Permissions follow the integration's own admin (tenant roles), not Django model perms. The
    channel is picked among the store's own (BigCommerce channels, Adobe websites and store views),
    read through its adapter when the page opens."""

    model = AccountMapping
    fields = ("channel_id", "channel_name", "purpose", "account_code")
    extra = 0
    verbose_name = "account for a sales channel"
    verbose_name_plural = ("GL / nominal accounts by sales channel (Sage 50 and Sage X3; channel 0 = every channel; "
                           "an Adobe store view without its own uses its website's)")

    def get_formset(self, request, obj=None, **kwargs):
        channels = refresh_store_channels(obj.store) if obj is not None and obj.store_id else []
        if channels:
            # Rows saved for a channel the store does not list now stay as they are (not reset to 0).
            listed = {c.channel_id for c in channels}
            for channel_id, name in obj.account_mappings.exclude(channel_id=0).values_list("channel_id",
                                                                                       "channel_name"):
                if channel_id not in listed:
                    listed.add(channel_id)
                    channels.append(SalesChannel(channel_id, name or "not listed by the store now"))
        self._channels = channels
        names = {c.channel_id: c.name for c in channels}
        kwargs["form"] = type("ChannelAccountForm", (ChannelAccountForm,), {"channel_names": names})
        return super().get_formset(request, obj, **kwargs)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "channel_id":
            field = channel_field(getattr(self, "_channels", []))
            if field is not None:
                return field
        return super().formfield_for_dbfield(db_field, request, **kwargs)

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


class ChannelAccountForm(forms.ModelForm):
    """Fills the channel's name from the store's list when left blank (X3 messages name it)."""

    channel_names: dict[int, str] = {}

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("channel_name") and cleaned.get("channel_id"):
            cleaned["channel_name"] = self.channel_names.get(cleaned["channel_id"], "")[:100]
        return cleaned


def channel_field(channels) -> forms.Field | None:
    """A picker of the store's channels (None: the store listed none; the plain number stays)."""
    if not channels:
        return None
    return forms.TypedChoiceField(choices=channel_choices(channels), coerce=int, initial=0, label="Channel",
                                  help_text="The store's channels as it lists them now.")


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
