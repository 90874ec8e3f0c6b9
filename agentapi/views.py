"""The agent API endpoints (PROTOCOL.md). Thin: validation here, work in the services."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView, exception_handler

from accounts.models import Agent
from agentapi import services
from agentapi.auth import (
    AgentKeyAuthentication,
    AgentRateThrottle,
    IsAgent,
    agent_for_authorization,
    throttle_wait,
)
from agentapi.longpoll import lease_if_ready, lease_when_ready, run_db
from agentapi.parsers import AgentJSONParser, jsonable, parse_json_body
from agentapi.serializers import (
    CHANGES_BODIES,
    DB_MAX_ID,
    BatchCompleteRequestSerializer,
    BatchCompleteResponseSerializer,
    ChangesRequestSerializer,
    ChangesResponseSerializer,
    CompleteRequestSerializer,
    ErrorSerializer,
    FailRequestSerializer,
    HeartbeatRequestSerializer,
    HeartbeatResponseSerializer,
    JobStateSerializer,
    LeaseRequestSerializer,
    LeaseResponseSerializer,
)
from connector.security import client_ip
from connector.services.jobs import complete_job, complete_jobs, fail_job

JSON = "application/json"
ALWAYS_RETRYABLE = frozenset({"sage_busy", "sage_locked", "record_locked", "same_user_logged_in"})


# Documented on every operation: a throttled agent is told when to come back.
RETRY_AFTER = OpenApiParameter("Retry-After", OpenApiTypes.INT, OpenApiParameter.HEADER, response=[429],
                               description="Seconds to wait before the next call.")


def _errors(*codes: int) -> dict:
    described = {
        400: OpenApiResponse(OpenApiTypes.OBJECT,
                             description="Malformed request: field errors, or {'detail': ...}."),
        401: OpenApiResponse(ErrorSerializer, description="Missing, unknown or revoked agent key."),
        404: OpenApiResponse(ErrorSerializer, description="No such job for this agent's integration."),
        409: OpenApiResponse(ErrorSerializer, description="The lease token is stale."),
        429: OpenApiResponse(ErrorSerializer, description="Throttled; see Retry-After."),
    }
    return {code: described[code] for code in codes}


class AgentView(APIView):
    authentication_classes = [AgentKeyAuthentication]
    permission_classes = [IsAgent]
    throttle_classes = [AgentRateThrottle]
    parser_classes = [AgentJSONParser]

    def validated(self, serializer_class):
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class HeartbeatView(AgentView):
    @extend_schema(parameters=[RETRY_AFTER], request={JSON: HeartbeatRequestSerializer},
                   responses={200: HeartbeatResponseSerializer, **_errors(400, 401, 429)})
    def post(self, request):
        data = self.validated(HeartbeatRequestSerializer)
        answer = services.record_heartbeat(request.user, data)
        return Response(HeartbeatResponseSerializer(answer).data)


class JobAnswerView(AgentView):
    def answer(self, job_answer):
        if job_answer.status != 200:
            return Response({"detail": job_answer.detail}, status=job_answer.status)
        return Response(JobStateSerializer({"id": job_answer.job.pk, "state": job_answer.job.state}).data)

    def check_job_id(self, job_id: int) -> None:
        if job_id > DB_MAX_ID:
            raise exceptions.NotFound("no such job for this agent")


class CompleteView(JobAnswerView):
    @extend_schema(parameters=[RETRY_AFTER], request={JSON: CompleteRequestSerializer},
                   responses={200: JobStateSerializer, **_errors(400, 401, 404, 409, 429)})
    def post(self, request, job_id: int):
        self.check_job_id(job_id)
        data = self.validated(CompleteRequestSerializer)
        return self.answer(complete_job(request.user, job_id, data["lease_token"], jsonable(data["result"])))


@dataclass(frozen=True)
class AgentAnswer:
    """One answer of an endpoint before it is rendered. The hot endpoints (lease, batch complete)
    are answered by one function each, called by the Django view and by the ASGI lane
    (agentapi/lane.py) alike; each path only renders what that function returns."""

    status: int
    data: Any  # JSON-able: the body
    headers: dict[str, str] = field(default_factory=dict)


def _drf_error(exc: exceptions.APIException) -> AgentAnswer:
    """The answer DRF's APIView.handle_exception gives ``exc`` in an agent view (WWW-Authenticate on a
    401, Retry-After on a 429, the detail or the field errors as the body)."""
    if isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
        exc.auth_header = AgentKeyAuthentication().authenticate_header(None)
    response = exception_handler(exc, {})
    return AgentAnswer(response.status_code, response.data,
                       {name: value for name, value in response.items() if name != "Content-Type"})


def complete_batch(authorization: str | None, address: str | None, read_data: Callable[[], Any]) -> AgentAnswer:
    """POST /agent/v1/jobs/complete: authenticate, throttle, validate, complete, in DRF's order (an
    auth or throttle answer wins over a body error, so ``read_data`` — the parsed body, or ParseError
    — is only called after them). All database work: the lane runs it as one run_db trip."""
    try:
        agent = agent_for_authorization(authorization, address)
        wait = throttle_wait(agent)
        if wait is not None:
            raise exceptions.Throttled(wait)
        serializer = BatchCompleteRequestSerializer(data=read_data())
        serializer.is_valid(raise_exception=True)
    except exceptions.APIException as exc:
        return _drf_error(exc)
    items = [{"id": item["id"], "lease_token": item["lease_token"], "result": jsonable(item["result"])}
             for item in serializer.validated_data["jobs"]]
    answers = complete_jobs(agent, items)
    return AgentAnswer(200, {"jobs": [
        {"id": item["id"], "status": answer.status, "state": answer.job.state if answer.job else None,
         "detail": answer.detail} for item, answer in zip(items, answers, strict=True)]})


class BatchCompleteView(AgentView):
    """Several results in one request and one transaction. Each item is answered as the single
    endpoint would answer it (200, 404, 409), in ``jobs[]``; the request itself is 200."""

    @extend_schema(parameters=[RETRY_AFTER], operation_id="agent_v1_jobs_complete_batch",
                   request={JSON: BatchCompleteRequestSerializer},
                   responses={200: BatchCompleteResponseSerializer, **_errors(400, 401, 429)})
    def post(self, request):
        answer = complete_batch(request.headers.get("Authorization"), client_ip(request), lambda: request.data)
        return Response(answer.data, status=answer.status, headers=answer.headers)

    # A POST is authenticated and throttled by complete_batch (the ASGI lane calls it too): DRF must
    # not do it a second time (a second key look-up; a wrong key counted twice toward the lock-out).
    # Other methods (OPTIONS, and the 405s) are authenticated by DRF as in every agent view.
    def perform_authentication(self, request):
        if request.method != "POST":
            super().perform_authentication(request)
        else:
            request.user = None  # nothing later (the browsable API) may run the authenticator again

    def check_permissions(self, request):
        if request.method != "POST":
            super().check_permissions(request)

    def check_throttles(self, request):
        if request.method != "POST":
            super().check_throttles(request)


class FailView(JobAnswerView):
    @extend_schema(parameters=[RETRY_AFTER], request={JSON: FailRequestSerializer},
                   responses={200: JobStateSerializer, **_errors(400, 401, 404, 409, 429)})
    def post(self, request, job_id: int):
        self.check_job_id(job_id)
        data = self.validated(FailRequestSerializer)
        retryable = data["retryable"] or data["code"] in ALWAYS_RETRYABLE
        return self.answer(fail_job(request.user, job_id, data["lease_token"], data["code"], data["message"],
                                    retryable))


class ChangesView(AgentView):
    @extend_schema(
        parameters=[RETRY_AFTER],
        request={JSON: PolymorphicProxySerializer(
            component_name="ChangesRequest", serializers=CHANGES_BODIES, resource_type_field_name="kind")},
        responses={200: ChangesResponseSerializer, **_errors(400, 401, 429)})
    def post(self, request):
        data = self.validated(ChangesRequestSerializer)
        cursor = services.store_changes(request.user, data["kind"], data["items"], data["cursor"])
        return Response({"accepted": len(data["items"]), "cursor": cursor})


# -- the lease long poll: a plain async Django view, so a waiting agent holds no thread -------------

def _error(status: int, detail, headers: dict | None = None) -> AgentAnswer:
    return AgentAnswer(status, detail if isinstance(detail, dict) else {"detail": str(detail)}, headers or {})


def json_response(answer: AgentAnswer) -> JsonResponse:
    """The lease endpoint's answers (and this module's plain views') as Django renders them."""
    response = JsonResponse(answer.data, status=answer.status)
    for name, value in answer.headers.items():
        response[name] = value
    return response


@dataclass(frozen=True)
class OpenedLease:
    agent: Agent
    params: dict
    jobs: list


def _open_lease(authorization: str | None, body: bytes, address: str | None = None) -> OpenedLease | AgentAnswer:
    """Everything before the wait, in one trip to the database thread (each trip opens and closes a
    connection, see longpoll.py): authenticate, throttle, validate, and a first lease attempt.
    Returns the lease opened or an error answer. Auth errors win over body errors, as in DRF."""
    try:
        agent = agent_for_authorization(authorization, address)
    except exceptions.AuthenticationFailed as exc:
        return _error(401, exc.detail, {"WWW-Authenticate": AgentKeyAuthentication().authenticate_header(None)})
    except exceptions.Throttled as exc:
        return _error(429, exc.detail, {"Retry-After": str(int(exc.wait or 1))})
    wait = throttle_wait(agent)
    if wait is not None:
        return _error(429, f"Request was throttled. Expected available in {int(wait) + 1} seconds.",
                      {"Retry-After": str(int(wait) + 1)})
    try:
        params = LeaseRequestSerializer(data=parse_json_body(body))
    except exceptions.ParseError as exc:
        return _error(400, exc.detail)
    if not params.is_valid():
        return _error(400, params.errors)
    params = params.validated_data
    return OpenedLease(agent, params, lease_if_ready(agent, params["max"]))


async def lease(authorization: str | None, body: bytes, address: str | None) -> AgentAnswer:
    """POST /agent/v1/jobs/lease, for lease_view and the ASGI lane: the jobs leased, at once or
    once one is ready within wait_seconds, or an error answer."""
    looked_at = asyncio.get_running_loop().time()
    opened = await run_db(_open_lease, authorization, body, address)
    if isinstance(opened, AgentAnswer):
        return opened
    jobs = opened.jobs
    if not jobs and opened.params["wait_seconds"] > 0:
        jobs = await lease_when_ready(opened.agent, opened.params["max"], opened.params["wait_seconds"],
                                      looked_at=looked_at)
    return AgentAnswer(200, LeaseResponseSerializer({"jobs": jobs}).data)


@csrf_exempt
async def lease_view(request):
    if request.method != "POST":
        return json_response(_error(405, f'Method "{request.method}" not allowed.', {"Allow": "POST"}))
    return json_response(await lease(request.headers.get("Authorization"), request.body, client_ip(request)))


class LeaseSchema(AgentView):
    """Documentation only: drf-spectacular reads DRF views, and the lease endpoint is the async
    ``lease_view``. urls.py attaches this class to it as ``cls``."""

    @extend_schema(parameters=[RETRY_AFTER], operation_id="agent_v1_jobs_lease",
                   request={JSON: LeaseRequestSerializer},
                   responses={200: LeaseResponseSerializer, **_errors(400, 401, 429)},
                   description="Long poll: answers as soon as a job is ready, or after wait_seconds "
                               "with {\"jobs\": []}.")
    def post(self, request):  # pragma: no cover - never routed
        raise serializers.ValidationError("documentation stub")


@csrf_exempt  # agents send no CSRF token; without this a POST would get Django's HTML 403
def unknown_endpoint(request, *args, **kwargs):
    """Anything under /agent/v1/ that no route matches (a typo, `/jobs/-1/complete`, an endpoint
    of a newer protocol) answers in the API's own JSON shape rather than Django's HTML page, so an
    agent can log a readable reason."""
    return json_response(_error(404, f"No agent API endpoint at {request.path}. See /agent/v1/schema/."))
