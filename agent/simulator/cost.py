"""What a call into a real Sage costs, for the simulated companies: a latency per kind of call, and
a count of every call by kind.

The simulated companies answer in microseconds; real Sage does not (SDO over COM reads Sage 50's
flat files, often on a network share; BOI runs ProvideX business objects). How many calls the
agent makes per order is what decides how fast a day's orders reach the books there, so each
simulated call is charged as one of these kinds:

- ``lookup``: a read by key (SalesRecord.Find on ACCOUNT_REF, StockRecord.Find per stock code,
  Sage 100 nFind on SalesOrderNo or ARDivisionNo + CustomerNo);
- ``search``: a read that is not by key (a document by its store reference, a customer by email,
  a payment by reference, the change poll): SDO walks the record set, the US SDK loads a filtered
  list, BOI browses the file;
- ``write_document``: InvoicePost / SopPost.Update, a customer record's Update, SO_SalesOrder nWrite;
- ``write_payment``: TransactionPost.Update (and AllocatePayment, when it is a call of its own);
- ``login`` / ``logout``: WorkSpace.Connect / Disconnect; SY_Session set-up / nCleanup + DropObject.

Where the numbers come from. No published timing of SDO, the Sage 50 US .NET SDK or BOI calls was
found (searched 2026-12-06: Sage City / Sage community hub, the SData and SDK issue trackers, the
sources named in ``agent/backends/SURFACE.md``; the only performance write-ups are for Sage 300's
views and say "measure"). Issue 22 states the order of magnitude: "tens to hundreds of
milliseconds" per call. The defaults below are therefore ASSUMPTIONS inside that range, chosen so
that a keyed read is an order cheaper than a search or a write and a login costs more than a
write (a login opens the company's files and, for BOI, builds a session object). Measure on a
real site (``agent doctor`` times its look-ups) and pass the figures as JSON (below) to replace them.

Off by default (every test runs at full speed, nothing is counted to disk). Switched on by the
environment of the process that opens the company file:

    ML_SAGE_COST=realistic          # the edition's defaults below
    ML_SAGE_COST=count              # no latency; the counts are still kept in the company file
    ML_SAGE_COST='{"search": 0.4}'  # the edition's defaults with these kinds replaced (seconds)

With it on, each session adds its counts to the company file's ``sage_calls`` table when it logs
out (``call_counts`` in both simulators reads it), so a bench can read what an agent process did.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, fields, replace

ENV = "ML_SAGE_COST"
KINDS = ("lookup", "search", "write_document", "write_payment", "login", "logout")
WRITES = ("write_document", "write_payment")

CALLS_TABLE = ("CREATE TABLE IF NOT EXISTS sage_calls (kind TEXT PRIMARY KEY, calls INTEGER NOT NULL DEFAULT 0,"
               " seconds REAL NOT NULL DEFAULT 0)")


@dataclass(frozen=True)
class CostModel:
    """Seconds charged per call of each kind."""

    lookup: float = 0.0
    search: float = 0.0
    write_document: float = 0.0
    write_payment: float = 0.0
    login: float = 0.0
    logout: float = 0.0

    def of(self, kind: str) -> float:
        return float(getattr(self, kind))

    def as_dict(self) -> dict[str, float]:
        return {f.name: self.of(f.name) for f in fields(self)}


# ASSUMPTIONS (see the module docstring: no published figures exist). Sage 50 UK/US desktop
# company on a file share, a few thousand customers and invoices.
SAGE50 = CostModel(lookup=0.03, search=0.25, write_document=0.35, write_payment=0.2, login=1.5, logout=0.1)
# ASSUMPTIONS. Sage 100 through BOI: a keyed nFind is cheap, a browse of AR_Customer for an email
# is not; a sales order nWrite validates and commits every line; a session is SY_Session + nSetUser
# + nSetCompany + nSetDate + nSetModule + NewObject (UAF-Auto pools sessions for this reason).
SAGE100 = CostModel(lookup=0.02, search=0.3, write_document=0.4, write_payment=0.2, login=1.0, logout=0.1)
PROFILES = {"sage50": SAGE50, "sage100": SAGE100}


def model_from_env(edition: str, value: str | None = None) -> CostModel | None:
    """The cost model ``ML_SAGE_COST`` asks for, or None when it is unset or "off"."""
    value = (os.environ.get(ENV, "") if value is None else value).strip()
    if not value or value.lower() in ("0", "off", "no", "false"):
        return None
    if value.lower() == "count":
        return CostModel()
    base = PROFILES[edition]
    if value.lower() == "realistic":
        return base
    try:
        overrides = json.loads(value)
        unknown = set(overrides) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown call kind(s) {sorted(unknown)}")
        return replace(base, **{k: float(v) for k, v in overrides.items()})
    except (ValueError, TypeError, AttributeError) as error:
        raise ValueError(f"{ENV} must be 'realistic', 'count', 'off' or a JSON object of {KINDS} in seconds: "
                         f"{error}") from error


class CallMeter:
    """Counts calls by kind and sleeps the model's latency for each; thread-safe. ``model`` None:
    counts in memory only, no latency, never written to the company file."""

    def __init__(self, model: CostModel | None):
        self.model = model
        self._lock = threading.Lock()
        self.calls = dict.fromkeys(KINDS, 0)
        self.seconds = dict.fromkeys(KINDS, 0.0)
        self._unflushed = dict.fromkeys(KINDS, 0)

    @property
    def enabled(self) -> bool:
        return self.model is not None

    def charge(self, kind: str, count: int = 1) -> None:
        if count <= 0:
            return
        latency = self.model.of(kind) * count if self.model is not None else 0.0
        with self._lock:
            self.calls[kind] += count
            self.seconds[kind] += latency
            self._unflushed[kind] += count
        if latency > 0:
            # Outside any lock or SQLite transaction: a slow Sage call must not block the inspect
            # tool or a bench reading the company file meanwhile.
            time.sleep(latency)

    def flush(self, db) -> None:
        """Add the counts since the last flush to ``sage_calls`` (``db``: a connection in a write
        transaction). Nothing is written with the model off."""
        if self.model is None:
            return
        with self._lock:
            pending, self._unflushed = self._unflushed, dict.fromkeys(KINDS, 0)
        db.execute(CALLS_TABLE)
        for kind, count in pending.items():
            if count:
                db.execute("INSERT INTO sage_calls (kind, calls, seconds) VALUES (?, ?, ?) ON CONFLICT (kind) DO "
                           "UPDATE SET calls = calls + excluded.calls, seconds = seconds + excluded.seconds",
                           (kind, count, count * self.model.of(kind)))


def read_counts(db) -> dict[str, dict]:
    """{kind: {"calls": n, "seconds": s}} from a company file's ``sage_calls`` table (zeros if none)."""
    db.execute(CALLS_TABLE)
    out = {kind: {"calls": 0, "seconds": 0.0} for kind in KINDS}
    for kind, calls, seconds in db.execute("SELECT kind, calls, seconds FROM sage_calls").fetchall():
        out[kind] = {"calls": int(calls), "seconds": float(seconds)}
    return out


def reset_counts(db) -> None:
    db.execute(CALLS_TABLE)
    db.execute("DELETE FROM sage_calls")
