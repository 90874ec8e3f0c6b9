"""A fake of Sage 100's Business Object Interface built from its surface description
(``surfaces/boi.json``), with the simulated Sage 100 company as its data.

Like COM, it answers only the members the surface lists (anything else is an AttributeError
naming the object and member) and only the fields each object declares, with their types (a
string field ends in ``$`` and takes a str; a number field takes a number). It behaves as BOI
does where the backend depends on it: ``1`` / ``0`` return codes with ``sLastErrorMsg``, by-ref
values returned as ``(rc, value)`` tuples (pywin32), ``nSetKey`` answering 2 for a new record and
1 for an existing one, business objects refused until the session's program is set for their
task, and a licence seat taken by ``nSetCompany`` until ``nCleanup``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from agent.errors import SageError
from agent.simulator.sage100 import CUSTOMER_FIELDS, Sage100Company

SURFACE = json.loads((Path(__file__).parent / "surfaces" / "boi.json").read_text())
TASK_IDS = {spec["task"]: 100 + n for n, spec in enumerate(SURFACE["objects"].values()) if "task" in spec}


class Strict:
    def __init__(self, object_name: str):
        object.__setattr__(self, "_object", object_name)
        object.__setattr__(self, "_error", "")

    def __getattribute__(self, name):
        if name[:1] in "nsoD" and name[1:2].isupper() or name in ("DropObject", "Init", "NewObject"):
            obj = object.__getattribute__(self, "_object")
            if name not in SURFACE["objects"][obj]["members"]:
                raise AttributeError(f"{obj} has no member {name!r} (not in the boi surface)")
        return object.__getattribute__(self, name)

    def __setattr__(self, name, value):
        raise AttributeError(f"{self._object}.{name} cannot be assigned (BOI properties are read-only)")

    @property
    def sLastErrorMsg(self):  # noqa: N802 - the BOI name
        return object.__getattribute__(self, "_error")

    def _fail(self, message: str) -> int:
        object.__setattr__(self, "_error", message)
        return 0

    def _ok(self) -> int:
        object.__setattr__(self, "_error", "")
        return 1

    def _field(self, field: str, value=None, *, setting: bool = False) -> None:
        fields = SURFACE["objects"][self._object].get("fields", {})
        if field not in fields:
            raise AttributeError(f"{self._object} has no field {field!r} (not in the boi surface)")
        if setting and fields[field] == "String" and not isinstance(value, str):
            raise TypeError(f"{self._object}.{field} is a string field; got {type(value).__name__}")
        if setting and fields[field] == "Number" and not isinstance(value, int | float) or isinstance(value, bool):
            raise TypeError(f"{self._object}.{field} is a number field; got {type(value).__name__}")


class FakeBoi:
    """What ``Dispatch`` creates; ``log`` records the sessions and objects opened and dropped."""

    def __init__(self, company_path, *, users: dict[str, str] | None = None):
        self.company_path = company_path
        self.users = users or {"agent": "secret"}
        self.sessions: list[FakeSession] = []
        self.objects: list[FakeObject] = []

    def dispatch(self, progid: str):
        if progid != "ProvideX.Script":
            raise OSError(f"class not registered: {progid}")
        return FakeScript(self)

    @property
    def open_objects(self) -> list[str]:
        return [obj._object for obj in self.objects if not obj._dropped]


class FakeScript(Strict):
    def __init__(self, boi: FakeBoi):
        super().__init__("ProvideX.Script")
        object.__setattr__(self, "_boi", boi)
        object.__setattr__(self, "_home", None)

    def Init(self, home: str):  # noqa: N802
        if not isinstance(home, str) or not home:
            raise TypeError("Init takes the MAS90\\Home path")
        object.__setattr__(self, "_home", home)

    def NewObject(self, name: str, session=None):  # noqa: N802
        if self._home is None:
            raise RuntimeError("ProvideX.Script.Init was not called")
        if name == "SY_Session":
            created = FakeSession(self._boi)
            self._boi.sessions.append(created)
            return created
        spec = SURFACE["objects"].get(name)
        if spec is None or "task" not in spec:
            raise AttributeError(f"NewObject: no business object {name!r} (not in the boi surface)")
        if not isinstance(session, FakeSession) or session._program != TASK_IDS[spec["task"]] \
                or session._module != spec["module"] or spec["module"] not in session._dates:
            raise RuntimeError(f"NewObject({name}): the session's program, module and date are not set for "
                               f"{spec['task']} (SetDate, SetModule, SetProgram(LookupTask))")
        created = FakeObject(name, session)
        self._boi.objects.append(created)
        return created


class FakeSession(Strict):
    def __init__(self, boi: FakeBoi):
        super().__init__("SY_Session")
        for name, value in (("_boi", boi), ("_user", None), ("_seat", None), ("_company", None), ("_module", None),
                            ("_program", None), ("_dates", {}), ("_dropped", False)):
            object.__setattr__(self, name, value)

    def nSetUser(self, user, password):  # noqa: N802
        if self._boi.users.get(user) != password:
            return self._fail("Invalid user logon or password")
        object.__setattr__(self, "_user", user)
        return self._ok()

    def nSetCompany(self, code):  # noqa: N802
        if self._user is None:
            return self._fail("User not set")
        company = Sage100Company(self._boi.company_path)
        if company.meta("company_code") != code:
            company.close()
            return self._fail(f"Company {code} does not exist")
        seat = f"boi-{id(self)}"
        try:
            company.take_seat(seat, self._user)
        except SageError:
            company.close()
            return self._fail("The maximum number of users are currently using the system: no licence available")
        object.__setattr__(self, "_company", company)
        object.__setattr__(self, "_seat", seat)
        return self._ok()

    def nSetDate(self, module, date):  # noqa: N802
        if not (isinstance(date, str) and len(date) == 8 and date.isdigit()):
            return self._fail(f"Invalid date {date!r}")
        self._dates[module] = date
        return self._ok()

    def nSetModule(self, module):  # noqa: N802
        object.__setattr__(self, "_module", module)
        return self._ok()

    def nLookupTask(self, task):  # noqa: N802
        return TASK_IDS.get(task, 0)

    def nSetProgram(self, program):  # noqa: N802
        if program not in TASK_IDS.values():
            return self._fail("Invalid program")
        object.__setattr__(self, "_program", program)
        return self._ok()

    def nCleanup(self):  # noqa: N802
        if self._company is not None:
            self._company.release_seat(self._seat)
            self._company.close()
            object.__setattr__(self, "_company", None)
        return 1

    def DropObject(self):  # noqa: N802
        object.__setattr__(self, "_dropped", True)

    @property
    def company(self) -> Sage100Company:
        if self._company is None:
            raise RuntimeError("the session has no company (SetCompany)")
        return self._company


def _number(value) -> float:
    return float(Decimal(str(value or 0)))


class FakeObject(Strict):
    """A business object (_bus) or a read-only cursor (_svc) over the simulated company."""

    def __init__(self, name: str, session: FakeSession):
        super().__init__(name)
        for attr, value in (("_session", session), ("_keys", {}), ("_values", {}), ("_row", None), ("_rows", []),
                            ("_at", 0), ("_new", None), ("_dropped", False), ("_lines", None)):
            object.__setattr__(self, attr, value)

    # -- shared --------------------------------------------------------------------------------
    def DropObject(self):  # noqa: N802
        object.__setattr__(self, "_dropped", True)

    def nSetKeyValue(self, field, value):  # noqa: N802
        self._field(field, value, setting=True)
        self._keys[field.rstrip("$")] = value
        return self._ok()

    def nGetValue(self, field, default):  # noqa: N802
        self._field(field)
        row = self._current()
        if row is None:
            return 0, default
        value = row.get(field.rstrip("$"))
        return 1, (value or "") if field.endswith("$") else _number(value)

    def _current(self) -> dict | None:
        if self._object.endswith("_svc") and self._rows:
            return self._rows[self._at] if self._at < len(self._rows) else None
        return self._row

    def _company(self) -> Sage100Company:
        return self._session.company

    def _all(self) -> list[dict]:
        company = self._company()
        table = {"AR_Customer_svc": "ar_customer", "SO_SalesOrder_svc": "so_header", "CI_ItemCode_svc": "ci_item",
                 "IM_ItemWarehouse_svc": "im_item_warehouse"}[self._object]
        return company.query(f"SELECT * FROM {table}")

    # -- _svc: find and browse -----------------------------------------------------------------
    def nFind(self, key=None):  # noqa: N802
        wanted = dict(self._keys)
        matches = [row for row in self._all() if all(str(row.get(k)) == str(v) for k, v in wanted.items())]
        object.__setattr__(self, "_rows", [])
        object.__setattr__(self, "_row", matches[0] if matches else None)
        return 1 if matches else self._fail("Record not found (CI_NoKey)")

    def nMoveFirst(self):  # noqa: N802
        object.__setattr__(self, "_rows", self._all())
        object.__setattr__(self, "_at", 0)
        return 1

    def nMoveNext(self):  # noqa: N802
        object.__setattr__(self, "_at", self._at + 1)
        return 1

    @property
    def nEOF(self):  # noqa: N802
        return int(self._at >= len(self._rows))

    # -- _bus: key, values, write ------------------------------------------------------------
    def nSetKey(self):  # noqa: N802
        company = self._company()
        if self._object == "SO_SalesOrder_bus":
            key = ("sales_order", self._keys["SalesOrderNo"])
            existing = company.find_sales_order(self._keys["SalesOrderNo"])
        else:
            key = ("customer", f"{self._keys['ARDivisionNo']}-{self._keys['CustomerNo']}")
            existing = company.find_customer(self._keys["ARDivisionNo"], self._keys["CustomerNo"])
        locked = company.query("SELECT holder FROM locks WHERE kind = ? AND key = ?", key)
        if locked:
            return self._fail(f"The record is in use by {locked[0]['holder']}.")
        object.__setattr__(self, "_new", existing is None)
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_row", existing)
        self._ok()
        return 2 if existing is None else 1

    def nSetValue(self, field, value):  # noqa: N802
        self._field(field, value, setting=True)
        if self._new is None:
            return self._fail("SetKey first")
        self._values[field.rstrip("$")] = value
        return self._ok()

    @property
    def oLines(self):  # noqa: N802
        if self._lines is None:
            object.__setattr__(self, "_lines", FakeLines())
        return self._lines

    def nClear(self):  # noqa: N802
        object.__setattr__(self, "_new", None)
        object.__setattr__(self, "_values", {})
        object.__setattr__(self, "_lines", None)
        return 1

    def nWrite(self):  # noqa: N802
        company = self._company()
        try:
            if self._object == "AR_Customer_bus":
                fields = {k: v for k, v in self._values.items() if k in CUSTOMER_FIELDS}
                if self._new:
                    company.import_customer(self._keys["ARDivisionNo"], self._keys["CustomerNo"], fields)
                else:
                    company.update_customer(self._keys["ARDivisionNo"], self._keys["CustomerNo"], fields)
            else:
                header = {"SalesOrderNo": self._keys["SalesOrderNo"], **self._values}
                company.create_sales_order(header, self.oLines._written)
        except SageError as error:
            return self._fail(str(error))
        object.__setattr__(self, "_new", None)
        return self._ok()


class FakeLines(Strict):
    def __init__(self):
        super().__init__("SO_SalesOrderDetail_bus")
        object.__setattr__(self, "_current", None)
        object.__setattr__(self, "_written", [])

    def nAddLine(self):  # noqa: N802
        object.__setattr__(self, "_current", {})
        return self._ok()

    def nSetValue(self, field, value):  # noqa: N802
        self._field(field, value, setting=True)
        if self._current is None:
            return self._fail("AddLine first")
        if not self._current and field != "ItemCode$":
            return self._fail("ItemCode must be set first: it fills the line's defaults")
        self._current[field.rstrip("$")] = value
        return self._ok()

    def nGetValue(self, field, default):  # noqa: N802
        self._field(field)
        return 1, (self._current or {}).get(field.rstrip("$"), default)

    def nWrite(self):  # noqa: N802
        self._written.append(dict(self._current))
        object.__setattr__(self, "_current", None)
        return self._ok()
