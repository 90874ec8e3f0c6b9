"""'Test connection': call the store and say in words what works and what does not.

BigCommerce has no endpoint that lists a token's scopes, so each scope is inferred by probing
one cheap read endpoint: 2xx (or v2's 204) = granted, 403 = missing. Reads cannot show write
access; the report says so rather than writing to a live store to find out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import requests

from mlcommon.http import ApiError, AuthError

from .client import BigCommerceClient

PROBES = (
    # (what, path, params, the API account scope that grants it)
    ("orders", "/v2/orders", {"limit": 1}, "Orders (store_v2_orders)"),
    ("transactions and refunds", "/v3/orders/payment_actions/refunds", {"limit": 1},
     "Order Transactions (store_v2_transactions)"),
    ("customers", "/v3/customers", {"limit": 1}, "Customers (store_v2_customers)"),
    ("products", "/v3/catalog/products", {"limit": 1}, "Products (store_v2_products)"),
    ("inventory", "/v3/inventory/items", {"limit": 1}, "Inventory (store_inventory)"),
    ("webhooks", "/v3/hooks", None, "any scope; hooks belong to this API account"),
)


@dataclass
class ConnectionReport:
    reachable: bool = False
    token_valid: bool = False
    granted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    lines: list[tuple[bool, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reachable and self.token_valid and not self.missing

    def text(self) -> str:
        return "\n".join(("OK    " if good else "FAIL  ") + line for good, line in self.lines)


def test_connection(store, client: BigCommerceClient | None = None) -> ConnectionReport:
    report = ConnectionReport()
    client = client or BigCommerceClient.for_store(store)
    client.max_attempts = 1  # a probe should answer now, not after backoffs
    where = f"{store.api_base_url.rstrip('/')}/stores/{store.store_hash}/"
    for what, path, params, scope in PROBES:
        try:
            client.request("GET", path, params=params)
        except AuthError as error:
            report.reachable = True
            if error.status == 401:
                report.lines.append((False, f"The store at {where} rejected the access token (401). Create a "
                                            "new API account token and paste it into the store connection."))
                return report
            report.token_valid = True
            report.missing.append(what)
            report.lines.append((False, f"No access to {what}: give the API account the scope {scope}."))
            continue
        except ApiError as error:
            if error.status is None:
                report.lines.append((False, f"Cannot reach the store at {where}: {error}"))
                return report
            report.reachable = True
            report.lines.append((False, f"Reading {what} failed: {error}"))
            report.missing.append(what)
            continue
        except requests.RequestException as error:  # pragma: no cover - BaseApiClient wraps these
            report.lines.append((False, f"Cannot reach the store at {where}: {error}"))
            return report
        if not report.token_valid:
            report.lines.append((True, f"Store reachable at {where} and the access token is valid."))
        report.reachable = report.token_valid = True
        report.granted.append(what)
        report.lines.append((True, f"Can read {what}."))
    if report.granted:
        report.lines.append((True, "Read access checked only: write access (order status, stock, customers, "
                                   "hooks) shows on first use."))
    return report
