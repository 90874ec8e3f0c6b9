"""The job operations for Sage 100, written once against ``Sage100Backend``.

``create_sales_order`` looks the ``SalesOrderNo`` up before it creates (Sage 100 takes no
idempotency key): running a job twice finds the first order and answers ``"existed": true``. The
customer is found inside the same job (division + number from the record links, else by email)
or created, so jobs of one company, run one at a time, never create one buyer twice.
"""

from __future__ import annotations

import threading
from decimal import Decimal

from agent.backends.sage100 import Sage100Backend
from agent.errors import SageValidationError
from mlcommon.ledger import LineKind, SalesOrder, from_payload, money

CUSTOMER_NAME_LENGTH = 30  # AR_Customer.CustomerName$
COMMENT_LENGTH = 2048  # SO_SalesOrderDetail.CommentText$
# Find-by-email then create is two Sage calls: one agent process posts for one company, and this
# lock keeps two of its threads from both missing the buyer and both creating them.
_customer_lock = threading.Lock()


def _customer_fields(doc: SalesOrder) -> dict:
    c = doc.customer
    lines = (list(c.address_lines) + ["", "", ""])[:3]
    return {"CustomerName": (c.name or c.company or c.email)[:CUSTOMER_NAME_LENGTH], "AddressLine1": lines[0],
            "AddressLine2": lines[1], "AddressLine3": lines[2], "City": c.city, "State": c.region,
            "ZipCode": c.postcode, "CountryCode": c.country, "TelephoneNo": c.phone, "EmailAddress": c.email}


def ensure_customer(backend: Sage100Backend, doc: SalesOrder) -> tuple[dict, bool]:
    """The order's customer: (division, number) when the server knows it, else the buyer's email,
    else a new customer. The buyer's own account (same email) is kept up to date with the order's
    name and address; a shared web customer (another email) is never touched."""
    wanted = _customer_fields(doc)
    if doc.customer_no:
        found = backend.find_customer(doc.ar_division_no, doc.customer_no)
        if found is None:
            raise SageValidationError(f"customer {doc.ar_division_no}-{doc.customer_no} is not in Sage 100 (CI_NOF): "
                                      "check the integration's web customer or the customer link")
        own = doc.customer.email and (found.get("EmailAddress") or "").lower() == doc.customer.email.lower()
        changes = {k: v for k, v in wanted.items() if own and v and found.get(k) != v}
        if changes:
            backend.update_customer(doc.ar_division_no, doc.customer_no, changes)
        return found, False
    found = backend.find_customer_by_email(doc.customer.email) if doc.customer.email else None
    if found:
        changes = {k: v for k, v in wanted.items() if v and found.get(k) != v}
        if changes:
            backend.update_customer(found["ARDivisionNo"], found["CustomerNo"], changes)
        return found, False
    return backend.create_customer(doc.ar_division_no or "01", wanted, numbering=doc.customer_numbering), True


def _header(doc: SalesOrder, customer: dict) -> dict:
    ship = doc.ship_to
    address = (list(ship.address_lines) + ["", "", ""])[:3] if ship else ["", "", ""]
    return {
        "SalesOrderNo": doc.sales_order_no, "ARDivisionNo": customer["ARDivisionNo"],
        "CustomerNo": customer["CustomerNo"], "OrderDate": doc.date.strftime("%Y%m%d"),
        "CustomerPONo": doc.customer_po_no, "ShipToName": ship.name if ship else "",
        "ShipToAddress1": address[0], "ShipToAddress2": address[1], "ShipToAddress3": address[2],
        "ShipToCity": ship.city if ship else "", "ShipToState": ship.region if ship else "",
        "ShipToZipCode": ship.postcode if ship else "", "ShipToCountryCode": ship.country if ship else "",
        "ShipVia": doc.ship_via, "WarehouseCode": doc.warehouse_code, "TaxSchedule": doc.tax_schedule,
        "FreightAmt": money(doc.freight), "DiscountAmt": money(doc.discount), "Comment": doc.notes[:30],
    }


def _lines(doc: SalesOrder) -> list[dict]:
    lines = []
    for line in doc.lines:
        quantity = Decimal(line.quantity)
        fields = {"ItemCode": line.stock_code, "QuantityOrdered": quantity, "UnitPrice": Decimal(line.unit_net),
                  "TaxClass": line.tax_code, "WarehouseCode": doc.warehouse_code}
        if money(Decimal(line.unit_net) * quantity) != money(line.net):
            # The store's line discounts: the extension is what the shopper paid for the line.
            fields["ExtensionAmt"] = money(line.net)
        if line.description and line.kind == LineKind.ITEM:
            fields["CommentText"] = line.description[:COMMENT_LENGTH]
        lines.append(fields)
    lines += [{"ItemCode": "/C", "CommentText": text[:COMMENT_LENGTH]} for text in doc.comments]
    return lines


def _result(order: dict, customer: dict, *, existed: bool, created: bool) -> dict:
    return {"sales_order_number": order["SalesOrderNo"], "existed": existed,
            "account_ref": f"{customer['ARDivisionNo']}-{customer['CustomerNo']}", "customer_created": created,
            "order_total": str(money(order["order_total"])), "sales_tax": str(money(order["sales_tax"]))}


def create_sales_order(backend: Sage100Backend, payload: dict, settings=None, context=None) -> dict:
    """``context``: the run's ``operations.JobContext``; its knowledge spares the look-up of item
    codes seen to exist within the hour (a code removed meanwhile is refused by the line's
    SetValue("ItemCode$") in BOI, and by the simulated company)."""
    doc = from_payload("create_sales_order", payload)
    if not doc.sales_order_no:
        raise SageValidationError("the job has no SalesOrderNo: it was mapped for Sage 50, not Sage 100")
    found = backend.find_sales_order(doc.sales_order_no)
    if found:
        if found.get("CustomerPONo") != doc.customer_po_no:
            raise SageValidationError(
                f"sales order {doc.sales_order_no} already exists in Sage 100 for customer PO "
                f"{found.get('CustomerPONo')!r}, not {doc.customer_po_no!r}: change the integration's sales order "
                "prefix, or remove the other order")
        return _result(found, {"ARDivisionNo": found["ARDivisionNo"], "CustomerNo": found["CustomerNo"]},
                       existed=True, created=False)
    codes = sorted({line.stock_code for line in doc.lines if line.stock_code})
    knowledge = getattr(context, "knowledge", None)
    if knowledge is not None:
        codes = knowledge.unknown_stock(codes)
    missing = backend.missing_item_codes(codes) if codes else []
    if knowledge is not None:
        knowledge.saw_stock([code for code in codes if code not in missing])
    if missing:
        raise SageValidationError(f"item codes not in Sage 100 (CI_NOF): {', '.join(missing)}; create them or fix "
                                  "the item mapping")
    with _customer_lock:
        customer, created = ensure_customer(backend, doc)
    order = backend.create_sales_order(_header(doc, customer), _lines(doc))
    return _result(order, customer, existed=False, created=created)


def read_changes(backend: Sage100Backend, payload: dict, settings=None) -> dict:
    kind = payload.get("kind", "stock")
    since = payload.get("since")
    items = backend.read_changes(kind, since, payload.get("options") or {})
    cursor = max((item["modified_at"] for item in items if item.get("modified_at")), default=since)
    return {"items": items, "cursor": cursor}


OPERATIONS = {"create_sales_order": create_sales_order, "read_changes": read_changes}
