import json

from django.contrib import admin, messages
from django.http import HttpResponse
from django.utils import timezone
from django.utils.html import format_html

from accounts.tenancy import TenantScopedAdmin
from connector.models import (
    AgentJob,
    AuditEntry,
    InboundEvent,
    PriceLevel,
    ServiceHeartbeat,
    StockLevel,
    SyncCursor,
    SyncRecord,
    SyncRun,
)
from connector.services.records import replay


class AuditInline(admin.TabularInline):
    model = AuditEntry
    extra = 0
    can_delete = False
    fields = ("created_at", "step", "message", "snapshot")
    readonly_fields = fields
    ordering = ("created_at", "id")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="sent / received")
    def snapshot(self, obj):
        if not obj.data:
            return "—"
        text = json.dumps(obj.data, indent=1, default=str)
        return format_html("<details><summary>show</summary><pre style='white-space:pre-wrap'>{}</pre></details>",
                           text[:20000])


@admin.register(SyncRecord)
class SyncRecordAdmin(TenantScopedAdmin):
    list_display = ("__str__", "state_badge", "message_short", "sage_reference", "sage_id", "attempts",
                    "updated_at", "integration")
    list_filter = ("state", "kind", "action", "integration")
    search_fields = ("external_id", "sage_reference", "sage_id", "message")
    readonly_fields = ("integration", "kind", "external_id", "action", "state", "attempts", "message",
                       "waiting_for", "source_version", "sage_reference", "sage_id", "created_at", "updated_at",
                       "posted_at", "ledger_document", "store_payload")
    exclude = ("payload", "document")
    inlines = [AuditInline]
    actions = ["replay_selected", "replay_from_store"]
    date_hierarchy = "created_at"
    list_per_page = 50

    STATE_COLOURS = {"posted": "#080", "failed": "#b00", "waiting_mapping": "#b60", "held": "#b60",
                     "dispatched": "#06b", "pending": "#666", "skipped": "#999"}

    def has_add_permission(self, request, *args):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj):
        return format_html('<strong style="color:{}">{}</strong>', self.STATE_COLOURS.get(obj.state, "#000"),
                           obj.get_state_display())

    @admin.display(description="message")
    def message_short(self, obj):
        return (obj.message[:140] + "…") if len(obj.message) > 140 else obj.message

    @admin.display(description="ledger document")
    def ledger_document(self, obj):
        return _pre(obj.document)

    @admin.display(description="store record")
    def store_payload(self, obj):
        return _pre(obj.payload, collapsed=True)

    def _replay(self, request, queryset, refetch):
        if not self.has_change_permission(request):
            self.message_user(request, "You may view records but not replay them.", messages.ERROR)
            return
        count = replay(queryset, user=request.user, refetch=refetch)
        skipped = queryset.count() - count
        self.message_user(request, f"Queued {count} record(s) for replay"
                          + (f"; {skipped} already posted were left alone." if skipped else "."))

    @admin.action(description="Replay selected records (stored payload)")
    def replay_selected(self, request, queryset):
        self._replay(request, queryset, refetch=False)

    @admin.action(description="Replay selected records (re-fetch from the store)")
    def replay_from_store(self, request, queryset):
        self._replay(request, queryset, refetch=True)


def _pre(value, collapsed=False):
    if value is None:
        return "—"
    text = json.dumps(value, indent=2, default=str)
    if collapsed:
        return format_html("<details><summary>show</summary><pre>{}</pre></details>", text[:50000])
    return format_html("<pre>{}</pre>", text[:50000])


@admin.register(AgentJob)
class AgentJobAdmin(TenantScopedAdmin):
    list_display = ("op", "reference", "state", "attempts", "error_code", "available_at", "lease_expires_at",
                    "completed_at", "integration")
    list_filter = ("state", "op", "integration")
    search_fields = ("reference", "error_message")
    readonly_fields = ("integration", "record", "op", "reference", "state", "attempts", "available_at",
                       "lease_expires_at", "leased_by", "result", "error_code", "error_message", "created_at",
                       "completed_at", "payload")
    exclude = ("lease_token",)

    def has_add_permission(self, request, *args):
        return False


@admin.register(InboundEvent)
class InboundEventAdmin(TenantScopedAdmin):
    list_display = ("received_at", "source", "scope", "resource_id", "signature_scheme", "processed_at", "error",
                    "integration")
    list_filter = ("source", "scope", "integration")
    search_fields = ("resource_id", "dedup_key")
    readonly_fields = ("integration", "source", "dedup_key", "scope", "resource_id", "headers", "body",
                       "signature_scheme", "run", "received_at", "processed_at", "error")
    date_hierarchy = "received_at"

    def has_add_permission(self, request, *args):
        return False


@admin.register(SyncRun)
class SyncRunAdmin(TenantScopedAdmin):
    list_display = ("__str__", "kind", "state", "progress", "succeeded", "failed", "api_calls", "started_at",
                    "finished_at", "integration")
    list_filter = ("kind", "state", "integration")
    readonly_fields = ("integration", "kind", "state", "params", "total", "seen", "succeeded", "failed",
                       "api_calls", "message", "started_at", "finished_at", "progress")
    actions = ["download_archive"]

    def has_add_permission(self, request, *args):
        return False

    @admin.action(description="Download the selected runs' inbound payloads and results (JSON)")
    def download_archive(self, request, queryset):
        from connector.services.archive import export_runs

        response = HttpResponse(export_runs(queryset), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="runs-{timezone.now():%Y%m%d-%H%M%S}.json"'
        return response


@admin.register(SyncCursor)
class SyncCursorAdmin(TenantScopedAdmin):
    list_display = ("stream", "value", "updated_at", "integration")
    list_filter = ("integration",)


@admin.register(StockLevel)
class StockLevelAdmin(TenantScopedAdmin):
    list_display = ("sku", "sage_in_stock", "sage_allocated", "pushed_quantity", "pushed_at", "matched",
                    "message", "integration")
    list_filter = ("matched", "integration")
    search_fields = ("sku",)


@admin.register(PriceLevel)
class PriceLevelAdmin(TenantScopedAdmin):
    """Sage 100 prices and what was pushed to the store's variants."""

    list_display = ("sku", "sage_price", "sage_modified_at", "pushed_price", "pushed_at", "matched", "message",
                    "integration")
    list_filter = ("matched", "integration")
    search_fields = ("sku",)


@admin.register(ServiceHeartbeat)
class ServiceHeartbeatAdmin(admin.ModelAdmin):
    list_display = ("name", "beat_at", "detail")

    def has_module_permission(self, request):
        return request.user.is_superuser
