import datetime as dt
import json
from urllib.parse import urlencode

from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery, Sum
from django.db.models.fields.json import KT
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from accounts import roles
from accounts.models import Integration, Membership
from accounts.roles import Capability
from accounts.tenancy import TenantScopedAdmin, memberships, scope_queryset
from connector.dashboard.facts import record_facts, skus_waited_for, state_in_words, store_zone
from connector.dashboard.reconcile import records_of_day
from connector.models import (
    AgentJob,
    AuditEntry,
    InboundEvent,
    Notification,
    PriceLevel,
    ServiceHeartbeat,
    StockLevel,
    SyncCursor,
    SyncRecord,
    SyncRun,
)
from connector.services.records import order_waited_for, replay


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


class OrderDateFilter(admin.SimpleListFilter):
    """The order's own date in the store's time zone (not the day the connector saw it)."""

    title = "order date"
    parameter_name = "order_date"

    def lookups(self, request, model_admin):
        first = scope_queryset(Integration.objects.select_related("store"), request).first()
        today = timezone.now().astimezone(store_zone(first)).date() if first else timezone.now().date()
        return [((today - dt.timedelta(days=n)).isoformat(), label)
                for n, label in ((0, "Today"), (1, "Yesterday"), (2, "2 days ago"))]

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            day = dt.date.fromisoformat(self.value())
        except ValueError:
            return queryset.none()
        ids = []
        for integration in scope_queryset(Integration.objects.select_related("store"), request):
            ids += [r.pk for r in records_of_day(integration, day, kinds=list(SyncRecord.Kind.values))]
        return queryset.filter(pk__in=ids)


def _with_latest_agent_result(queryset):
    """The newest word from the agent on each record (its latest job) and the true number of
    tries (all its jobs' attempts), read in the same query as the records."""
    latest = AgentJob.objects.filter(record=OuterRef("pk")).order_by("-updated_at", "-id")
    tries = (AgentJob.objects.filter(record=OuterRef("pk")).values("record")
             .annotate(total=Sum("attempts")).values("total")[:1])
    # A refund's stored payload has no currency: its order's record has.
    order_currency = (SyncRecord.objects.filter(integration_id=OuterRef("integration_id"),
                                                kind=SyncRecord.Kind.ORDER, external_id=OuterRef("refund_of"))
                      .annotate(currency=KT("payload__currency_code")).values("currency")[:1])
    return queryset.annotate(job_error=Subquery(latest.values("error_message")[:1]),
                             job_code=Subquery(latest.values("error_code")[:1]),
                             job_state=Subquery(latest.values("state")[:1]),
                             job_attempts=Subquery(tries),
                             refund_of=KT("payload__order_id"),
                             order_currency=Subquery(order_currency))


@admin.register(SyncRecord)
class SyncRecordAdmin(TenantScopedAdmin):
    """Read-only: a record changes only through the engine, a replay or a Re-post."""

    change_form_template = "admin/connector/syncrecord/change_form.html"

    list_display = ("store_number", "order_date", "customer", "amount", "sage_document", "state_badge",
                    "reason", "tries", "integration")
    list_display_links = ("store_number",)
    list_filter = ("state", OrderDateFilter, "kind", "integration")
    search_fields = ("external_id", "sage_reference", "sage_id", "message")
    fields = ("what_to_do", "integration", "kind", "external_id", "action", "state_in_words", "reason_in_full", "tries",
              "order_date", "customer", "amount", "sage_reference", "sage_id", "created_at", "posted_at",
              "ledger_document", "store_payload")
    readonly_fields = fields
    inlines = [AuditInline]
    actions = ["replay_selected", "replay_from_store"]
    list_per_page = 50

    def get_queryset(self, request):
        return _with_latest_agent_result(super().get_queryset(request).select_related("integration__store"))

    def has_add_permission(self, request, *args):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # No Save button on a record (obj given); the list's replay actions need the permission.
        return obj is None and super().has_change_permission(request, obj)

    def _facts(self, obj):
        cached = getattr(obj, "_mlc_facts", None)
        if cached is None:
            cached = obj._mlc_facts = record_facts(obj, store_zone(obj.integration))
        return cached

    def _words(self, obj):
        return state_in_words(obj.state, getattr(obj, "job_code", "") or "", getattr(obj, "job_state", "") or "")

    @admin.display(description="store number", ordering="external_id")
    def store_number(self, obj):
        return f"{obj.get_kind_display()} {obj.external_id}"

    @admin.display(description="order date")
    def order_date(self, obj):
        when = self._facts(obj).store_time
        return when.strftime("%d %b %Y %H:%M") if when else "—"

    @admin.display(description="customer")
    def customer(self, obj):
        return self._facts(obj).customer or "—"

    @admin.display(description="amount")
    def amount(self, obj):
        facts = self._facts(obj)
        currency = facts.currency or getattr(obj, "order_currency", "") or ""
        return f"{currency} {facts.amount:,.2f}".strip() if facts.amount is not None else "—"

    @admin.display(description="Sage document", ordering="sage_reference")
    def sage_document(self, obj):
        if obj.sage_id:
            return f"{obj.sage_id} ({obj.sage_reference})" if obj.sage_reference else obj.sage_id
        return obj.sage_reference or "—"

    @admin.display(description="state", ordering="state")
    def state_badge(self, obj):
        words = self._words(obj)
        return format_html('<span class="mlc-state mlc-state-{}">{}</span>', words.css, words.label)

    state_in_words = state_badge

    @admin.display(description="reason")
    def reason_in_full(self, obj):
        """The current reason: the agent's latest error while Sage is retrying, else the record's message."""
        if obj.state == SyncRecord.State.DISPATCHED and getattr(obj, "job_error", ""):
            return f"Sage said: {obj.job_error}"
        return obj.message

    @admin.display(description="reason")
    def reason(self, obj):
        text = self.reason_in_full(obj)
        return (text[:120] + "…") if len(text) > 120 else text

    def get_list_display(self, request):
        # One integration in sight (the usual case): its name on every row only costs width.
        columns = super().get_list_display(request)
        if scope_queryset(Integration.objects.all(), request)[:2].count() < 2:
            columns = tuple(c for c in columns if c != "integration")
        return columns

    @admin.display(description="tries")
    def tries(self, obj):
        return max(obj.attempts, getattr(obj, "job_attempts", 0) or 0)

    @admin.display(description="what you can do")
    def what_to_do(self, obj):
        parts = []
        for sku in skus_waited_for(obj):
            url = (reverse("admin:mappings_itemmapping_add") + "?"
                   + urlencode({"integration": obj.integration_id, "store_sku": sku}))
            parts.append(format_html('<a class="button" href="{}" data-fix="map-sku">Map SKU {} to a Sage stock '
                                     'code</a>', url, sku))
        if obj.state == SyncRecord.State.WAITING_ORDER and (order_id := order_waited_for(obj.waiting_for)):
            # What to fix is the order (its mapping, its hold): the refund follows it by itself.
            url = reverse("admin:connector_syncrecord_changelist") + "?" + urlencode(
                {"integration__id__exact": obj.integration_id, "kind__exact": SyncRecord.Kind.ORDER, "q": order_id})
            parts.append(format_html('<a href="{}" data-fix="open-order">Open order {}: fix it, and this refund '
                                     'follows by itself</a>', url, order_id))
        if obj.kind == SyncRecord.Kind.ORDER:
            url = reverse("mlc_dashboard:preview", args=[obj.integration_id]) + "?" + urlencode(
                {"order_id": obj.external_id})
            parts.append(format_html('<a href="{}">Preview what would be posted</a>', url))
        return format_html_join(" ", "{}", ((p,) for p in parts)) if parts else "—"

    def change_view(self, request, object_id, form_url="", extra_context=None):
        # The Re-post button (a POST form, in the template) for records that did not post.
        extra_context = {**(extra_context or {}), "can_repost": super().has_change_permission(request),
                         "repost_states": [SyncRecord.State.FAILED, SyncRecord.State.HELD,
                                           SyncRecord.State.WAITING_MAPPING]}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.display(description="ledger document")
    def ledger_document(self, obj):
        document = obj.document if isinstance(obj.document, dict) else None
        if not document:
            return "—"
        parts = [document[name] for name in ("invoice", "credit_note", "sales_order") if isinstance(
            document.get(name), dict)]
        parts += [p for name in ("receipts", "refunds") for p in document.get(name) or [] if isinstance(p, dict)]
        if not parts and "lines" in document:
            parts = [document]
        readable = format_html_join("", "{}", ((render_to_string("dashboard/_document.html", {"doc": p}),)
                                               for p in parts))
        return format_html("{}<details><summary>Show the JSON</summary><pre>{}</pre></details>", readable,
                           json.dumps(document, indent=2, default=str)[:50000])

    @admin.display(description="store record")
    def store_payload(self, obj):
        return _pre(obj.payload, collapsed=True)

    def _replay(self, request, queryset, refetch):
        count = replay(queryset, user=request.user, refetch=refetch)
        skipped = queryset.count() - count
        self.message_user(request, f"Queued {count} record(s) for replay"
                          + (f"; {skipped} already posted were left alone." if skipped else "."))

    @roles.admin_action(Capability.REPLAY, description="Replay selected records (stored payload)")
    def replay_selected(self, request, queryset):
        self._replay(request, queryset, refetch=False)

    @roles.admin_action(Capability.REPLAY, description="Replay selected records (re-fetch from the store)")
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

    def has_change_permission(self, request, obj=None):
        return False  # the outbox belongs to the engine and the agent

    def has_delete_permission(self, request, obj=None):
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


class IdlePollFilter(admin.SimpleListFilter):
    """A poll that found nothing is not news: hidden unless asked for (one a minute otherwise)."""

    title = "idle polls"
    parameter_name = "idle"

    def lookups(self, request, model_admin):
        return [("show", "Show polls that found nothing")]

    def queryset(self, request, queryset):
        if self.value() == "show":
            return queryset
        return queryset.exclude(kind=SyncRun.Kind.POLL, state=SyncRun.State.DONE, seen=0, failed=0)


@admin.register(SyncRun)
class SyncRunAdmin(TenantScopedAdmin):
    list_display = ("__str__", "kind", "state", "progress", "outcome", "failed", "api_calls", "started_at",
                    "finished_at", "integration")
    list_filter = (IdlePollFilter, "kind", "state", "integration")
    readonly_fields = ("integration", "kind", "state", "params", "total", "seen", "outcome", "succeeded", "failed",
                       "api_calls", "message", "started_at", "finished_at", "progress")

    @admin.display(description="what became of them")
    def outcome(self, obj):
        """The records the run took in, by state now: a backfill's "succeeded" counted the skipped
        (unpaid, cancelled) orders with the posted ones."""
        if obj.kind not in (SyncRun.Kind.BACKFILL, SyncRun.Kind.POLL) or not obj.seen:
            return f"{obj.succeeded} done"
        taken = InboundEvent.objects.filter(run=obj).values("resource_id")
        states = dict(SyncRecord.objects.filter(integration_id=obj.integration_id, external_id__in=taken,
                                                kind__in=(SyncRecord.Kind.ORDER, SyncRecord.Kind.REFUND))
                      .values("state").annotate(n=Count("id")).values_list("state", "n"))
        if not states:
            return f"{obj.succeeded} done"
        labels = dict(SyncRecord.State.choices)
        order = ["posted", "skipped", "waiting_mapping", "waiting_order", "held", "failed", "dispatched", "pending"]
        return " · ".join(f"{labels[state].lower()} {states[state]}" for state in order if states.get(state))
    actions = ["download_archive"]

    def has_add_permission(self, request, *args):
        return False

    @roles.admin_action(Capability.EXPORT,
                        description="Download the selected runs' inbound payloads and results (JSON)")
    def download_archive(self, request, queryset):
        from connector.services.archive import export_runs

        response = HttpResponse(export_runs(queryset), content_type="application/json")
        response["Content-Disposition"] = f'attachment; filename="runs-{timezone.now():%Y%m%d-%H%M%S}.json"'
        return response


@admin.register(SyncCursor)
class SyncCursorAdmin(TenantScopedAdmin):
    list_display = ("stream", "value", "updated_at", "integration")
    list_filter = ("integration",)


def _quantity(value) -> str:
    """12.0000 → 12, 2.5000 → 2.5: a count, not a four-decimal database column."""
    if value is None:
        return "—"
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


@admin.register(StockLevel)
class StockLevelAdmin(TenantScopedAdmin):
    list_display = ("sku", "in_stock", "allocated", "pushed_quantity", "pushed_at", "matched",
                    "message", "integration")

    @admin.display(description="in stock in Sage", ordering="sage_in_stock")
    def in_stock(self, obj):
        return _quantity(obj.sage_in_stock)

    @admin.display(description="allocated in Sage", ordering="sage_allocated")
    def allocated(self, obj):
        return _quantity(obj.sage_allocated)
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


# -- The admin index: technical tables in a "System" section, shown to owners only ----------------
SYSTEM_MODELS = {
    "connector": {"inboundevent", "synccursor", "serviceheartbeat", "notification"},
    "mappings": {"recordlink"},
    "django_celery_beat": None,  # every model: periodic tasks, crontabs, intervals, solar events, clocked
}
_app_list = admin.site.get_app_list


def _is_system(app_label: str, model_name: str) -> bool:
    names = SYSTEM_MODELS.get(app_label, set())
    return names is None or model_name in names


def _is_owner(request) -> bool:
    return request.user.is_superuser or Membership.Role.OWNER in memberships(request).values()


def app_list_with_system_section(request, app_label=None):
    apps = _app_list(request, app_label)
    if app_label is not None:
        return apps  # an app's own page lists what it holds
    system = []
    for app in apps:
        system += [m for m in app["models"] if _is_system(app["app_label"], m["object_name"].lower())]
        app["models"] = [m for m in app["models"] if not _is_system(app["app_label"], m["object_name"].lower())]
    apps = [app for app in apps if app["models"]]
    if system and _is_owner(request):
        apps.append({"name": "System", "app_label": "system", "app_url": reverse("admin:index"),
                     "has_module_perms": True, "models": sorted(system, key=lambda m: str(m["name"]))})
    return apps


admin.site.get_app_list = app_list_with_system_section


@admin.register(Notification)
class NotificationAdmin(TenantScopedAdmin):
    list_display = ("created_at", "kind", "subject", "recipients", "sent_at", "error")
    list_filter = ("kind",)
    readonly_fields = ("key", "tenant", "kind", "recipients", "subject", "sent_at", "error", "created_at")

    def has_add_permission(self, request, *args):
        return False

    def has_change_permission(self, request, obj=None):
        return False
