"""Authentication as Adobe Commerce does it: OAuth 1.0a integrations and bearer tokens on PaaS, Adobe
IMS server-to-server tokens on the Cloud Service (ACCS).

OAuth 1.0a follows Magento 2.4.8/2.4.9 (``Framework\\Oauth\\Oauth``, ``Helper\\Request``,
``Helper\\Signature\\Hmac``, ``Integration\\Model\\Oauth\\Nonce\\Generator``, ``Token\\Provider``), in
their order, with their messages and HTTP statuses (``Oauth\\Exception`` → 401, ``OauthInputException``
→ 400):

1. the ``Authorization`` header must contain ``OAuth `` (case-insensitive), else the request is
   not an OAuth request at all and falls through to the ACL refusal;
2. ``oauth_version``, if sent, must be ``1.0``;
3. every required ``oauth_*`` parameter must be there (one missing: its own message; several:
   ``One or more input exceptions have occurred.`` with ``errors``);
4. the token must be 32 characters; the signature method must be ``HMAC-SHA256`` (SHA1 was dropped
   in 2.4.4: ``Signature method %1 is not supported``); the consumer key must be 32 characters and
   known;
5. the timestamp must not be more than 600 s *ahead* of the server clock (``Incorrect timestamp value
   in the oauth_timestamp parameter``). Magento has no lower bound: an old timestamp passes, so a
   client whose clock is behind never sees a skew error. The nonce is recorded at this step, before
   the signature is checked, and a reused one is refused (``The nonce is already being used by the
   consumer with ID %1``);
6. the token must exist, belong to the consumer and not be revoked;
7. the signature: base string ``METHOD&enc(scheme://host[:port]/path)&enc(k=v&…)`` over the
   protocol parameters and the query string, keys sorted byte-wise *before* encoding, then
   ``base64(HMAC-SHA256(enc(consumer_secret)&enc(token_secret), base))``. Query parameters with
   brackets (``searchCriteria[...]``) enter with ``rawurldecode`` (a ``+`` stays a ``+``), others with
   ``urldecode`` (``+`` is a space) — so a client that encodes a space as ``+`` inside a
   ``searchCriteria`` value gets ``The signature is invalid. Verify and try again.`` Encode spaces
   as ``%20``.

Bearer: an integration's access token is accepted as ``Authorization: Bearer`` only when the store's
*Allow OAuth Access Tokens to be used as standalone Bearer tokens* setting is on (off by default
since 2.4.4); otherwise — and for any unknown token — the call gets the ACL refusal
``401 The consumer isn't authorized to access %resources.``, which reads like a missing grant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, unquote_plus

from .store import StoreError

LENGTH = 32  # consumer key, secrets, tokens (Magento\Framework\Oauth\Helper\Oauth::LENGTH_*)
TIME_DEVIATION = 600
SUPPORTED_SIGNATURE_METHODS = ("HMAC-SHA256",)
REQUIRED = ("oauth_consumer_key", "oauth_signature", "oauth_signature_method", "oauth_nonce", "oauth_timestamp",
            "oauth_token")
ALL_RESOURCES = "Magento_Backend::all"


def rawurlencode(value: str) -> str:
    """PHP's rawurlencode: everything but ALPHA / DIGIT / ``-._~`` is percent-encoded."""
    return quote(value, safe="-_.~")


def _random_token(rng) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(rng.choice(alphabet) for _ in range(LENGTH))


@dataclass
class Integration:
    """An activated integration: its four OAuth values and the ACL resources it was granted."""

    consumer_id: int
    name: str
    consumer_key: str
    consumer_secret: str
    access_token: str
    access_token_secret: str
    resources: set[str] = field(default_factory=lambda: {ALL_RESOURCES})
    active: bool = True
    revoked: bool = False

    def allows(self, resources: tuple[str, ...]) -> bool:
        return ALL_RESOURCES in self.resources or all(r in self.resources for r in resources)

    def as_dict(self) -> dict:
        return {"consumer_id": self.consumer_id, "name": self.name, "consumer_key": self.consumer_key,
                "consumer_secret": self.consumer_secret, "access_token": self.access_token,
                "access_token_secret": self.access_token_secret, "resources": sorted(self.resources),
                "active": self.active, "revoked": self.revoked}


def make_integration(consumer_id: int, name: str, rng, **values) -> Integration:
    keys = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
    chosen = {k: values.get(k) or _random_token(rng) for k in keys}
    for k, v in chosen.items():
        if len(v) != LENGTH:
            raise ValueError(f"{k} must be {LENGTH} characters (Magento's fixed length), got {len(v)}")
    resources = values.get("resources")
    return Integration(consumer_id, name, resources=set(resources) if resources else {ALL_RESOURCES}, **chosen)


def _is_protocol_parameter(name: str) -> bool:
    # preg_match('/oauth_[a-z_-]+/', $name): unanchored, like Magento.
    import re

    return re.search(r"oauth_[a-z_-]+", name) is not None


def parse_authorization(header: str | None) -> dict[str, str] | None:
    """``Helper\\Request::_processHeader``: None when the header is not an OAuth header."""
    if not header:
        return None
    position = header.lower().find("oauth ")
    if position < 0:
        return None
    params: dict[str, str] = {}
    for part in header[position + 6:].split(","):
        pieces = part.strip().split("=", 1)
        if len(pieces) < 2:
            continue
        if _is_protocol_parameter(pieces[0]):
            params[unquote(pieces[0])] = unquote(pieces[1].strip('"'))
    return params


def _php_parse_str_flat(query: str) -> dict[str, str]:
    """The top-level, bracket-free keys ``parse_str`` yields (urldecoded: ``+`` is a space)."""
    out: dict[str, str] = {}
    for pair in query.split("&"):
        if not pair:
            continue
        key, _, value = pair.partition("=")
        key = unquote_plus(key)
        if "[" in key:
            continue
        out[key.replace(".", "_").replace(" ", "_")] = unquote_plus(value)
    return out


def signature_parameters(header_params: dict[str, str], query: str, content_type: str, body: bytes) -> dict:
    """The parameters that enter the base string, exactly as Magento assembles them."""
    params = dict(header_params)
    if content_type.startswith("application/x-www-form-urlencoded"):
        for key, value in _php_parse_str_flat(body.decode("utf-8", "replace")).items():
            if not _is_protocol_parameter(key):
                params[key] = value
    for pair in query.split("&") if query else []:
        parts = pair.split("=")
        if len(parts) == 2 and not _is_protocol_parameter(parts[0]):
            params[unquote(parts[0])] = unquote(parts[1])  # rawurldecode: '+' stays '+'
    # Hmac::buildRequestParams merges parse_str($query) over them; bracketed keys come back from
    # parse_str as nested arrays, which removeNestedArrays/isValidValue drop again.
    params.update(_php_parse_str_flat(query))
    params.pop("oauth_signature", None)
    return params


def base_string(method: str, url: str, params: dict[str, str]) -> str:
    normalized = "&".join(f"{rawurlencode(k)}={rawurlencode(str(v))}" for k, v in sorted(params.items()))
    return f"{method.upper()}&{rawurlencode(url)}&{rawurlencode(normalized)}"


def sign(base: str, consumer_secret: str, token_secret: str) -> str:
    key = f"{rawurlencode(consumer_secret)}&{rawurlencode(token_secret)}"
    return base64.b64encode(hmac.new(key.encode(), base.encode(), hashlib.sha256).digest()).decode()


class OAuthVerifier:
    def __init__(self, integrations: list[Integration], clock: Callable[[], float] = time.time):
        self.integrations = integrations
        self.clock = clock
        self.nonces: set[tuple[int, str]] = set()
        self.lock = threading.Lock()

    def by_consumer_key(self, key: str) -> Integration | None:
        return next((i for i in self.integrations if i.consumer_key == key), None)

    def by_token(self, token: str) -> Integration | None:
        return next((i for i in self.integrations if i.access_token == token), None)

    def verify(self, method: str, url: str, query: str, headers: dict[str, str], body: bytes) -> Integration | None:
        """The integration an OAuth-signed request acts as; None when it is not an OAuth request.
        ``url`` is scheme://host[:port]/path as the server sees it (Host header included)."""
        params = parse_authorization(headers.get("authorization"))
        if params is None:
            return None
        version = params.get("oauth_version")
        if version is not None and not _php_equal(version, "1.0"):
            raise StoreError(400, 'The "%1" Oauth version isn\'t supported.', [version])
        missing = [p for p in REQUIRED if p not in params]
        if len(missing) == 1:
            raise StoreError(400, '"%fieldName" is required. Enter and try again.', {"fieldName": missing[0]})
        if missing:
            error = StoreError(400, "One or more input exceptions have occurred.")
            error.errors = [{"message": '"%fieldName" is required. Enter and try again.',
                             "parameters": {"fieldName": p}} for p in missing]
            raise error
        if len(params["oauth_token"]) != LENGTH:
            raise StoreError(400, "The token length is invalid. Check the length and try again.")
        if params["oauth_signature_method"] not in SUPPORTED_SIGNATURE_METHODS:
            raise StoreError(400, "Signature method %1 is not supported", [params["oauth_signature_method"]])
        if len(params["oauth_consumer_key"]) != LENGTH:
            raise StoreError(401, "Consumer key is not the correct length")
        integration = self.by_consumer_key(params["oauth_consumer_key"])
        if integration is None:
            raise StoreError(401, "A consumer having the specified key does not exist")
        try:
            timestamp = int(params["oauth_timestamp"])
        except ValueError:
            timestamp = 0
        if timestamp <= 0 or timestamp > int(self.clock()) + TIME_DEVIATION:
            raise StoreError(400, "Incorrect timestamp value in the oauth_timestamp parameter")
        with self.lock:
            key = (integration.consumer_id, params["oauth_nonce"])
            if key in self.nonces:
                raise StoreError(401, "The nonce is already being used by the consumer with ID %1",
                                 [str(integration.consumer_id)])
            self.nonces.add(key)
        token_owner = self.by_token(params["oauth_token"])
        if token_owner is None:
            raise StoreError(401, "Specified token does not exist")
        if token_owner.consumer_id != integration.consumer_id:
            raise StoreError(401, "Token is not associated with the specified consumer")
        if integration.revoked:
            raise StoreError(401, "Access token has been revoked")
        signed = signature_parameters(params, query, headers.get("content-type", ""), body)
        expected = sign(base_string(method, url, signed), integration.consumer_secret,
                        integration.access_token_secret)
        if not hmac.compare_digest(expected.encode(), params["oauth_signature"].encode()):
            raise StoreError(401, "The signature is invalid. Verify and try again.")
        return integration if integration.active else None


def _php_equal(a: str, b: str) -> bool:
    """PHP's loose ``==`` between two strings: numeric strings compare as numbers ("1" == "1.0")."""
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b


# -- Adobe IMS (ACCS) ----------------------------------------------------------------------------------
@dataclass
class ImsToken:
    value: str
    client_id: str
    scopes: frozenset[str]
    expires_at: float


class ImsIssuer:
    """``POST /ims/token/v3`` (client_credentials): tokens that expire after ``ttl`` seconds."""

    def __init__(self, client_id: str, client_secret: str, org_id: str, clock: Callable[[], float] = time.time,
                 ttl: int = 86399):
        self.client_id = client_id
        self.client_secret = client_secret
        self.org_id = org_id
        self.clock = clock
        self.ttl = ttl
        self.tokens: dict[str, ImsToken] = {}
        self.issued = 0
        self.lock = threading.Lock()

    def issue(self, form: dict[str, str]) -> tuple[int, dict]:
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type", "error_description": "unsupported grant_type"}
        if form.get("client_id") != self.client_id:
            return 400, {"error": "invalid_client", "error_description": "invalid client_id parameter"}
        if not hmac.compare_digest((form.get("client_secret") or "").encode(), self.client_secret.encode()):
            return 401, {"error": "invalid_client", "error_description": "invalid client_secret parameter"}
        scopes = frozenset(s.strip() for s in (form.get("scope") or "").split(",") if s.strip())
        value = "eyJ" + secrets.token_urlsafe(48)
        with self.lock:
            self.tokens[value] = ImsToken(value, self.client_id, scopes, self.clock() + self.ttl)
            self.issued += 1
        return 200, {"access_token": value, "token_type": "bearer", "expires_in": self.ttl * 1000 // 1000}

    def expire_all(self) -> int:
        with self.lock:
            for token in self.tokens.values():
                token.expires_at = 0
            return len(self.tokens)

    def check(self, headers: dict[str, str]) -> tuple[int, dict] | None:
        """None when the call may go on; else the gateway's refusal (status, body)."""
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return 401, {"error_code": "401013", "message": "Oauth token is not valid"}
        token = self.tokens.get(auth[7:].strip())
        if token is None or token.expires_at <= self.clock():
            return 401, {"error_code": "401013", "message": "Oauth token is not valid"}
        api_key = headers.get("x-api-key")
        if not api_key:
            return 403, {"error_code": "403000", "message": "Api Key is required"}
        if api_key != token.client_id:
            return 403, {"error_code": "403003", "message": "Api Key is invalid"}
        if headers.get("x-gw-ims-org-id") != self.org_id:
            return 403, {"error_code": "403000",
                         "message": "Forbidden: verify your Organization ID (x-gw-ims-org-id)"}
        if "commerce.accs" not in token.scopes:
            return 403, {"error_code": "403000",
                         "message": "Forbidden: the access token was not issued for the commerce.accs scope"}
        return None
