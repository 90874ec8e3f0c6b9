"""A simulated Sage 100 company in one SQLite file, for the agent's ``sage100sim`` backend, the
demo and the tests: sales orders with lines, AR customers, items with price levels, item
warehouses with quantities, record locks (a person with a record open) and concurrent licence
seats (a BOI session holds one until it is cleaned up).

Tables keep Sage 100's names (SO_SalesOrderHeader, AR_Customer, CI_Item, IM_ItemWarehouse ...),
and every item and quantity row carries ``DateUpdated`` (YYYYMMDD) and ``TimeUpdated`` (seconds
since midnight as a decimal string, as Sage 100 keeps it) for the change poll. Shared by several
processes: writes take SQLite's write lock up front (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import threading
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from agent.errors import RecordLocked, SageBusy, SageNotFound, SageValidationError
from agent.simulator.cost import CallMeter, model_from_env, read_counts, reset_counts

CENT = Decimal("0.01")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS seats (token TEXT PRIMARY KEY, user TEXT, pid INTEGER, taken_at TEXT);
CREATE TABLE IF NOT EXISTS locks (kind TEXT, key TEXT, holder TEXT, PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS ar_customer (
  ARDivisionNo TEXT, CustomerNo TEXT, CustomerName TEXT, AddressLine1 TEXT, AddressLine2 TEXT,
  AddressLine3 TEXT, City TEXT, State TEXT, ZipCode TEXT, CountryCode TEXT, TelephoneNo TEXT,
  EmailAddress TEXT, DateUpdated TEXT, TimeUpdated TEXT, PRIMARY KEY (ARDivisionNo, CustomerNo));
CREATE INDEX IF NOT EXISTS ar_customer_email ON ar_customer (EmailAddress COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS ci_item (
  ItemCode TEXT PRIMARY KEY, ItemCodeDesc TEXT, ItemType TEXT, StandardUnitPrice TEXT,
  DateUpdated TEXT, TimeUpdated TEXT);
CREATE TABLE IF NOT EXISTS im_price_level (
  ItemCode TEXT, PriceLevel TEXT, Price TEXT, PRIMARY KEY (ItemCode, PriceLevel));
CREATE TABLE IF NOT EXISTS im_item_warehouse (
  ItemCode TEXT, WarehouseCode TEXT, QuantityOnHand TEXT, QuantityOnSalesOrder TEXT,
  DateUpdated TEXT, TimeUpdated TEXT, PRIMARY KEY (ItemCode, WarehouseCode));
CREATE TABLE IF NOT EXISTS tax_schedule (TaxSchedule TEXT PRIMARY KEY, Rate TEXT);
CREATE TABLE IF NOT EXISTS so_header (
  SalesOrderNo TEXT PRIMARY KEY, ARDivisionNo TEXT, CustomerNo TEXT, OrderDate TEXT, CustomerPONo TEXT,
  ShipToName TEXT, ShipToAddress1 TEXT, ShipToAddress2 TEXT, ShipToAddress3 TEXT, ShipToCity TEXT,
  ShipToState TEXT, ShipToZipCode TEXT, ShipToCountryCode TEXT, ShipVia TEXT, WarehouseCode TEXT,
  TaxSchedule TEXT, FreightAmt TEXT, DiscountAmt TEXT, Comment TEXT, TaxableAmt TEXT, NonTaxableAmt TEXT,
  SalesTaxAmt TEXT, OrderTotal TEXT, DateCreated TEXT);
CREATE TABLE IF NOT EXISTS so_detail (
  SalesOrderNo TEXT, LineKey INTEGER, ItemCode TEXT, ItemType TEXT, QuantityOrdered TEXT, UnitPrice TEXT,
  ExtensionAmt TEXT, TaxClass TEXT, WarehouseCode TEXT, CommentText TEXT, PRIMARY KEY (SalesOrderNo, LineKey));
"""

DEFAULT_META = {"company_code": "ABC", "licence_seats": "5", "next_customer_no": "1", "seat_timeout_seconds": "300"}
CUSTOMER_FIELDS = ("CustomerName", "AddressLine1", "AddressLine2", "AddressLine3", "City", "State", "ZipCode",
                   "CountryCode", "TelephoneNo", "EmailAddress")
HEADER_FIELDS = ("SalesOrderNo", "ARDivisionNo", "CustomerNo", "OrderDate", "CustomerPONo", "ShipToName",
                 "ShipToAddress1", "ShipToAddress2", "ShipToAddress3", "ShipToCity", "ShipToState", "ShipToZipCode",
                 "ShipToCountryCode", "ShipVia", "WarehouseCode", "TaxSchedule", "FreightAmt", "DiscountAmt",
                 "Comment")


def money(value) -> Decimal:
    return Decimal(str(value or "0")).quantize(CENT, rounding=ROUND_HALF_UP)


def stamp(now: dt.datetime | None = None) -> tuple[str, str]:
    """Sage 100's audit pair: DateUpdated YYYYMMDD, TimeUpdated seconds since midnight (5 decimals)."""
    now = now or dt.datetime.now(dt.UTC)
    seconds = now.hour * 3600 + now.minute * 60 + now.second + now.microsecond / 1_000_000
    return now.strftime("%Y%m%d"), f"{seconds:011.5f}"


def moment_of(date: str, time: str) -> str:
    """DateUpdated + TimeUpdated (the simulated company keeps UTC) → an ISO moment."""
    day = dt.datetime.strptime(date, "%Y%m%d").replace(tzinfo=dt.UTC)
    return (day + dt.timedelta(seconds=float(time))).isoformat(timespec="microseconds")


def pair_of(moment: str) -> str:
    """An ISO moment → the comparable "DateUpdated:TimeUpdated" form."""
    date, time = stamp(dt.datetime.fromisoformat(moment).astimezone(dt.UTC))
    return f"{date}:{time}"


class Sage100Company:
    def __init__(self, path: str | os.PathLike, *, timeout: float = 15.0):
        self.path = Path(path)
        if not self.path.exists():
            raise SageNotFound(f"no simulated Sage 100 company at {self.path}; run `agent simulator init-sage100`")
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        # Sage's own cost per call (off unless ML_SAGE_COST says otherwise: agent/simulator/cost.py).
        self.meter = CallMeter(model_from_env("sage100"))

    @classmethod
    def create(cls, path: str | os.PathLike, *, company_code: str = "ABC", seats: int = 5) -> Sage100Company:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
            db.execute("BEGIN IMMEDIATE")
            for key, value in {**DEFAULT_META, "company_code": company_code, "licence_seats": str(seats)}.items():
                db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
            db.execute("INSERT OR IGNORE INTO tax_schedule VALUES ('NONTAX', '0')")
            db.execute("INSERT OR IGNORE INTO tax_schedule VALUES ('WEB', '0.20')")
            db.execute("COMMIT")
        finally:
            db.close()
        return cls(path)

    def close(self) -> None:
        if self.meter.enabled:
            with self.write() as db:
                self.meter.flush(db)
        with self._lock:
            self._db.close()

    def call_counts(self) -> dict[str, dict]:
        """BOI calls by kind that sessions with the cost model on have cleaned up with."""
        with self.write() as db:
            return read_counts(db)

    def reset_call_counts(self) -> None:
        with self.write() as db:
            reset_counts(db)

    @contextlib.contextmanager
    def write(self):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params=()) -> list[dict]:
        with self._lock:
            return [dict(row) for row in self._db.execute(sql, params).fetchall()]

    def meta(self, key: str) -> str:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else DEFAULT_META.get(key, "")

    def set_meta(self, key: str, value) -> None:
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(value)))

    # -- administration (what a person does in Sage 100) -------------------------------------
    def set_item(self, item_code: str, *, description: str = "", price: Decimal | str | None = None,
                 levels: dict[str, Decimal | str] | None = None, warehouses: dict[str, Decimal | str] | None = None,
                 on_sales_order: dict[str, Decimal | str] | None = None) -> None:
        """Create or change an item, its price levels and its warehouse quantities; every row
        touched gets a fresh DateUpdated/TimeUpdated (what the change poll reads)."""
        date, time = stamp()
        with self.write() as db:
            exists = db.execute("SELECT 1 FROM ci_item WHERE ItemCode = ?", (item_code,)).fetchone()
            # Only quantities changed: the item record (and so the price poll) keeps its stamp.
            if not exists or price is not None or description or levels:
                db.execute("INSERT INTO ci_item (ItemCode, ItemCodeDesc, ItemType, StandardUnitPrice, DateUpdated, "
                           "TimeUpdated) VALUES (?, ?, '1', ?, ?, ?) ON CONFLICT (ItemCode) DO UPDATE SET "
                           "ItemCodeDesc = COALESCE(NULLIF(excluded.ItemCodeDesc, ''), ItemCodeDesc), "
                           "StandardUnitPrice = COALESCE(excluded.StandardUnitPrice, StandardUnitPrice), "
                           "DateUpdated = excluded.DateUpdated, TimeUpdated = excluded.TimeUpdated",
                           (item_code, description or item_code, None if price is None else str(money(price)), date,
                            time))
            for level, value in (levels or {}).items():
                db.execute("INSERT OR REPLACE INTO im_price_level VALUES (?, ?, ?)", (item_code, level, str(money(value))))
            for warehouse, qty in (warehouses or {}).items():
                db.execute("INSERT INTO im_item_warehouse VALUES (?, ?, ?, '0', ?, ?) ON CONFLICT DO UPDATE SET "
                           "QuantityOnHand = excluded.QuantityOnHand, DateUpdated = excluded.DateUpdated, "
                           "TimeUpdated = excluded.TimeUpdated", (item_code, warehouse, str(Decimal(str(qty))), date,
                                                                   time))
            for warehouse, qty in (on_sales_order or {}).items():
                db.execute("UPDATE im_item_warehouse SET QuantityOnSalesOrder = ?, DateUpdated = ?, TimeUpdated = ? "
                           "WHERE ItemCode = ? AND WarehouseCode = ?", (str(Decimal(str(qty))), date, time, item_code,
                                                                        warehouse))

    def add_customer(self, division: str, customer_no: str, name: str, email: str = "") -> None:
        date, time = stamp()
        with self.write() as db:
            db.execute("INSERT INTO ar_customer (ARDivisionNo, CustomerNo, CustomerName, EmailAddress, DateUpdated, "
                       "TimeUpdated) VALUES (?, ?, ?, ?, ?, ?)", (division, customer_no, name, email, date, time))

    def lock_record(self, kind: str, key: str, holder: str = "bookkeeper") -> None:
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO locks VALUES (?, ?, ?)", (kind, key, holder))

    def unlock_record(self, kind: str, key: str) -> None:
        with self.write() as db:
            db.execute("DELETE FROM locks WHERE kind = ? AND key = ?", (kind, key))

    def set_seats(self, seats: int) -> None:
        self.set_meta("licence_seats", seats)

    # -- sessions: one licence seat each until cleaned up ------------------------------------
    def take_seat(self, token: str, user: str) -> None:
        limit = int(self.meta("licence_seats"))
        self.meter.charge("login")
        with self.write() as db:
            taken = db.execute("SELECT user, pid FROM seats").fetchall()
            if len(taken) >= limit:
                users = ", ".join(sorted({row["user"] for row in taken})) or "nobody"
                raise SageBusy(f"all {limit} Sage 100 licence seats are in use (by {users}); the session will be "
                               "tried again once one is free")
            db.execute("INSERT INTO seats VALUES (?, ?, ?, ?)", (token, user, os.getpid(), dt.datetime.now().isoformat()))

    def release_seat(self, token: str) -> None:
        self.meter.charge("logout")
        with self.write() as db:
            db.execute("DELETE FROM seats WHERE token = ?", (token,))
            self.meter.flush(db)

    def seats(self) -> list[dict]:
        return self.query("SELECT * FROM seats ORDER BY taken_at")

    def clear_seats(self) -> int:
        with self.write() as db:
            return db.execute("DELETE FROM seats").rowcount

    # -- business objects ------------------------------------------------------------------
    @staticmethod
    def _locked(db, kind: str, key: str) -> None:
        row = db.execute("SELECT holder FROM locks WHERE kind = ? AND key = ?", (kind, key)).fetchone()
        if row:
            raise RecordLocked(f"{kind} {key} is in use by {row['holder']} (record in use); try again shortly")

    def find_customer(self, division: str, customer_no: str) -> dict | None:
        self.meter.charge("lookup")
        rows = self.query("SELECT * FROM ar_customer WHERE ARDivisionNo = ? AND CustomerNo = ?", (division, customer_no))
        return rows[0] if rows else None

    def find_customer_by_email(self, email: str) -> dict | None:
        self.meter.charge("search")  # BOI browse filters are not public: the whole file is walked
        rows = self.query("SELECT * FROM ar_customer WHERE EmailAddress = ? COLLATE NOCASE "
                          "ORDER BY ARDivisionNo, CustomerNo LIMIT 1", (email,))
        return rows[0] if rows else None

    def create_customer(self, division: str, fields: dict, *, numbering: str = "") -> dict:
        self.meter.charge("write_document")
        date, time = stamp()
        with self.write() as db:
            while True:
                counter = int(db.execute("SELECT value FROM meta WHERE key = 'next_customer_no'").fetchone()[0])
                db.execute("UPDATE meta SET value = ? WHERE key = 'next_customer_no'", (str(counter + 1),))
                width = 7 - len(numbering)
                number = f"{numbering}{counter:0{width}d}"
                if not db.execute("SELECT 1 FROM ar_customer WHERE ARDivisionNo = ? AND CustomerNo = ?",
                                  (division, number)).fetchone():
                    break
            values = {name: str(fields.get(name) or "") for name in CUSTOMER_FIELDS}
            db.execute(f"INSERT INTO ar_customer (ARDivisionNo, CustomerNo, {', '.join(CUSTOMER_FIELDS)}, DateUpdated, "
                       f"TimeUpdated) VALUES (?, ?, {', '.join('?' for _ in CUSTOMER_FIELDS)}, ?, ?)",
                       (division, number, *values.values(), date, time))
            return dict(db.execute("SELECT * FROM ar_customer WHERE ARDivisionNo = ? AND CustomerNo = ?",
                                   (division, number)).fetchone())

    def import_customer(self, division: str, customer_no: str, fields: dict) -> dict:
        """A customer under a number the caller chose (BOI's SetKey on a new key, then Write)."""
        date, time = stamp()
        values = {name: str(fields.get(name) or "") for name in CUSTOMER_FIELDS}
        with self.write() as db:
            self._locked(db, "customer", f"{division}-{customer_no}")
            if db.execute("SELECT 1 FROM ar_customer WHERE ARDivisionNo = ? AND CustomerNo = ?",
                          (division, customer_no)).fetchone():
                raise SageValidationError(f"customer {division}-{customer_no} already exists")
            db.execute(f"INSERT INTO ar_customer (ARDivisionNo, CustomerNo, {', '.join(CUSTOMER_FIELDS)}, DateUpdated, "
                       f"TimeUpdated) VALUES (?, ?, {', '.join('?' for _ in CUSTOMER_FIELDS)}, ?, ?)",
                       (division, customer_no, *values.values(), date, time))
        return {"ARDivisionNo": division, "CustomerNo": customer_no, **values}

    def update_customer(self, division: str, customer_no: str, fields: dict) -> None:
        unknown = set(fields) - set(CUSTOMER_FIELDS)
        if unknown:
            raise SageValidationError(f"AR_Customer has no field(s) {', '.join(sorted(unknown))}")
        self.meter.charge("write_document")
        date, time = stamp()
        with self.write() as db:
            self._locked(db, "customer", f"{division}-{customer_no}")
            sets = ", ".join(f"{name} = ?" for name in fields)
            db.execute(f"UPDATE ar_customer SET {sets}, DateUpdated = ?, TimeUpdated = ? WHERE ARDivisionNo = ? "
                       "AND CustomerNo = ?", (*[str(v) for v in fields.values()], date, time, division, customer_no))

    def missing_item_codes(self, codes: list[str]) -> list[str]:
        self.meter.charge("lookup", len([code for code in codes if not code.startswith("/")]))  # nFind per item
        known = {row["ItemCode"] for row in self.query(
            f"SELECT ItemCode FROM ci_item WHERE ItemCode IN ({', '.join('?' for _ in codes)})", codes)}
        return [code for code in codes if code not in known and not code.startswith("/")]

    def find_sales_order(self, sales_order_no: str) -> dict | None:
        self.meter.charge("lookup")  # SalesOrderNo is the key
        rows = self.query("SELECT * FROM so_header WHERE SalesOrderNo = ?", (sales_order_no,))
        return self._with_totals(rows[0]) if rows else None

    @staticmethod
    def _with_totals(row: dict) -> dict:
        return {**row, "order_total": money(row["OrderTotal"]), "sales_tax": money(row["SalesTaxAmt"])}

    def create_sales_order(self, header: dict, lines: list[dict]) -> dict:
        """SO_SalesOrder_bus: SetKey(SalesOrderNo), SetValue(header), AddLine/SetValue/Write per line,
        Write. Sage computes the tax from the schedule's rate on the taxable (TX) lines and freight
        is not taxed; the order's items are committed to their warehouse (QuantityOnSalesOrder)."""
        number = header["SalesOrderNo"]
        self.meter.charge("write_document")
        with self.write() as db:
            self._locked(db, "sales_order", number)
            self._locked(db, "customer", f"{header['ARDivisionNo']}-{header['CustomerNo']}")
            if db.execute("SELECT 1 FROM so_header WHERE SalesOrderNo = ?", (number,)).fetchone():
                raise SageValidationError(f"sales order {number} already exists (WS_AlreadyExists)")
            if not db.execute("SELECT 1 FROM ar_customer WHERE ARDivisionNo = ? AND CustomerNo = ?",
                              (header["ARDivisionNo"], header["CustomerNo"])).fetchone():
                raise SageValidationError(f"customer {header['ARDivisionNo']}-{header['CustomerNo']} not found (CI_NOF)")
            schedule = db.execute("SELECT Rate FROM tax_schedule WHERE TaxSchedule = ?",
                                  (header.get("TaxSchedule") or "NONTAX",)).fetchone()
            if schedule is None:
                raise SageValidationError(f"tax schedule {header.get('TaxSchedule')} is not on file")
            rate = Decimal(schedule["Rate"])
            taxable = non_taxable = Decimal("0.00")
            date, time = stamp()
            for key, line in enumerate(lines, start=1):
                code = line["ItemCode"]
                if code == "/C":
                    extension = Decimal("0.00")
                else:
                    extension = money(line["ExtensionAmt"]) if "ExtensionAmt" in line else \
                        money(Decimal(str(line["UnitPrice"])) * Decimal(str(line["QuantityOrdered"])))
                    if not code.startswith("/") and not db.execute("SELECT 1 FROM ci_item WHERE ItemCode = ?",
                                                                   (code,)).fetchone():
                        # BOI refuses the line's SetValue("ItemCode$") for an item not on file.
                        raise SageValidationError(f"item {code} is not on file (CI_NOF)")
                    if line.get("TaxClass") == "TX":
                        taxable += extension
                    else:
                        non_taxable += extension
                    warehouse = line.get("WarehouseCode") or header.get("WarehouseCode")
                    if not code.startswith("/"):
                        db.execute("UPDATE im_item_warehouse SET QuantityOnSalesOrder = QuantityOnSalesOrder + ?, "
                                   "DateUpdated = ?, TimeUpdated = ? WHERE ItemCode = ? AND WarehouseCode = ?",
                                   (str(line["QuantityOrdered"]), date, time, code, warehouse))
                db.execute("INSERT INTO so_detail VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (number, key, code, "4" if code == "/C" else ("5" if code.startswith("/") else "1"),
                            str(line.get("QuantityOrdered", "")), str(line.get("UnitPrice", "")), str(extension),
                            line.get("TaxClass", ""), line.get("WarehouseCode") or header.get("WarehouseCode", ""),
                            line.get("CommentText", "")))
            tax = money(taxable * rate)
            total = taxable + non_taxable + money(header.get("FreightAmt")) - money(header.get("DiscountAmt")) + tax
            values = [str(header.get(name, "")) for name in HEADER_FIELDS]
            db.execute(f"INSERT INTO so_header ({', '.join(HEADER_FIELDS)}, TaxableAmt, NonTaxableAmt, SalesTaxAmt, "
                       f"OrderTotal, DateCreated) VALUES ({', '.join('?' for _ in HEADER_FIELDS)}, ?, ?, ?, ?, ?)",
                       (*values, str(taxable), str(non_taxable), str(tax), str(total), date))
            return self._with_totals(dict(db.execute("SELECT * FROM so_header WHERE SalesOrderNo = ?",
                                                     (number,)).fetchone()))

    # -- product data out ------------------------------------------------------------------------
    def read_changes(self, kind: str, since: str | None, options: dict) -> list[dict]:
        """Items whose price (``kind`` "price": ``options["price_level"]``, else the standard price)
        or quantity (``kind`` "stock": on hand in ``options["warehouses"]``, else all, with the
        quantity on sales orders as ``allocated``) changed after ``since``, an ISO moment. Sage 100
        stamps rows with DateUpdated + TimeUpdated; the agent protocol wants a moment, so the pair
        is turned into one and back."""
        after = pair_of(since) if since else ""
        self.meter.charge("search")
        if kind == "price":
            level = options.get("price_level") or ""
            rows = self.query("SELECT i.ItemCode, i.StandardUnitPrice, p.Price, i.DateUpdated, i.TimeUpdated "
                              "FROM ci_item i LEFT JOIN im_price_level p ON p.ItemCode = i.ItemCode "
                              "AND p.PriceLevel = ? WHERE i.DateUpdated || ':' || i.TimeUpdated > ? "
                              "ORDER BY i.DateUpdated, i.TimeUpdated", (level, after))
            return [{"stock_code": row["ItemCode"], "price": str(money(row["Price"] or row["StandardUnitPrice"])),
                     "modified_at": moment_of(row["DateUpdated"], row["TimeUpdated"])} for row in rows]
        if kind == "customer":
            return []  # customers flow from the store to Sage 100, not back
        if kind != "stock":
            raise SageValidationError(f"read_changes kind must be 'stock' or 'price', not {kind!r}")
        warehouses = list(options.get("warehouses") or [])
        chosen = f" AND WarehouseCode IN ({', '.join('?' for _ in warehouses)})" if warehouses else ""
        rows = self.query(f"SELECT ItemCode, SUM(CAST(QuantityOnHand AS REAL)) AS on_hand, "
                          f"MAX(DateUpdated || ':' || TimeUpdated) AS stamped FROM im_item_warehouse WHERE 1 = 1"
                          f"{chosen} GROUP BY ItemCode HAVING stamped > ? ORDER BY stamped", (*warehouses, after))
        items = []
        for row in rows:
            parts = self.query(f"SELECT QuantityOnHand, QuantityOnSalesOrder FROM im_item_warehouse WHERE ItemCode = ?"
                               f"{chosen}", (row["ItemCode"], *warehouses))
            date, time = row["stamped"].split(":")
            items.append({"stock_code": row["ItemCode"],
                          "in_stock": str(sum((Decimal(p["QuantityOnHand"]) for p in parts), Decimal(0))),
                          "allocated": str(sum((Decimal(p["QuantityOnSalesOrder"]) for p in parts), Decimal(0))),
                          "modified_at": moment_of(date, time)})
        return items

    # -- inspect ------------------------------------------------------------------------------
    def sales_orders(self) -> list[dict]:
        orders = self.query("SELECT * FROM so_header ORDER BY SalesOrderNo")
        for order in orders:
            order["lines"] = self.query("SELECT * FROM so_detail WHERE SalesOrderNo = ? ORDER BY LineKey",
                                        (order["SalesOrderNo"],))
        return orders

    def customers(self) -> list[dict]:
        return self.query("SELECT * FROM ar_customer ORDER BY ARDivisionNo, CustomerNo")

    def items(self) -> list[dict]:
        items = self.query("SELECT * FROM ci_item ORDER BY ItemCode")
        for item in items:
            item["warehouses"] = self.query("SELECT * FROM im_item_warehouse WHERE ItemCode = ?", (item["ItemCode"],))
            item["price_levels"] = self.query("SELECT * FROM im_price_level WHERE ItemCode = ?", (item["ItemCode"],))
        return items
