"""Who may do what, in one place: the role table and the helpers every admin page, action and
custom view uses to check it.

A user can belong to several tenants with a different role in each, so every check names the
tenant being read or written: ``may(request, Capability.REVOKE_AGENTS, tenant_id)``. Superusers
(the operators of the instance) may do everything.

For an admin action::

    @roles.admin_action(Capability.POLL, description="Poll the store now")
    def poll_now(modeladmin, request, queryset): ...

The action is offered only to users who hold the capability in at least one tenant, and it runs
only when every selected row belongs to a tenant where they hold it; otherwise nothing is done and
the message says why ("Only an owner or an accountant can poll the store (you are a viewer in Beta Ltd).").

For a ModelAdmin: subclass ``accounts.tenancy.TenantScopedAdmin`` and set ``write_capability``; it
scopes querysets, foreign-key choices and list filters to the user's tenants and checks the tenant
of every add, change (old and new tenant) and delete. A custom view calls ``may`` / ``refusal``.
"""

from __future__ import annotations

import functools
from enum import StrEnum

from django.contrib import admin, messages

from accounts.models import Membership, Tenant
from accounts.tenant_paths import tenant_path_for

OWNER = Membership.Role.OWNER
ACCOUNTANT = Membership.Role.ACCOUNTANT
VIEWER = Membership.Role.VIEWER


class Capability(StrEnum):
    """Each value is also the ``allowed_permissions`` name an admin action uses."""

    VIEW = "view_tenant"
    EDIT_MAPPINGS = "edit_mappings"
    EDIT_INTEGRATIONS = "edit_integrations"
    REPLAY = "replay"
    BACKFILL = "backfill"
    POLL = "poll"
    TEST_CONNECTION = "test_connection"
    EXPORT = "export"
    EDIT_CONNECTIONS = "edit_connections"
    MANAGE_AGENTS = "manage_agents"
    REVOKE_AGENTS = "revoke_agents"
    MANAGE_MEMBERS = "manage_members"
    MANAGE_WEBHOOKS = "manage_webhooks"


_READ = {Capability.VIEW, Capability.EXPORT}
_ACCOUNTING = _READ | {Capability.EDIT_MAPPINGS, Capability.EDIT_INTEGRATIONS, Capability.REPLAY,
                       Capability.BACKFILL, Capability.POLL, Capability.TEST_CONNECTION}
ROLE_CAPABILITIES: dict[str, frozenset[Capability]] = {
    VIEWER: frozenset(_READ),
    ACCOUNTANT: frozenset(_ACCOUNTING),
    OWNER: frozenset(Capability),
}

# What the refusal says, completing "Only an owner … can <this>".
_WHAT = {
    Capability.VIEW: "see this tenant",
    Capability.EDIT_MAPPINGS: "change mappings",
    Capability.EDIT_INTEGRATIONS: "change integrations",
    Capability.REPLAY: "replay records",
    Capability.BACKFILL: "start a backfill",
    Capability.POLL: "poll the store",
    Capability.TEST_CONNECTION: "test a connection",
    Capability.EXPORT: "export",
    Capability.EDIT_CONNECTIONS: "change store and Sage connections",
    Capability.MANAGE_AGENTS: "create or change agents",
    Capability.REVOKE_AGENTS: "revoke agents",
    Capability.MANAGE_MEMBERS: "change who belongs to a tenant",
    Capability.MANAGE_WEBHOOKS: "register webhooks on the store",
}


def roles_with(capability: Capability) -> list[str]:
    return [role for role in (OWNER, ACCOUNTANT, VIEWER) if capability in ROLE_CAPABILITIES[role]]


def memberships(request) -> dict[int, str]:
    """tenant id → role for the request's user, cached on the request."""
    cached = getattr(request, "_ml_memberships", None)
    if cached is None:
        cached = dict(Membership.objects.filter(user=request.user).values_list("tenant_id", "role"))
        request._ml_memberships = cached
    return cached


def may(request, capability: Capability, tenant_id: int | None) -> bool:
    """May the request's user do ``capability`` in this tenant?"""
    if request.user.is_superuser:
        return True
    role = memberships(request).get(tenant_id)
    return role is not None and capability in ROLE_CAPABILITIES[role]


def may_anywhere(request, capability: Capability) -> bool:
    """In at least one of the user's tenants (to decide whether to offer a button at all)."""
    if request.user.is_superuser:
        return True
    return any(capability in ROLE_CAPABILITIES[role] for role in memberships(request).values())


def tenants_where(request, capability: Capability) -> list[int] | None:
    """Tenant ids where the user may do ``capability``; None means every tenant (superuser)."""
    if request.user.is_superuser:
        return None
    return [tid for tid, role in memberships(request).items() if capability in ROLE_CAPABILITIES[role]]


def refusal(capability: Capability, request=None, tenant_id: int | None = None) -> str:
    """Why the user may not: "Only an owner can revoke agents (you are a viewer in Beta Ltd)."."""
    who = " or ".join(f"an {r}" if r[0] in "aeiou" else f"a {r}" for r in roles_with(capability))
    text = f"Only {who} can {_WHAT[capability]}"
    if request is not None and tenant_id is not None:
        role = memberships(request).get(tenant_id)
        name = Tenant.objects.filter(pk=tenant_id).values_list("name", flat=True).first() or f"tenant {tenant_id}"
        if role:
            text += f" (you are {'an' if role[0] in 'aeiou' else 'a'} {role} in {name})"
        else:
            text += f" (you are not a member of {name})"
    return text + "."


def tenant_ids_of(queryset) -> set[int]:
    """The tenants the rows of an admin queryset belong to."""
    path = tenant_path_for(queryset.model)
    if path is None:
        return set()
    # values_list("integration__tenant") gives the tenant's id: no join to the tenant table.
    field = "pk" if path == "id" else path
    return set(queryset.order_by().values_list(field, flat=True).distinct())


def first_refused_tenant(request, capability: Capability, queryset) -> int | None:
    """A tenant of the selected rows where the user lacks ``capability``, or None if allowed everywhere."""
    if request.user.is_superuser:
        return None
    for tenant_id in sorted(tenant_ids_of(queryset)):
        if not may(request, capability, tenant_id):
            return tenant_id
    return None


def admin_action(capability: Capability, **action_kwargs):
    """An admin action that is offered only to users with ``capability`` somewhere and that refuses,
    with a message and without doing anything, when a selected row is in a tenant where they lack it."""

    def decorate(func):
        @functools.wraps(func)
        def checked(modeladmin, request, queryset):
            refused = first_refused_tenant(request, capability, queryset)
            if refused is not None:
                modeladmin.message_user(request, refusal(capability, request, refused) + " Nothing was done.",
                                        messages.ERROR)
                return None
            return func(modeladmin, request, queryset)

        return admin.action(permissions=[capability.value], **action_kwargs)(checked)

    return decorate


def check_action_permissions(model_admin_class):
    """Give a ModelAdmin class a ``has_<capability>_permission(request)`` method per capability,
    which Django's ``allowed_permissions`` calls to decide whether to offer an action."""
    for capability in Capability:
        name = f"has_{capability.value}_permission"
        if not hasattr(model_admin_class, name):
            setattr(model_admin_class, name,
                    lambda self, request, c=capability: self.has_module_permission(request) and may_anywhere(request, c))
    return model_admin_class
