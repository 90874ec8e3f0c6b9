"""``agent doctor``: the self-check an installer runs once on the Sage machine before the first posting.

It logs in with the agent's settings, reads without writing anything, and checks what would
otherwise fail on the first real job, often in ways that are hard to see afterwards:

- the Sage user: it can log in and is not one a person uses (one user name cannot log in twice);
- the SDK year: the SDO / .NET SDK on this PC can open this company's data;
- SDK access (Sage 50 US): Sage has allowed the agent to use the company;
- the SDK surface: every object, member and field the backend uses exists on the live objects,
  found by reflection (COM type information for the SDO, .NET reflection for the US SDK);
- the mapped codes: nominal codes, bank account, tax codes and stock codes exist in this company.

Every finding is written for the merchant's IT person: what is wrong and what to do about it.
The last report is kept next to the journal, and the heartbeat carries its summary to the server.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agent.backends.base import SageBackend
from agent.backends.sage100 import Sage100Backend
from agent.errors import (
    BackendUnavailable,
    SageBusy,
    SageError,
    SageLocked,
    SameUserLoggedIn,
    VersionMismatch,
)

# pywin32's FUNCDESC.invkind for a method (2 / 4 / 8 are property get / put / putref).
INVOKE_FUNC = 1
# Sage 50's built-in administrator: the user a bookkeeper normally logs in with.
ADMIN_USER = "MANAGER"


@dataclass
class Finding:
    check: str  # user | version | access | members | nominal | bank | tax | stock
    ok: bool
    message: str


@dataclass
class MappedCodes:
    """The codes the agent will post to: from its config, the command line and the server's mappings."""

    nominal: dict[str, str] = field(default_factory=dict)  # code -> what it is used for
    bank: list[str] = field(default_factory=list)
    tax: list[str] = field(default_factory=list)  # "T1"
    stock: list[str] = field(default_factory=list)  # a sample of the mapped stock codes


@dataclass
class DoctorReport:
    backend: str
    company: str
    checked_at: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    @property
    def problems(self) -> list[str]:
        return [f.message for f in self.findings if not f.ok]

    def add(self, check: str, ok: bool, message: str) -> None:
        self.findings.append(Finding(check, ok, message))

    def summary(self) -> dict:
        """What the heartbeat carries: a verdict and the problems in plain words."""
        return {"ok": self.ok, "checked_at": self.checked_at, "checks": len(self.findings),
                "problems": self.problems[:50]}

    def render(self) -> str:
        lines = [f"Sage self-check for {self.company} ({self.backend}) at {self.checked_at}", ""]
        for finding in self.findings:
            lines.append(f"  [{'OK' if finding.ok else 'PROBLEM'}] {finding.message}")
        lines.append("")
        if self.ok:
            lines.append("Everything checked is in order: the agent can post to this company.")
        else:
            lines.append(f"{len(self.problems)} problem(s) found. Fix them and run `python -m agent doctor` again "
                         "before the agent posts anything.")
        return "\n".join(lines)

    def save(self, path: str | os.PathLike) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**asdict(self), "summary": self.summary()}, indent=2))
        tmp.replace(path)


def last_summary(path: str | os.PathLike | None) -> dict | None:
    """The summary of the last saved report, or None (never run, or unreadable)."""
    if not path:
        return None
    try:
        return json.loads(Path(path).read_text())["summary"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def windows_user() -> str:
    return os.environ.get("USERNAME") or getpass.getuser()


# -- the checks ----------------------------------------------------------------------------------
def run(backend: SageBackend, codes: MappedCodes, *, company: str = "", os_user: str | None = None) -> DoctorReport:
    report = DoctorReport(backend=backend.name, company=company,
                          checked_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    check_user(report, backend, os_user if os_user is not None else windows_user())
    if not connect(report, backend):
        return report
    try:
        if isinstance(backend, Sage100Backend):
            check_item_codes(report, backend, codes)
            return report
        check_version_after_login(report, backend)
        check_members(report, backend)
        check_codes(report, backend, codes)
    finally:
        backend.disconnect()
    return report


def check_user(report: DoctorReport, backend: SageBackend, os_user: str) -> None:
    user = getattr(backend, "user", None)  # the agent's own backend object, not an SDK object
    if user is None:  # Sage 50 US logs in as the Windows user; its access check comes at login
        return
    if user.strip().upper() == ADMIN_USER:
        report.add("user", False,
                   f"The agent logs in to Sage as {user}, Sage's administrator, which people use. Sage lets one "
                   "user name log in only once at a time, so the agent and a person would lock each other out. "
                   "In Sage 50 create a user just for the agent (Settings > Access Rights) and put it as `user` "
                   "under [backend_options] in the agent's config.")
    elif os_user and user.strip().lower() == os_user.strip().lower():
        report.add("user", False,
                   f"The agent's Sage user {user!r} has the same name as the Windows user running this check, so "
                   "it is probably a person's own Sage login. Sage lets one user name log in only once at a "
                   "time: give the agent its own Sage user.")
    else:
        report.add("user", True, f"The agent uses its own Sage user {user!r}.")


def connect(report: DoctorReport, backend: SageBackend) -> bool:
    try:
        backend.connect()
    except VersionMismatch as exc:
        report.add("version", False, f"The Sage SDK on this PC does not match the company's Sage version. {exc}")
    except SameUserLoggedIn as exc:
        report.add("user", False,
                   f"Sage refused the login because this user is logged in already ({exc}). If a person uses "
                   "this user, give the agent its own; if nobody is logged in, a crashed program left the "
                   "login behind: have everyone log out of Sage and try again.")
    except SageLocked as exc:
        report.add("access", False, f"Sage did not let the agent in: {exc}")
    except SageBusy as exc:
        report.add("access", False, f"Sage is busy or has no free licence for the agent: {exc}. Try again "
                                    "when fewer people are using Sage.")
    except BackendUnavailable as exc:
        report.add("version", False, f"The Sage SDK cannot be used on this PC: {exc}")
    except SageError as exc:
        report.add("user", False, f"The agent could not log in to Sage: {exc}. Check the user, password and "
                                  "company settings in the agent's config.")
    else:
        report.add("user", True, "The agent logged in to Sage.")
        if backend.name == "sage50us":
            report.add("access", True, "Sage 50 has granted this program SDK access to the company.")
        return True
    return False


def check_version_after_login(report: DoctorReport, backend: SageBackend) -> None:
    if backend.name == "sage50us":
        sdk = str(backend.api.sdk_version or "")
        schema = str(backend.company_identifier.SchemaVersion or "")
        sdk_year, data_year = sdk.split(".")[0], schema.split(".")[0]
        # SchemaVersion's format is not in public material; compare only when it starts with a year.
        if re.fullmatch(r"20\d\d", data_year) and sdk_year != data_year:
            report.add("version", False,
                       f"The Sage 50 US SDK on this PC is from Sage 50 {sdk_year} (version {sdk}) but the company's "
                       f"data is from Sage 50 {data_year}. Install the SDK of the same year as the Sage 50 that "
                       f"opens this company, and set sdk_path / sage_year in the agent's config.")
            return
        report.add("version", True, f"The SDK (version {sdk}) matches the company's data (schema {schema or '?'}).")
        return
    version = backend.describe().get("sage_version") or "?"
    report.add("version", True, f"The Sage SDK version matches the company's data ({version}).")


def check_members(report: DoctorReport, backend: SageBackend) -> None:
    if backend.name == "sdo":
        problems = sdo_member_problems(backend)
        what = "Sage Data Objects (SDO)"
    elif backend.name == "sage50us":
        problems = net_member_problems(backend)
        what = "Sage 50 US SDK"
    else:
        report.add("members", True, "Simulated company: there is no SDK to inspect.")
        return
    for problem in problems:
        report.add("members", False, f"{what}: {problem}")
    if not problems:
        report.add("members", True, f"Every {what} object, member and field the agent uses exists on this PC.")


def check_codes(report: DoctorReport, backend: SageBackend, codes: MappedCodes) -> None:
    nominal = [c for c in codes.nominal if c]
    for code in backend.missing_nominal_codes(nominal):
        report.add("nominal", False,
                   f"Nominal code {code} ({codes.nominal[code]}) is not in this company's chart of accounts. Create "
                   "it in Sage, or change the mapping in ml-connector (or the agent's config) to a code that "
                   "exists.")
    if nominal and not [f for f in report.findings if f.check == "nominal" and not f.ok]:
        report.add("nominal", True, f"Nominal codes found: {', '.join(nominal)}.")
    for code in backend.missing_bank_codes([c for c in codes.bank if c]):
        report.add("bank", False,
                   f"Bank account {code} is not a bank account in this company. Receipts and refunds are posted "
                   "to it: create it in Sage (Bank accounts > New) or map the payment method to an existing one.")
    if codes.bank and not [f for f in report.findings if f.check == "bank" and not f.ok]:
        report.add("bank", True, f"Bank account(s) found: {', '.join(codes.bank)}.")
    if backend.name == "sage50us":
        report.add("tax", True, "Sage 50 US applies the customer's sales tax itself: no tax codes to check.")
    else:
        check_tax_codes(report, backend, codes)
    missing = backend.missing_stock_codes([c for c in codes.stock if c])
    for code in missing:
        report.add("stock", False,
                   f"Stock code {code} is mapped to a store product but is not in this Sage company. Create the "
                   "product in Sage with exactly this code, or correct the SKU mapping in ml-connector; orders "
                   "for it would wait until then.")
    if codes.stock and not missing:
        report.add("stock", True, f"{len(codes.stock)} mapped stock code(s) checked: all exist.")


def check_item_codes(report: DoctorReport, backend: Sage100Backend, codes: MappedCodes) -> None:
    """Sage 100: the session opened (user, company, licence seat), and the mapped item codes exist.
    Sage 100 has no nominal, bank or tax codes on a sales order: nothing else to check."""
    missing = backend.missing_item_codes([c for c in codes.stock if c])
    for code in missing:
        report.add("stock", False,
                   f"Item code {code} is mapped to a store product but is not in this Sage 100 company. Create it "
                   "in Item Maintenance with exactly this code, or correct the SKU mapping; orders for it would "
                   "wait until then.")
    if codes.stock and not missing:
        report.add("stock", True, f"{len(codes.stock)} mapped item code(s) checked: all exist.")


def check_tax_codes(report: DoctorReport, backend: SageBackend, codes: MappedCodes) -> None:
    numbers = {}
    for code in codes.tax:
        match = re.fullmatch(r"[Tt]?(\d{1,3})", str(code).strip())
        if match is None:
            report.add("tax", False, f"Tax code {code!r} is not a Sage tax code (T0 to T99): fix the tax mapping.")
        else:
            numbers[int(match.group(1))] = code
    for number in backend.missing_tax_codes(sorted(numbers)):
        report.add("tax", False, f"Tax code {numbers[number]} does not exist in this company: set it up in Sage "
                                 "(Settings > Configuration > Tax Codes) or fix the tax mapping.")
    if numbers and not [f for f in report.findings if f.check == "tax" and not f.ok]:
        report.add("tax", True, f"Tax codes accepted: {', '.join(str(numbers[n]) for n in sorted(numbers))}.")


# -- reflection on the live SDK objects ------------------------------------------------------------
def com_member_kinds(obj) -> dict[str, str]:
    """Member name -> "method" | "property", read from the object's COM type information."""
    info = obj._oleobj_.GetTypeInfo()
    attr = info.GetTypeAttr()
    kinds: dict[str, str] = {}
    for index in range(attr.cFuncs):
        desc = info.GetFuncDesc(index)
        kinds.setdefault(info.GetNames(desc.memid)[0], "method" if desc.invkind == INVOKE_FUNC else "property")
    for index in range(attr.cVars):
        kinds.setdefault(info.GetNames(info.GetVarDesc(index).memid)[0], "property")
    return kinds


def sdo_member_problems(backend) -> list[str]:
    from agent.backends.sdo import COM_MEMBERS  # noqa: PLC0415 - only the SDO backend needs it

    settings = {backend.reference_field: "reference_field", backend.notes_field: "notes_field",
                backend.nominal_key_field: "nominal_key_field", backend.bank_key_field: "bank_key_field",
                backend.currency_code_field: "currency_code_field",
                **{f: "net_total_fields" for f in backend.net_total_fields},
                **{f: "tax_total_fields" for f in backend.tax_total_fields}}
    problems: list[str] = []
    live = {"SDOEngine": backend.engine, "WorkSpace": backend.ws}
    for name in COM_MEMBERS:
        if name in live:
            continue
        try:
            live[name] = backend.ws.CreateObject(name)
        except Exception as exc:  # noqa: BLE001 - COM raises its own error type
            problems.append(f"the object {name} cannot be created on this PC ({exc}).")
    for name, members in COM_MEMBERS.items():
        if name not in live:
            continue
        try:
            kinds = com_member_kinds(live[name])
        except Exception as exc:  # noqa: BLE001
            problems.append(f"cannot read the type information of {name} ({exc}).")
            continue
        for member, kind in members.items():
            if member not in kinds:
                problems.append(f"{name} has no {kind} {member}, which the agent uses. The SDO installed here "
                                "differs from the one the agent was built for: install the SDO that ships with "
                                "this Sage 50 version, and send this report to ml-connector support.")
            elif kinds[member] != kind:
                problems.append(f"{name}.{member} is a {kinds[member]} here, the agent expects a {kind}.")
    for owner, keys in backend.used_fields().items():
        name, _, part = owner.partition(".")
        obj = live.get(name)
        if obj is None:
            continue
        try:
            buffer = obj.Header if part == "Header" else obj.Items.Add() if part == "Items" else obj
        except Exception as exc:  # noqa: BLE001
            problems.append(f"cannot open {owner} ({exc}).")
            continue
        for key in dict.fromkeys(keys):
            try:
                buffer.Fields.Item(key)
            except Exception:  # noqa: BLE001 - an unknown field key is a COM error
                setting = settings.get(key)
                hint = (f" Set `{setting}` under [backend_options] to the field this Sage version uses."
                        if setting else " Install the SDO that matches this Sage 50 version.")
                problems.append(f"{owner} has no field {key}, which the agent uses.{hint}")
    return problems


def net_member_problems(backend) -> list[str]:
    from agent.backends.sage50us import NET_MEMBERS  # noqa: PLC0415 - only the US backend needs it

    expected = {name: dict(members) for name, members in NET_MEMBERS.items()}
    # Names that are settings are checked as configured.
    expected["InventoryItem"][backend.stock_quantity_property] = "property:"
    settings = {("InventoryItem", backend.stock_quantity_property): "stock_quantity_property"}
    # Types the backend reaches through a list (its Load fills entities): found via their factory's Create.
    through_create = {"AccountFactory", "InventoryItemFactory"}
    problems: list[str] = []
    seen: set[str] = set()
    queue = [backend.session.GetType(), backend.company.GetType(), backend.company_identifier.GetType()]
    while queue:
        net_type = queue.pop(0)
        type_name = str(net_type.Name)
        if type_name in seen or type_name not in expected:
            continue
        seen.add(type_name)
        wanted = dict(expected[type_name])
        if type_name in through_create:
            wanted.setdefault("Create", "method")
        for member, spec in wanted.items():
            kind, _, want_type = spec.partition(":")
            infos = list(net_type.GetMember(member))
            if not infos:
                setting = settings.get((type_name, member))
                hint = (f" Set `{setting}` under [backend_options] to the name this SDK uses." if setting else
                        " The SDK installed here differs from the one the agent was built for: install the SDK "
                        "of this Sage 50 year, and send this report to ml-connector support.")
                problems.append(f"{type_name} has no {kind} {member}, which the agent uses.{hint}")
                continue
            info = infos[0]
            actual_kind = str(info.MemberType).split(".")[-1].lower()
            if actual_kind != kind:
                problems.append(f"{type_name}.{member} is a {actual_kind} here, the agent expects a {kind}.")
                continue
            result = info.PropertyType if kind == "property" else info.ReturnType
            if want_type and str(result.Name) != want_type:
                problems.append(f"{type_name}.{member} is of type {result.Name} here, the agent expects {want_type}.")
            queue.append(result)
    if not problems:
        unreached = sorted(set(expected) - seen)
        problems.extend(f"could not reach {name} to inspect it." for name in unreached)
    return problems
