"""A Sage 50 company in a SQLite file that behaves like the real one where the agent cares.

What is modelled, and why:
- Sage assigns document numbers (invoices and credit notes share one sequence, sales orders have
  their own, every posting gets an audit-trail transaction number). Nothing accepts an
  idempotency key, so a caller must look a document up by its reference before creating it.
- Logins: one user name can be logged in once (``sdoLogonNameInUse``). A login is a row in the
  ``logins`` table, the counterpart of ``ACCDATA\\QUEUE.DTA``. A process that dies without logging
  out leaves its row behind. The simulator clears such a stale row when (a) the recorded process is
  on this machine and no longer alive, or (b) it has not been seen for ``login_ttl_seconds``; the
  manual fix, like deleting QUEUE.DTA with everyone logged out in real Sage, is ``clear_logins``.
- An exclusive task (backup, year end) locks everyone out; a person editing a customer or a stock
  item locks that record; ``busy_next_writes`` makes the next N writes answer "busy".
- Every write is one SQLite transaction (``BEGIN IMMEDIATE``); the file is in WAL mode so the
  inspect tool and the tests can read while the agent writes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import sqlite3
import sys
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

from agent.errors import (
    RecordLocked,
    SageBusy,
    SageLocked,
    SageNotFound,
    SageValidationError,
    SameUserLoggedIn,
    VersionMismatch,
)
from agent.simulator.cost import CallMeter, model_from_env, read_counts, reset_counts

ZERO = Decimal("0.00")
CENT = Decimal("0.01")

UK_TAX_RATES = {0: "0.00", 1: "20.00", 2: "0.00", 5: "5.00", 9: "0.00"}

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS logins (
    user TEXT PRIMARY KEY, token TEXT NOT NULL, connection_name TEXT, pid INTEGER, host TEXT,
    logged_in_at TEXT, seen_at TEXT);
CREATE TABLE IF NOT EXISTS record_locks (
    kind TEXT NOT NULL, key TEXT NOT NULL, holder TEXT, locked_at TEXT, PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS tax_codes (code INTEGER PRIMARY KEY, rate TEXT NOT NULL, description TEXT);
CREATE TABLE IF NOT EXISTS nominals (code TEXT PRIMARY KEY, name TEXT NOT NULL, bank INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS customers (
    account_ref TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT, company TEXT, phone TEXT,
    address TEXT, postcode TEXT, country TEXT, currency TEXT, balance TEXT NOT NULL DEFAULT '0.00',
    created_at TEXT, modified_at TEXT);
CREATE TABLE IF NOT EXISTS stock (
    stock_code TEXT PRIMARY KEY, description TEXT, qty_in_stock TEXT NOT NULL DEFAULT '0',
    qty_allocated TEXT NOT NULL DEFAULT '0', sales_price TEXT NOT NULL DEFAULT '0.00',
    tax_code INTEGER NOT NULL DEFAULT 1, nominal_code TEXT DEFAULT '4000', modified_at TEXT);
CREATE TABLE IF NOT EXISTS invoices (
    number INTEGER PRIMARY KEY, type TEXT NOT NULL, account_ref TEXT NOT NULL, date TEXT,
    cust_order_number TEXT, notes TEXT, currency TEXT, net TEXT, tax TEXT, gross TEXT,
    carr_net TEXT, carr_tax TEXT, carr_tax_code INTEGER, carr_nom_code TEXT,
    against_invoice INTEGER, amount_paid TEXT NOT NULL DEFAULT '0.00', tran_number INTEGER,
    created_at TEXT, posted_by TEXT);
CREATE INDEX IF NOT EXISTS invoices_ref ON invoices (cust_order_number);
CREATE TABLE IF NOT EXISTS invoice_lines (
    invoice_number INTEGER NOT NULL, line_no INTEGER NOT NULL, stock_code TEXT, description TEXT,
    qty TEXT, unit_price TEXT, net TEXT, tax TEXT, tax_code INTEGER, nominal_code TEXT,
    PRIMARY KEY (invoice_number, line_no));
CREATE TABLE IF NOT EXISTS sales_orders (
    number INTEGER PRIMARY KEY, account_ref TEXT NOT NULL, date TEXT, cust_order_number TEXT,
    notes TEXT, net TEXT, tax TEXT, gross TEXT, status INTEGER NOT NULL DEFAULT 0, created_at TEXT);
CREATE TABLE IF NOT EXISTS sales_order_lines (
    order_number INTEGER NOT NULL, line_no INTEGER NOT NULL, stock_code TEXT, description TEXT,
    qty TEXT, unit_price TEXT, net TEXT, tax TEXT, tax_code INTEGER, nominal_code TEXT,
    PRIMARY KEY (order_number, line_no));
CREATE TABLE IF NOT EXISTS transactions (
    tran_number INTEGER PRIMARY KEY, type TEXT NOT NULL, account_ref TEXT, date TEXT, inv_ref TEXT,
    details TEXT, bank_code TEXT, amount TEXT NOT NULL, amount_paid TEXT NOT NULL DEFAULT '0.00',
    created_at TEXT, posted_by TEXT);
CREATE INDEX IF NOT EXISTS transactions_ref ON transactions (inv_ref);
CREATE TABLE IF NOT EXISTS allocations (
    id INTEGER PRIMARY KEY AUTOINCREMENT, payment_tran INTEGER NOT NULL, invoice_number INTEGER NOT NULL,
    amount TEXT NOT NULL, date TEXT, created_at TEXT);
"""

# The look-ups every job makes, indexed: without them each one read the whole table, so a company
# slowed down with every document it held (a 10,000-order run scanned thousands of customers and
# allocations per order). Also applied when an existing company file is opened.
INDEXES = """
CREATE INDEX IF NOT EXISTS customers_email ON customers (lower(email));
CREATE INDEX IF NOT EXISTS allocations_payment ON allocations (payment_tran);
CREATE INDEX IF NOT EXISTS sales_orders_ref ON sales_orders (cust_order_number);
CREATE TABLE IF NOT EXISTS nominals (code TEXT PRIMARY KEY, name TEXT NOT NULL, bank INTEGER NOT NULL DEFAULT 0);
"""

# A few accounts of Sage 50 UK's standard chart, so `agent doctor` has a chart to check the mapped
# nominal codes against (company files made before the chart existed get it when opened).
DEFAULT_NOMINALS = (("1200", "Bank Current Account", 1), ("1210", "Bank Deposit Account", 1),
                    ("1100", "Debtors Control Account", 0), ("2200", "Sales Tax Control Account", 0),
                    ("4000", "Sales Type A", 0), ("4900", "Miscellaneous Income", 0), ("4905", "Distribution", 0))

DEFAULT_META = {
    "company_name": "DEMO",
    "data_version": "32.0",
    "next_invoice_number": "1",
    "next_order_number": "1",
    "next_tran_number": "1",
    "exclusive_task": "",
    "busy_next_writes": "0",
    "login_ttl_seconds": "120",
}


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def _dec(value) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else ZERO


def _qty(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _pid_alive(pid: int) -> bool:
    if sys.platform == "win32":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class SimCompany:
    """Opens (or creates) a simulated company file. Administrative actions need no login."""

    def __init__(self, path: str | os.PathLike, *, timeout: float = 15.0):
        self.path = Path(path)
        if not self.path.exists():
            raise SageNotFound(f"no simulated Sage company at {self.path}; run `agent simulator init`")
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None,
                                   check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL with NORMAL: a commit survives the agent being killed (what the chaos run does) and
        # is fsynced at checkpoints, not at every commit. The simulator stands in for Sage's own
        # files; an fsync per look-up and per document made it, not our code, the measured ceiling.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        self._db.executescript(INDEXES)
        # Sage's own cost per call (off unless ML_SAGE_COST says otherwise: agent/simulator/cost.py).
        self.meter = CallMeter(model_from_env("sage50"))
        if not self._db.execute("SELECT 1 FROM nominals LIMIT 1").fetchone():
            self._db.executemany("INSERT OR IGNORE INTO nominals (code, name, bank) VALUES (?, ?, ?)",
                                 DEFAULT_NOMINALS)

    @classmethod
    def create(cls, path: str | os.PathLike, *, name: str = "DEMO", data_version: str = "32.0",
               exist_ok: bool = True) -> SimCompany:
        path = Path(path)
        if path.exists() and not exist_ok:
            raise FileExistsError(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA + INDEXES)
            db.execute("BEGIN IMMEDIATE")
            for key, value in {**DEFAULT_META, "company_name": name, "data_version": data_version}.items():
                db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
            for code in range(100):
                rate = UK_TAX_RATES.get(code, "0.00")
                db.execute("INSERT OR IGNORE INTO tax_codes (code, rate, description) VALUES (?, ?, ?)",
                           (code, rate, f"T{code}"))
            db.execute("COMMIT")
        finally:
            db.close()
        return cls(path)

    def close(self) -> None:
        with self._lock:
            if self.meter.enabled:
                with self._transaction("BEGIN IMMEDIATE") as db:
                    self.meter.flush(db)
            self._db.close()

    def call_counts(self) -> dict[str, dict]:
        """Sage calls by kind that sessions with the cost model on have logged out with."""
        with self.write() as db:
            return read_counts(db)

    def reset_call_counts(self) -> None:
        with self.write() as db:
            reset_counts(db)

    # -- plumbing ------------------------------------------------------------------------
    @contextlib.contextmanager
    def write(self):
        """One transaction; BEGIN IMMEDIATE takes the write lock up front so a reader never blocks it."""
        with self._transaction("BEGIN IMMEDIATE") as db:
            yield db

    @contextlib.contextmanager
    def read(self):
        """One read-only transaction (WAL: a consistent snapshot that takes no lock and writes nothing)."""
        with self._transaction("BEGIN") as db:
            yield db

    @contextlib.contextmanager
    def _transaction(self, begin: str):
        with self._lock:
            self._db.execute(begin)
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, params=()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def meta(self, key: str) -> str:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else DEFAULT_META.get(key, "")

    def set_meta(self, key: str, value) -> None:
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, str(value)))

    @staticmethod
    def _next(db, key: str) -> int:
        value = int(db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])
        db.execute("UPDATE meta SET value = ? WHERE key = ?", (str(value + 1), key))
        return value

    # -- administration (what a person does in Sage) -------------------------------------
    def seed_stock(self, skus: list[str], *, qty: Decimal = Decimal("10"), price: Decimal = Decimal("10.00"),
                   tax_code: int = 1) -> int:
        created = 0
        with self.write() as db:
            for sku in skus:
                cur = db.execute(
                    "INSERT OR IGNORE INTO stock (stock_code, description, qty_in_stock, sales_price, tax_code,"
                    " modified_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (sku, f"Item {sku}", str(qty), str(price), tax_code, now_iso()))
                created += cur.rowcount
        return created

    def remove_nominal(self, code: str) -> None:
        with self.write() as db:
            db.execute("DELETE FROM nominals WHERE code = ?", (code,))

    def add_nominal(self, code: str, name: str, *, bank: bool = False) -> None:
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO nominals (code, name, bank) VALUES (?, ?, ?)", (code, name, int(bank)))

    def set_stock(self, stock_code: str, *, qty: Decimal | None = None, price: Decimal | None = None,
                  allocated: Decimal | None = None) -> None:
        with self.write() as db:
            row = db.execute("SELECT * FROM stock WHERE stock_code = ?", (stock_code,)).fetchone()
            if row is None:
                raise SageNotFound(f"stock code {stock_code} does not exist")
            db.execute(
                "UPDATE stock SET qty_in_stock = ?, sales_price = ?, qty_allocated = ?, modified_at = ?"
                " WHERE stock_code = ?",
                (str(qty if qty is not None else row["qty_in_stock"]),
                 str(price if price is not None else row["sales_price"]),
                 str(allocated if allocated is not None else row["qty_allocated"]), now_iso(), stock_code))

    def add_customer(self, account_ref: str, name: str, email: str = "", currency: str = "") -> None:
        with self.write() as db:
            stamp = now_iso()
            db.execute("INSERT INTO customers (account_ref, name, email, currency, created_at, modified_at)"
                       " VALUES (?, ?, ?, ?, ?, ?)", (account_ref, name, email, currency, stamp, stamp))

    def lock_record(self, kind: str, key: str, holder: str = "bookkeeper") -> None:
        with self.write() as db:
            db.execute("INSERT OR REPLACE INTO record_locks (kind, key, holder, locked_at) VALUES (?, ?, ?, ?)",
                       (kind, key, holder, now_iso()))

    def unlock_record(self, kind: str, key: str) -> None:
        with self.write() as db:
            db.execute("DELETE FROM record_locks WHERE kind = ? AND key = ?", (kind, key))

    def set_exclusive(self, task: str | None) -> None:
        self.set_meta("exclusive_task", task or "")

    def set_busy(self, next_writes: int) -> None:
        self.set_meta("busy_next_writes", int(next_writes))

    def clear_logins(self) -> int:
        with self.write() as db:
            return db.execute("DELETE FROM logins").rowcount

    def logins(self) -> list[dict]:
        return [dict(r) for r in self.query("SELECT * FROM logins ORDER BY user")]

    # -- login -----------------------------------------------------------------------------
    def login(self, user: str, *, connection_name: str = "ml-connector agent",
              sdo_version: str | None = None) -> SimSession:
        data_version = self.meta("data_version")
        if sdo_version and sdo_version.split(".")[0] != data_version.split(".")[0]:
            raise VersionMismatch(
                f"Line 50 data is a different version to the SDO (data {data_version}, SDO {sdo_version})",
                sage_code=26)
        task = self.meta("exclusive_task")
        if task:
            raise SageLocked(f"the data is in exclusive use ({task})", sage_code=24)
        self.meter.charge("login")
        token = uuid.uuid4().hex
        with self.write() as db:
            row = db.execute("SELECT * FROM logins WHERE user = ?", (user,)).fetchone()
            if row is not None and not self._is_stale(row):
                raise SameUserLoggedIn(
                    f"user {user!r} is already logged in (from {row['host']}, {row['connection_name']})",
                    sage_code=23)
            stamp = now_iso()
            db.execute("INSERT OR REPLACE INTO logins (user, token, connection_name, pid, host, logged_in_at,"
                       " seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (user, token, connection_name, os.getpid(), socket.gethostname(), stamp, stamp))
        return SimSession(self, user, token)

    def _is_stale(self, row) -> bool:
        if row["host"] == socket.gethostname() and row["pid"] and not _pid_alive(int(row["pid"])):
            return True
        ttl = int(self.meta("login_ttl_seconds") or 0)
        seen = dt.datetime.fromisoformat(row["seen_at"])
        return bool(ttl) and (dt.datetime.now(dt.UTC) - seen).total_seconds() > ttl

    # -- read side used by the inspect tool and the backend -------------------------------
    def invoices(self, kind: str = "invoice") -> list[dict]:
        out = []
        for row in self.query("SELECT * FROM invoices WHERE type = ? ORDER BY number", (kind,)):
            item = dict(row)
            item["lines"] = [dict(r) for r in self.query(
                "SELECT * FROM invoice_lines WHERE invoice_number = ? ORDER BY line_no", (row["number"],))]
            out.append(item)
        return out

    def customers(self) -> list[dict]:
        return [dict(r) for r in self.query("SELECT * FROM customers ORDER BY account_ref")]

    def stock(self) -> list[dict]:
        return [dict(r) for r in self.query("SELECT * FROM stock ORDER BY stock_code")]

    def payments(self, tran_type: str = "SR") -> list[dict]:
        out = []
        for row in self.query("SELECT * FROM transactions WHERE type = ? ORDER BY tran_number", (tran_type,)):
            item = dict(row)
            item["allocations"] = [dict(r) for r in self.query(
                "SELECT invoice_number, amount, date FROM allocations WHERE payment_tran = ? ORDER BY id",
                (row["tran_number"],))]
            out.append(item)
        return out

    def sales_orders(self) -> list[dict]:
        out = []
        for row in self.query("SELECT * FROM sales_orders ORDER BY number"):
            item = dict(row)
            item["lines"] = [dict(r) for r in self.query(
                "SELECT * FROM sales_order_lines WHERE order_number = ? ORDER BY line_no", (row["number"],))]
            out.append(item)
        return out


def _account_currency(db, customer) -> str:
    """An account's currency: its own, or the company's base currency (meta ``base_currency``) for
    one made without it; "" when neither is known (an old company file: any currency is taken)."""
    if customer["currency"]:
        return str(customer["currency"]).upper()
    row = db.execute("SELECT value FROM meta WHERE key = 'base_currency'").fetchone()
    return (row[0] if row else "").upper()


def _accepts(db, customer, currency: str) -> bool:
    own = _account_currency(db, customer)
    return not own or own == currency.upper()


class SimSession:
    """A logged-in user. Every call checks the login is still valid and Sage is not locked."""

    # How often a session tells the company file it is still there (logins.seen_at). Another login
    # takes the user over only once seen_at is login_ttl_seconds (120 by default) old, so a few
    # seconds is plenty; refreshing it on every call made each look-up a write transaction.
    SEEN_REFRESH_SECONDS = 5.0

    def __init__(self, company: SimCompany, user: str, token: str):
        self.company = company
        self.user = user
        self.token = token
        self.open = True
        self._seen_refreshed = time.monotonic()
        self._read_only = False

    def logout(self) -> None:
        if not self.open:
            return
        self.open = False
        self.company.meter.charge("logout")
        with self.company.write() as db:
            db.execute("DELETE FROM logins WHERE user = ? AND token = ?", (self.user, self.token))
            self.company.meter.flush(db)

    # -- guards ----------------------------------------------------------------------------
    def _check(self, db) -> None:
        if not self.open:
            raise SageValidationError("not logged in")
        row = db.execute("SELECT token FROM logins WHERE user = ?", (self.user,)).fetchone()
        if row is None or row["token"] != self.token:
            self.open = False
            raise SameUserLoggedIn("this login was cleared or taken over; log in again")
        task = db.execute("SELECT value FROM meta WHERE key = 'exclusive_task'").fetchone()[0]
        if task:
            raise SageLocked(f"the data is in exclusive use ({task})", sage_code=24)
        if self._read_only or not self._seen_due():
            return
        db.execute("UPDATE logins SET seen_at = ? WHERE user = ?", (now_iso(), self.user))
        self._seen_refreshed = time.monotonic()

    def _seen_due(self) -> bool:
        return time.monotonic() - self._seen_refreshed >= self.SEEN_REFRESH_SECONDS

    @contextlib.contextmanager
    def _writing(self):
        # The busy knob must survive the refused write, so when it fires the transaction that
        # consumed it commits (nothing else was written) and SageBusy is raised after it.
        busy = False
        with self.company.write() as db:
            self._check(db)
            remaining = int(db.execute("SELECT value FROM meta WHERE key = 'busy_next_writes'").fetchone()[0])
            if remaining > 0:
                db.execute("UPDATE meta SET value = ? WHERE key = 'busy_next_writes'", (str(remaining - 1),))
                busy = True
            else:
                yield db
        if busy:
            raise SageBusy("Accounts application is busy; try again")

    @contextlib.contextmanager
    def _reading(self):
        """A look-up: a read-only transaction, or a short write one when seen_at is due a refresh."""
        if self._seen_due():
            with self.company.write() as db:
                yield db
            return
        self._read_only = True
        try:
            with self.company.read() as db:
                yield db
        finally:
            self._read_only = False

    @staticmethod
    def _locked(db, kind: str, key: str) -> None:
        row = db.execute("SELECT holder FROM record_locks WHERE kind = ? AND key = ?", (kind, key)).fetchone()
        if row is not None:
            raise RecordLocked(f"{kind} {key} is in use by {row['holder']}")

    # -- customers ---------------------------------------------------------------------------
    def _charge(self, kind: str, count: int = 1) -> None:
        self.company.meter.charge(kind, count)

    def find_customer(self, *, account_ref=None, email=None, name=None, currency=None) -> dict | None:
        self._charge("lookup" if account_ref else "search")
        with self._reading() as db:
            self._check(db)
            if account_ref:
                row = db.execute("SELECT * FROM customers WHERE account_ref = ?", (account_ref,)).fetchone()
            elif email:
                rows = db.execute("SELECT * FROM customers WHERE lower(email) = lower(?) ORDER BY account_ref",
                                  (email,)).fetchall()
                row = next((r for r in rows if not currency or _accepts(db, r, currency)), None)
            elif name:
                row = db.execute("SELECT * FROM customers WHERE name = ? ORDER BY account_ref", (name,)).fetchone()
            else:
                row = None
            return dict(row) if row else None

    def create_customer(self, fields: dict) -> dict:
        ref = fields["account_ref"]
        if not ref or len(ref) > 8 or ref != ref.upper() or " " in ref:
            raise SageValidationError(f"invalid account reference {ref!r}")
        self._charge("write_document")  # a customer record's Update
        with self._writing() as db:
            if db.execute("SELECT 1 FROM customers WHERE account_ref = ?", (ref,)).fetchone():
                raise SageValidationError(f"account reference {ref} already exists")
            stamp = now_iso()
            db.execute(
                "INSERT INTO customers (account_ref, name, email, company, phone, address, postcode, country,"
                " currency, created_at, modified_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (ref, fields.get("name", ""), fields.get("email", ""), fields.get("company", ""),
                 fields.get("phone", ""), "\n".join(fields.get("address_lines") or []), fields.get("postcode", ""),
                 fields.get("country", ""), fields.get("currency", ""), stamp, stamp))
            return dict(db.execute("SELECT * FROM customers WHERE account_ref = ?", (ref,)).fetchone())

    def missing_stock_codes(self, codes: list[str]) -> list[str]:
        self._charge("lookup", len(codes))  # StockRecord.Find, one per code
        with self._reading() as db:
            self._check(db)
            return [c for c in codes
                    if db.execute("SELECT 1 FROM stock WHERE stock_code = ?", (c,)).fetchone() is None]

    def missing_nominal_codes(self, codes: list[str], *, bank: bool = False) -> list[str]:
        sql = "SELECT 1 FROM nominals WHERE code = ?" + (" AND bank = 1" if bank else "")
        self._charge("lookup", len(codes))
        with self._reading() as db:
            self._check(db)
            return [c for c in codes if db.execute(sql, (str(c),)).fetchone() is None]

    def missing_tax_codes(self, codes: list[int]) -> list[int]:
        with self._reading() as db:
            self._check(db)
            return [c for c in codes
                    if db.execute("SELECT 1 FROM tax_codes WHERE code = ?", (int(c),)).fetchone() is None]

    # -- invoices and credit notes -------------------------------------------------------------
    def find_document(self, kind: str, reference: str) -> dict | None:
        self._charge("search")  # by the store reference: not a key of InvoiceRecord
        with self._reading() as db:
            self._check(db)
            row = db.execute("SELECT * FROM invoices WHERE type = ? AND cust_order_number = ? ORDER BY number",
                             (kind, reference)).fetchone()
            return dict(row) if row else None

    def find_documents(self, kind: str, references: list[str]) -> dict[str, dict]:
        """Documents of ``kind`` for many store references in one search (one walk of the record
        set on SDO): {reference: the first document with it}."""
        if not references:
            return {}
        self._charge("search")
        found: dict[str, dict] = {}
        with self._reading() as db:
            self._check(db)
            for start in range(0, len(references), 500):
                chunk = references[start:start + 500]
                rows = db.execute(f"SELECT * FROM invoices WHERE type = ? AND cust_order_number IN "
                                  f"({', '.join('?' * len(chunk))}) ORDER BY number", (kind, *chunk)).fetchall()
                for row in rows:
                    found.setdefault(row["cust_order_number"], dict(row))
        return found

    def find_invoice_by_number(self, number: int) -> dict | None:
        self._charge("lookup")
        with self._reading() as db:
            self._check(db)
            row = db.execute("SELECT * FROM invoices WHERE number = ?", (number,)).fetchone()
            return dict(row) if row else None

    def post_document(self, kind: str, header: dict, lines: list[dict]) -> dict:
        """InvoicePost.Update(): Sage numbers the document and computes its totals."""
        if kind not in ("invoice", "credit"):
            raise ValueError(kind)
        if not lines and not header.get("carr_net"):
            raise SageValidationError("a document needs at least one line")
        self._charge("write_document")
        with self._writing() as db:
            account = header["account_ref"]
            customer = db.execute("SELECT * FROM customers WHERE account_ref = ?", (account,)).fetchone()
            if customer is None:
                raise SageValidationError(f"customer account {account} does not exist")
            if header.get("currency") and not _accepts(db, customer, header["currency"]):
                # Like Sage 50 with foreign trader: a document takes its account's currency.
                raise SageValidationError(
                    f"customer account {account} is in {_account_currency(db, customer)}; a {kind} in "
                    f"{header['currency']} cannot be posted to it")
            self._locked(db, "customer", account)
            net = tax = ZERO
            for line in lines:
                self._validate_line(db, line)
                net += _dec(line["net"])
                tax += _dec(line["tax"])
            if header.get("carr_net") not in (None, ""):
                self._validate_tax(db, header.get("carr_tax_code", 1))
                net += _dec(header["carr_net"])
                tax += _dec(header.get("carr_tax"))
            gross = net + tax
            number = SimCompany._next(db, "next_invoice_number")
            tran = SimCompany._next(db, "next_tran_number")
            stamp = now_iso()
            db.execute(
                "INSERT INTO invoices (number, type, account_ref, date, cust_order_number, notes, currency, net,"
                " tax, gross, carr_net, carr_tax, carr_tax_code, carr_nom_code, against_invoice, tran_number,"
                " created_at, posted_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (number, kind, account, header.get("date"), header.get("cust_order_number"), header.get("notes", ""),
                 header.get("currency", ""), str(net), str(tax), str(gross), header.get("carr_net"),
                 header.get("carr_tax"), header.get("carr_tax_code"), header.get("carr_nom_code"),
                 header.get("against_invoice"), tran, stamp, self.user))
            for no, line in enumerate(lines, start=1):
                db.execute(
                    "INSERT INTO invoice_lines (invoice_number, line_no, stock_code, description, qty, unit_price,"
                    " net, tax, tax_code, nominal_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (number, no, line.get("stock_code"), line.get("description", ""), str(line["qty"]),
                     str(line["unit_price"]), str(line["net"]), str(line["tax"]), int(line["tax_code"]),
                     line.get("nominal_code")))
                if line.get("stock_code"):
                    sign = Decimal(-1) if kind == "invoice" else Decimal(1)
                    self._move_stock(db, line["stock_code"], qty_delta=sign * _dec(line["qty"]))
            signed = gross if kind == "invoice" else -gross
            db.execute("INSERT INTO transactions (tran_number, type, account_ref, date, inv_ref, details, amount,"
                       " created_at, posted_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (tran, "SI" if kind == "invoice" else "SC", account, header.get("date"), str(number),
                        header.get("cust_order_number"), str(gross), stamp, self.user))
            self._adjust_balance(db, account, signed)
            against = header.get("against_invoice")
            if kind == "credit" and against:
                # The credit is allocated against the invoice it reverses, up to what is outstanding.
                inv = db.execute("SELECT * FROM invoices WHERE number = ? AND type = 'invoice'",
                                 (int(against),)).fetchone()
                if inv is None:
                    raise SageValidationError(f"invoice {against} does not exist")
                outstanding = _dec(inv["gross"]) - _dec(inv["amount_paid"])
                applied = min(outstanding, gross)
                if applied > 0:
                    db.execute("UPDATE invoices SET amount_paid = ? WHERE number = ?",
                               (str(_dec(inv["amount_paid"]) + applied), inv["number"]))
                    db.execute("UPDATE invoices SET amount_paid = ? WHERE number = ?", (str(applied), number))
            return dict(db.execute("SELECT * FROM invoices WHERE number = ?", (number,)).fetchone())

    def _validate_tax(self, db, code) -> None:
        if db.execute("SELECT 1 FROM tax_codes WHERE code = ?", (int(code),)).fetchone() is None:
            raise SageValidationError(f"tax code T{code} does not exist")

    def _validate_line(self, db, line: dict) -> None:
        self._validate_tax(db, line["tax_code"])
        code = line.get("stock_code")
        if code:
            if db.execute("SELECT 1 FROM stock WHERE stock_code = ?", (code,)).fetchone() is None:
                raise SageValidationError(f"stock code {code} does not exist")
            self._locked(db, "stock", code)

    def _move_stock(self, db, code: str, *, qty_delta: Decimal = ZERO, allocated_delta: Decimal = ZERO) -> None:
        row = db.execute("SELECT qty_in_stock, qty_allocated FROM stock WHERE stock_code = ?", (code,)).fetchone()
        db.execute("UPDATE stock SET qty_in_stock = ?, qty_allocated = ?, modified_at = ? WHERE stock_code = ?",
                   (_qty(_dec(row["qty_in_stock"]) + qty_delta), _qty(_dec(row["qty_allocated"]) + allocated_delta),
                    now_iso(), code))

    @staticmethod
    def _adjust_balance(db, account: str, delta: Decimal) -> None:
        row = db.execute("SELECT balance FROM customers WHERE account_ref = ?", (account,)).fetchone()
        db.execute("UPDATE customers SET balance = ? WHERE account_ref = ?",
                   (str(_dec(row["balance"]) + delta), account))

    # -- receipts, refunds, allocation ------------------------------------------------------------
    def find_payment(self, tran_type: str, reference: str) -> dict | None:
        self._charge("search")
        with self._reading() as db:
            self._check(db)
            row = db.execute("SELECT * FROM transactions WHERE type = ? AND inv_ref = ? ORDER BY tran_number",
                             (tran_type, reference)).fetchone()
            return dict(row) if row else None

    def post_payment(self, tran_type: str, header: dict) -> dict:
        """TransactionPost.Update() for a receipt (SR) or a customer refund (SP)."""
        amount = _dec(header["amount"])
        if amount <= 0:
            raise SageValidationError("amount must be positive")
        self._charge("write_payment")
        with self._writing() as db:
            account = header["account_ref"]
            if db.execute("SELECT 1 FROM customers WHERE account_ref = ?", (account,)).fetchone() is None:
                raise SageValidationError(f"customer account {account} does not exist")
            self._locked(db, "customer", account)
            tran = SimCompany._next(db, "next_tran_number")
            db.execute("INSERT INTO transactions (tran_number, type, account_ref, date, inv_ref, details, bank_code,"
                       " amount, created_at, posted_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (tran, tran_type, account, header.get("date"), header["inv_ref"], header.get("details", ""),
                        header.get("bank_code"), str(amount), now_iso(), self.user))
            self._adjust_balance(db, account, -amount if tran_type == "SR" else amount)
            target = header.get("apply_to")
            if target is not None:
                # Applied to an invoice as it is saved (the Sage 50 US SDK's Receipt.AddInvoiceLine
                # + Save): one call, up to what the invoice still owes.
                inv = db.execute("SELECT * FROM invoices WHERE number = ?", (int(target),)).fetchone()
                if inv is None:
                    raise SageValidationError(f"invoice {target} does not exist")
                applied = min(amount, _dec(inv["gross"]) - _dec(inv["amount_paid"]))
                if applied > 0:
                    self._apply(db, tran, 0, inv, applied, header.get("date"))
            return dict(db.execute("SELECT * FROM transactions WHERE tran_number = ?", (tran,)).fetchone())

    @staticmethod
    def _apply(db, payment_tran: int, paid_before, inv, amount: Decimal, date) -> None:
        db.execute("UPDATE transactions SET amount_paid = ? WHERE tran_number = ?",
                   (str(_dec(paid_before) + amount), payment_tran))
        db.execute("UPDATE invoices SET amount_paid = ? WHERE number = ?",
                   (str(_dec(inv["amount_paid"]) + amount), inv["number"]))
        db.execute("INSERT INTO allocations (payment_tran, invoice_number, amount, date, created_at)"
                   " VALUES (?, ?, ?, ?, ?)", (payment_tran, inv["number"], str(amount), date, now_iso()))

    def allocate(self, payment_tran: int, invoice_number: int, amount: Decimal, date: str) -> None:
        """AllocatePayment: apply part of a receipt to an invoice; both carry the amount paid."""
        self._charge("write_payment")
        with self._writing() as db:
            pay = db.execute("SELECT * FROM transactions WHERE tran_number = ?", (payment_tran,)).fetchone()
            inv = db.execute("SELECT * FROM invoices WHERE number = ?", (invoice_number,)).fetchone()
            if pay is None or inv is None:
                raise SageNotFound("payment or invoice to allocate does not exist")
            self._locked(db, "customer", pay["account_ref"])
            # What Sage 50 allows: within one customer account, money received (SR/SA) against an
            # invoice and money paid back (SP) against a credit note, never across the two.
            if pay["account_ref"] != inv["account_ref"]:
                raise SageValidationError(f"payment {payment_tran} is on account {pay['account_ref']} and document "
                                          f"{invoice_number} on {inv['account_ref']}: allocation is within one account")
            wanted = "credit" if pay["type"] == "SP" else "invoice"
            if inv["type"] != wanted:
                target = "a credit note" if inv["type"] == "credit" else "an invoice"
                raise SageValidationError(f"a {pay['type']} transaction cannot be allocated to {target}")
            if amount > _dec(pay["amount"]) - _dec(pay["amount_paid"]) or \
                    amount > _dec(inv["gross"]) - _dec(inv["amount_paid"]):
                raise SageValidationError("allocation exceeds the outstanding amount")
            self._apply(db, payment_tran, pay["amount_paid"], inv, amount, date)

    def allocations_of(self, payment_tran: int) -> list[dict]:
        # Not charged: the real surfaces hand the amount paid (SDO HeaderData.AMOUNT_PAID) or the
        # applied lines (US Receipt.ApplyToInvoiceLines) back with the payment record itself.
        with self._reading() as db:
            self._check(db)
            return [dict(r) for r in db.execute(
                "SELECT * FROM allocations WHERE payment_tran = ? ORDER BY id", (payment_tran,)).fetchall()]

    # -- sales orders ---------------------------------------------------------------------------
    def find_sales_order(self, reference: str) -> dict | None:
        self._charge("search")
        with self._reading() as db:
            self._check(db)
            row = db.execute("SELECT * FROM sales_orders WHERE cust_order_number = ? ORDER BY number",
                             (reference,)).fetchone()
            return dict(row) if row else None

    def post_sales_order(self, header: dict, lines: list[dict]) -> dict:
        """SopPost.Update(): numbered by Sage; item lines allocate stock."""
        self._charge("write_document")
        with self._writing() as db:
            account = header["account_ref"]
            if db.execute("SELECT 1 FROM customers WHERE account_ref = ?", (account,)).fetchone() is None:
                raise SageValidationError(f"customer account {account} does not exist")
            net = tax = ZERO
            for line in lines:
                self._validate_line(db, line)
                net += _dec(line["net"])
                tax += _dec(line["tax"])
            number = SimCompany._next(db, "next_order_number")
            db.execute("INSERT INTO sales_orders (number, account_ref, date, cust_order_number, notes, net, tax,"
                       " gross, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (number, account, header.get("date"), header.get("cust_order_number"),
                        header.get("notes", ""), str(net), str(tax), str(net + tax), now_iso()))
            for no, line in enumerate(lines, start=1):
                db.execute(
                    "INSERT INTO sales_order_lines (order_number, line_no, stock_code, description, qty, unit_price,"
                    " net, tax, tax_code, nominal_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (number, no, line.get("stock_code"), line.get("description", ""), str(line["qty"]),
                     str(line["unit_price"]), str(line["net"]), str(line["tax"]), int(line["tax_code"]),
                     line.get("nominal_code")))
                if line.get("stock_code"):
                    self._move_stock(db, line["stock_code"], allocated_delta=_dec(line["qty"]))
            return dict(db.execute("SELECT * FROM sales_orders WHERE number = ?", (number,)).fetchone())

    # -- change polling -------------------------------------------------------------------------
    def modified_since(self, table: str, since: str | None) -> list[dict]:
        if table not in ("stock", "customers"):
            raise ValueError(table)
        self._charge("search")
        with self._reading() as db:
            self._check(db)
            if since:
                rows = db.execute(f"SELECT * FROM {table} WHERE modified_at >= ? ORDER BY modified_at",
                                  (since,)).fetchall()
            else:
                rows = db.execute(f"SELECT * FROM {table} ORDER BY modified_at").fetchall()
            return [dict(r) for r in rows]
