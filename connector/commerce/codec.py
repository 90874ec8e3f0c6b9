"""The neutral model as plain JSON data (golden fixtures, stored previews): money as strings,
dates as ISO 8601, nested records as objects. ``from_dict(to_dict(x), type(x)) == x``."""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from decimal import Decimal
from functools import cache


def to_dict(value):
    if dataclasses.is_dataclass(value):
        return {f.name: to_dict(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [to_dict(v) for v in value]
    return value


@cache
def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def _decode(kind, data):
    if data is None:
        return None
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = [k for k in typing.get_args(kind) if k is not type(None)]
        return _decode(options[0], data)
    if origin is list:
        (item,) = typing.get_args(kind)
        return [_decode(item, v) for v in data]
    if kind is Decimal:
        return Decimal(str(data))
    if kind is dt.datetime:
        return dt.datetime.fromisoformat(data)
    if dataclasses.is_dataclass(kind):
        return from_dict(data, kind)
    return data


def from_dict(data: dict, cls):
    hints = _hints(cls)
    return cls(**{f.name: _decode(hints[f.name], data[f.name]) for f in dataclasses.fields(cls) if f.name in data})
