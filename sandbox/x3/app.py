"""A Sage X3 emulator for GL journal entries, over both transports the connector uses.

* REST api1 (Syracuse) with HTTP Basic: ``POST /api1/x3/erp/{folder}/{class}?representation={rep}.$create``,
  ``GET ...?representation={rep}.$query&where=REF eq '...'&count=N`` (paged with ``$links.$next``),
  ``GET .../{class}('TYP~NUM')?representation={rep}.$details``. Errors are X3-style ``$diagnoses``.
* GraphQL (Xtrem) ``POST /xtrem/api`` with ``x-xtrem-endpoint`` and a bearer token that is either an
  access token from the emulated cloud gateway (``POST /v1/token``: authorization_code and
  refresh_token grants, short access tokens, rotating refresh tokens) or a connected-application
  HS256 JWT signed with the client secret. The GraphQL text is not parsed: a body whose query starts
  with ``mutation`` creates from ``variables.data`` (default input names of
  ``connector.sagex3.client.GraphQLMapping``), anything else is the look-up by ``variables.filter``.

An entry is refused like X3 refuses it: unknown accounts, unbalanced lines, a missing header field.
Accepted entries get a number (NUM) per entry type and are listed at ``GET /__sandbox__/entries``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qs, quote, urlencode

from sandbox.httpserver import Faults, Request, Response, SandboxApp

DEFAULT_ACCOUNTS = (
    "411000",  # customers (collective)
    "467000",  # payment clearing
    "512000",  # bank
    "706000",  # revenue: services / goods sold
    "707000",  # revenue: goods
    "708500",  # shipping re-invoiced
    "709000",  # discounts granted
    "445710",  # VAT collected
    "607000",  # purchases of goods (cost of goods)
    "603700",  # change in stock of goods
    "370000",  # stock of goods
    "419100",  # customer advances: gift certificates sold and not yet redeemed
    "467100",  # store credit clearing
)
# Collective accounts (GACCOUNT with a business-partner type): X3 refuses a line on one without BPR.
DEFAULT_COLLECTIVE_ACCOUNTS = ("411000",)
HEADER_REQUIRED = ("TYP", "FCY", "ACCDAT", "JOU", "CUR")
REFRESH_TOKEN_LIFETIME = 30 * 86400

# GraphQL input names (connector defaults) -> GACCENTRY / GACCENTRYD field codes.
GQL_HEADER = {"journalEntryType": "TYP", "company": "CPY", "site": "FCY", "journal": "JOU",
              "accountingDate": "ACCDAT", "description": "DESVCR", "transactionCurrency": "CUR",
              "reference": "REF", "ledgerCurrency": "CURLED", "rateMultiplier": "RATMLT", "rateDivisor": "RATDIV"}
GQL_LINE = {"lineNumber": "LIN", "account": "ACC", "sign": "SNS", "transactionAmount": "AMTCUR",
            "businessPartner": "BPR", "lineDescription": "DES", "ledgerAmount": "AMTLED"}


@dataclass
class X3Faults(Faults):
    expire_tokens_now: bool = False  # set true: every issued access token stops working at once

    def update(self, values: dict) -> None:
        super().update(values)
        if self.expire_tokens_now:
            hook = self.__dict__.get("_on_expire")
            if hook:
                hook()
            self.expire_tokens_now = False

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}


class X3Error(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def _json_text(value) -> str:
    """JSON with Decimals as exact numbers, as X3 writes amounts."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_json_text(v) for v in value) + "]"
    return json.dumps(value, default=str)


def _json_response(status: int, body, headers: dict | None = None) -> Response:
    return Response(status, _json_text(body), headers=headers or {})


def _diagnoses(status: int, *messages: str) -> Response:
    return _json_response(status, {"$diagnoses": [{"$severity": "error", "$message": m} for m in messages]})


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class X3SandboxApp(SandboxApp):
    name = "sandbox-x3"

    def __init__(self, *, user: str = "admin", password: str = "admin", client_id: str = "sandbox-client",
                 client_secret: str = "sandbox-secret", folder: str = "SEED", accounts=DEFAULT_ACCOUNTS,
                 class_name: str = "GACCENTRY", representation: str = "GACCENTRY",
                 lines_field: str = "GACCENTRYD", access_token_ttl: int = 60, jwt_audience: str = "",
                 page_size: int = 20, clock=time.time, faults: X3Faults | None = None, seed: int = 1,
                 collective_accounts=DEFAULT_COLLECTIVE_ACCOUNTS, company_currency: str = ""):
        super().__init__(faults or X3Faults(), seed)
        self.faults.__dict__["_on_expire"] = self.expire_access_tokens
        self.user, self.password = user, password
        self.client_id, self.client_secret = client_id, client_secret
        self.folder = folder
        self.accounts = set(accounts)
        self.collective_accounts = set(collective_accounts)
        # The company's (ledger) currency. Real X3 always knows it and converts every entry in another
        # currency at a rate; "" (the default) means "not modelled": only an entry that names a ledger
        # currency of its own is checked for its rate and company-currency amounts.
        self.company_currency = company_currency.upper()
        self.class_name, self.representation, self.lines_field = class_name, representation, lines_field
        self.access_token_ttl = access_token_ttl
        self.jwt_audience = jwt_audience
        self.page_size = page_size
        self.clock = clock
        self.entries: list[dict] = []
        self.counters: dict[str, int] = {}
        self.codes: dict[str, float] = {}  # authorization code -> expiry
        self.access_tokens: dict[str, float] = {}
        self.refresh_tokens: dict[str, float] = {}
        self.token_requests: list[str] = []  # grant types, in order
        api1 = r"/api1/x3/erp/(?P<folder>[^/]+)/(?P<cls>[A-Za-z0-9_]+)"
        self.route("POST", api1, self.rest_create)
        self.route("GET", api1, self.rest_query)
        self.route("GET", api1 + r"\('(?P<key>[^']*)'\)", self.rest_details)
        self.route("POST", r"(?:/v1)?/token", self.token)
        self.route("GET", r"(?:/v1)?/token/authorise", self.authorise)
        self.route("POST", r"/xtrem/api", self.graphql)
        self.route("GET", r"/__sandbox__/entries", self._list_entries)
        self.route("POST", r"/__sandbox__/authorization_codes", self._mint_code)
        self.route("GET", r"/__sandbox__/tokens", self._token_state)
        self.route("POST", r"/__sandbox__/reset", self._reset)

    def reset(self) -> None:
        """Forget entries, tokens and faults (tests share one server and reset between cases)."""
        with self.lock:
            self.entries.clear()
            self.counters.clear()
            self.codes.clear()
            self.access_tokens.clear()
            self.refresh_tokens.clear()
            self.token_requests.clear()
            self.request_log.clear()
            self.faults.latency_ms, self.faults.error_rate = 0, 0.0

    def _reset(self, request: Request) -> Response:
        self.reset()
        return _json_response(200, {"reset": True})

    # -- auth ---------------------------------------------------------------------------------------
    def pre_dispatch(self, request: Request) -> Response | None:
        if request.path.startswith("/api1/"):
            if not self._basic_ok(request.headers.get("authorization", "")):
                response = _diagnoses(401, "Authentication failed: invalid user or password")
                response.headers["WWW-Authenticate"] = 'Basic realm="Sage X3"'
                return response
        elif request.path == "/xtrem/api":
            problem = self._bearer_problem(request.headers.get("authorization", ""))
            if problem:
                return _json_response(401, {"errors": [{"message": f"Unauthorized: {problem}"}]},
                                      {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return None

    def _basic_ok(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        user_ok = hmac.compare_digest(user.encode(), self.user.encode())
        return hmac.compare_digest(password.encode(), self.password.encode()) and user_ok

    def _bearer_problem(self, header: str) -> str | None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "no bearer token"
        if token.count(".") == 2:
            return self._jwt_problem(token)
        with self.lock:
            expires = self.access_tokens.get(token)
        if expires is None:
            return "unknown or revoked access token"
        if self.clock() >= expires:
            return "access token expired"
        return None

    def _jwt_problem(self, token: str) -> str | None:
        header_b64, payload_b64, signature_b64 = token.split(".")
        try:
            header = json.loads(_b64url_decode(header_b64))
            claims = json.loads(_b64url_decode(payload_b64))
            signature = _b64url_decode(signature_b64)
        except (ValueError, binascii.Error):
            return "malformed JWT"
        if header.get("alg") != "HS256":
            return "JWT algorithm must be HS256"
        expected = hmac.new(self.client_secret.encode(), f"{header_b64}.{payload_b64}".encode(),
                            hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature):
            return "JWT signature does not verify"
        if claims.get("iss") != self.client_id:
            return "JWT issuer is not a connected application"
        if self.jwt_audience and claims.get("aud") != self.jwt_audience:
            return "JWT audience mismatch"
        if not isinstance(claims.get("exp"), int | float) or self.clock() >= claims["exp"]:
            return "JWT expired"
        if claims.get("sub") != self.user:
            return "JWT subject is not an allowed user"
        return None

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    # -- OAuth2 (Sage X3 cloud gateway) --------------------------------------------------------------
    def authorise(self, request: Request) -> Response:
        if request.arg("client_id") != self.client_id or not request.arg("redirect_uri"):
            return _json_response(400, {"error": "invalid_request"})
        code = self._new_code()
        query = urlencode({"code": code, "state": request.arg("state", "")})
        return Response(302, None, headers={"Location": f"{request.arg('redirect_uri')}?{query}"})

    def _mint_code(self, request: Request) -> Response:
        return _json_response(201, {"code": self._new_code()})

    def _new_code(self) -> str:
        code = secrets.token_urlsafe(16)
        with self.lock:
            self.codes[code] = self.clock() + 600
        return code

    def token(self, request: Request) -> Response:
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8")).items()}
        else:
            form = json.loads(request.body or b"{}")
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if not (hmac.compare_digest(str(client_id).encode(), self.client_id.encode())
                and hmac.compare_digest(str(secret).encode(), self.client_secret.encode())):
            return _json_response(401, {"error": "invalid_client", "error_description": "bad client credentials"})
        grant = form.get("grant_type")
        now = self.clock()
        with self.lock:
            self.token_requests.append(str(grant))
            if grant == "authorization_code":
                expires = self.codes.pop(str(form.get("code")), None)
                if expires is None or now >= expires:
                    return _json_response(400, {"error": "invalid_grant",
                                                "error_description": "authorization code is invalid or used"})
            elif grant == "refresh_token":
                # Rotation: a refresh token works once; the old one is refused afterwards.
                expires = self.refresh_tokens.pop(str(form.get("refresh_token")), None)
                if expires is None or now >= expires:
                    return _json_response(400, {"error": "invalid_grant",
                                                "error_description": "refresh token is invalid, expired or used"})
            else:
                return _json_response(400, {"error": "unsupported_grant_type"})
            access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(32)
            self.access_tokens[access] = now + self.access_token_ttl
            self.refresh_tokens[refresh] = now + REFRESH_TOKEN_LIFETIME
        return _json_response(200, {"access_token": access, "token_type": "Bearer",
                                    "expires_in": self.access_token_ttl, "refresh_token": refresh,
                                    "refresh_token_expires_in": REFRESH_TOKEN_LIFETIME})

    def _token_state(self, request: Request) -> Response:
        with self.lock:
            return _json_response(200, {"grants": list(self.token_requests),
                                        "live_access_tokens": len(self.access_tokens),
                                        "live_refresh_tokens": len(self.refresh_tokens)})

    # -- journal entries (shared by both transports) -------------------------------------------------
    def create_entry(self, header: dict, lines: list) -> dict:
        """Validate and store one entry; raises X3Error with the message X3 would give."""
        missing = [name for name in HEADER_REQUIRED if not header.get(name)]
        if missing:
            raise X3Error(400, f"{', '.join(missing)}: mandatory field")
        try:
            accdat = dt.date.fromisoformat(str(header["ACCDAT"]))
        except ValueError:
            raise X3Error(400, f"ACCDAT: invalid date {header['ACCDAT']!r}") from None
        if not isinstance(lines, list) or len(lines) < 2:
            raise X3Error(400, "An entry needs at least two lines")
        clean, problems = [], []
        for number, line in enumerate(lines, start=1):
            acc = str(line.get("ACC") or "")
            if acc not in self.accounts:
                problems.append(f"Line {number}: account {acc or '(blank)'} does not exist")
                continue
            try:
                amount = Decimal(str(line.get("AMTCUR")))
                sense = int(line.get("SNS"))
            except (InvalidOperation, TypeError, ValueError):
                problems.append(f"Line {number}: invalid amount or sense")
                continue
            if sense not in (1, -1):
                problems.append(f"Line {number}: sense must be 1 (debit) or -1 (credit)")
                continue
            if acc in self.collective_accounts and not str(line.get("BPR") or ""):
                problems.append(f"Line {number}: account {acc} is a collective account: business partner mandatory")
                continue
            clean.append({"LIN": number, "ACC": acc, "SNS": sense, "AMTCUR": amount,
                          "BPR": str(line.get("BPR") or ""), "DES": str(line.get("DES") or "")})
        if problems:
            raise X3Error(400, "; ".join(problems))
        debit = sum((line["AMTCUR"] for line in clean if line["SNS"] == 1), Decimal(0))
        credit = sum((line["AMTCUR"] for line in clean if line["SNS"] == -1), Decimal(0))
        if debit != credit:
            raise X3Error(400, f"Unbalanced entry: debit {debit} credit {credit} (difference {debit - credit})")
        ledger = self._ledger_amounts(header, lines, clean)
        with self.lock:
            typ = str(header["TYP"])
            self.counters[typ] = self.counters.get(typ, 0) + 1
            record = {
                "TYP": typ, "NUM": f"{typ}{accdat:%y}{self.counters[typ]:06d}",
                "CPY": str(header.get("CPY") or ""), "FCY": str(header["FCY"]), "JOU": str(header["JOU"]),
                "ACCDAT": accdat.isoformat(), "DESVCR": str(header.get("DESVCR") or ""),
                "CUR": str(header["CUR"]), "REF": str(header.get("REF") or ""), "lines": clean, **ledger,
            }
            self.entries.append(record)
        return record

    def _ledger_amounts(self, header: dict, lines: list, clean: list) -> dict:
        """A foreign-currency entry (CUR other than the company currency) needs its rate and each line's
        company-currency amount, balanced; X3 refuses it otherwise rather than guess a rate."""
        cur = str(header["CUR"]).upper()
        curled = str(header.get("CURLED") or "").upper()
        company = self.company_currency or curled
        if not company or company == cur:
            return {}
        if curled and self.company_currency and curled != self.company_currency:
            raise X3Error(400, f"CURLED: the company currency is {self.company_currency}, not {curled}")
        try:
            mlt = Decimal(str(header.get("RATMLT"))) if header.get("RATMLT") not in (None, "") else None
            div = Decimal(str(header.get("RATDIV"))) if header.get("RATDIV") not in (None, "") else Decimal(1)
        except InvalidOperation:
            raise X3Error(400, "RATMLT / RATDIV: invalid exchange rate") from None
        if not mlt or mlt <= 0 or div <= 0:
            raise X3Error(400, f"No exchange rate from {cur} to {company} on the entry (RATMLT/RATDIV mandatory "
                               f"for a currency other than the company currency)")
        missing = [n for n, line in enumerate(lines, start=1) if line.get("AMTLED") in (None, "")]
        if missing:
            raise X3Error(400, f"Lines {', '.join(map(str, missing))}: amount in company currency {company} (AMTLED) "
                               "mandatory")
        try:
            amounts = [Decimal(str(line["AMTLED"])) for line in lines]
        except InvalidOperation:
            raise X3Error(400, "AMTLED: invalid amount") from None
        for line, amount in zip(clean, amounts, strict=True):
            line["AMTLED"] = amount
        balance = sum((line["SNS"] * line["AMTLED"] for line in clean), Decimal(0))
        if balance:
            raise X3Error(400, f"Unbalanced entry in company currency {company}: difference {balance}")
        return {"CURLED": company, "RATMLT": mlt, "RATDIV": div}

    def find(self, field_name: str, value: str) -> list[dict]:
        with self.lock:
            return [e for e in self.entries if str(e.get(field_name, "")) == value]

    def _list_entries(self, request: Request) -> Response:
        with self.lock:
            entries = list(self.entries)
        return _json_response(200, {"count": len(entries), "entries": entries})

    # -- REST api1 -------------------------------------------------------------------------------------
    def _rest_target(self, request: Request, facet: str) -> Response | None:
        if request.params["folder"] != self.folder:
            return _diagnoses(404, f"Endpoint {request.params['folder']} does not exist")
        rep = request.arg("representation", "")
        if request.params["cls"] != self.class_name or rep != f"{self.representation}.{facet}":
            return _diagnoses(404, f"Class {request.params['cls']} / representation {rep} is not published")
        return None

    def _resource(self, record: dict) -> dict:
        body = {k: v for k, v in record.items() if k != "lines"}
        body[self.lines_field] = record["lines"]
        body["$uuid"] = hashlib.sha1(f"{record['TYP']}~{record['NUM']}".encode()).hexdigest()
        return body

    def rest_create(self, request: Request) -> Response:
        wrong = self._rest_target(request, "$create")
        if wrong:
            return wrong
        payload = json.loads(request.body or b"{}", parse_float=Decimal)
        if not isinstance(payload, dict):
            return _diagnoses(400, "Body must be a JSON object")
        try:
            record = self.create_entry(payload, payload.get(self.lines_field) or [])
        except X3Error as exc:
            return _diagnoses(exc.status, exc.message)
        location = (f"/api1/x3/erp/{self.folder}/{self.class_name}('{record['TYP']}~{record['NUM']}')"
                    f"?representation={self.representation}.$details")
        return _json_response(201, self._resource(record), {"Location": location})

    def rest_details(self, request: Request) -> Response:
        wrong = self._rest_target(request, "$details")
        if wrong:
            return wrong
        typ, _, num = request.params["key"].rpartition("~")
        for record in self.find("NUM", num):
            if not typ or record["TYP"] == typ:
                return _json_response(200, self._resource(record))
        return _diagnoses(404, f"Record {request.params['key']} does not exist")

    def rest_query(self, request: Request) -> Response:
        wrong = self._rest_target(request, "$query")
        if wrong:
            return wrong
        where = (request.arg("where") or "").strip()
        with self.lock:
            matches = list(self.entries)
        if where:
            field_name, op, value = (where.split(" ", 2) + ["", ""])[:3]
            if op.lower() != "eq" or len(value) < 2 or value[0] != "'" or value[-1] != "'":
                return _diagnoses(400, f"Unsupported where clause: {where}")
            wanted = value[1:-1].replace("''", "'")
            matches = [e for e in matches if str(e.get(field_name, "")) == wanted]
        try:
            count = max(1, min(int(request.arg("count") or self.page_size), 200))
            start = max(1, int(request.arg("startIndex") or 1))
        except ValueError:
            return _diagnoses(400, "count and startIndex must be integers")
        page = matches[start - 1:start - 1 + count]
        body = {"$itemsPerPage": count, "$startIndex": start,
                "$resources": [{k: v for k, v in e.items() if k != "lines"} for e in page], "$links": {}}
        if start - 1 + count < len(matches):
            host = request.headers.get("host", "127.0.0.1")
            query = urlencode({"representation": f"{self.representation}.$query", "count": count,
                               "startIndex": start + count, **({"where": where} if where else {})},
                              quote_via=quote)
            body["$links"]["$next"] = {
                "$url": f"http://{host}/api1/x3/erp/{self.folder}/{self.class_name}?{query}"}
        return _json_response(200, body)

    # -- GraphQL ---------------------------------------------------------------------------------------
    def graphql(self, request: Request) -> Response:
        if request.headers.get("x-xtrem-endpoint") != self.folder:
            return _json_response(400, {"errors": [{"message": "x-xtrem-endpoint header is missing or unknown"}]})
        body = json.loads(request.body or b"{}", parse_float=Decimal)
        query = str(body.get("query") or "")
        variables = body.get("variables") or {}
        if query.lstrip().startswith("mutation"):
            return self._gql_create(variables.get("data") or {})
        return self._gql_lookup(variables)

    def _gql_create(self, data: dict) -> Response:
        header = {code: data.get(name) for name, code in GQL_HEADER.items()}
        lines = [{code: line.get(name) for name, code in GQL_LINE.items()}
                 for line in data.get("journalEntryLines") or ()]
        try:
            record = self.create_entry(header, lines)
        except X3Error as exc:
            return _json_response(200, {"data": None, "errors": [{
                "message": exc.message, "path": ["x3Finance", "journalEntry", "create"],
                "extensions": {"code": "business-rule-error",
                               "diagnoses": [{"severity": 3, "message": exc.message}]}}]})
        node = self._gql_node(record)
        return _json_response(200, {"data": {"x3Finance": {"journalEntry": {"create": node}}}})

    def _gql_node(self, record: dict) -> dict:
        return {"journalEntryType": record["TYP"], "journalEntryNumber": record["NUM"],
                "reference": record["REF"], "site": record["FCY"], "company": record["CPY"],
                "journal": record["JOU"], "accountingDate": record["ACCDAT"],
                "transactionCurrency": record["CUR"], "description": record["DESVCR"]}

    def _gql_lookup(self, variables: dict) -> Response:
        try:
            wanted = json.loads(variables.get("filter") or "{}")
            start = int(base64.b64decode(variables["after"]).decode()) if variables.get("after") else 0
        except (ValueError, binascii.Error):
            return _json_response(200, {"data": None, "errors": [{"message": "invalid filter or cursor"}]})
        with self.lock:
            nodes = [self._gql_node(e) for e in self.entries]
        nodes = [n for n in nodes if all(str(n.get(k, "")) == str(v) for k, v in wanted.items())]
        page = nodes[start:start + self.page_size]
        end = start + len(page)
        cursor = base64.b64encode(str(end).encode()).decode()
        result = {"edges": [{"node": n, "cursor": cursor} for n in page],
                  "pageInfo": {"endCursor": cursor, "hasNextPage": end < len(nodes)}}
        return _json_response(200, {"data": {"x3Finance": {"journalEntry": {"query": result}}}})
