import datetime as dt

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Min, Q
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from accounts import roles
from accounts.models import Agent, Integration, Membership, SageConnection, StoreConnection, Tenant
from accounts.roles import Capability
from accounts.tenancy import SecretFieldsAdminMixin, TenantScopedAdmin
from connector.adobe.admin_actions import poll_adobe_now, test_adobe_connection
from connector.bigcommerce.admin_actions import poll_now, register_hooks, test_connection
from connector.flows.backfill_admin import backfill_orders
from connector.flows.sage100_soap_admin import (
    SageConnectionForm,
    product_data_warning,
    test_sage100_ebusiness,
    transport_note,
)
from connector.flows.x3_admin import AccountMappingInline, x3_preview_urls
from connector.stores import UnknownPlatform, adapter_class


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    write_capability = Capability.MANAGE_MEMBERS

    def has_add_permission(self, request, *args):
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ("user", "tenant", "role")
    list_filter = ("role", "tenant")
    search_fields = ("user__username", "user__email", "tenant__name")
    write_capability = Capability.MANAGE_MEMBERS

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "user" and not request.user.is_superuser:
            # Owners pick among the users of the tenants they own only.
            owned = roles.tenants_where(request, Capability.MANAGE_MEMBERS)
            field.queryset = field.queryset.filter(memberships__tenant__in=owned).distinct()
        return field


@admin.register(StoreConnection)
class StoreConnectionAdmin(SecretFieldsAdminMixin, TenantScopedAdmin):
    list_display = ("name", "tenant", "platform", "store_hash", "secrets_status", "updated_at")
    list_filter = ("platform", "tenant")
    search_fields = ("name", "store_hash", "base_url")
    secret_fields = StoreConnection.SECRET_FIELDS
    url_secrets = {"api_base_url": ("access_token",),
                   "base_url": ("access_token", "consumer_key", "consumer_secret", "access_token_secret",
                                "ims_client_secret"),
                   "ims_token_url": ("ims_client_secret",)}
    write_capability = Capability.EDIT_CONNECTIONS
    actions = [test_connection, test_adobe_connection]
    fieldsets = (
        (None, {"fields": ("tenant", "name", "platform", "verify_tls", "tls_ca_bundle")}),
        ("BigCommerce", {"fields": ("store_hash", "api_base_url", "client_id", "access_token", "client_secret")}),
        ("Adobe Commerce", {"classes": ("collapse",), "fields": (
            "base_url", "store_code", "adobe_auth", "consumer_key", "consumer_secret", "access_token_secret",
            "ims_client_id", "ims_client_secret", "ims_org_id", "ims_token_url", "adobe_webhook_public_key",
            "adobe_io_client_id")}),
    )


@admin.register(SageConnection)
class SageConnectionAdmin(SecretFieldsAdminMixin, TenantScopedAdmin):
    list_display = ("name", "tenant", "edition", "transport", "secrets_status", "refresh_token_status")
    list_filter = ("edition", "transport", "tenant")
    search_fields = ("name", "company_code", "server_url")
    secret_fields = SageConnection.SECRET_FIELDS
    url_secrets = {"server_url": ("password", "access_token", "refresh_token"),
                   "oauth_token_url": ("oauth_client_secret", "refresh_token")}
    write_capability = Capability.EDIT_CONNECTIONS
    form = SageConnectionForm
    actions = [test_sage100_ebusiness]
    readonly_fields = ("access_token_expires_at", "refresh_token_expires_at", "what_this_transport_does")
    fieldsets = (
        (None, {"fields": ("tenant", "name", "edition", "transport", "what_this_transport_does", "verify_tls")}),
        ("Sage 50 / Sage 100", {"fields": ("company_path", "company_code")}),
        ("Server (X3, eBusiness Web Services)", {"fields": ("server_url", "folder", "username", "password",
                                                             "tls_ca_pem", "tls_certificate_file")}),
        ("Sage X3 authentication", {"classes": ("collapse",), "fields": (
            "x3_auth", "oauth_client_id", "oauth_client_secret", "oauth_token_url", "access_token",
            "refresh_token", "access_token_expires_at", "refresh_token_expires_at")}),
        ("Sage X3 journal entry publication", {"classes": ("collapse",), "fields": (
            "x3_rest_class", "x3_rest_representation", "x3_graphql_endpoint", "x3_graphql_mutation")}),
    )

    @admin.display(description="what this transport does")
    def what_this_transport_does(self, obj):
        return transport_note(obj)

    @admin.display(description="refresh token")
    def refresh_token_status(self, obj):
        expires = obj.refresh_token_expires_at
        if not expires:
            return "—"
        days = (expires - timezone.now()).days
        if days < 5:
            return format_html('<strong style="color:#b00">expires in {} days: re-authorise</strong>', days)
        return f"valid {days} more days"


def _status_value(value):
    """A BigCommerce status id is a number, an Adobe state a code: kept as each store reads it."""
    text = str(value).strip()
    return int(text) if text.isdigit() else text


def _platform_labels() -> dict[str, str]:
    return dict(StoreConnection.Platform.choices)


def _adapters() -> dict:
    """The store adapters registered by the installed store packages, by platform."""
    found = {}
    for platform in _platform_labels():
        try:
            found[platform] = adapter_class(platform)
        except UnknownPlatform:
            continue
    return found


class IntegrationForm(forms.ModelForm):
    """Order statuses picked by name, not typed as JSON or numbers; the names are the store's own,
    from its adapter (BigCommerce status ids, Adobe Commerce order states)."""

    paid_status_ids = forms.TypedMultipleChoiceField(
        choices=[], coerce=_status_value, required=False, widget=forms.CheckboxSelectMultiple,
        label="Statuses that count as paid")
    status_after_import = forms.TypedChoiceField(
        choices=[], coerce=int, empty_value=None, required=False, label="Status to set once posted")

    class Meta:
        model = Integration
        fields = ("paid_status_ids", "status_after_import")  # admin adds the fieldsets' other fields

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        adapters = _adapters()
        platform = self._platform()
        labels = _platform_labels()
        paid, after = self.fields["paid_status_ids"], self.fields["status_after_import"]
        if platform in adapters:
            adapter = adapters[platform]
            paid.choices = adapter.order_status_choices()
            after_choices = adapter.status_after_import_choices()
            paid.help_text = "None ticked = the default: " + ", ".join(
                label for value, label in adapter.order_status_choices()
                if value in adapter.default_paid_statuses()) + "."
        else:  # a new integration: every store's statuses, under the store's name; checked on save
            paid.choices = [(labels[p], a.order_status_choices()) for p, a in adapters.items()]
            after_choices = [(labels[p], a.status_after_import_choices()) for p, a in adapters.items()
                             if a.status_after_import_choices()]
            paid.help_text = "Tick the statuses of this integration's store; none ticked = the store's default."
        after.choices = [("", "Leave the order's status as it is")] + after_choices
        if platform in adapters and not after_choices:
            after.disabled = True
            after.help_text = (f"{labels[platform]} orders keep their status; tick \"add an order comment after "
                               "posting\" below to note the Sage invoice number on the order instead.")

    def _platform(self) -> str | None:
        store_id = str(self.data.get("store") or "") if self.is_bound else ""
        if store_id.isdigit():
            return StoreConnection.objects.filter(pk=int(store_id)).values_list("platform", flat=True).first()
        if self.instance.store_id:
            return self.instance.store.platform
        return None

    def clean(self):
        cleaned = super().clean()
        store = cleaned.get("store")
        adapter = _adapters().get(store.platform) if store else None
        if adapter is not None:
            known = {value for value, _ in adapter.order_status_choices()}
            wrong = [value for value in cleaned.get("paid_status_ids") or () if value not in known]
            if wrong:
                self.add_error("paid_status_ids", f"{', '.join(map(str, wrong))}: not a status of "
                                                  f"{_platform_labels()[store.platform]} orders.")
            after = cleaned.get("status_after_import")
            if after is not None and after not in {value for value, _ in adapter.status_after_import_choices()}:
                self.add_error("status_after_import", f"{_platform_labels()[store.platform]} orders cannot be "
                                                      "given this status.")
        return cleaned


@admin.action(description="Preview what would be posted for an order (dry run)")
def preview_posting(modeladmin, request, queryset):
    chosen = list(queryset[:2])
    if len(chosen) != 1:
        modeladmin.message_user(request, "Select exactly one integration to preview.", messages.WARNING)
        return None
    return HttpResponseRedirect(reverse("mlc_dashboard:preview", args=[chosen[0].pk]))


def next_poll_in_words(integration: Integration, now: dt.datetime) -> str:
    """``next_poll_at`` as an accountant reads it: due now, or in how long and at what time."""
    if not integration.pk:
        return "Once saved, at the next check"
    if not integration.is_active:
        return "None: the integration is turned off"
    tick = settings.POLL_TICK_SECONDS
    if integration.next_poll_at is None or integration.next_poll_at <= now:
        return f"Due now: it starts within {tick} seconds"
    seconds = round((integration.next_poll_at - now).total_seconds())
    wait = f"{seconds} seconds" if seconds < 120 else f"{round(seconds / 60)} minutes"
    at = timezone.localtime(integration.next_poll_at).strftime("%H:%M:%S")
    return f"In {wait}, at {at}"


@admin.register(Integration)
class IntegrationAdmin(SecretFieldsAdminMixin, TenantScopedAdmin):
    form = IntegrationForm
    list_display = ("name", "tenant", "store", "sage", "is_active", "poll_interval_seconds", "webhook_url")
    list_filter = ("is_active", "tenant", "customer_strategy")
    search_fields = ("name", "store__name", "sage__name")
    secret_fields = Integration.SECRET_FIELDS
    write_capability = Capability.EDIT_INTEGRATIONS
    readonly_fields = ("webhook_url", "next_poll")
    inlines = [AccountMappingInline]
    # The dry run offers each integration's own Sage edition (connector/dashboard/preview.py).
    actions = [poll_now, backfill_orders, register_hooks, test_connection, preview_posting, poll_adobe_now,
               test_adobe_connection]
    fieldsets = (
        (None, {"fields": ("tenant", "name", "store", "sage", "is_active")}),
        ("Flows", {"fields": ("post_invoices", "post_receipts", "post_refunds", "push_stock", "post_gl_entries")}),
        ("Schedule", {"fields": ("poll_interval_seconds", "next_poll", "poll_overlap_seconds",
                                 "stock_push_interval_seconds")}),
        ("Orders", {"fields": ("paid_status_ids", "status_after_import", "store_comment_after_posting",
                               "customer_strategy", "same_code_fallback", "default_tax_code", "rounding_tolerance",
                               "stock_quantity")}),
        ("Customers and currency", {"fields": ("without_email", "currency_accounts", "base_currency")}),
        ("Sage 100", {"classes": ("collapse",), "fields": ("post_sales_orders", "sage100_price_level")}),
        ("Sage X3 GL posting", {"classes": ("collapse",), "fields": (
            "x3_entry_type", "x3_journal", "x3_site", "x3_company", "x3_refund_style", "x3_gl_date_rule",
            "x3_cost_posting", "x3_collective_accounts")}),
        ("Webhooks and archive", {"fields": ("webhook_url", "webhook_secret", "archive_retention_days")}),
    )

    @admin.display(description="webhook URL")
    def webhook_url(self, obj):
        return f"{settings.PUBLIC_BASE_URL}{obj.webhook_path}" if obj.pk else "—"

    @admin.display(description="next scheduled poll")
    def next_poll(self, obj):
        """When the store is next checked for orders its webhooks did not bring, in words."""
        return next_poll_in_words(obj, timezone.now())

    def get_urls(self):
        return x3_preview_urls(self) + super().get_urls()

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        warning = product_data_warning(obj)
        if warning:
            self.message_user(request, f"{obj}: {warning}", messages.WARNING)


@admin.register(Agent)
class AgentAdmin(TenantScopedAdmin):
    list_display = ("name", "integration", "status", "self_check_short", "agent_version", "backend", "sage_version",
                    "queue_depth", "oldest_waiting", "last_heartbeat_at")
    list_filter = ("backend", "tenant")
    search_fields = ("name", "key_prefix", "company")
    readonly_fields = ("key_prefix", "last_heartbeat_at", "agent_version", "backend", "sage_edition",
                       "sage_version", "company", "self_check")
    fields = ("tenant", "integration", "name", "revoked_at") + readonly_fields
    write_capability = Capability.MANAGE_AGENTS
    actions = ["revoke"]

    change_list_template = "admin/accounts/agent/change_list.html"

    def get_urls(self):
        return [path("lockouts/", self.admin_site.admin_view(self.lockouts_view), name="accounts_agent_lockouts")
                ] + super().get_urls()

    def lockouts_view(self, request):
        """Addresses refused after too many wrong agent keys, and a button to lift each. Operators
        only: an address is not any one tenant's data."""
        from agentapi.auth import current_lockouts, unlock_address

        if not request.user.is_superuser:
            raise PermissionDenied("Only an operator (superuser) can see and lift agent-key lock-outs.")
        if request.method == "POST" and request.POST.get("address"):
            unlock_address(request.POST["address"])
            self.message_user(request, f"Lifted the agent-key lock-out of {request.POST['address']}.")
            return redirect("admin:accounts_agent_lockouts")
        lockouts = [{"address": address, "until": dt.datetime.fromtimestamp(until, dt.UTC)}
                    for address, until in current_lockouts()]
        context = {**self.admin_site.each_context(request), "lockouts": lockouts, "opts": self.model._meta,
                   "title": "Agent-key lock-outs"}
        return TemplateResponse(request, "admin/accounts/agent/lockouts.html", context)

    def get_queryset(self, request):
        waiting = Q(integration__agent_jobs__state__in=("queued", "leased"))
        return super().get_queryset(request).annotate(
            _queue=Count("integration__agent_jobs", filter=waiting, distinct=True),
            _oldest=Min("integration__agent_jobs__created_at", filter=waiting),
        )

    @admin.display(description="status")
    def status(self, obj):
        if obj.revoked_at:
            return "revoked"
        return format_html('<span style="color:{}">●</span> {}', "#080" if obj.is_online else "#b00",
                           "online" if obj.is_online else "offline")

    @admin.display(description="Sage self-check")
    def self_check_short(self, obj):
        if obj.doctor_ok is None:
            return "not run"
        return "passed" if obj.doctor_ok else f"{len(obj.doctor_problems)} problem(s)"

    @admin.display(description="Sage self-check (agent doctor)")
    def self_check(self, obj):
        """The agent's last self-check on the Sage PC, in the words the agent printed."""
        if obj.doctor_ok is None:
            return ("Not run yet. Before the agent posts anything, run `python -m agent doctor --config "
                    "agent.toml` on the Sage PC (see the agent's install checklist).")
        when = timezone.localtime(obj.doctor_checked_at).strftime("%d %b %Y %H:%M") if obj.doctor_checked_at else "?"
        if obj.doctor_ok:
            return f"Passed on {when}: all {obj.doctor_checks} checks in order."
        return format_html("{} problem(s) found on {}. Fix them, then run the check again:<ul>{}</ul>",
                           len(obj.doctor_problems), when,
                           format_html_join("", "<li>{}</li>", ((problem,) for problem in obj.doctor_problems)))

    @admin.display(description="queue", ordering="_queue")
    def queue_depth(self, obj):
        return obj._queue

    @admin.display(description="oldest waiting job", ordering="_oldest")
    def oldest_waiting(self, obj):
        if not obj._oldest:
            return "—"
        return f"{int((timezone.now() - obj._oldest).total_seconds())} s ago"

    @roles.admin_action(Capability.REVOKE_AGENTS, description="Revoke the selected agents' keys")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} agent key(s). Those agents can no longer call in.")

    def save_model(self, request, obj, form, change):
        if not change:
            # The key exists only in this response: it is hashed before it is stored.
            request._ml_agent_key = obj.issue_key()
        super().save_model(request, obj, form, change)

    def response_add(self, request, obj, post_url_continue=None):
        key = getattr(request, "_ml_agent_key", None)
        if key is None:
            return super().response_add(request, obj, post_url_continue)
        company = obj.integration.sage.company_path or "PATH_TO_COMPANY"
        backend = {"sage50uk": "sdo", "sage50us": "sage50us"}.get(obj.integration.sage.edition, "simulator")
        # The key goes into a config file (or ML_AGENT_KEY), never onto a command line: any user of
        # the machine can read another's process arguments, and shells keep them in their history.
        config_file = (f'server = "{settings.PUBLIC_BASE_URL}"\nkey = "{key}"\nbackend = "{backend}"\n'
                       f'company = "{_toml_escape(company)}"\n')
        command = "python -m agent run --config agent.toml"
        env_command = (f'set ML_AGENT_KEY={key}\npython -m agent run --server {settings.PUBLIC_BASE_URL} '
                       f'--backend {backend} --company "{company}"')
        context = {**self.admin_site.each_context(request), "agent": obj, "key": key, "command": command,
                   "config_file": config_file, "env_command": env_command,
                   "opts": self.model._meta, "title": "Agent created: copy its key now"}
        return TemplateResponse(request, "admin/accounts/agent/key_once.html", context)


def _toml_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
