"""The agent API endpoints (PROTOCOL.md). Thin: validation here, work in the services."""

from __future__ import annotations

import asyncio

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

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


class BatchCompleteView(AgentView):
    """Several results in one request and one transaction. Each item is answered as the single
    endpoint would answer it (200, 404, 409), in ``jobs[]``; the request itself is 200."""

    @extend_schema(parameters=[RETRY_AFTER], operation_id="agent_v1_jobs_complete_batch",
                   request={JSON: BatchCompleteRequestSerializer},
                   responses={200: BatchCompleteResponseSerializer, **_errors(400, 401, 429)})
    def post(self, request):
        data = self.validated(BatchCompleteRequestSerializer)
        items = [{"id": item["id"], "lease_token": item["lease_token"], "result": jsonable(item["result"])}
                 for item in data["jobs"]]
        answers = complete_jobs(request.user, items)
        return Response({"jobs": [
            {"id": item["id"], "status": answer.status, "state": answer.job.state if answer.job else None,
             "detail": answer.detail} for item, answer in zip(items, answers, strict=True)]})


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

def _json_error(status: int, detail, headers: dict | None = None) -> JsonResponse:
    body = detail if isinstance(detail, dict) else {"detail": str(detail)}
    response = JsonResponse(body, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _open_lease(header: str | None, body: bytes, address: str | None = None):
    """Everything before the wait, in one trip to the database thread (each trip opens and closes a
    connection, see longpoll.py): authenticate, throttle, validate, and a first lease attempt.
    Returns (agent, params, jobs) or an error response. Auth errors win over body errors, as in DRF."""
    try:
        agent = agent_for_authorization(header, address)
    except exceptions.AuthenticationFailed as exc:
        return _json_error(401, exc.detail, {"WWW-Authenticate": AgentKeyAuthentication().authenticate_header(None)})
    except exceptions.Throttled as exc:
        return _json_error(429, exc.detail, {"Retry-After": str(int(exc.wait or 1))})
    wait = throttle_wait(agent)
    if wait is not None:
        return _json_error(429, f"Request was throttled. Expected available in {int(wait) + 1} seconds.",
                           {"Retry-After": str(int(wait) + 1)})
    try:
        params = LeaseRequestSerializer(data=parse_json_body(body))
    except exceptions.ParseError as exc:
        return _json_error(400, exc.detail)
    if not params.is_valid():
        return _json_error(400, params.errors)
    params = params.validated_data
    return agent, params, lease_if_ready(agent, params["max"])


@csrf_exempt
async def lease_view(request):
    if request.method != "POST":
        return _json_error(405, f'Method "{request.method}" not allowed.', {"Allow": "POST"})
    looked_at = asyncio.get_running_loop().time()
    opened = await run_db(_open_lease, request.headers.get("Authorization"), request.body, client_ip(request))
    if isinstance(opened, JsonResponse):
        return opened
    agent, params, jobs = opened
    if not jobs and params["wait_seconds"] > 0:
        jobs = await lease_when_ready(agent, params["max"], params["wait_seconds"], looked_at=looked_at)
    return JsonResponse(LeaseResponseSerializer({"jobs": jobs}).data)


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
    return _json_error(404, f"No agent API endpoint at {request.path}. See /agent/v1/schema/.")
