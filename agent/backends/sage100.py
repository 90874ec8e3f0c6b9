"""The interface every Sage 100 backend implements (BOI on Windows, the simulated company), in
Sage 100's own field names without the ``$`` BOI puts on string fields.

Sage 100 is not Sage 50: a sales order is keyed by its ``SalesOrderNo`` (which we choose), a
customer by ``ARDivisionNo`` + ``CustomerNo``, and item lines start with ``ItemCode`` (it fills the
line's defaults). The operations in ``agent/sage100_operations.py`` are written against this
interface only, so the look-up before create and the customer rules are the same everywhere.
"""

from __future__ import annotations

import abc
import contextlib


class Sage100Backend(abc.ABC):
    name = "sage100"
    edition = "sage100"

    @abc.abstractmethod
    def connect(self) -> None:
        """Open a session (BOI: SY_Session with user, company, date, module), taking a licence seat."""

    @abc.abstractmethod
    def disconnect(self) -> None:
        """Give the seat back (BOI: nCleanup + DropObject); safe to call twice."""

    def close(self) -> None:
        self.disconnect()

    @contextlib.contextmanager
    def session(self):
        self.connect()
        try:
            yield self
        finally:
            self.disconnect()

    def describe(self) -> dict:
        return {"backend": self.name, "sage_edition": self.edition}

    # customers (AR_Customer): fields CustomerName, AddressLine1..3, City, State, ZipCode, CountryCode,
    # TelephoneNo, EmailAddress
    @abc.abstractmethod
    def find_customer(self, division: str, customer_no: str) -> dict | None: ...

    @abc.abstractmethod
    def find_customer_by_email(self, email: str) -> dict | None: ...

    @abc.abstractmethod
    def create_customer(self, division: str, fields: dict, *, numbering: str = "") -> dict:
        """A new customer under the next number (``numbering`` + a counter, or Sage's next)."""

    @abc.abstractmethod
    def update_customer(self, division: str, customer_no: str, fields: dict) -> None: ...

    # items
    @abc.abstractmethod
    def missing_item_codes(self, codes: list[str]) -> list[str]: ...

    # sales orders (SO_SalesOrder): header fields and lines; answers the order as Sage holds it with
    # its computed totals ("order_total", "sales_tax").
    @abc.abstractmethod
    def find_sales_order(self, sales_order_no: str) -> dict | None: ...

    @abc.abstractmethod
    def create_sales_order(self, header: dict, lines: list[dict]) -> dict: ...

    # product data out: items changed since a DateUpdated/TimeUpdated cursor
    @abc.abstractmethod
    def read_changes(self, kind: str, since: str | None, options: dict | None = None) -> list[dict]: ...
