"""A fake Sage 50 US .NET SDK (Sage.Peachtree.API) built from ``surfaces/sage50us.json``.

Every entity, line, factory, list and the session answer only their reflected members. What it
does the way the SDK does: ``Amount`` and ``AmountDue`` are computed on ``Save`` (read-only to
the caller), ``ReferenceNumber`` holds at most 20 characters, a receipt's applied invoices are
``ApplyToInvoiceLines`` (padded with unused slots), ``AuthorizationResult`` values arrive as enum
members (pythonnet 3), and a fake for an SDK year older than the dump has no ``Company.Close``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal as D
from types import SimpleNamespace

from agent.tests.surface_fakes import NetStrict, Surface

_SURFACE_EXCEPTIONS = Surface("sage50us").data["exceptions"]
# The SDK's exception types, by their real names (the backend matches on the class name).
EXCEPTIONS = {name: type(name, (Exception,), {}) for name in _SURFACE_EXCEPTIONS}


class EnumValue:
    """A .NET enum member as pythonnet 3 hands it back: str() is its name."""

    def __init__(self, enum: str, name: str, value: int):
        self.enum, self.name, self.value = enum, name, value

    def __str__(self):
        return self.name

    def __int__(self):
        return self.value


class Ref(NetStrict):
    """EntityReference: a Guid naming one entity."""

    def __init__(self, sdk, entity):
        super().__init__(sdk.surface, "EntityReference")
        object.__setattr__(self, "entity", entity)
        self._set("Guid", str(uuid.UUID(int=len(sdk.refs) + 1)))
        sdk.refs.append(self)


class Entity(NetStrict):
    """An entity or a line; logs every property set and method call in the shared log."""

    def __init__(self, sdk, kind, label=None, **values):
        super().__init__(sdk.surface, kind)
        object.__setattr__(self, "sdk", sdk)
        object.__setattr__(self, "label", label or kind)
        object.__setattr__(self, "lines", [])
        object.__setattr__(self, "applied", [])
        members = sdk.surface.members(kind)
        if "Key" in members:
            self._set("Key", Ref(sdk, self))
        for name, value in values.items():
            self._set(name, value)

    def on_set(self, name, value):
        self.sdk.log.append((f"{self.label}.{name}", value))

    def AddSalesLine(self):  # noqa: N802
        self.sdk.log.append((f"{self.label}.AddSalesLine",))
        returns = self._surface.member(self._object, "AddSalesLine")["returns"]
        line = Entity(self.sdk, returns, f"{self.label}.Line[{len(self.lines)}]", IsUsed=True)
        self.lines.append(line)
        return line

    def AddInvoiceLine(self, invoice):  # noqa: N802
        self.sdk.log.append((f"{self.label}.AddInvoiceLine", invoice.ReferenceNumber))
        line = Entity(self.sdk, "ReceiptInvoiceLine", f"{self.label}.InvoiceLine", InvoiceReference=invoice.Key,
                      IsUsed=True)
        self.applied.append(line)
        return line

    def get_ApplyToInvoiceLines(self):  # noqa: N802
        # The SDK pads line collections with unused slots.
        return [*self.applied, Entity(self.sdk, "ReceiptInvoiceLine", "unused", IsUsed=False)]

    def Save(self):  # noqa: N802
        self.sdk.log.append((f"{self.label}.Save",))
        if self.sdk.save_error:
            raise self.sdk.save_error
        for name, spec in self._surface.members(self._object).items():
            value = self._values.get(name)
            if spec.get("max_length") and isinstance(value, str) and len(value) > spec["max_length"]:
                raise EXCEPTIONS["ValidationException"](
                    f"{self._object}.{name} holds at most {spec['max_length']} characters")
        if self._object in ("SalesInvoice", "SalesOrder"):
            amount = sum((ln._values.get("Amount", D("0")) for ln in self.lines), D("0")) + \
                self._values.get("FreightAmount", D("0"))
            self._set("Amount", amount)
            if self._object == "SalesInvoice":
                self._set("AmountDue", amount)
        if self._object == "Receipt":
            applied = sum((ln._values.get("AmountPaid", D("0")) for ln in self.applied), D("0"))
            unapplied = sum((ln._values.get("Amount", D("0")) for ln in self.lines), D("0"))
            self._set("Amount", applied + unapplied)
        if self not in self.sdk.saved:
            self.sdk.saved.append(self)
            self.sdk.tables.setdefault(self._object, []).append(self)


class EntityList(NetStrict):
    def __init__(self, sdk, kind):
        super().__init__(sdk.surface, f"{kind}List")
        object.__setattr__(self, "sdk", sdk)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "rows", [])

    def Load(self, modifiers=None):  # noqa: N802
        rows = self.sdk.tables.get(self.kind, [])
        if modifiers is not None:
            prop, value = modifiers.Filters
            paths = self._surface.data["filter_paths"]
            if prop not in paths or paths[prop] != self.kind:
                raise EXCEPTIONS["PeachtreeException"](f"cannot filter {self.kind} on {prop!r}")
            self.sdk.log.append(("Load", prop, value))
            rows = [r for r in rows if getattr(r, prop.split(".")[1]) == value]
        self.rows.extend(rows)

    def __iter__(self):
        return iter(self.rows)


class Factory(NetStrict):
    def __init__(self, sdk, kind):
        super().__init__(sdk.surface, f"{kind}Factory")
        object.__setattr__(self, "sdk", sdk)
        object.__setattr__(self, "kind", kind)

    def Create(self):  # noqa: N802
        self.sdk.log.append((f"{self.kind}Factory.Create",))
        return Entity(self.sdk, self.kind)

    def List(self):  # noqa: N802
        return EntityList(self.sdk, self.kind)

    def Load(self, key):  # noqa: N802
        return key.entity


class FactoryGroup(NetStrict):
    def __init__(self, sdk):
        super().__init__(sdk.surface, "FactoryGroup")
        for name in sdk.surface.members("FactoryGroup"):
            if name.endswith("Factory"):
                self._set(name, Factory(sdk, name[: -len("Factory")]))


class Company(NetStrict):
    def __init__(self, sdk):
        super().__init__(sdk.surface, "Company")
        object.__setattr__(self, "sdk", sdk)
        self._set("Factories", FactoryGroup(sdk))

    def Close(self):  # noqa: N802
        self.sdk.log.append(("Company.Close",))


class Identifier(NetStrict):
    def __init__(self, sdk, **values):
        super().__init__(sdk.surface, "CompanyIdentifier")
        for name, value in values.items():
            self._set(name, value)


class FilterExpression(NetStrict):
    def __init__(self, sdk):
        super().__init__(sdk.surface, "FilterExpression")

    def Property(self, path):  # noqa: N802
        return path

    def Constant(self, value):  # noqa: N802
        return value

    def Equal(self, left, right):  # noqa: N802
        return (left, right)


class LoadModifiers(NetStrict):
    def __init__(self, sdk):
        super().__init__(sdk.surface, "LoadModifiers")
        object.__setattr__(self, "sdk", sdk)

    def Create(self):  # noqa: N802
        return LoadModifiers(self.sdk)

    def __iter__(self):  # tuple-unpacking of Filters in EntityList.Load
        return iter(self.Filters)


class FakeSdk:
    """The SDK plus one company's data. ``api`` is what ``load_api`` returns on Windows."""

    def __init__(self, auth="Granted", *, year: int = 2025, drop: tuple[str, ...] = (),
                 schema_version: str | None = None):
        self.surface = Surface("sage50us", drop=drop, year=year)
        self.log, self.saved, self.refs, self.save_error, self.auth = [], [], [], None, auth
        self.tables: dict[str, list] = {}
        self.tables["Customer"] = [Entity(self, "Customer", ID="WEB01", Name="Web Sales", Email="web@example.com")]
        self.tables["InventoryItem"] = [Entity(self, "InventoryItem", ID="SKU-1", QuantityOnHand=D("7"),
                                               LastSavedAt=dt.datetime(2025, 1, 5, 10))]
        self.tables["Account"] = [Entity(self, "Account", ID="40000"), Entity(self, "Account", ID="10200")]
        self.company = Company(self)
        self.identifier = Identifier(self, CompanyName="Bellwether Garden Supply", Path="C:\\Sage\\BGS",
                                     DatabaseName="bellwether", SchemaVersion=schema_version or f"{year}.0")
        sdk = self

        class Session(NetStrict):
            def __init__(self):
                super().__init__(sdk.surface, "PeachtreeSession")

            def Begin(self, app_id):  # noqa: N802
                sdk.log.append(("Session.Begin", app_id))

            def CompanyList(self):  # noqa: N802
                return [sdk.identifier]

            def _auth(self):
                return EnumValue("AuthorizationResult", sdk.auth, sdk.surface.enum("AuthorizationResult")[sdk.auth])

            def VerifyAccess(self, ident):  # noqa: N802
                sdk.log.append(("Session.VerifyAccess", ident.CompanyName))
                return self._auth()

            def RequestAccess(self, ident):  # noqa: N802
                sdk.log.append(("Session.RequestAccess", ident.CompanyName))
                return self._auth()

            def Open(self, ident):  # noqa: N802
                sdk.log.append(("Session.Open", ident.CompanyName))
                return sdk.company

            def Close(self, company):  # noqa: N802
                sdk.log.append(("Session.Close", company is sdk.company))

            def End(self):  # noqa: N802
                sdk.log.append(("Session.End",))

        self.api = SimpleNamespace(PeachtreeSession=Session, FilterExpression=FilterExpression(self),
                                   LoadModifiers=LoadModifiers(self), sdk_version=f"{year}.0.0.1",
                                   date=lambda d: dt.datetime(d.year, d.month, d.day), decimal=lambda v: v)
        self.log.clear()
