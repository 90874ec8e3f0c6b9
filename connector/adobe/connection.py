""""Test connection" for an Adobe Commerce store: one cheap signed read per API the sync uses, and
when something fails, exactly what is wrong (clock skew, signature, the 2.4.4+ bearer setting, a
missing ACL resource, IMS credentials, TLS), not just the status code."""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass, field

import requests

from mlcommon.http import ApiError

from .client import AdobeCommerceClient, Filter, explain, render_message


@dataclass
class ConnectionReport:
    ok: bool
    checks: list[tuple[str, bool, str]] = field(default_factory=list)  # (what, passed, detail)

    @property
    def message(self) -> str:
        return "; ".join(f"{what}: {'OK' if passed else detail}" for what, passed, detail in self.checks)


PROBES = (
    ("Orders (Magento_Sales::sales)", "/V1/orders"),
    ("Invoices", "/V1/invoices"),
    ("Credit memos", "/V1/creditmemos"),
)


def clock_offset(response: requests.Response | None) -> float | None:
    """The store's clock minus ours, from its Date header (None without one)."""
    if response is None or not response.headers.get("Date"):
        return None
    try:
        theirs = email.utils.parsedate_to_datetime(response.headers["Date"]).timestamp()
    except (TypeError, ValueError):
        return None
    return theirs - time.time()


def check_connection(store, client: AdobeCommerceClient | None = None) -> ConnectionReport:
    try:
        client = client or AdobeCommerceClient.for_store(store)
    except ValueError as error:
        return ConnectionReport(False, [("Credentials", False, str(error))])
    client.max_attempts = 1
    report = ConnectionReport(True)
    for what, path in PROBES:
        try:
            client.get(path, params=_probe(), retry=False)
        except requests.exceptions.SSLError as error:
            report.ok = False
            report.checks.append((what, False, f"TLS: the store's certificate is not trusted ({error}). For a "
                                              "self-signed on-premises store, give its CA bundle or turn off TLS "
                                              "verification on this connection."))
            break
        except ApiError as error:
            report.ok = False
            response_offset = clock_offset(getattr(client, "last_response", None))
            message = render_message(error.body) if error.body else str(error)
            report.checks.append((what, False, explain(error.status or 0, message, client.auth,
                                                       clock_offset=response_offset) or str(error)))
            continue
        report.checks.append((what, True, ""))
    return report


def _probe():
    from .client import search_params

    return search_params([[Filter("entity_id", 0, "gt")]], page_size=1, fields="total_count")
