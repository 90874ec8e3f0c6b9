"""Fakes of the Sage SDKs built from a description of their real surface (``surfaces/*.json``).

A fake object answers only the members its surface lists, the way COM and .NET do: any other
name is an ``AttributeError`` naming the object and the member, never an invented attribute.
Properties marked read-only refuse assignment, values are checked against the declared type, and
enum-typed values against the enum. A surface can be built with members removed (``drop``) or
for an older SDK year (``recent_only`` members left out), which is how ``agent doctor`` is tested.

Both fakes also answer the reflection the doctor uses on the live objects: COM type information
(``obj._oleobj_.GetTypeInfo()``, as pywin32 exposes it) and .NET reflection (``obj.GetType()``).
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

SURFACES = Path(__file__).parent / "surfaces"


class Surface:
    def __init__(self, name: str, *, drop: tuple[str, ...] = (), year: int | None = None):
        self.name = name
        self.data = json.loads((SURFACES / f"{name}.json").read_text())
        self.dropped = set(drop)
        self.year = year

    @property
    def objects(self) -> dict:
        return self.data["objects"]

    def members(self, obj: str) -> dict:
        found = dict(self.objects.get("Object", {}).get("members", {})) if self.name == "sage50us" else {}
        found.update(self.objects[obj]["members"])
        old = self.year is not None and self.year < int(self.data.get("dump_year", 0))
        return {name: spec for name, spec in found.items()
                if f"{obj}.{name}" not in self.dropped and not (old and spec.get("recent_only"))}

    def member(self, obj: str, name: str) -> dict:
        spec = self.members(obj).get(name)
        if spec is None:
            raise AttributeError(f"{obj} has no member {name!r} (not in the {self.name} surface)")
        return spec

    def fields(self, obj: str, part: str = "fields") -> dict[str, dict]:
        raw = self.objects[obj].get(part, {})
        out = {}
        for key, spec in raw.items():
            if f"{obj}.{part}.{key}" in self.dropped or f"{obj}.{key}" in self.dropped:
                continue
            out[key] = spec if isinstance(spec, dict) else {"type": spec}
        return out

    def enum(self, name: str) -> dict[str, int]:
        return self.data["enums"][name]

    def check_value(self, where: str, spec: dict, value) -> None:
        """The types the SDK would refuse (COM raises a type mismatch, .NET an ArgumentException)."""
        kind = spec.get("type")
        if value is None:
            return
        ok = {
            "String": isinstance(value, str),
            "Int": isinstance(value, int) and not isinstance(value, bool),
            "Int32": isinstance(value, int) and not isinstance(value, bool),
            "Decimal": isinstance(value, Decimal | int) and not isinstance(value, bool),
            "Date": isinstance(value, dt.date),
            "DateTime": isinstance(value, dt.date),
            "Boolean": isinstance(value, bool),
        }.get(kind, True)
        if not ok:
            raise TypeError(f"{where} takes {kind}, not {type(value).__name__} {value!r}")


class Strict:
    """Base of every fake SDK object: PascalCase names are checked against the surface.

    Lower-case and underscore names are the fake's own plumbing (never SDK members)."""

    _surface: Surface
    _object: str

    def __init__(self, surface: Surface, object_name: str):
        object.__setattr__(self, "_surface", surface)
        object.__setattr__(self, "_object", object_name)
        object.__setattr__(self, "_values", {})

    @staticmethod
    def _is_member(name: str) -> bool:
        return name[:1].isupper()

    def __getattribute__(self, name):
        if Strict._is_member(name):
            surface = object.__getattribute__(self, "_surface")
            obj = object.__getattribute__(self, "_object")
            spec = surface.member(obj, name)
            if spec["kind"] == "property":
                values = object.__getattribute__(self, "_values")
                getter = getattr(type(self), f"get_{name}", None)
                if getter is not None:
                    return getter(self)
                if name in values:
                    return values[name]
                return _default(spec)
        return object.__getattribute__(self, name)

    def __setattr__(self, name, value):
        if not Strict._is_member(name):
            object.__setattr__(self, name, value)
            return
        spec = self._surface.member(self._object, name)
        if spec["kind"] != "property":
            raise AttributeError(f"{self._object}.{name} is a method; it cannot be assigned")
        if spec.get("readonly"):
            raise AttributeError(f"{self._object}.{name} is read-only")
        # Enum-typed properties take any number, as COM and .NET do; the fakes' Update / Save refuse
        # the values Sage refuses.
        self._surface.check_value(f"{self._object}.{name}", spec, value)
        self.on_set(name, value)
        self._values[name] = value

    def on_set(self, name, value) -> None:
        """Hook for the fakes' logs."""

    def _set(self, name, value) -> None:
        """What the SDK itself sets (a read-only property's value)."""
        self._values[name] = value

    # -- COM type information, as pywin32 exposes it ---------------------------------------------
    @property
    def _oleobj_(self):
        return _OleObject(self._surface, self._object)

    def __repr__(self):
        return f"<fake {self._object}>"


def _default(spec: dict):
    return {"String": "", "Decimal": Decimal("0"), "Boolean": False, "Int": 0, "Int32": 0}.get(spec.get("type"))


# -- COM reflection ------------------------------------------------------------------------------
INVOKE_FUNC, INVOKE_PROPERTYGET = 1, 2


class _OleObject:
    def __init__(self, surface: Surface, obj: str):
        self.surface, self.obj = surface, obj

    def GetTypeInfo(self):  # noqa: N802 - pywin32 name
        return _TypeInfo(self.surface, self.obj)


class _FuncDesc:
    def __init__(self, memid, invkind):
        self.memid, self.invkind = memid, invkind


class _TypeAttr:
    def __init__(self, funcs):
        self.cFuncs, self.cVars = funcs, 0


class _TypeInfo:
    """ITypeInfo of a dispatch interface: every member is a FUNCDESC (properties as propget)."""

    def __init__(self, surface: Surface, obj: str):
        self.names = list(surface.members(obj).items())

    def GetTypeAttr(self):  # noqa: N802
        return _TypeAttr(len(self.names))

    def GetFuncDesc(self, index):  # noqa: N802
        kind = self.names[index][1]["kind"]
        return _FuncDesc(1000 + index, INVOKE_FUNC if kind == "method" else INVOKE_PROPERTYGET)

    def GetNames(self, memid):  # noqa: N802
        return (self.names[memid - 1000][0],)


# -- .NET reflection -----------------------------------------------------------------------------
class FakeType:
    """System.Type as the doctor uses it: Name, FullName, GetMember(name)."""

    def __init__(self, surface: Surface, name: str):
        self.surface, self.Name = surface, name.split(".")[-1]
        self.FullName = f"Sage.Peachtree.API.{self.Name}" if name in surface.objects else f"System.{name}"

    def GetMember(self, name):  # noqa: N802
        if self.Name not in self.surface.objects:
            return []
        spec = self.surface.members(self.Name).get(name)
        if spec is None:
            return []
        return [FakeMemberInfo(self.surface, name, spec)]


class FakeMemberInfo:
    def __init__(self, surface, name, spec):
        self.Name = name
        self.MemberType = "Property" if spec["kind"] == "property" else "Method"
        target = spec.get("type") if spec["kind"] == "property" else spec.get("returns")
        typ = FakeType(surface, target or "Object")
        if spec["kind"] == "property":
            self.PropertyType = typ
        else:
            self.ReturnType = typ


class NetStrict(Strict):
    def GetType(self):  # noqa: N802 - System.Object.GetType
        return FakeType(self._surface, self._object)
