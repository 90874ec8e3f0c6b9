"""Every SDK name the backends use is in the surface description the fakes are built from.

The fakes refuse what their surface does not list, so a name that is in a backend but not in the
surface would make a test fail; this test says which name, and also catches names on code paths
the behaviour tests do not reach. SDK members are PascalCase (COM and .NET); SDO field keys are
UPPER_CASE strings; factories, filter paths and enum members are strings too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from agent.backends import sage50us, sdo
from agent.tests.surface_fakes import Surface

BACKENDS = Path(sdo.__file__).parent
SDK_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]*(\.[A-Z][A-Za-z0-9_]*)*$")
# Python's own PascalCase names a backend may mention (types, not SDK members).
PYTHON_NAMES = {"Decimal", "SimpleNamespace", "Exception", "AttributeError", "ImportError", "ValueError",
                "PackageNotFoundError", "P"}  # "P": struct.calcsize("P"), the pointer size


def _surface_names(surface: Surface) -> set[str]:
    data = surface.data
    names: set[str] = set()
    for obj, spec in data["objects"].items():
        names.add(obj)
        names.update(spec.get("members", {}))
        for part in ("fields", "header_fields", "item_fields"):
            names.update(spec.get(part, {}))
        if "header_fields" in spec:  # a posting object's Header and Items buffers
            names.update({f"{obj}.Header", f"{obj}.Items"})
    for enum, values in data["enums"].items():
        names.add(enum)
        names.update(values)
    names.update(data.get("exceptions", []))
    names.update(data.get("filter_paths", {}))
    names.update(data.get("assemblies", []))
    names.update(data.get("special_codes", {}))
    names.update(data.get("host", {}).get("members", []))
    names.update(data.get("host", {}).get("values", {}))
    return names


def _sdk_names_in(path: Path) -> set[str]:
    """PascalCase attributes and SDK-looking string constants (outside docstrings and messages)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr[:1].isupper():
            found.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and SDK_NAME.match(node.value):
            found.add(node.value)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("Sage."):
            found.update(alias.name for alias in node.names)
    return found - PYTHON_NAMES


@pytest.mark.parametrize(("module", "surface"), [(sdo, "sdo"), (sage50us, "sage50us")])
def test_every_sdk_name_in_the_backend_is_in_its_surface(module, surface):
    names = _surface_names(Surface(surface))
    used = _sdk_names_in(Path(module.__file__))
    assert used, "the scan found nothing: it is broken"
    missing = sorted(used - names)
    assert not missing, f"{module.__name__} uses names its surface ({surface}.json) does not list: {missing}"


def test_the_declared_members_for_the_doctor_are_in_the_surface():
    sdo_surface, us_surface = Surface("sdo"), Surface("sage50us")
    for obj, members in sdo.COM_MEMBERS.items():
        listed = sdo_surface.members(obj)
        for name, kind in members.items():
            assert name in listed, f"{obj}.{name}"
            assert listed[name]["kind"] == kind, f"{obj}.{name} is a {listed[name]['kind']}"
    for obj, members in sage50us.NET_MEMBERS.items():
        listed = us_surface.members(obj)
        for name, expected in members.items():
            assert name in listed, f"{obj}.{name}"
            kind, _, type_name = expected.partition(":")
            assert listed[name]["kind"] == kind, f"{obj}.{name}"
            if type_name:
                assert listed[name]["type"] == type_name, f"{obj}.{name}"


def test_backend_defaults_for_unverified_names_are_in_the_surface():
    """The settings' defaults (names with no public source) are described, marked unverified."""
    backend = sdo.SdoBackend("C:\\Data", dispatch=object())
    surface = Surface("sdo")
    for obj, field_names in backend.used_fields().items():
        record, _, part = obj.partition(".")
        listed = surface.fields(record, {"Header": "header_fields", "Items": "item_fields"}.get(part, "fields"))
        assert set(field_names) <= set(listed), (obj, sorted(set(field_names) - set(listed)))
    assert Surface("sage50us").member("InventoryItem", "QuantityOnHand")["unverified"] is True


def test_no_fallback_reads_of_sdk_members_in_the_backends():
    """``getattr(obj, name, default)`` would turn a wrong SDK name into a silent default."""
    for path in BACKENDS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr":
                assert len(node.args) == 2, f"{path.name}:{node.lineno}: getattr with a default"


def test_the_backends_enum_numbers_are_the_surfaces():
    enums = Surface("sdo").data["enums"]
    assert (sdo.SDO_LEDGER_INVOICE, sdo.SDO_LEDGER_CREDIT) == (
        enums["LedgerType"]["sdoLedgerInvoice"], enums["LedgerType"]["sdoLedgerCredit"])
    assert (sdo.SDO_PRODUCT_INVOICE, sdo.SDO_SOP_INVOICE, sdo.SDO_SERVICE_INVOICE, sdo.SDO_PRODUCT_CREDIT,
            sdo.SDO_SERVICE_CREDIT) == tuple(enums["InvoiceType"].values())
    trans = enums["TransType"]
    assert (sdo.SDO_SI, sdo.SDO_SC, sdo.SDO_SR, sdo.SDO_SA, sdo.SDO_SP) == (
        trans["sdoSI"], trans["sdoSC"], trans["sdoSR"], trans["sdoSA"], trans["sdoSP"])
    errors = enums["ErrorCode"]
    assert (sdo.LOGON_FAIL, sdo.LOGON_PASSWORD, sdo.LOGON_NAME_IN_USE, sdo.LOGON_EXCLUSIVE, sdo.BAD_DATA_PATH,
            sdo.WRONG_VERSION, sdo.USER_COUNT_EXCEEDED, sdo.NOT_REGISTERED) == (
        errors["sdoLogonFail"], errors["sdoLogonPassword"], errors["sdoLogonNameInUse"], errors["sdoLogonExclusive"],
        errors["sdoBadDataPath"], errors["sdoWrongVersion"], errors["sdoLogonUserCountExceeded"],
        errors["sdoNotRegistered"])
    assert set(sage50us.EXCEPTIONS) <= set(Surface("sage50us").data["exceptions"])
