"""Bearer tokens for the Sage X3 GraphQL API.

Two sources, one interface (``bearer()`` gives a valid token, ``on_unauthorized()`` is called by the
client after a 401 so the next ``bearer()`` gets a fresh one):

* ``OAuth2Tokens``: Sage's cloud API gateway (``https://api.{region}-sagex3.com/v1/token``). The
  authorization code is exchanged once; after that the access token (about 5 minutes) is renewed
  with the refresh token (30 days). The gateway rotates the refresh token on every use, so each new
  pair is handed to ``on_tokens`` at once: the caller must persist it (encrypted) before the old one
  is forgotten, or the connection has to be paired again.
* ``ConnectedAppJWT``: on-premises "connected applications". There is no token endpoint: the client
  signs its own short-lived HS256 JWT with the client id and secret.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable

import requests

from mlcommon.http import ApiError, AuthError, BaseApiClient, PermanentError, RetryableError

TokensCallback = Callable[[str, str, dt.datetime, dt.datetime | None], None]
DEFAULT_REFRESH_LIFETIME = dt.timedelta(days=30)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _TokenEndpoint(BaseApiClient):
    """The OAuth2 token endpoint: errors are ``{"error": ..., "error_description": ...}``."""

    def error_for(self, response: requests.Response, body) -> ApiError:
        status = response.status_code
        detail = ""
        if isinstance(body, dict):
            detail = body.get("error_description") or body.get("error") or body.get("message") or ""
        message = f"token endpoint answered {status}" + (f": {detail}" if detail else "")
        # invalid_grant = the code or refresh token is used, expired or revoked: pair again.
        if status in (400, 401, 403):
            return AuthError(message, status=status, body=body)
        if status == 429 or status >= 500:
            return RetryableError(message, status=status, body=body, retry_after=self.retry_after_of(response))
        return PermanentError(message, status=status, body=body)


class OAuth2Tokens:
    """Access/refresh token pair for the Sage X3 cloud gateway.

    ``token_url`` is the full token endpoint (``https://api.eu-sagex3.com/v1/token``). Stored tokens
    (from the database) go in ``access_token``/``refresh_token``/``expires_at``/``refresh_expires_at``.
    ``on_tokens(access, refresh, expires_at, refresh_expires_at)`` is called after every exchange and
    refresh, with aware UTC datetimes.
    """

    def __init__(self, token_url: str, client_id: str, client_secret: str, *, redirect_uri: str = "",
                 access_token: str = "", refresh_token: str = "", expires_at: dt.datetime | None = None,
                 refresh_expires_at: dt.datetime | None = None, on_tokens: TokensCallback | None = None,
                 verify: bool = True, session: requests.Session | None = None, body_format: str = "json",
                 refresh_margin: dt.timedelta = dt.timedelta(seconds=30),
                 now: Callable[[], dt.datetime] = _utcnow):
        self.endpoint = _TokenEndpoint(token_url, session=session, verify=verify)
        self.client_id = client_id
        self._client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.access_token = access_token
        self.refresh_token = refresh_token
        self.expires_at = expires_at
        self.refresh_expires_at = refresh_expires_at
        self.on_tokens = on_tokens
        self.body_format = body_format
        self.refresh_margin = refresh_margin
        self.now = now
        self.refresh_count = 0
        # Refresh tokens rotate: two threads refreshing with the same one would make the second
        # fail with invalid_grant, so refreshes are serialised.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OAuth2Tokens(client_id={self.client_id!r}, expires_at={self.expires_at!r})"

    # -- grants ---------------------------------------------------------------------------------
    def exchange_code(self, code: str, redirect_uri: str | None = None) -> None:
        with self._lock:
            self._grant({"grant_type": "authorization_code", "code": code,
                         "redirect_uri": redirect_uri or self.redirect_uri})

    def refresh(self) -> None:
        with self._lock:
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        if not self.refresh_token:
            raise AuthError("no refresh token stored: pair the Sage X3 connection again")
        self._grant({"grant_type": "refresh_token", "refresh_token": self.refresh_token})
        self.refresh_count += 1

    def _grant(self, fields: dict) -> None:
        body = {**fields, "client_id": self.client_id, "client_secret": self._client_secret}
        if self.body_format == "form":
            _, answer = self.endpoint.request("POST", "", data=_form(body), retry=False, expected=(200,),
                                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        else:
            _, answer = self.endpoint.request("POST", "", json_body=body, retry=False, expected=(200,))
        if not isinstance(answer, dict) or not answer.get("access_token"):
            raise AuthError("token endpoint answered without an access_token")
        now = self.now()
        self.access_token = answer["access_token"]
        # Some gateways do not rotate: keep the old refresh token when none comes back.
        self.refresh_token = answer.get("refresh_token") or self.refresh_token
        self.expires_at = now + dt.timedelta(seconds=int(answer.get("expires_in") or 300))
        if answer.get("refresh_token"):
            lifetime = answer.get("refresh_token_expires_in")
            self.refresh_expires_at = now + (dt.timedelta(seconds=int(lifetime)) if lifetime
                                             else DEFAULT_REFRESH_LIFETIME)
        if self.on_tokens:
            self.on_tokens(self.access_token, self.refresh_token, self.expires_at, self.refresh_expires_at)

    # -- the provider interface -----------------------------------------------------------------
    def bearer(self) -> str:
        with self._lock:
            if not self.access_token or self.expires_at is None or \
                    self.now() >= self.expires_at - self.refresh_margin:
                self._refresh_locked()
            return self.access_token

    def on_unauthorized(self, rejected_token: str | None = None) -> None:
        """A request was refused with 401: refresh, unless another thread already did."""
        with self._lock:
            if rejected_token is None or rejected_token == self.access_token:
                self._refresh_locked()

    def refresh_token_expires_soon(self, days: int = 5, now: dt.datetime | None = None) -> bool:
        return refresh_token_expires_soon(self.refresh_expires_at, days=days, now=now or self.now())


def refresh_token_expires_soon(refresh_expires_at: dt.datetime | None, days: int = 5,
                               now: dt.datetime | None = None) -> bool:
    """For the admin warning: True when the stored refresh token dies within ``days`` (or is unknown,
    which means the connection was never paired)."""
    if refresh_expires_at is None:
        return True
    return refresh_expires_at - (now or _utcnow()) <= dt.timedelta(days=days)


# -- self-signed JWT (on-premises connected applications) --------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_hs256(claims: dict, secret: str) -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(secret.encode("utf-8"), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


class ConnectedAppJWT:
    """HS256 JWT ``{iss: client_id, sub: x3 user, aud: audience, iat, exp}`` signed with the
    connected application's secret. ``lifetime`` must not exceed the "token validity" configured
    on the connected application in X3."""

    def __init__(self, client_id: str, client_secret: str, user: str, audience: str = "",
                 lifetime: int = 60, clock: Callable[[], float] = time.time):
        self.client_id = client_id
        self._secret = client_secret
        self.user = user
        self.audience = audience
        self.lifetime = lifetime
        self.clock = clock
        self._token = ""
        self._exp = 0.0

    def __repr__(self) -> str:
        return f"ConnectedAppJWT(client_id={self.client_id!r}, user={self.user!r})"

    def bearer(self) -> str:
        now = self.clock()
        if not self._token or now >= self._exp - min(10, self.lifetime / 4):
            iat = int(now)
            claims = {"iss": self.client_id, "sub": self.user, "iat": iat, "exp": iat + self.lifetime}
            if self.audience:
                claims["aud"] = self.audience
            self._token = sign_hs256(claims, self._secret)
            self._exp = iat + self.lifetime
        return self._token

    def on_unauthorized(self, rejected_token: str | None = None) -> None:
        self._token = ""


def _form(fields: dict) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in fields.items() if v is not None})
