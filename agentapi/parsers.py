"""Request bodies: JSON only, parsed so that nothing a client sends can become a 500 later.

Floats become Decimal (money and quantities must not pass through binary floating point).
Strings with NUL or lone surrogates are refused up front: PostgreSQL cannot store the first
in text or jsonb, and neither database driver can encode the second.
"""

from __future__ import annotations

import json
from decimal import Decimal

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser

MAX_DEPTH = 32


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON")


def _check_string(value: str) -> None:
    if "\x00" in value:
        raise ParseError("JSON strings must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ParseError("JSON strings must be valid Unicode (no lone surrogates).") from None


def _check_tree(data) -> None:
    stack = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ParseError(f"JSON nested deeper than {MAX_DEPTH} levels.")
        if isinstance(value, str):
            _check_string(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                _check_string(key)
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


def parse_json_body(body: bytes):
    """The decoded body ({} when empty), or ParseError (→ 400) for anything that is not safe JSON."""
    if not body or not body.strip():
        return {}
    try:
        data = json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)
    except RecursionError:
        raise ParseError("JSON nested too deeply.") from None
    except ValueError as exc:  # includes JSONDecodeError and UnicodeDecodeError
        raise ParseError(f"Request body is not valid JSON: {exc}") from None
    _check_tree(data)
    return data


class AgentJSONParser(BaseParser):
    """Accepts any content type and parses it as JSON: a form or text body gets a 400, not a 415."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return parse_json_body(stream.read() if stream is not None else b"")


def jsonable(value):
    """Decimals (from parse_float) back to strings, so a JSONField can store the value."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [jsonable(item) for item in value]
    return value
