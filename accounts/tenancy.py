"""Tenant isolation for the admin: every queryset, every foreign-key dropdown and every
permission check goes through here, so a user of tenant A never sees or edits tenant B's rows
(list, change page by URL, or a dropdown)."""

from __future__ import annotations

from django import forms
from django.contrib import admin

from accounts.models import Membership

# How each model reaches its Tenant. Models not listed here are not tenant data.
TENANT_PATHS = {
    "accounts.tenant": "id",
    "accounts.membership": "tenant",
    "accounts.storeconnection": "tenant",
    "accounts.sageconnection": "tenant",
    "accounts.integration": "tenant",
    "accounts.agent": "tenant",
}


def tenant_path_for(model) -> str | None:
    label = model._meta.label_lower
    if label in TENANT_PATHS:
        return TENANT_PATHS[label]
    if any(f.name == "integration" for f in model._meta.get_fields()):
        return "integration__tenant"
    if any(f.name == "record" for f in model._meta.get_fields()):
        return "record__integration__tenant"
    return None


def memberships(request) -> dict[int, str]:
    """tenant id → role for the request's user, cached on the request."""
    cached = getattr(request, "_ml_memberships", None)
    if cached is None:
        cached = dict(Membership.objects.filter(user=request.user).values_list("tenant_id", "role"))
        request._ml_memberships = cached
    return cached


def scope_queryset(queryset, request):
    if request.user.is_superuser:
        return queryset
    path = tenant_path_for(queryset.model)
    if path is None:
        return queryset.none()
    lookup = f"{path}__in" if path != "id" else "id__in"
    return queryset.filter(**{lookup: list(memberships(request))})


class TenantScopedAdmin(admin.ModelAdmin):
    """Base admin for tenant data. ``editable_by`` names the roles that may write."""

    editable_by = (Membership.Role.OWNER, Membership.Role.ACCOUNTANT)

    def get_queryset(self, request):
        return scope_queryset(super().get_queryset(request), request)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and tenant_path_for(db_field.related_model) is not None:
            field.queryset = scope_queryset(field.queryset, request)
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if field is not None and tenant_path_for(db_field.related_model) is not None:
            field.queryset = scope_queryset(field.queryset, request)
        return field

    def _roles(self, request) -> set[str]:
        return set(memberships(request).values())

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
            path = tenant_path_for(type(obj))
            tenant_id = _tenant_id_of(obj, path)
            return memberships(request).get(tenant_id) in self.editable_by
        return bool(self._roles(request) & set(self.editable_by))

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
    for part in path.split("__"):
        current = getattr(current, part)
    return current.pk


class SecretFieldsAdminMixin:
    """Secrets are write-only in admin: never rendered back, only 'set' / 'not set'.
    Leaving the box empty keeps the stored value."""

    secret_fields: tuple[str, ...] = ()

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        secret_fields = [f for f in self.secret_fields if f in form.base_fields]
        for name in secret_fields:
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

    def save_model(self, request, obj, form, change):
        if change:
            stored = type(obj).objects.filter(pk=obj.pk).values(*self.secret_fields).first() or {}
            for name in self.secret_fields:
                if name in form.cleaned_data and not form.cleaned_data[name]:
                    setattr(obj, name, stored.get(name, ""))
        super().save_model(request, obj, form, change)

    def secrets_status(self, obj):
        return ", ".join(f"{name}: {'set' if getattr(obj, name) else 'not set'}" for name in self.secret_fields)

    secrets_status.short_description = "secrets"
