"""Who may see and do what on the dashboard pages: one small module, so role checks can later be
pointed at a single roles module without touching the views. Tenant isolation itself comes from
accounts.tenancy, as everywhere else in admin."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from accounts.models import Integration, Membership, Tenant
from accounts.tenancy import memberships, scope_queryset

ACTING_ROLES = (Membership.Role.OWNER, Membership.Role.ACCOUNTANT)


def visible_tenants(request):
    return scope_queryset(Tenant.objects.all(), request)


def visible_integrations(request):
    return scope_queryset(Integration.objects.select_related("store", "sage", "tenant"), request)


def integration_or_403(request, integration_id) -> Integration:
    """The integration, if the user is a member of its tenant; else 403 (not 404: the id is not
    a secret, but its data is)."""
    try:
        return visible_integrations(request).get(pk=int(integration_id))
    except (Integration.DoesNotExist, TypeError, ValueError):
        raise PermissionDenied("You are not a member of this integration's tenant.") from None


def can_act(request, tenant_id: int) -> bool:
    """Re-post, map SKUs, change notification settings: owners and accountants."""
    return request.user.is_superuser or memberships(request).get(tenant_id) in ACTING_ROLES


def require_act(request, tenant_id: int) -> None:
    if not can_act(request, tenant_id):
        raise PermissionDenied("Your role may look but not change anything here.")
