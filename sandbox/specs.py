"""Load the official API specs and check requests and responses against them.

The sandboxes use this to prove they speak the real wire format: run one with ``validate=True``
and every request it receives and every response it sends is checked against the published
OpenAPI documents in ``<shared>/specs/``. The team's contract tests then assert zero violations.

Specs are OpenAPI 3.0 (BigCommerce publishes ``orders.v2.oas2.yml`` as OpenAPI 3.0 despite its
name). Swagger 2.0 documents are converted to the OpenAPI 3 shape on load, so either works.

OpenAPI 3.0 schemas are not quite JSON Schema: ``nullable`` has to become a ``null`` type, and
BigCommerce's files carry a few outright spec bugs. Those bugs are not papered over by loosening
validation globally: each one is an entry in ``KNOWN_SPEC_DEVIATIONS`` with the reason, and a
violation is dropped only when an entry matches it exactly.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

BIGCOMMERCE_SPEC_FILES = (
    "orders.v2.oas2.yml",
    "orders.v3.yml",
    "customers.v3.yml",
    "customers.v2.yml",
    "products_catalog.v3.yml",
    "product-variants_catalog.v3.yml",
    "inventory.v3.yml",
    "locations.v3.yml",
    "webhooks.v3.yml",
)

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def shared_dir() -> Path:
    """``ML_SHARED_DIR`` if set, else ``<repo>/../shared`` (the checkout sits next to it)."""
    env = os.environ.get("ML_SHARED_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared"


@dataclass(frozen=True)
class Deviation:
    """One known disagreement between a spec file and the real API (or the spec and itself)."""

    operation: str  # "GET /v2/orders" (method + base-prefixed template), or "*" for any
    direction: str  # "request" or "response"
    where: str  # regex on the violation's location (e.g. "query.sort", "body/0/consignments")
    message: str  # regex on the validator message
    why: str

    def matches(self, violation: Violation) -> bool:
        if self.operation != "*" and self.operation != violation.operation:
            return False
        return (
            self.direction == violation.direction
            and re.search(self.where, violation.where) is not None
            and re.search(self.message, violation.message) is not None
        )


KNOWN_SPEC_DEVIATIONS: tuple[Deviation, ...] = (
    # orders.v2: the `sort` enum lists bare field names, but the parameter's own description (and
    # the real API) takes a direction suffix, e.g. `date_modified:asc`.
    Deviation("*", "request", r"^query\.sort$",
              r"^'(id|customer_id|date_created|date_modified|status_id|channel_id|external_id):(asc|desc)' is not one of",
              "sort takes :asc/:desc"),
    # orders.v2: `consignments` and `fees` are `oneOf` two object schemas with no required
    # properties and no additionalProperties:false, so any object matches both branches and oneOf
    # can never pass. The real API returns the expanded form when `include=` asks for it.
    Deviation("*", "response", r"(^|/)(consignments|fees)$", r"is valid under each of", "ambiguous oneOf"),
    Deviation("*", "response", r"/line_items$", r"is valid under each of", "ambiguous oneOf (line_items)"),
    # catalog: `base_variant_id` is documented as an integer, but it is null for products with
    # options (reference/bigcommerce.md §7: "null for products with options").
    Deviation("*", "response", r"/base_variant_id$", r"^None is not of type 'integer'$", "null with options"),
    # inventory: a product's base variant has no v2 SKU id; the variants spec documents `sku_id` as
    # nullable for exactly that case, the inventory spec forgot to.
    Deviation("GET /v3/inventory/items", "response", r"/identity/sku_id$", r"^None is not of type", "base variant"),
    # variants: the per-product variant schema marks prices and dimensions nullable (null = inherited
    # from the product); the batch `/catalog/variants` schema in the same file forgot to.
    Deviation("GET /v3/catalog/variants", "response",
              r"^body/data/\d+/(cost_price|price|sale_price|retail_price|weight|width|height|depth|"
              r"fixed_cost_shipping_price)$", r"^None is not of type 'number'$", "inherited values are null"),
    # webhooks: `data` carries minItems: 1, but a store with no hooks answers `"data": []`.
    Deviation("GET /v3/hooks", "response", r"^body/data$", r"should be non-empty", "no hooks yet"),
)


@dataclass
class Violation:
    direction: str  # request | response
    method: str
    path: str  # the concrete path that was called
    operation: str  # "GET /v2/orders/{order_id}" or "" when no operation matched
    where: str
    message: str
    status: int | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Operation:
    spec_name: str
    base: str  # "/v2" or "/v3"
    template: str  # "/orders/{order_id}"
    method: str  # lower case
    pointer: str  # JSON pointer of the operation object inside the spec document
    node: dict
    parameters: list[tuple[str, dict]] = field(default_factory=list)  # (pointer, resolved param)

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.base}{self.template}"


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _swagger2_to_openapi3(doc: dict) -> dict:
    """Reshape a Swagger 2.0 document so the rest of this module can treat it as OpenAPI 3."""
    # A JSON round trip, not YAML: the Adobe schemas are ~1 MB and pure-Python YAML takes seconds.
    text = json.dumps(doc, default=str)
    text = text.replace("#/definitions/", "#/components/schemas/").replace(
        "#/responses/", "#/components/responses/"
    ).replace("#/parameters/", "#/components/parameters/")
    out = json.loads(text)
    produces = out.get("produces") or ["application/json"]

    def response(resp: dict) -> dict:
        if "$ref" in resp or "schema" not in resp:
            return {k: v for k, v in resp.items() if k not in ("examples",)}
        rest = {k: v for k, v in resp.items() if k not in ("schema", "examples")}
        rest["content"] = {ct: {"schema": resp["schema"]} for ct in produces}
        return rest

    def param(p: dict) -> dict:
        if "$ref" in p or "schema" in p:
            return p
        keys = ("type", "items", "enum", "format", "minimum", "maximum", "default", "pattern")
        schema = {k: p[k] for k in keys if k in p}
        rest = {k: v for k, v in p.items() if k not in keys and k != "collectionFormat"}
        rest["schema"] = schema
        if p.get("collectionFormat", "csv") == "csv" and p.get("type") == "array":
            rest["explode"] = False
        return rest

    components = out.setdefault("components", {})
    components["schemas"] = out.pop("definitions", {})
    components["responses"] = {k: response(v) for k, v in out.pop("responses", {}).items()}
    components["parameters"] = {k: param(v) for k, v in out.pop("parameters", {}).items()}
    base = out.get("basePath", "")
    out["servers"] = [{"url": f"https://{out.get('host', 'localhost')}{base}"}]
    for item in out.get("paths", {}).values():
        for method in HTTP_METHODS:
            op = item.get(method)
            if not op:
                continue
            params = []
            for p in op.get("parameters", []):
                if p.get("in") == "body":
                    op["requestBody"] = {"content": {"application/json": {"schema": p.get("schema", {})}}}
                else:
                    params.append(param(p))
            op["parameters"] = params
            op["responses"] = {code: response(r) for code, r in op.get("responses", {}).items()}
    out["openapi"] = "3.0.0"
    out.pop("swagger", None)
    return out


# Types that BigCommerce's files use but JSON Schema does not know.
_TYPE_FIXES = {"float": "number", "double": "number", "int": "integer", "bool": "boolean"}


def _to_json_schema(node):
    """OpenAPI 3.0 schema dialect -> JSON Schema draft 4, applied to a whole document."""
    if isinstance(node, list):
        return [_to_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_json_schema(v) for k, v in node.items() if k != "example" and k != "examples"}
    if isinstance(out.get("type"), str) and out["type"] in _TYPE_FIXES:
        out["type"] = _TYPE_FIXES[out["type"]]
    if out.get("nullable") is True:
        out.pop("nullable")
        if "$ref" in out or "allOf" in out or "oneOf" in out or "anyOf" in out or "type" not in out:
            return {"anyOf": [{"type": "null"}, out]}
        out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


class SpecSet:
    """A set of OpenAPI documents, looked up by (method, path) relative to ``/stores/{hash}``."""

    def __init__(self, spec_dir: Path | str | None = None, files=BIGCOMMERCE_SPEC_FILES,
                 deviations: tuple[Deviation, ...] = KNOWN_SPEC_DEVIATIONS, base: str | None = None,
                 query_names=None):
        """``base`` replaces the path prefix the documents' servers give (Adobe's admin schema says
        ``/rest/default``, the ACCS one a placeholder host); ``query_names`` maps a sent query
        parameter name to the documented one (or None to skip it) before checking."""
        self.spec_dir = Path(spec_dir) if spec_dir else shared_dir() / "specs" / "bigcommerce"
        self.deviations = deviations
        self.base_override = base
        self.query_names = query_names
        self.docs: dict[str, dict] = {}
        self.registry = Registry()
        self.operations: list[tuple[re.Pattern, Operation]] = []
        self._validators: dict[str, Draft4Validator] = {}
        for name in files:
            with open(self.spec_dir / name, encoding="utf-8") as fh:
                doc = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
            self.add_document(name, doc)

    def add_document(self, name: str, doc: dict) -> None:
        if str(doc.get("swagger", "")).startswith("2"):
            doc = _swagger2_to_openapi3(doc)
        doc = _to_json_schema(doc)
        self.docs[name] = doc
        self.registry = self.registry.with_resource(self._uri(name), Resource(doc, DRAFT4))
        server = (doc.get("servers") or [{"url": ""}])[0]["url"]
        base = re.sub(r"^https?://[^/]+", "", server)
        base = re.sub(r"^/stores/\{store_hash\}", "", base)
        if self.base_override is not None:
            base = self.base_override
        for template, item in doc.get("paths", {}).items():
            shared = item.get("parameters", [])
            for method in HTTP_METHODS:
                if method not in item:
                    continue
                pointer = f"/paths/{_escape(template)}/{method}"
                op = Operation(name, base, template, method, pointer, item[method])
                for i, p in enumerate(shared):
                    op.parameters.append(self._resolve(name, p, f"/paths/{_escape(template)}/parameters/{i}"))
                for i, p in enumerate(item[method].get("parameters", [])):
                    op.parameters.append(self._resolve(name, p, f"{pointer}/parameters/{i}"))
                regex = re.escape(base + template)
                regex = re.sub(r"\\\{[^}]+\\\}", r"[^/]+", regex)
                self.operations.append((re.compile(f"^{regex}$"), op))
        # Literal paths (/orders/count) must win over templated ones (/orders/{order_id}).
        self.operations.sort(key=lambda pair: pair[1].template.count("{"))

    @staticmethod
    def _uri(name: str) -> str:
        return f"urn:spec:{name}"

    def _resolve(self, name: str, node: dict, pointer: str) -> tuple[str, dict]:
        """Follow ``$ref`` chains between components of one document; return (pointer, node)."""
        seen = 0
        while isinstance(node, dict) and "$ref" in node and seen < 10:
            ref = node["$ref"]
            assert ref.startswith("#/"), ref
            pointer = ref[1:]
            node = self.docs[name]
            for token in pointer.split("/")[1:]:
                node = node[token.replace("~1", "/").replace("~0", "~")]
            seen += 1
        return pointer, node

    def find_operation(self, method: str, path: str) -> Operation | None:
        method = method.lower()
        for regex, op in self.operations:
            if op.method == method and regex.match(path):
                return op
        return None

    def _validator(self, spec_name: str, pointer: str) -> Draft4Validator:
        key = f"{spec_name}#{pointer}"
        validator = self._validators.get(key)
        if validator is None:
            validator = Draft4Validator({"$ref": f"{self._uri(spec_name)}#{pointer}"}, registry=self.registry)
            self._validators[key] = validator
        return validator

    def _schema_errors(self, op: Operation, pointer: str, instance, prefix: str) -> list[tuple[str, str]]:
        errors = []
        for err in self._validator(op.spec_name, pointer).iter_errors(instance):
            where = prefix + "".join(f"/{p}" for p in err.absolute_path)
            errors.append((where, err.message[:500]))
        return errors

    def _filter(self, violations: list[Violation]) -> list[Violation]:
        return [v for v in violations if not any(d.matches(v) for d in self.deviations)]

    # -- requests ----------------------------------------------------------------------------
    def validate_request(self, method: str, path: str, query: dict[str, list[str]] | None = None,
                         body=None) -> list[Violation]:
        op = self.find_operation(method, path)
        if op is None:
            return [Violation("request", method, path, "", "path", "no operation in the specs")]
        found: list[tuple[str, str]] = []
        query = query or {}
        if self.query_names is not None:
            renamed: dict[str, list[str]] = {}
            for name, values in query.items():
                documented_name = self.query_names(name)
                if documented_name is not None:
                    renamed.setdefault(documented_name, []).extend(values)
            query = renamed
        documented = set()
        for pointer, param in op.parameters:
            if param.get("in") != "query":
                continue
            pname = param["name"]
            documented.add(pname)
            if pname not in query:
                if param.get("required"):
                    found.append((f"query.{pname}", "required query parameter is missing"))
                continue
            _, schema = self._resolve(op.spec_name, param.get("schema", {}), pointer + "/schema")
            if isinstance(schema.get("items"), dict):
                schema = {**schema, "items": self._resolve(op.spec_name, schema["items"], "")[1]}
            value = _coerce_query(query[pname], schema, param.get("explode", True))
            found += self._schema_errors(op, pointer + "/schema", value, f"query.{pname}")
        for pname in query:
            if pname not in documented:
                found.append((f"query.{pname}", "query parameter is not documented for this operation"))
        content = (op.node.get("requestBody") or {})
        if content:
            rb_pointer, content = self._resolve(op.spec_name, content, op.pointer + "/requestBody")
            media = (content.get("content") or {})
            ct = "application/json" if "application/json" in media else next(iter(media), None)
            if body is None and content.get("required"):
                found.append(("body", "request body is required"))
            elif body is not None and ct and "schema" in media[ct]:
                found += self._schema_errors(op, f"{rb_pointer}/content/{_escape(ct)}/schema", body, "body")
        return self._filter([Violation("request", method, path, op.name, w, m) for w, m in found])

    # -- responses ---------------------------------------------------------------------------
    def validate_response(self, method: str, path: str, status: int, body=None,
                          content_type: str | None = None) -> list[Violation]:
        op = self.find_operation(method, path)
        if op is None:
            return [Violation("response", method, path, "", "path", "no operation in the specs", status)]
        responses = op.node.get("responses", {})
        key = str(status) if str(status) in responses else f"{str(status)[0]}XX"
        if key not in responses:
            key = "default" if "default" in responses else None
        found: list[tuple[str, str]] = []
        if key is None:
            # Undocumented error statuses (401, 429, 5xx...) are real API behaviour the specs do not
            # list; only an undocumented success is a contract problem. v2 collections answering
            # 204 when empty is the one known exception, documented in reference/bigcommerce.md §2.
            if status < 300 and not (status == 204 and op.base == "/v2" and method.lower() == "get"):
                found.append(("status", f"status {status} is not documented for this operation"))
        else:
            r_pointer, resp = self._resolve(op.spec_name, responses[key], f"{op.pointer}/responses/{key}")
            media = resp.get("content") or {}
            if media and status != 204:
                ct = (content_type or "application/json").split(";")[0].strip()
                if ct not in media:
                    ct = next((c for c in media if "json" in c), None) if "json" in ct else None
                if ct is None:
                    found.append(("content-type", f"{content_type} is not documented"))
                elif "schema" in media[ct]:
                    found += self._schema_errors(
                        op, f"{r_pointer}/content/{_escape(ct)}/schema", body, "body"
                    )
            elif not media and body not in (None, b"", ""):
                found.append(("body", f"status {status} is documented without a body"))
        return self._filter([Violation("response", method, path, op.name, w, m, status) for w, m in found])


def _coerce_query(values: list[str], schema: dict, explode: bool):
    """Turn raw query strings into the JSON values the parameter schema describes."""
    kind = schema.get("type")
    if kind == "array":
        items = []
        for raw in values:
            # BigCommerce takes comma-separated lists (`include=variants,images`) even where a
            # parameter's style would say "repeat the parameter"; accept both.
            items += raw.split(",")
        return [_scalar(x, (schema.get("items") or {}).get("type")) for x in items]
    return _scalar(values[-1], kind)


def _scalar(raw: str, kind):
    kinds = kind if isinstance(kind, list) else [kind]
    try:
        if "integer" in kinds:
            return int(raw)
        if "number" in kinds:
            return float(raw)
    except ValueError:
        return raw
    if "boolean" in kinds and raw in ("true", "false", "1", "0"):
        return raw in ("true", "1")
    return raw


@functools.lru_cache(maxsize=4)
def bigcommerce_specs(spec_dir: str | None = None) -> SpecSet:
    """The BigCommerce spec set, loaded once per process (parsing takes about a second)."""
    return SpecSet(spec_dir)


# -- Adobe Commerce ---------------------------------------------------------------------------------------
ADOBE_SPEC_FILES = {"paas": "admin-schema-2.4.9.yaml", "accs": "accs-schema.yaml"}

ADOBE_SPEC_DEVIATIONS: tuple[Deviation, ...] = (
    # error-response: `parameters` is documented as an array of {resources, fieldName, fieldValue}
    # objects, but Magento sends the phrase's arguments as they are: a list of strings for `%1`
    # templates (["HMAC-SHA1"]) and an object for named ones ({"resources": "..."}, {"max": 300}).
    Deviation("*", "response", r"^body(/errors/\d+)?/parameters(/\d+)?$", r"is not of type '(array|object)'",
              "phrase arguments, not the documented objects"),
    # Payment: account_status and cc_last4 are required by the interface, so Magento writes them even
    # when null (DataObjectProcessor skips nulls only for optional fields); the schema says string.
    Deviation("*", "response", r"/payment/(account_status|cc_last4)$", r"^None is not of type 'string'$",
              "required but null"),
    # Void service methods (source-items save) answer 200 with `[]`; the schema documents no 200 for
    # them, so the `default` (error-response) schema is applied to it.
    Deviation("POST /V1/inventory/source-items", "response", r"^body$", r"^\[\] is not of type 'object'$",
              "void method answers []"),
    # Stock item: low_stock_date is required and null until stock runs low.
    Deviation("*", "response", r"^body/low_stock_date$", r"^None is not of type 'string'$", "null until low"),
)

_SNAKE_TO_CAMEL = {"filter_groups": "filterGroups", "condition_type": "conditionType", "sort_orders": "sortOrders",
                   "page_size": "pageSize", "current_page": "currentPage"}


def adobe_query_name(name: str) -> str | None:
    """Sent name -> the one the Adobe schema documents: both spellings are accepted by Magento and
    the schema lists only index 0 (``searchCriteria[filterGroups][0][filters][0][field]``), so indexes
    fold to 0; ``fields`` is a global parameter the schema leaves out."""
    if name == "fields":
        return None
    for snake, camel in _SNAKE_TO_CAMEL.items():
        name = name.replace(f"[{snake}]", f"[{camel}]")
    return re.sub(r"\[\d+\]", "[0]", name)


@functools.lru_cache(maxsize=4)
def adobe_specs(flavor: str = "paas", spec_dir: str | None = None) -> SpecSet:
    """The Adobe Commerce spec for ``paas`` (admin schema 2.4.9) or ``accs`` (Cloud Service), with
    operations keyed by ``/V1/...`` whatever the URL shape; loaded once per process."""
    directory = Path(spec_dir) if spec_dir else shared_dir() / "specs" / "adobe-commerce"
    return SpecSet(directory, files=(ADOBE_SPEC_FILES[flavor],), deviations=ADOBE_SPEC_DEVIATIONS, base="",
                   query_names=adobe_query_name)
