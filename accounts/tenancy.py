"""Tenant isolation for the admin: every queryset, every foreign-key dropdown and every
permission check goes through here, so a user of tenant A never sees or edits tenant B's rows
(list, change page by URL, or a dropdown)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models

from accounts import roles
from accounts.models import Tenant
from accounts.roles import Capability, memberships  # noqa: F401  (memberships: re-exported for callers)
from accounts.tenant_paths import TENANT_PATHS, tenant_path_for  # noqa: F401  (re-exported for callers)
from connector.security import check_outbound_url, url_host


def scope_queryset(queryset, request, capability: Capability | None = None):
    """The rows of ``queryset`` in the user's tenants; with ``capability``, only in the tenants where
    the user holds it (what a form may offer for a write)."""
    if request.user.is_superuser:
        return queryset
    path = tenant_path_for(queryset.model)
    if path is None:
        return queryset.none()
    tenant_ids = list(memberships(request)) if capability is None else roles.tenants_where(request, capability)
    lookup = f"{path}__in" if path != "id" else "id__in"
    return queryset.filter(**{lookup: tenant_ids})


def tenant_id_of(obj) -> int | None:
    return _tenant_id_of(obj, tenant_path_for(type(obj)))


@roles.check_action_permissions
class TenantScopedAdmin(admin.ModelAdmin):
    """Base admin for tenant data. ``write_capability`` (accounts/roles.py) names what a user must
    hold in a row's tenant to add, change or delete it; reading needs only membership."""

    write_capability = Capability.EDIT_MAPPINGS

    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), request)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and tenant_path_for(db_field.related_model) is not None:
            # Only rows of tenants where the user may write this model: a user who is accountant in A
            # and viewer in B is never offered (nor accepted, the choice is validated) B or B's rows.
            field.queryset = scope_queryset(field.queryset, request, self.write_capability)
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if field is not None and tenant_path_for(db_field.related_model) is not None:
            field.queryset = scope_queryset(field.queryset, request, self.write_capability)
        return field

    def get_list_filter(self, request):
        """Filters on a tenant or an integration list only the values in the user's own rows
        (Django's default lists every row of the related table, i.e. other tenants' names)."""
        scoped = []
        for item in super().get_list_filter(request):
            if isinstance(item, str) and "__" not in item:
                try:
                    field = self.model._meta.get_field(item)
                except Exception:
                    field = None
                if field is not None and field.is_relation and tenant_path_for(field.related_model) is not None:
                    item = (item, admin.RelatedOnlyFieldListFilter)
            scoped.append(item)
        return scoped

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        model_admin = self

        class TenantCheckedForm(form):
            def clean(self):
                cleaned = super().clean()
                model_admin.check_target_tenant(request, self, cleaned)
                return cleaned

        TenantCheckedForm.__name__ = form.__name__
        return TenantCheckedForm

    def check_target_tenant(self, request, form, cleaned) -> None:
        """The tenant a save would write (the new one, on a change that moves the row) must be one where
        the user holds ``write_capability``, and every related row picked must be in that same tenant."""
        tenants = {}
        for name, value in cleaned.items():
            if isinstance(value, models.Model) and tenant_path_for(type(value)) is not None:
                tenants[name] = tenant_id_of(value)
        if not tenants:
            return
        target = tenants.get("tenant", next(iter(tenants.values())))
        if len(set(tenants.values())) > 1:
            form.add_error(None, "Everything picked here must belong to the same tenant: "
                                 + ", ".join(f"{name} is in {Tenant.objects.get(pk=tid)}" for name, tid in tenants.items())
                                 + ".")
            return
        if not roles.may(request, self.write_capability, target):
            form.add_error(None, roles.refusal(self.write_capability, request, target))

    def save_model(self, request, obj, form, change):
        # Last line of defence behind the form: never write a row into a tenant the user may not write.
        tenant_id = tenant_id_of(obj)
        if tenant_id is not None and not roles.may(request, self.write_capability, tenant_id):
            raise PermissionDenied(roles.refusal(self.write_capability, request, tenant_id))
        super().save_model(request, obj, form, change)

    def _owns(self, request, obj) -> bool:
        if obj is None or request.user.is_superuser:
            return True
        return self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff and (
            request.user.is_superuser or bool(memberships(request)))

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request) and self._owns(request, obj)

    def _can_write(self, request, obj=None) -> bool:
        if request.user.is_superuser:
            return True
        if not self.has_module_permission(request) or not self._owns(request, obj):
            return False
        if obj is not None:
            return roles.may(request, self.write_capability, tenant_id_of(obj))
        return roles.may_anywhere(request, self.write_capability)

    def has_add_permission(self, request, *args):
        return self._can_write(request)

    def has_change_permission(self, request, obj=None):
        return self._can_write(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._can_write(request, obj)


def _tenant_id_of(obj, path: str | None):
    if path is None:
        return None
    if path == "id":
        return obj.pk
    current = obj
    *through, last = path.split("__")
    for part in through:
        current = getattr(current, part, None)
        if current is None:
            return None
    return getattr(current, f"{last}_id", None)


class SecretFieldsAdminMixin:
    """Secrets are write-only in admin: never rendered back, only 'set' / 'not set'.
    Leaving the box empty keeps the stored value."""

    secret_fields: tuple[str, ...] = ()
    # URL field → the secrets sent to it (checked by check_outbound_urls).
    url_secrets: dict[str, tuple[str, ...]] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.secret_fields:
            setattr(self, masked_name(name), _masked_display(self.model, name))

    def _is_read_only(self, request, obj) -> bool:
        return obj is not None and not self.has_change_permission(request, obj)

    def get_fieldsets(self, request, obj=None):
        """A page shown read-only (a viewer, an accountant on a connection, the delete and history
        pages' links) renders read-only fields with their values: swap each secret for "set / not set"."""
        fieldsets = super().get_fieldsets(request, obj)
        if not self._is_read_only(request, obj):
            return fieldsets
        return [(title, {**options, "fields": [self._mask(f) for f in options["fields"]]})
                for title, options in fieldsets]

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if self._is_read_only(request, obj):
            fields += tuple(masked_name(name) for name in self.secret_fields)
        return fields

    def _mask(self, field):
        if isinstance(field, list | tuple):
            return type(field)(self._mask(f) for f in field)
        return masked_name(field) if field in self.secret_fields else field

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if self.url_secrets:
            model_admin = self

            class OutboundCheckedForm(form):
                def clean(self):
                    cleaned = super().clean()
                    model_admin.check_outbound_urls(self, obj, cleaned)
                    return cleaned

            OutboundCheckedForm.__name__ = form.__name__
            form = OutboundCheckedForm
        # Last: a subclass made after this would rebuild the model's own (clear-text) form fields.
        for name in [f for f in self.secret_fields if f in form.base_fields]:
            is_set = bool(obj is not None and getattr(obj, name))
            base = form.base_fields[name]
            form.base_fields[name] = forms.CharField(
                required=False,
                label=base.label,
                widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
                help_text=("Set. Type a new value to replace it; leave empty to keep it."
                           if is_set else "Not set.") + (f" {base.help_text}" if base.help_text else ""),
            )
        return form

    def check_outbound_urls(self, form, obj, cleaned) -> None:
        """Each URL we send credentials to must be https to a public host; and when its host changes,
        the secrets sent there must be typed again, so a stored token never follows a new URL unasked."""
        stored = {}
        if obj is not None and obj.pk:
            stored = type(obj).objects.filter(pk=obj.pk).values(*self.url_secrets, *self.secret_fields).first() or {}
        for url_field, secrets in self.url_secrets.items():
            if url_field not in cleaned:
                continue
            try:
                check_outbound_url(cleaned[url_field])
            except ValidationError as error:
                form.add_error(url_field, error)
                continue
            if not stored or url_host(stored.get(url_field)) == url_host(cleaned[url_field]):
                continue
            for secret in secrets:
                if stored.get(secret) and secret in form.fields and not cleaned.get(secret):
                    form.add_error(secret, f"The host of {form.fields[url_field].label} changed: enter this "
                                           f"again to send it to {url_host(cleaned[url_field]) or 'the new host'}.")

    def save_model(self, request, obj, form, change):
        if change:
            stored = type(obj).objects.filter(pk=obj.pk).values(*self.secret_fields).first() or {}
            for name in self.secret_fields:
                if name in form.cleaned_data and not form.cleaned_data[name]:
                    setattr(obj, name, stored.get(name, ""))
        super().save_model(request, obj, form, change)

    def secrets_status(self, obj):
        return ", ".join(f"{name}: {secret_state(getattr(obj, name))}" for name in self.secret_fields)

    secrets_status.short_description = "secrets"


def masked_name(field_name: str) -> str:
    return f"{field_name}_state"


def secret_state(value) -> str:
    """What any page may say about a secret: whether it is set, never any of it."""
    return "set" if value else "not set"


def _masked_display(model, name: str):
    def display(obj):
        return secret_state(getattr(obj, name, ""))

    display.short_description = model._meta.get_field(name).verbose_name
    return display
