from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html, format_html_join

from accounts import roles
from accounts.models import Integration
from accounts.roles import Capability
from accounts.tenancy import TenantScopedAdmin, scope_queryset
from connector.flows.channels import EVERY_CHANNEL, channel_choices, refresh_store_channels, stored_channels
from connector.models import StockLevel
from connector.stores import SalesChannel
from mappings.csv_io import CsvRejected, decode_upload, export_item_mappings, import_item_mappings
from mappings.models import (
    AccountMapping,
    ItemMapping,
    PaymentMethodMapping,
    RecordLink,
    TaxMapping,
    WebSalesAccount,
)
from mappings.signals import resume_waiting_records_for


def sage_stock_codes(integration_id) -> list[str]:
    """The stock codes the agent has reported from Sage for this integration (stock levels)."""
    try:
        integration_id = int(integration_id)
    except (TypeError, ValueError):
        return []
    return list(StockLevel.objects.filter(integration_id=integration_id).order_by("sku")
                .values_list("sku", flat=True)[:5000])


class CsvImportForm(forms.Form):
    integration = forms.ModelChoiceField(queryset=Integration.objects.none())
    csv_file = forms.FileField(help_text="Columns: store_sku, sage_code, description (optional).")


@admin.register(ItemMapping)
class ItemMappingAdmin(TenantScopedAdmin):
    list_display = ("store_sku", "sage_code", "description", "integration", "updated_at")
    list_filter = ("integration",)
    search_fields = ("store_sku", "sage_code", "description")
    actions = ["export_csv"]
    change_list_template = "admin/mappings/itemmapping/change_list.html"

    def get_form(self, request, obj=None, **kwargs):
        """Offer the stock codes the Sage agent reported for the integration (a datalist), and
        refuse a code Sage does not have, so a typo is caught before anything is posted."""
        form = super().get_form(request, obj, **kwargs)
        integration_id = request.GET.get("integration") or request.POST.get("integration") or (
            obj.integration_id if obj else None)
        codes = sage_stock_codes(integration_id)
        if "sage_code" not in form.base_fields or not codes:
            return form

        class CheckedForm(form):
            def clean_sage_code(self):
                code = self.cleaned_data["sage_code"]
                known = sage_stock_codes(self.data.get("integration") or integration_id)
                if known and code not in known:
                    raise forms.ValidationError(
                        f"Sage has no stock code '{code}' (the agent reported {len(known)}); check the spelling.")
                return code

        # Set on the subclass: its metaclass made fresh fields from the model.
        field = CheckedForm.base_fields["sage_code"]
        field.widget.attrs["list"] = "sage-stock-codes"
        field.help_text = format_html(
            "{} codes reported by the Sage agent; start typing to pick one.<datalist id='sage-stock-codes'>{}"
            "</datalist>", len(codes), format_html_join("", "<option value='{}'>", ((c,) for c in codes)))
        return CheckedForm

    def get_urls(self):
        return [path("import-csv/", self.admin_site.admin_view(self.import_csv), name="mappings_itemmapping_import")
                ] + super().get_urls()

    @roles.admin_action(Capability.EXPORT, description="Export selected item mappings as CSV")
    def export_csv(self, request, queryset):
        response = HttpResponse(export_item_mappings(queryset), content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="item-mappings.csv"'
        return response

    def import_csv(self, request):
        if not roles.may_anywhere(request, Capability.EDIT_MAPPINGS):
            self.message_user(request, roles.refusal(Capability.EDIT_MAPPINGS), messages.ERROR)
            return redirect("admin:mappings_itemmapping_changelist")
        form = CsvImportForm(request.POST or None, request.FILES or None)
        # Only the integrations of tenants where this user may change mappings; a posted id outside
        # them fails the form's own choice validation.
        form.fields["integration"].queryset = scope_queryset(Integration.objects.all(), request,
                                                             Capability.EDIT_MAPPINGS)
        if request.method == "POST" and form.is_valid():
            integration = form.cleaned_data["integration"]
            try:
                report = import_item_mappings(integration, decode_upload(form.cleaned_data["csv_file"]))
            except CsvRejected as rejected:
                form.add_error("csv_file", f"{rejected} Nothing was imported.")
            else:
                if report.errors:
                    form.add_error("csv_file", f"{len(report.errors)} row(s) need fixing; nothing was imported.")
                    for error in report.errors[:20]:
                        form.add_error("csv_file", error)
                else:
                    self.message_user(request, f"Imported: {report.created} new, {report.updated} updated.",
                                      messages.SUCCESS)
                    resume_waiting_records_for(integration.pk)
                    return redirect("admin:mappings_itemmapping_changelist")
        context = {**self.admin_site.each_context(request), "form": form, "opts": self.model._meta,
                   "title": "Import item mappings from CSV"}
        return TemplateResponse(request, "admin/mappings/itemmapping/import.html", context)


@admin.register(TaxMapping)
class TaxMappingAdmin(TenantScopedAdmin):
    list_display = ("store_tax_class", "sage_tax_code", "integration")
    list_filter = ("integration", "sage_tax_code")
    search_fields = ("store_tax_class", "sage_tax_code")


@admin.register(AccountMapping)
class AccountMappingAdmin(TenantScopedAdmin):
    list_display = ("channel_id", "channel_name", "purpose", "account_code", "integration")
    list_filter = ("integration", "purpose", "channel_id")
    search_fields = ("account_code", "channel_name")
    list_editable = ("account_code",)

    def get_form(self, request, obj=None, change=False, **kwargs):
        """The channel picker offers the store's channels (Adobe: websites and store views): read
        from the store for the row's own integration, else those each integration's store last listed."""
        groups = []
        integrations = [obj.integration] if obj is not None else scope_queryset(
            Integration.objects.select_related("store"), request)
        for integration in integrations:
            channels = refresh_store_channels(integration.store) if obj is not None else stored_channels(
                integration.store)
            if obj is not None and obj.channel_id and obj.channel_id not in {c.channel_id for c in channels}:
                channels.append(SalesChannel(obj.channel_id, obj.channel_name or "not listed by the store now"))
            if channels:
                groups.append((str(integration), channel_choices(channels)[1:]))
        request._mlc_channel_groups = groups
        return super().get_form(request, obj, change=change, **kwargs)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        groups = getattr(request, "_mlc_channel_groups", None)
        if db_field.name == "channel_id" and groups:
            return forms.TypedChoiceField(choices=[EVERY_CHANNEL, *groups], coerce=int, initial=0, label="Channel",
                                          help_text="The store's sales channels (Adobe Commerce: websites and "
                                                    "store views; a store view without its own accounts uses "
                                                    "its website's).")
        return super().formfield_for_dbfield(db_field, request, **kwargs)


@admin.register(PaymentMethodMapping)
class PaymentMethodMappingAdmin(TenantScopedAdmin):
    list_display = ("store_method", "bank_account", "integration")
    list_filter = ("integration",)
    search_fields = ("store_method", "bank_account")


@admin.register(WebSalesAccount)
class WebSalesAccountAdmin(TenantScopedAdmin):
    list_display = ("currency", "account_ref", "integration")
    list_filter = ("integration", "currency")


@admin.register(RecordLink)
class RecordLinkAdmin(TenantScopedAdmin):
    list_display = ("kind", "external_id", "sage_id", "reference", "integration", "created_at")
    list_filter = ("kind", "integration")
    search_fields = ("external_id", "sage_id", "reference")

    def has_add_permission(self, request, *args):
        return False  # links are made by postings only

    def has_change_permission(self, request, obj=None):
        return False
