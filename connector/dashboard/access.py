"""Who may see and do what on the dashboard pages. What each role may do is decided in one place,
accounts/roles.py (the same table every admin action and form uses); tenant isolation comes from
accounts.tenancy, as everywhere else in admin."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from accounts import roles
from accounts.models import Integration, Tenant
from accounts.roles import Capability
from accounts.tenancy import scope_queryset


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


def require(request, capability: Capability, tenant_id: int) -> None:
    """Re-post (REPLAY), map SKUs (EDIT_MAPPINGS): refused in words, with the user's role."""
    if not roles.may(request, capability, tenant_id):
        raise PermissionDenied(roles.refusal(capability, request, tenant_id))
