"""What the flow needs from a direct (no agent) Sage 100 transport: eBusiness Web Services.

``connector.sage100.ebusiness`` (the SOAP client) provides ``post_sales_order(connection, document)
-> PostResult``: look the sales order up by its ``SalesOrderNo`` (``GetSalesOrder``), find or create
the customer (``GetCustomer`` / ``CreateCustomer``), then ``CreateSalesOrder``. It raises
``mlcommon.http.RetryableError`` for what a later try may fix (5xx, timeouts) and
``mlcommon.http.PermanentError`` with a clear message for Sage's faults.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from mlcommon.ledger import SalesOrder


@dataclass(frozen=True, kw_only=True)
class PostResult:
    sales_order_no: str
    ar_division_no: str
    customer_no: str
    existed: bool  # found by its SalesOrderNo: posted by an earlier attempt
    customer_created: bool = False
    order_total: Decimal | None = None  # Sage's own total, when the transport can read it back
    sales_tax: Decimal | None = None  # Sage's computed tax (tax schedule mode)

    @property
    def customer_ref(self) -> str:
        return f"{self.ar_division_no}-{self.customer_no}"


class SalesOrderPoster(Protocol):
    def __call__(self, connection, document: SalesOrder) -> PostResult: ...
