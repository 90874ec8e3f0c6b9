"""The webhook endpoint: /webhooks/adobe/<webhook_token>/ (see webhooks.receive)."""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from .webhooks import challenge, receive


@csrf_exempt
@require_http_methods(["GET", "POST"])
def adobe_webhook(request, token: str):
    if request.method == "GET":
        value = request.GET.get("challenge")
        if not value:
            return HttpResponse(status=400)
        outcome = challenge(token, value)
    else:
        outcome = receive(token, request.headers, request.body)
    if outcome.body is not None:
        return JsonResponse(outcome.body, status=outcome.status, safe=False)
    return JsonResponse({"error": outcome.message}, status=outcome.status)
