"""The Sage 100 simulator backend: the simulated company file (``agent/simulator/sage100.py``)
behind the same interface BOI has, including a licence seat per session that ``disconnect`` gives
back (what BOI's nCleanup + DropObject do)."""

from __future__ import annotations

import secrets

from agent.backends.sage100 import Sage100Backend
from agent.errors import BackendUnavailable
from agent.simulator.sage100 import Sage100Company


class Sage100SimulatorBackend(Sage100Backend):
    name = "sage100sim"

    def __init__(self, company: str, *, user: str = "AGENT", price_level: str = "", warehouses: list[str] | None = None,
                 less_on_sales_order: bool = False, **_ignored):
        self.company_path = company
        self.user = user
        # What the agent's own change poll reads (backend options in its config file).
        self.change_options = {"price_level": price_level, "warehouses": list(warehouses or []),
                               "less_on_sales_order": less_on_sales_order}
        self._company: Sage100Company | None = None
        self._seat: str | None = None

    @property
    def company(self) -> Sage100Company:
        if self._company is None:
            self._company = Sage100Company(self.company_path)
        return self._company

    def connect(self) -> None:
        if self._seat is None:
            seat = secrets.token_hex(8)
            self.company.take_seat(seat, self.user)
            self._seat = seat

    def disconnect(self) -> None:
        if self._seat is not None:
            seat, self._seat = self._seat, None
            self.company.release_seat(seat)

    def close(self) -> None:
        self.disconnect()
        if self._company is not None:
            self._company.close()
            self._company = None

    def describe(self) -> dict:
        return {**super().describe(), "company": self.company.meta("company_code")}

    def _session(self) -> Sage100Company:
        if self._seat is None:
            raise BackendUnavailable("no Sage 100 session: connect first")
        return self.company

    def find_customer(self, division: str, customer_no: str) -> dict | None:
        return self._session().find_customer(division, customer_no)

    def find_customer_by_email(self, email: str) -> dict | None:
        return self._session().find_customer_by_email(email)

    def create_customer(self, division: str, fields: dict, *, numbering: str = "") -> dict:
        return self._session().create_customer(division, fields, numbering=numbering)

    def update_customer(self, division: str, customer_no: str, fields: dict) -> None:
        self._session().update_customer(division, customer_no, fields)

    def missing_item_codes(self, codes: list[str]) -> list[str]:
        return self._session().missing_item_codes(codes)

    def find_sales_order(self, sales_order_no: str) -> dict | None:
        return self._session().find_sales_order(sales_order_no)

    def create_sales_order(self, header: dict, lines: list[dict]) -> dict:
        return self._session().create_sales_order(header, lines)

    def read_changes(self, kind: str, since: str | None, options: dict | None = None) -> list[dict]:
        return self._session().read_changes(kind, since, options or self.change_options)
