"""Sage X3 clients for GL journal entries: REST "api1" (Syracuse, HTTP Basic) and GraphQL (Xtrem,
bearer token).

X3 sites publish journal-entry creation differently (the GACCENTRY class may not be on api1 and the
GraphQL ``x3Finance.journalEntry`` node is read-only unless a custom operation is set up in
GESAPIOPE), so every name that depends on the site is configuration with a default:

* REST: ``class_name="GACCENTRY"``, ``representation="GACCENTRY"``, header fields TYP/CPY/FCY/JOU/ACCDAT/
  DESVCR/CUR/REF (the GACCENTRY table's field codes without the ``_0`` suffix), lines in the
  ``lines_field="GACCENTRYD"`` child array with LIN/ACC/SNS/AMTCUR/BPR/DES, look-up on ``REF``.
* GraphQL: ``GraphQLMapping`` holds the mutation text, the lookup query and how entry attributes map
  to input fields; the defaults follow the documented ``x3Finance.journalEntry`` field names.

Both clients answer ``find_entry_by_reference(ref) -> X3Entry | None`` and
``create_entry(entry) -> X3Entry``; ``poster.post_journal_entry`` combines them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from urllib.parse import quote

import requests

from mlcommon.http import (
    ApiError,
    AuthError,
    BaseApiClient,
    PermanentError,
    RetryableError,
    typed_error,
)
from mlcommon.ledger import JournalEntry

MAX_LOOKUP_PAGES = 50


@dataclass
class X3Entry:
    number: str  # NUM / journalEntryNumber
    entry_type: str = ""
    reference: str = ""
    raw: dict = field(default_factory=dict)


def x3_json(value) -> str:
    """JSON text with Decimals written as JSON numbers, exactly (no float on the way)."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{x3_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(x3_json(v) for v in value) + "]"
    if hasattr(value, "isoformat"):
        return json.dumps(value.isoformat())
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def diagnoses_message(body) -> str | None:
    """The error messages of an X3 ``$diagnoses`` array (top level or on a returned resource)."""
    if not isinstance(body, dict):
        return None
    found = []
    for holder in [body, *(r for r in body.get("$resources") or () if isinstance(r, dict))]:
        for diag in holder.get("$diagnoses") or ():
            if isinstance(diag, dict) and str(diag.get("$severity", "")).lower() in ("error", "fatal"):
                found.append(str(diag.get("$message") or "").strip())
    return "; ".join(m for m in found if m) or None


# -- REST api1 -------------------------------------------------------------------------------------


class X3RestClient(BaseApiClient):
    """``base_url`` is the Syracuse server (``https://x3.example.com:8124``); ``folder`` the X3
    endpoint/folder (``SEED``)."""

    def __init__(self, base_url: str, folder: str, user: str, password: str, *,
                 class_name: str = "GACCENTRY", representation: str = "GACCENTRY",
                 lines_field: str = "GACCENTRYD", reference_field: str = "REF", number_field: str = "NUM",
                 page_size: int = 50, verify: bool = True, session: requests.Session | None = None):
        super().__init__(base_url, session=session, verify=verify)
        self.session.auth = (user, password)  # HTTP Basic, enabled in Syracuse's nodelocal.js
        self.folder = folder
        self.class_name = class_name
        self.representation = representation
        self.lines_field = lines_field
        self.reference_field = reference_field
        self.number_field = number_field
        self.page_size = page_size

    def __repr__(self) -> str:
        return f"X3RestClient({self.base_url!r}, folder={self.folder!r})"

    @property
    def collection_path(self) -> str:
        return f"/api1/x3/erp/{quote(self.folder)}/{quote(self.class_name)}"

    def error_for(self, response: requests.Response, body) -> ApiError:
        status = response.status_code
        detail = diagnoses_message(body)
        if detail is None and isinstance(body, dict):
            detail = body.get("$message") or body.get("message")
        message = f"Sage X3 answered {status}" + (f": {detail}" if detail else "")
        return typed_error(status, message, body, self.retry_after_of(response))

    def payload(self, entry: JournalEntry) -> dict:
        header = {
            "TYP": entry.entry_type, "CPY": entry.company, "FCY": entry.site, "JOU": entry.journal,
            "ACCDAT": entry.date.isoformat(), "DESVCR": entry.description, "CUR": entry.currency,
            self.reference_field: entry.reference,
        }
        if entry.ledger_currency:
            # A foreign-currency entry carries the company (ledger) currency and the rate as X3 keeps
            # it, a multiplier over a divisor (company amount = amount x RATMLT / RATDIV), and every
            # line its company-currency amount AMTLED. Field codes checked against Sage's own table
            # dictionary for GACCENTRY (online-help.sagex3.com/erp/12/en-us/Content/MCD/GACCENTRY.htm:
            # header fields CUR "Entry currency", CURLED "Ledger currency", RATDAT "Rate date", RATDIV
            # "Dividing rate", RATMLT "Multiplying rate", the last three per ledger), and against
            # public X3 schemas: GACCENTRY CUR_0 / CURLED_0 / RATMLT_0 in public SQL (payment exports
            # selecting "GC.CURLED_0 as led_currency, GC.RATMLT_0 as exchange_rate"), RATDIV_0 "Cours
            # diviseur" and RATMLT_0 "Cours multiplicateur" beside CURLED_0 "Devise référentiel" on the
            # SINVOICE accounting document, GACCENTRYD AMTCUR_0 / AMTLED_0 in ledger SQL. CURLED,
            # RATMLT and RATDIV are per-ledger arrays (_0 = the first, general ledger); the api1
            # representation takes the _0 field without its suffix, as for CUR and ACCDAT.
            header.update(CURLED=entry.ledger_currency, RATMLT=entry.exchange_rate, RATDIV=Decimal(1))
        header = {k: v for k, v in header.items() if v not in ("", None)}
        header[self.lines_field] = [
            {"LIN": number, "ACC": line.account, "SNS": line.sense, "AMTCUR": line.amount,
             "BPR": line.business_partner, "DES": line.description,
             **({"AMTLED": line.ledger_amount} if line.ledger_amount is not None else {})}
            for number, line in enumerate(entry.lines, start=1)
        ]
        return header

    def create_entry(self, entry: JournalEntry) -> X3Entry:
        # A POST is never retried here: it may have been applied. The poster looks up by REF first.
        payload = self.payload(entry)
        try:
            response, body = self.request(
                "POST", f"{self.collection_path}?representation={self.representation}.$create",
                data=x3_json(payload).encode("utf-8"),
                headers={"Content-Type": "application/json"}, expected=(200, 201),
            )
        finally:
            _record_request_body(self, payload)
        problem = diagnoses_message(body)
        if problem:  # some publications answer 200 with error diagnoses
            raise PermanentError(f"Sage X3 refused the entry: {problem}", status=response.status_code, body=body)
        number = str(body.get(self.number_field) or "") if isinstance(body, dict) else ""
        if not number:
            number = _key_from_location(response.headers.get("Location", ""))
        if not number:
            found = self.find_entry_by_reference(entry.reference)
            if found is None:
                raise RetryableError(f"Sage X3 created {entry.reference} but returned no entry number")
            return found
        return X3Entry(number, str(body.get("TYP") or entry.entry_type) if isinstance(body, dict) else "",
                       entry.reference, body if isinstance(body, dict) else {})

    def find_entry_by_reference(self, reference: str) -> X3Entry | None:
        quoted = reference.replace("'", "''")
        url = (f"{self.collection_path}?representation={self.representation}.$query"
               f"&count={self.page_size}&where={quote(f'{self.reference_field} eq {chr(39)}{quoted}{chr(39)}')}")
        for _ in range(MAX_LOOKUP_PAGES):
            body = self.get(url) or {}
            for resource in body.get("$resources") or ():
                # The filter is done again here: a publication that ignores ``where`` must not
                # make another entry look like ours.
                if str(resource.get(self.reference_field, "")) == reference:
                    return X3Entry(str(resource.get(self.number_field) or ""), str(resource.get("TYP") or ""),
                                   reference, resource)
            next_link = (body.get("$links") or {}).get("$next") or {}
            url = next_link.get("$url") if isinstance(next_link, dict) else None
            if not url:
                return None
        raise RetryableError(f"look-up of {reference} did not finish within {MAX_LOOKUP_PAGES} pages")


def _record_request_body(client: BaseApiClient, payload: dict) -> None:
    """Bodies are sent pre-encoded (exact JSON numbers), so BaseApiClient did not keep them for the
    audit trail; put the (redactable) dict back on the last exchange."""
    if client.last_exchange is not None:
        client.last_exchange.request_body = payload


def _key_from_location(location: str) -> str:
    """``.../GACCENTRY('ODIV~000123')`` -> ``000123`` (composite keys are joined with ``~``)."""
    match = re.search(r"\('([^']*)'\)", location)
    return match.group(1).split("~")[-1] if match else ""


# -- GraphQL ----------------------------------------------------------------------------------------

DEFAULT_CREATE_MUTATION = """mutation createJournalEntry($data: JournalEntry_Input!) {
  x3Finance { journalEntry { create(data: $data) {
    journalEntryType journalEntryNumber reference
  } } }
}"""

DEFAULT_LOOKUP_QUERY = """query findJournalEntry($filter: String, $after: String) {
  x3Finance { journalEntry { query(filter: $filter, first: 50, after: $after) {
    edges { node { journalEntryType journalEntryNumber reference } }
    pageInfo { endCursor hasNextPage }
  } } }
}"""


@dataclass(frozen=True)
class GraphQLMapping:
    """How a JournalEntry becomes the mutation's ``$data`` and where answers are read.

    ``header``/``line`` map GraphQL input field -> JournalEntry / JournalLine attribute; the special
    attribute ``line_number`` is the 1-based line index.
    """

    create_mutation: str = DEFAULT_CREATE_MUTATION
    lookup_query: str = DEFAULT_LOOKUP_QUERY
    data_variable: str = "data"
    header: dict = field(default_factory=lambda: {
        "journalEntryType": "entry_type", "company": "company", "site": "site", "journal": "journal",
        "accountingDate": "date", "description": "description", "transactionCurrency": "currency",
        "reference": "reference",
    })
    lines_field: str = "journalEntryLines"
    line: dict = field(default_factory=lambda: {
        "lineNumber": "line_number", "account": "account", "sign": "sense", "transactionAmount": "amount",
        "businessPartner": "business_partner", "lineDescription": "description",
    })
    # Sent only for a foreign-currency entry (one whose ledger currency differs from its own). The
    # line names follow the documented x3Finance journalEntryLine node (ledgerCurrency, ledger
    # amounts; developer.sage.com/x3/graphql/reference/xtremX3Finance/journalEntryLine); the header
    # rate names are not in any public schema (the node is read-only there, with only
    # transactionCurrency; the nearest documented shape, customerInvoiceHeaderCurrencyRates, names
    # them multiplyingRate / dividingRate per ledger), so they are settings whose defaults mirror
    # GACCENTRY's RATMLT / RATDIV, and the site's custom mutation names them.
    ledger_header: dict = field(default_factory=lambda: {
        "ledgerCurrency": "ledger_currency", "rateMultiplier": "exchange_rate", "rateDivisor": "rate_divisor",
    })
    ledger_line: dict = field(default_factory=lambda: {
        "ledgerCurrency": "ledger_currency", "ledgerAmount": "ledger_amount",
    })
    create_path: tuple = ("x3Finance", "journalEntry", "create")
    query_path: tuple = ("x3Finance", "journalEntry", "query")
    number_field: str = "journalEntryNumber"
    type_field: str = "journalEntryType"
    reference_field: str = "reference"


class X3GraphQLClient(BaseApiClient):
    """``base_url`` is the X3 server (or the cloud gateway's regional endpoint); ``endpoint`` goes in
    ``x-xtrem-endpoint``; ``tokens`` is an ``auth.OAuth2Tokens`` or ``auth.ConnectedAppJWT``."""

    api_path = "/xtrem/api"

    def __init__(self, base_url: str, endpoint: str, tokens, *, mapping: GraphQLMapping | None = None,
                 verify: bool = True, session: requests.Session | None = None):
        super().__init__(base_url, session=session, verify=verify)
        self.endpoint = endpoint
        self.tokens = tokens
        self.mapping = mapping or GraphQLMapping()

    def __repr__(self) -> str:
        return f"X3GraphQLClient({self.base_url!r}, endpoint={self.endpoint!r})"

    def default_headers(self) -> dict[str, str]:
        return {"Accept": "application/json", "x-xtrem-endpoint": self.endpoint}

    def error_for(self, response: requests.Response, body) -> ApiError:
        status = response.status_code
        detail = _graphql_errors(body) or diagnoses_message(body)
        message = f"Sage X3 GraphQL answered {status}" + (f": {detail}" if detail else "")
        return typed_error(status, message, body, self.retry_after_of(response))

    def request(self, method, path, **kwargs):
        """Adds the bearer token; after a 401 gets a fresh token and tries once more (a 401 means
        nothing was applied, so repeating even a mutation is safe)."""
        extra = kwargs.pop("headers", None) or {}
        token = self.tokens.bearer()
        try:
            return super().request(method, path, headers={**extra, "Authorization": f"Bearer {token}"}, **kwargs)
        except AuthError as exc:
            if exc.status != 401:
                raise
            self.tokens.on_unauthorized(token)
            token = self.tokens.bearer()
            return super().request(method, path, headers={**extra, "Authorization": f"Bearer {token}"}, **kwargs)

    def execute(self, query: str, variables: dict) -> dict:
        body_text = x3_json({"query": query, "variables": variables})
        # Queries are safe to repeat; mutations are not (the poster looks up before creating).
        retry = not query.lstrip().startswith("mutation")
        try:
            _, body = self.request("POST", self.api_path, data=body_text.encode("utf-8"), retry=retry,
                                   headers={"Content-Type": "application/json"}, expected=(200,))
        finally:
            _record_request_body(self, {"query": query, "variables": variables})
        problem = _graphql_errors(body)
        if problem:
            raise PermanentError(f"Sage X3 GraphQL error: {problem}", status=200, body=body)
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
            raise RetryableError("Sage X3 GraphQL answered without data", body=body)
        return body["data"]

    def variables_for(self, entry: JournalEntry) -> dict:
        m = self.mapping
        foreign = bool(entry.ledger_currency) and entry.ledger_currency != entry.currency
        ledger = {"ledger_currency": entry.ledger_currency, "exchange_rate": entry.exchange_rate,
                  "rate_divisor": Decimal(1)}
        data = {name: getattr(entry, attr) for name, attr in m.header.items()}
        if foreign:
            data.update({name: ledger[attr] for name, attr in m.ledger_header.items()})
        data = {k: v for k, v in data.items() if v not in ("", None)}

        def line_data(number, line):
            out = {name: (number if attr == "line_number" else getattr(line, attr)) for name, attr in m.line.items()}
            if foreign:
                out.update({name: (ledger["ledger_currency"] if attr == "ledger_currency" else getattr(line, attr))
                            for name, attr in m.ledger_line.items()})
            return out

        data[m.lines_field] = [line_data(number, line) for number, line in enumerate(entry.lines, start=1)]
        return {m.data_variable: data}

    def create_entry(self, entry: JournalEntry) -> X3Entry:
        data = self.execute(self.mapping.create_mutation, self.variables_for(entry))
        node = _dig(data, self.mapping.create_path)
        if not isinstance(node, dict) or not node.get(self.mapping.number_field):
            found = self.find_entry_by_reference(entry.reference)
            if found is None:
                raise RetryableError(f"Sage X3 created {entry.reference} but returned no entry number")
            return found
        return self._entry(node, entry.reference)

    def find_entry_by_reference(self, reference: str) -> X3Entry | None:
        m = self.mapping
        variables = {"filter": json.dumps({m.reference_field: reference}), "after": None}
        for _ in range(MAX_LOOKUP_PAGES):
            page = _dig(self.execute(m.lookup_query, variables), m.query_path) or {}
            for edge in page.get("edges") or ():
                node = edge.get("node") if isinstance(edge, dict) else None
                if isinstance(node, dict) and str(node.get(m.reference_field, "")) == reference:
                    return self._entry(node, reference)
            info = page.get("pageInfo") or {}
            if not info.get("hasNextPage"):
                return None
            variables = {**variables, "after": info.get("endCursor")}
        raise RetryableError(f"look-up of {reference} did not finish within {MAX_LOOKUP_PAGES} pages")

    def _entry(self, node: dict, reference: str) -> X3Entry:
        return X3Entry(str(node.get(self.mapping.number_field) or ""), str(node.get(self.mapping.type_field) or ""),
                       reference, node)


def _graphql_errors(body) -> str | None:
    if not isinstance(body, dict) or not body.get("errors"):
        return None
    messages = []
    for error in body["errors"]:
        if isinstance(error, dict):
            messages.append(str(error.get("message") or "").strip())
            ext = error.get("extensions") or {}
            messages += [str(d.get("message") or d.get("$message") or "") for d in ext.get("diagnoses") or ()
                         if isinstance(d, dict)]
        else:
            messages.append(str(error))
    return "; ".join(dict.fromkeys(m for m in messages if m)) or "unknown error"


def _dig(data, path):
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data
