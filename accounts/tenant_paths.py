"""How each model reaches its Tenant: read by the role checks (roles.py) and the admin scoping
(tenancy.py), which builds on the role checks."""

from __future__ import annotations

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
