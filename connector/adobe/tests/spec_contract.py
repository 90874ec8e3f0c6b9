"""Checks a request against the shipped Adobe Commerce specs (Swagger 2.0): the route and method
exist, every query parameter is one the operation declares (searchCriteria indices are declared
once, as [0]), and a JSON body validates against the operation's body schema.

``fields`` is accepted by Magento on every route (the webapi's field filter) but declared on none,
so it is allowed everywhere."""

from __future__ import annotations

import functools
import json
import os
import re
from decimal import Decimal
from pathlib import Path

import jsonschema
import yaml

GLOBAL_PARAMS = {"fields"}


def spec_dir() -> Path:
    """``$ML_SHARED_DIR/specs/adobe-commerce``, else ``<repo>/../shared/specs/adobe-commerce``."""
    shared = os.environ.get("ML_SHARED_DIR") or Path(__file__).resolve().parents[4] / "shared"
    return Path(shared) / "specs" / "adobe-commerce"


@functools.cache
def load(name: str) -> dict:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load((spec_dir() / name).read_text(), Loader=loader)


@functools.cache
def _routes(name: str) -> list[tuple[re.Pattern, str]]:
    return [(re.compile("^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"), template)
            for template in load(name)["paths"]]


def violations(name: str, method: str, path: str, query: list[tuple[str, str]], body) -> list[str]:
    spec = load(name)
    # Several templates can match (/V1/orders/{id} and /V1/orders/{parent_id}): the literal one first.
    templates = sorted((t for pattern, t in _routes(name) if pattern.match(path)), key=lambda t: t.count("{"))
    operations = [spec["paths"][t][method.lower()] for t in templates if method.lower() in spec["paths"][t]]
    if not operations:
        return [f"{method} {path}: no such operation in {name}"]
    problems = []
    operation = operations[0]
    declared = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
    for key, _ in query:
        normal = re.sub(r"\[\d+\]", "[0]", key)
        if normal not in declared and key not in GLOBAL_PARAMS:
            problems.append(f"{method} {path}: query parameter {key!r} is not declared")
    body_params = [p for p in operation.get("parameters", []) if p.get("in") == "body"]
    if body is not None:
        if not body_params:
            problems.append(f"{method} {path}: a body where the operation takes none")
        else:
            schema = {**body_params[0]["schema"], "definitions": spec["definitions"]}
            plain = json.loads(json.dumps(body, default=lambda v: float(v) if isinstance(v, Decimal) else str(v)))
            for error in jsonschema.Draft4Validator(schema).iter_errors(plain):
                problems.append(f"{method} {path}: body {list(error.path)}: {error.message}")
    return problems
