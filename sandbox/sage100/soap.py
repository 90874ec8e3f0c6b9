"""SOAP 1.1 on the emulator's side: read a request envelope into plain dicts, write a response or a
fault envelope. Element order and which elements repeat come from the emulator's own WSDL
(``ebusiness.wsdl``), so responses parse in a strict client (zeep) and requests naming an element
the WSDL does not declare are refused the way a real SOAP stack refuses them (a Client fault)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

from lxml import etree

WSDL_PATH = Path(__file__).with_name("ebusiness.wsdl")
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XS = "http://www.w3.org/2001/XMLSchema"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"


class SoapClientError(ValueError):
    """The request is not a SOAP 1.1 call this service understands (a ``soap:Client`` fault)."""


@dataclass(frozen=True)
class ElementDecl:
    name: str
    type: str  # "xs:string", "xs:decimal", "xs:date" or a complex type name
    repeated: bool


class Schema:
    """The complex types and operation wrappers of the WSDL, by name."""

    def __init__(self, wsdl_text: str):
        root = etree.fromstring(wsdl_text.encode("utf-8"))
        self.namespace = root.get("targetNamespace")
        schema = root.find(f"{{{WSDL_NS}}}types/{{{XS}}}schema")
        self.types: dict[str, list[ElementDecl]] = {}
        self.elements: dict[str, list[ElementDecl]] = {}
        for complex_type in schema.findall(f"{{{XS}}}complexType"):
            self.types[complex_type.get("name")] = self._sequence(complex_type)
        for element in schema.findall(f"{{{XS}}}element"):
            self.elements[element.get("name")] = self._sequence(element.find(f"{{{XS}}}complexType"))
        self.operations = [name for name in self.elements if not name.endswith("Response")]

    @staticmethod
    def _sequence(complex_type) -> list[ElementDecl]:
        sequence = complex_type.find(f"{{{XS}}}sequence")
        declared = []
        for child in sequence.findall(f"{{{XS}}}element") if sequence is not None else ():
            type_name = child.get("type") or ""
            type_name = type_name if type_name.startswith("xs:") else type_name.split(":")[-1]
            declared.append(ElementDecl(child.get("name"), type_name, child.get("maxOccurs") == "unbounded"))
        return declared


def load_schema() -> tuple[str, Schema]:
    text = WSDL_PATH.read_text(encoding="utf-8")
    return text, Schema(text)


# -- reading a request ---------------------------------------------------------------------------------


def parse_request(body: bytes, schema: Schema) -> tuple[str, dict]:
    """``(operation, arguments)`` of a document/literal wrapped request."""
    if not body:
        raise SoapClientError("empty request body")
    try:
        root = etree.fromstring(body, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as exc:
        raise SoapClientError(f"the request is not XML: {exc}") from None
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise SoapClientError("the request is not a SOAP 1.1 envelope")
    soap_body = root.find(f"{{{SOAP_ENV}}}Body")
    if soap_body is None or len(soap_body) == 0:
        raise SoapClientError("the SOAP envelope has no body")
    call = soap_body[0]
    namespace, operation = _split(call.tag)
    if namespace != schema.namespace or operation not in schema.operations:
        raise SoapClientError(f"unknown operation {call.tag}")
    return operation, _read(call, schema.elements[operation], schema)


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def _read(element, declared: list[ElementDecl], schema: Schema) -> dict:
    by_name = {decl.name: decl for decl in declared}
    values: dict = {}
    for child in element:
        if not isinstance(child.tag, str):
            continue  # comments
        namespace, name = _split(child.tag)
        decl = by_name.get(name)
        if decl is None or namespace != schema.namespace:
            raise SoapClientError(f"element {child.tag} is not expected in {element.tag}")
        value = _read(child, schema.types[decl.type], schema) if decl.type in schema.types else _scalar(child, decl)
        if decl.repeated:
            values.setdefault(name, []).append(value)
        else:
            values[name] = value
    return values


def _scalar(element, decl: ElementDecl):
    text = element.text or ""
    if decl.type == "xs:decimal":
        try:
            return Decimal(text.strip())
        except ArithmeticError:
            raise SoapClientError(f"{decl.name}: {text!r} is not a decimal") from None
    if decl.type == "xs:date":
        try:
            return dt.date.fromisoformat(text.strip()[:10])
        except ValueError:
            raise SoapClientError(f"{decl.name}: {text!r} is not a date") from None
    return text


# -- writing a response -----------------------------------------------------------------------------------


def envelope(inner: str) -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?>'
            f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body>{inner}</s:Body></s:Envelope>').encode()


def response(operation: str, schema: Schema, result=None) -> bytes:
    """The ``<OperationResponse>`` with its ``<OperationResult>`` (a string or a typed dict)."""
    name = f"{operation}Response"
    declared = schema.elements[name]
    inner = ""
    if declared and result is not None:
        decl = declared[0]
        inner = _write(decl, result, schema)
    return envelope(f'<{name} xmlns="{schema.namespace}">{inner}</{name}>')


def _write(decl: ElementDecl, value, schema: Schema) -> str:
    if value is None:
        return ""
    if decl.repeated and isinstance(value, list):
        single = ElementDecl(decl.name, decl.type, repeated=False)
        return "".join(_write(single, item, schema) for item in value)
    if decl.type in schema.types:
        parts = [_write(child, value.get(child.name), schema) for child in schema.types[decl.type]]
        return f"<{decl.name}>{''.join(parts)}</{decl.name}>"
    return f"<{decl.name}>{escape(_text(value))}</{decl.name}>"


def _text(value) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def fault(message: str, *, code: str = "s:Client") -> bytes:
    return envelope(f"<s:Fault><faultcode>{code}</faultcode><faultstring>{escape(message)}</faultstring></s:Fault>")
