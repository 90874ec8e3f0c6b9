"""Dry run: what an order would become in this integration's own Sage edition, without posting.
Calls the flows' own mapping entry points (never a second mapper)."""

from __future__ import annotations

from dataclasses import dataclass, field

from connector.dashboard.store_side import adapter_of
from connector.exceptions import RecordOutcome
from mlcommon.http import ApiError


@dataclass
class Preview:
    edition_label: str
    available: bool
    title: str = ""
    documents: list[dict] = field(default_factory=list)  # {"title", "kind", "doc" (payload dict)} or {"problem"}
    problem: str = ""


PREVIEWABLE = {"sage50us", "sage50uk", "sagex3"}


def preview_order(integration, order_id: int, stored_order: dict | None = None) -> Preview:
    edition = integration.sage.edition
    label = integration.sage.get_edition_display()
    if edition not in PREVIEWABLE:
        return Preview(label, False, problem=f"A preview is not available for {label} yet: this connector does not "
                                             f"post to {label} today, so there is nothing truthful to show.")
    if adapter_of(integration) is None:
        store = integration.store.get_platform_display()
        return Preview(label, False, problem=f"A preview is not available: this build cannot read {store} orders.")
    if edition == "sagex3":
        return _x3(integration, order_id, label)
    return _sage50(integration, stored_order, order_id, label)


def _sage50(integration, order, order_id, label) -> Preview:
    from connector.flows.sage50 import preview_order as preview_sage50_order
    from mlcommon.ledger import to_payload

    preview = Preview(label, True, title=f"Order {order_id} → {label}")
    try:
        posting = preview_sage50_order(integration, order_id, raw=order)
    except ApiError as error:
        preview.problem = f"Could not read order {order_id} from the store: {error}"
        return preview
    except RecordOutcome as error:  # not postable, needs a mapping, totals differ: said as on a record
        preview.problem = str(error)
        return preview
    preview.documents.append({"title": f"Sales invoice {posting.invoice.reference}", "kind": "invoice",
                              "doc": to_payload(posting.invoice)})
    if integration.post_receipts:
        for receipt in posting.receipts:
            preview.documents.append({"title": f"Receipt {receipt.reference}", "kind": "receipt",
                                      "doc": to_payload(receipt)})
    return preview


def _x3(integration, order_id, label) -> Preview:
    from connector.flows.x3_admin import previews_for_order
    from mlcommon.ledger import to_payload

    preview = Preview(label, True, title=f"Order {order_id} → {label}")
    try:
        items = previews_for_order(integration, order_id)
    except ApiError as error:
        preview.problem = f"Could not read order {order_id} from the store: {error}"
        return preview
    for item in items:
        if item.get("problem"):
            preview.documents.append({"title": item["title"], "problem": item["problem"]})
        else:
            preview.documents.append({"title": item["title"], "kind": "journal", "doc": to_payload(item["entry"])})
    return preview
