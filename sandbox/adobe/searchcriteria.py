"""Magento's ``searchCriteria`` query language and ``fields=`` trimming, as the REST layer applies them.

Rules reproduced (reference/adobe-commerce.md §3):

* both spellings of every key: ``filter_groups``/``filterGroups``, ``condition_type``/``conditionType``,
  ``sort_orders``/``sortOrders``, ``page_size``/``pageSize``, ``current_page``/``currentPage``;
* filters inside one group are OR-ed, groups are AND-ed (so ``from`` and ``to`` in one group are an OR,
  as on a real store); ``condition_type`` defaults to ``eq``; an unknown condition type falls back to
  equality like Magento's SQL adapter does; string comparisons ignore case (MySQL collation);
* a field that is not a column of the entity's table is a SQL error on a real store: HTTP 500
  ``Internal Error. Details are available in Magento log file. Report ID: webapi-…``;
* a sort order without ``direction`` sorts DESC (``SortingProcessor`` only checks ``== 'ASC'``); with
  no sort order rows come in primary-key order;
* paging: ``pageSize`` above the maximum (300) is refused with HTTP 400 ``Maximum SearchCriteria pageSize
  is %max`` while input limits are on; with them on a missing pageSize means 20, with them off it means
  everything; ``currentPage`` past the last page gives ``items: []`` (2.4.x REST) or the last page again
  (``past_last_page="last"``, 2.3.x); ``total_count`` is always the unpaged count;
* the echo ``search_criteria`` leaves ``page_size`` out when none was sent (2.4.4+, magento2#35310).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from .store import StoreError

CONDITIONS = ("eq", "neq", "gt", "gteq", "lt", "lteq", "like", "nlike", "in", "nin", "null", "notnull",
              "from", "to", "finset", "nfinset", "moreq")
_KEY = re.compile(r"^searchCriteria\[(?P<rest>.+)$")
_FILTER = re.compile(r"^(?:filter_groups|filterGroups)\]\[(\d+)\]\[filters\]\[(\d+)\]\[(field|value|condition_type|"
                     r"conditionType)\]$")
_SORT = re.compile(r"^(?:sort_orders|sortOrders)\]\[(\d+)\]\[(field|direction)\]$")


@dataclass
class Filter:
    field: str
    value: str
    condition_type: str = "eq"


@dataclass
class SearchCriteria:
    filter_groups: list[list[Filter]] = field(default_factory=list)
    sort_orders: list[tuple[str, str | None]] = field(default_factory=list)  # (field, direction as sent)
    page_size: int | None = None
    current_page: int | None = None

    def echo(self) -> dict:
        out: dict = {"filter_groups": [{"filters": [{"field": f.field, "value": f.value,
                                                      "condition_type": f.condition_type} for f in group]}
                                       for group in self.filter_groups]}
        if self.sort_orders:
            out["sort_orders"] = [{"field": f, "direction": "ASC" if (d or "").upper() == "ASC" else "DESC"}
                                  for f, d in self.sort_orders]
        if self.page_size is not None:
            out["page_size"] = self.page_size
        if self.current_page is not None:
            out["current_page"] = self.current_page
        return out


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError as exc:
        raise StoreError(400, 'The "%value" value\'s type is invalid. The "%type" type was expected. Verify and '
                              'try again.', {"value": raw, "type": "int"}) from exc


def parse(query: dict[str, list[str]], required: bool = True) -> SearchCriteria:
    """Build the criteria from a parsed query string. Like Magento, a list endpoint called without
    any ``searchCriteria`` parameter answers 400 ``"searchCriteria" is required``."""
    present = [k for k in query if k == "searchCriteria" or k.startswith("searchCriteria[")]
    if required and not present:
        raise StoreError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": "searchCriteria"})
    groups: dict[int, dict[int, dict[str, str]]] = {}
    sorts: dict[int, dict[str, str]] = {}
    criteria = SearchCriteria()
    for key in present:
        value = query[key][-1]
        match = _KEY.match(key)
        if not match:
            continue
        rest = match.group("rest")
        if m := _FILTER.match(rest):
            part = {"conditionType": "condition_type"}.get(m.group(3), m.group(3))
            groups.setdefault(int(m.group(1)), {}).setdefault(int(m.group(2)), {})[part] = value
        elif m := _SORT.match(rest):
            sorts.setdefault(int(m.group(1)), {})[m.group(2)] = value
        elif rest in ("pageSize]", "page_size]"):
            criteria.page_size = _int("pageSize", value)
        elif rest in ("currentPage]", "current_page]"):
            criteria.current_page = _int("currentPage", value)
    for g in sorted(groups):
        filters = []
        for f in sorted(groups[g]):
            raw = groups[g][f]
            if "field" not in raw:
                raise StoreError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": "field"})
            filters.append(Filter(raw["field"], raw.get("value", ""), (raw.get("condition_type") or "eq").lower()))
        criteria.filter_groups.append(filters)
    for s in sorted(sorts):
        if "field" in sorts[s]:
            direction = sorts[s].get("direction")
            if direction is not None and direction.upper() not in ("ASC", "DESC"):
                raise StoreError(400, 'The sort order "%1" is invalid. Verify the direction and try again.',
                                 [direction])
            criteria.sort_orders.append((sorts[s]["field"], direction))
    return criteria


def internal_error() -> StoreError:
    """What a SQL error (unknown column) looks like through the REST API in production mode."""
    report = f"webapi-{uuid.uuid4().hex[:13]}"
    return StoreError(500, f"Internal Error. Details are available in Magento log file. Report ID: {report}")


def _number(value) -> Decimal | None:
    if isinstance(value, bool):
        return Decimal(int(value))
    if isinstance(value, (int, float, Decimal)):
        return Decimal(str(value))
    return None


def _compare(actual, wanted: str) -> int | None:
    """-1/0/1 comparing a column value with a filter value, or None when the column is NULL."""
    if actual is None:
        return None
    number = _number(actual)
    if number is not None:
        try:
            other = Decimal(wanted.strip())
        except InvalidOperation:
            other = Decimal(0)  # MySQL casts a non-numeric string to 0
        return (number > other) - (number < other)
    a, b = str(actual).lower(), wanted.lower()
    return (a > b) - (a < b)


def _like(actual, pattern: str) -> bool:
    if actual is None:
        return False
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, str(actual), flags=re.IGNORECASE | re.DOTALL) is not None


def _matches(row: dict, f: Filter) -> bool:
    actual = row.get(f.field)
    kind = f.condition_type if f.condition_type in CONDITIONS else "eq"
    if kind == "null":
        return actual is None
    if kind == "notnull":
        return actual is not None
    if kind in ("in", "nin"):
        hit = any(_compare(actual, v) == 0 for v in f.value.split(","))
        return actual is not None and (hit if kind == "in" else not hit)
    if kind in ("like", "nlike"):
        return actual is not None and (_like(actual, f.value) if kind == "like" else not _like(actual, f.value))
    if kind in ("finset", "nfinset"):
        parts = [p.strip().lower() for p in str(actual or "").split(",")]
        return actual is not None and ((f.value.lower() in parts) == (kind == "finset"))
    c = _compare(actual, f.value)
    if c is None:
        return False
    return {"eq": c == 0, "neq": c != 0, "gt": c > 0, "gteq": c >= 0, "moreq": c >= 0, "from": c >= 0,
            "lt": c < 0, "lteq": c <= 0, "to": c <= 0}[kind]


@dataclass
class Limits:
    input_limit_enabled: bool = True
    maximum_page_size: int = 300
    default_page_size: int = 20
    past_last_page: str = "empty"  # "empty" (2.4.x REST) or "last" (2.3.x clamps to the last page)


def search(rows: list[tuple[dict, object]], criteria: SearchCriteria, columns: set[str], limits: Limits,
           render) -> dict:
    """Filter, sort and page ``rows`` — (column values, record) pairs in primary-key order — and
    return the search-result body with ``render(record)`` for each item on the page."""
    if limits.input_limit_enabled and criteria.page_size is not None \
            and criteria.page_size > limits.maximum_page_size:
        raise StoreError(400, "Maximum SearchCriteria pageSize is %max", {"max": limits.maximum_page_size})
    for group in criteria.filter_groups:
        for f in group:
            if f.field not in columns:
                raise internal_error()
    for name, _ in criteria.sort_orders:
        if name not in columns:
            raise internal_error()
    kept = [(row, record) for row, record in rows
            if all(any(_matches(row, f) for f in group) for group in criteria.filter_groups if group)]
    for name, direction in reversed(criteria.sort_orders):
        descending = (direction or "").upper() != "ASC"
        present = [p for p in kept if p[0].get(name) is not None]
        nulls = [p for p in kept if p[0].get(name) is None]
        present.sort(key=lambda p, n=name: _sort_key(p[0][n]), reverse=descending)
        # MySQL puts NULLs first ascending and last descending.
        kept = present + nulls if descending else nulls + present
    total = len(kept)
    size = criteria.page_size
    if size is None and limits.input_limit_enabled:
        size = limits.default_page_size
    if size is None or size <= 0:
        page_rows = kept
    else:
        page = max(1, criteria.current_page or 1)
        last = max(1, -(-total // size))
        if page > last and limits.past_last_page == "last":
            page = last
        page_rows = kept[(page - 1) * size: page * size]
    return {"items": [render(record) for _, record in page_rows], "search_criteria": criteria.echo(),
            "total_count": total}


def _sort_key(value):
    number = _number(value)
    return (0, number, "") if number is not None else (1, Decimal(0), str(value).lower())


# -- fields= ------------------------------------------------------------------------------------
def parse_fields(spec: str) -> dict:
    """``items[entity_id,billing_address[city]],total_count`` -> {"items": {"entity_id": {}, ...}, ...}."""
    tree: dict = {}
    stack = [tree]
    name = ""
    for ch in spec:
        if ch == "[":
            node: dict = {}
            stack[-1][name.strip()] = node
            stack.append(node)
            name = ""
        elif ch in ",]":
            if name.strip():
                stack[-1].setdefault(name.strip(), {})
            name = ""
            if ch == "]" and len(stack) > 1:
                stack.pop()
        else:
            name += ch
    if name.strip():
        stack[-1].setdefault(name.strip(), {})
    return tree


def trim(body, tree: dict):
    """Keep only the fields named in ``tree``; an empty subtree keeps the whole value."""
    if not tree:
        return body
    if isinstance(body, list):
        return [trim(x, tree) for x in body]
    if not isinstance(body, dict):
        return body
    return {k: trim(v, tree[k]) for k, v in body.items() if k in tree}
