"""BigCommerce wire formats: v2 RFC-2822 dates and 4-decimal string money, v3 ISO dates.

v2 money stays a string in payloads (it is exact); callers turn it into Decimal where they
compute. v3 money is a JSON number, parsed as Decimal by the client; ``jsonable`` turns those
Decimals back into strings before a payload is stored, because JSONField would otherwise
refuse them (or, read back, hand out floats).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from email.utils import format_datetime, parsedate_to_datetime

UTC = dt.UTC


def parse_rfc2822(value: str | None) -> dt.datetime | None:
    """'Tue, 20 Nov 2012 00:00:00 +0000' -> aware datetime; '' (v2's "never") -> None."""
    if not value:
        return None
    moment = parsedate_to_datetime(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def format_rfc2822(moment: dt.datetime) -> str:
    """The form v2 sends and accepts in date filters, always in UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return format_datetime(moment.astimezone(UTC).replace(microsecond=0))


def format_rfc3339(moment: dt.datetime) -> str:
    """v3 date filters (refunds ``created:min``). Always with a time part: v3 appends the current
    time of day to a bare date, which silently shifts the filter."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_any_date(value: str | None) -> dt.datetime | None:
    """v2 RFC-2822 or v3 ISO-8601, whichever this is."""
    if not value:
        return None
    if value[:4].isdigit():
        return parse_iso(value)
    return parse_rfc2822(value)


def decimal_money(value) -> Decimal:
    """v2 '225.0000' or v3 Decimal -> Decimal (unrounded; ledger.money() rounds to the cent)."""
    if isinstance(value, float):
        raise TypeError("money must not be a float")
    return Decimal(str(value)) if value not in (None, "") else Decimal("0")


def jsonable(value):
    """Decimals to strings, recursively, so a fetched record can be stored in a JSONField."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value
