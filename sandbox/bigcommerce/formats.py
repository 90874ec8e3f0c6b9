"""Wire formats that differ between BigCommerce's v2 and v3 APIs."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def cents(value) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def v2_money(value: Decimal) -> str:
    """v2 sends money as strings with four decimals: ``"12.5000"``."""
    return str(Decimal(value).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


def v3_money(value: Decimal) -> float:
    """v3 sends money as JSON numbers. Values here have two decimals, so a float round-trips exactly
    through ``json.loads(..., parse_float=Decimal)``."""
    return float(cents(value))


def rfc2822(moment: datetime | None) -> str:
    """v2 dates: ``Tue, 20 Nov 2012 00:00:00 +0000``; "" when there is no date (date_shipped)."""
    if moment is None:
        return ""
    return email.utils.format_datetime(moment.astimezone(UTC)).replace("-0000", "+0000")


def iso8601(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def parse_date_filter(raw: str | None) -> datetime | None:
    """Parse a v2 date filter (RFC-2822, ISO-8601 or a unix timestamp).

    Returns None for anything unparseable, and the caller then ignores the filter: that is what the
    real API does, which is why a badly encoded ``min_date_modified`` silently returns every order.
    """
    if not raw:
        return None
    raw = raw.strip()
    if raw.isdigit():
        return datetime.fromtimestamp(int(raw), UTC)
    try:
        parsed = email.utils.parsedate_to_datetime(raw)
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (TypeError, ValueError, IndexError):
        pass
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
