"""What ``agent simulator inspect`` prints: the posted documents, readable by a person."""

from __future__ import annotations

import json

from agent.simulator.company import SimCompany

VIEWS = {
    "invoices": lambda c: c.invoices("invoice"),
    "credit-notes": lambda c: c.invoices("credit"),
    "customers": lambda c: c.customers(),
    "stock": lambda c: c.stock(),
    "receipts": lambda c: c.payments("SR"),
    "refunds": lambda c: c.payments("SP"),
    "sales-orders": lambda c: c.sales_orders(),
    "logins": lambda c: c.logins(),
}

COLUMNS = {
    "invoices": ["number", "cust_order_number", "account_ref", "date", "net", "tax", "carr_net", "gross",
                 "amount_paid"],
    "credit-notes": ["number", "cust_order_number", "account_ref", "date", "gross", "against_invoice"],
    "customers": ["account_ref", "name", "email", "balance", "modified_at"],
    "stock": ["stock_code", "description", "qty_in_stock", "qty_allocated", "sales_price", "modified_at"],
    "receipts": ["tran_number", "inv_ref", "account_ref", "date", "amount", "amount_paid", "bank_code"],
    "refunds": ["tran_number", "inv_ref", "account_ref", "date", "amount", "bank_code"],
    "sales-orders": ["number", "cust_order_number", "account_ref", "date", "gross", "status"],
    "logins": ["user", "connection_name", "host", "pid", "logged_in_at", "seen_at"],
}


def render(company: SimCompany, what: str, *, as_json: bool = False) -> str:
    rows = VIEWS[what](company)
    if as_json:
        return json.dumps(rows, indent=2, default=str)
    columns = COLUMNS[what]
    table = [[str(r.get(c) if r.get(c) is not None else "") for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in table]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    for row, record in zip(table, rows, strict=True):
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
        for line in record.get("lines", []):
            lines.append(f"    - {line.get('stock_code') or '(non-stock)'} x{line['qty']} @ {line['unit_price']}"
                         f" net {line['net']} tax {line['tax']} T{line['tax_code']} {line.get('description') or ''}")
        for alloc in record.get("allocations", []):
            lines.append(f"    -> allocated {alloc['amount']} to invoice {alloc['invoice_number']}")
    lines.append(f"({len(rows)} {what})")
    return "\n".join(lines)


SAGE100_VIEWS = {
    "sales-orders": (lambda c: c.sales_orders(),
                     ["SalesOrderNo", "CustomerPONo", "ARDivisionNo", "CustomerNo", "OrderDate", "FreightAmt",
                      "DiscountAmt", "SalesTaxAmt", "OrderTotal"]),
    "customers": (lambda c: c.customers(), ["ARDivisionNo", "CustomerNo", "CustomerName", "EmailAddress", "City",
                                            "DateUpdated"]),
    "items": (lambda c: c.items(), ["ItemCode", "StandardUnitPrice", "DateUpdated", "TimeUpdated"]),
    "seats": (lambda c: c.seats(), ["token", "user", "pid", "taken_at"]),
}


def render_sage100(company, what: str, *, as_json: bool = False) -> str:
    """What ``agent simulator sage100 inspect`` prints."""
    fetch, columns = SAGE100_VIEWS[what]
    rows = fetch(company)
    if as_json:
        return json.dumps(rows, indent=2, default=str)
    table = [[str(r.get(c) if r.get(c) is not None else "") for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in table]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    for row, record in zip(table, rows, strict=True):
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
        for line in record.get("lines", []):
            lines.append(f"    - {line['ItemCode']} x{line['QuantityOrdered']} @ {line['UnitPrice']} = "
                         f"{line['ExtensionAmt']} {line['TaxClass']} {line['CommentText']}".rstrip())
        for place in record.get("warehouses", []):
            lines.append(f"    - warehouse {place['WarehouseCode']}: on hand {place['QuantityOnHand']}, "
                         f"on sales orders {place['QuantityOnSalesOrder']}")
        for level in record.get("price_levels", []):
            lines.append(f"    - price level {level['PriceLevel']}: {level['Price']}")
    lines.append(f"({len(rows)} {what})")
    return "\n".join(lines)
