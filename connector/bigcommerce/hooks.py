"""Register and repair the store's webhooks for one integration.

Hooks fail quietly: BigCommerce deactivates one after ~48 h of failed deliveries (and after 90
days without events), and deletes them with the API account. ``ensure_hooks`` is therefore
meant to be run again at any time: it creates what is missing, reactivates what was switched
off (and says so, because events in between were lost: the poll catches them up), and puts our
destination and secret header back on a hook that drifted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings

from mlcommon.http import ApiError

from .client import BigCommerceClient
from .signatures import SECRET_HEADER

SCOPES = (
    "store/order/created",
    "store/order/updated",
    "store/order/statusUpdated",
    "store/order/refund/created",
)
# Scopes earlier versions subscribed to and nothing reads: stock flows from Sage to the store, so
# a store-side inventory change only ever got a note. Each of our own stock pushes made the store
# send one delivery per SKU back (on a busy day more than half of all deliveries, every one a
# request to answer and a row to write). ensure_hooks removes our hooks for these.
RETIRED_SCOPES = (
    "store/product/inventory/updated",
    "store/sku/inventory/updated",
)


def destination_for(integration, public_base_url: str | None = None) -> str:
    return (public_base_url or settings.PUBLIC_BASE_URL).rstrip("/") + integration.webhook_path


@dataclass
class HookReport:
    destination: str
    created: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        parts = []
        for label, items in (("created", self.created), ("reactivated", self.reactivated),
                             ("repaired", self.repaired), ("already fine", self.unchanged),
                             ("removed (no longer used)", self.removed)):
            if items:
                parts.append(f"{label}: {', '.join(items)}")
        if self.reactivated:
            parts.append("events sent while those hooks were off are not replayed; the next poll picks them up")
        parts.extend(self.warnings)
        parts.extend(f"error: {e}" for e in self.errors)
        return "; ".join(parts) or "nothing to do"


def _is_local(url: str) -> bool:
    host = (urlsplit(url or "").hostname or "").lower()
    return host in ("localhost", "127.0.0.1", "::1")


def ensure_hooks(integration, client: BigCommerceClient | None = None, scopes=SCOPES, *,
                 public_base_url: str | None = None) -> HookReport:
    """``public_base_url``: where the web process answers, when the caller is not that process
    (the demo starts the web on a port of its choosing); default PUBLIC_BASE_URL."""
    client = client or BigCommerceClient.for_store(integration.store)
    destination = destination_for(integration, public_base_url)
    headers = {SECRET_HEADER: integration.webhook_secret}
    report = HookReport(destination)
    if not destination.startswith("https://") and not _is_local(integration.store.api_base_url):
        # The sandbox store (on this machine) delivers to http:// as well; only a real store needs https.
        report.warnings.append(f"BigCommerce only delivers to https:// on port 443; {destination} will not "
                               "receive real deliveries (set PUBLIC_BASE_URL)")
    existing = client.list_hooks()
    for scope in scopes:
        same_scope = [h for h in existing if h.get("scope") == scope]
        ours = next((h for h in same_scope if h.get("destination") == destination), None)
        # A hook for our webhook path on an old host (PUBLIC_BASE_URL changed) is moved, not duplicated.
        moved = ours or next((h for h in same_scope
                              if str(h.get("destination", "")).endswith(integration.webhook_path)), None)
        try:
            if moved is None:
                client.create_hook(scope, destination, headers)
                report.created.append(scope)
                continue
            changes = {}
            if moved.get("destination") != destination:
                changes["destination"] = destination
            if (moved.get("headers") or {}).get(SECRET_HEADER) != integration.webhook_secret:
                changes["headers"] = headers
            if not moved.get("is_active", True):
                changes["is_active"] = True
            if changes:
                client.update_hook(moved["id"], **changes)
                (report.reactivated if "is_active" in changes else report.repaired).append(scope)
            else:
                report.unchanged.append(scope)
        except ApiError as error:
            report.errors.append(f"{scope}: {error}")
    for hook in existing:
        if hook.get("scope") in RETIRED_SCOPES and (
                hook.get("destination") == destination
                or str(hook.get("destination", "")).endswith(integration.webhook_path)):
            try:
                client.delete_hook(hook["id"])
                report.removed.append(hook["scope"])
            except ApiError as error:
                report.errors.append(f"{hook['scope']}: {error}")
    return report
