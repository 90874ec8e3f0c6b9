"""A direct ASGI lane for the agent API's two hot endpoints, POST /agent/v1/jobs/lease and
POST /agent/v1/jobs/complete, in front of Django's ASGI handler (connector/asgi.py).

Why: under the 50-agent Black Friday bench each paid order costs about three of these requests,
and Django's per-request machinery for them — the whole middleware chain (sessions, CSRF,
messages, auth, axes, CSP; mostly sync, so a fresh thread per request under ASGI), the request
signals, URL resolution, DRF's dispatch — was a large share of a web node's CPU in its profile
(taking the two endpoints through the lane cut the web nodes' CPU by about 9 % in that bench). The lane is the same checks with fewer hops: it answers with the very functions the
views call (views.lease, views.complete_batch), renders them as the views do, and adds the headers
Django's SecurityMiddleware and XFrameOptionsMiddleware add. The Host check, the client address
and the https test are Django's own, on an ASGIRequest built from the scope (a dict, no middleware).

It takes a request only when it can answer exactly as Django would; everything else goes to Django
unchanged: another path or method, a query string, a bad Host (Django's 400 page, and its
DisallowedHost log), plain http while SECURE_SSL_REDIRECT is on (Django redirects), a body without a
Content-Length or over DATA_UPLOAD_MAX_MEMORY_SIZE (Django refuses it, or DRF reads it, as before),
and a batch complete whose Accept header DRF would not answer with plain JSON (the browsable API).
"""

from __future__ import annotations

import asyncio
import io
import logging
from types import SimpleNamespace

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.exception import response_for_exception
from django.http import HttpResponse
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.utils.log import log_response
from rest_framework.exceptions import NotAcceptable
from rest_framework.renderers import JSONRenderer

from agentapi import views
from agentapi.longpoll import run_db
from agentapi.parsers import parse_json_body
from connector.security import client_ip
from mlcommon.asgi import read_body

logger = logging.getLogger(__name__)

LEASE_PATH = "/agent/v1/jobs/lease"
COMPLETE_PATH = "/agent/v1/jobs/complete"  # no trailing-slash variants: agentapi/urls.py routes none
# The response middleware that adds headers to these JSON answers, applied when settings.MIDDLEWARE
# has them, in the order Django applies them (the reverse of the setting). The CSP middleware
# touches HTML only; the others add nothing to these answers (test_agent_lane compares the two paths).
HEADER_MIDDLEWARE = {"django.middleware.clickjacking.XFrameOptionsMiddleware": XFrameOptionsMiddleware,
                     "django.middleware.security.SecurityMiddleware": SecurityMiddleware}


def _lane_request(scope) -> ASGIRequest | None:
    """The request (for Django's own host, https and client address checks) when the lane takes
    it, else None: Django answers it."""
    if (scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in (LEASE_PATH, COMPLETE_PATH)
            or scope.get("query_string") or scope.get("root_path")):
        return None
    request = ASGIRequest(scope, io.BytesIO())
    try:
        request.get_host()
    except DisallowedHost:
        return None
    if settings.SECURE_SSL_REDIRECT and not request.is_secure():
        return None
    try:
        length = int(request.META.get("CONTENT_LENGTH", ""))
    except ValueError:
        return None
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if length < 0 or (limit is not None and length > limit):
        return None
    if request.path == COMPLETE_PATH and not _drf_answers_plain_json(request):
        return None
    return request


def _drf_answers_plain_json(request) -> bool:
    """Whether BatchCompleteView's content negotiation picks plain ``application/json`` (the
    agent's Accept, or none): else the DRF view answers (browsable API, ``indent=``, 406)."""
    view = views.BatchCompleteView()
    try:
        renderer, media_type = view.get_content_negotiator().select_renderer(
            SimpleNamespace(query_params={}, headers=request.headers, META=request.META), view.get_renderers())
    except NotAcceptable:
        return False
    return type(renderer) is JSONRenderer and media_type == renderer.media_type


def _replaying(body: bytes, receive):
    """``receive`` with the part of the body the lane read put back in front, for Django."""
    pending = [{"type": "http.request", "body": body, "more_body": True}]

    async def replay():
        return pending.pop() if pending else await receive()

    return replay


async def _until_disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _complete_response(answer: views.AgentAnswer) -> HttpResponse:
    """views.complete_batch's answer as BatchCompleteView renders it (DRF's JSONRenderer, and the
    view's Allow and Vary headers)."""
    renderer = JSONRenderer()
    response = HttpResponse(renderer.render(answer.data), status=answer.status, content_type=renderer.media_type)
    for name, value in answer.headers.items():
        response[name] = value
    for name, value in views.BatchCompleteView().default_response_headers.items():
        response[name] = value  # Allow and Vary, as APIView.finalize_response adds them
    return response


async def _answer(request, body: bytes) -> HttpResponse:
    authorization = request.headers.get("Authorization")
    address = client_ip(request)
    if request.path == LEASE_PATH:
        return views.json_response(await views.lease(authorization, body, address))
    # One trip to the shared pool for all of it (auth, throttle, the transaction): see longpoll.py.
    return _complete_response(await run_db(views.complete_batch, authorization, address,
                                           lambda: parse_json_body(body)))


def _not_called(request):  # pragma: no cover - the lane calls process_response only
    raise NotImplementedError


def with_agent_lane(django_app):
    """Wrap Django's ASGI application (connector/asgi.py)."""
    header_middleware = [middleware(get_response=_not_called) for path, middleware in HEADER_MIDDLEWARE.items()
                         if path in settings.MIDDLEWARE]

    async def application(scope, receive, send):
        request = _lane_request(scope)
        if request is None:
            return await django_app(scope, receive, send)
        try:
            body, whole = await read_body(receive, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        except ConnectionError:
            return None
        if not whole:
            return await django_app(scope, _replaying(body, receive), send)
        # As Django's handler: a client that goes away ends the request (a waiting lease leases nothing).
        work = asyncio.ensure_future(_answer(request, body))
        gone = asyncio.ensure_future(_until_disconnect(receive))
        try:
            await asyncio.wait((work, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (work, gone):
                task.cancel()  # no-op on a finished task
            await asyncio.wait((work, gone))  # both settled: nothing left pending when we return
        if work.cancelled():
            return None
        try:
            response = work.result()
        except Exception as exc:
            # Django's 500 answer and its django.request log line, as if the view had raised.
            response = response_for_exception(request, exc)
        for middleware in header_middleware:
            response = middleware.process_response(request, response)
        if response.status_code >= 400:  # the django.request line Django's handler logs (once)
            log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        response["Content-Length"] = str(len(response.content))
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": [(name.encode("ascii"), value.encode("latin-1")) for name, value in response.items()]})
        await send({"type": "http.response.body", "body": response.content})

    return application
