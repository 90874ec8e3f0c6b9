"""The webhook endpoint: POST /webhooks/bigcommerce/<webhook_token>/ (see webhooks.receive).

Async, so that under uvicorn a delivery never waits for a thread: the checks run on the event
loop and the insert joins a group commit (webhooks.receive_async). Under WSGI or the sync test
client there is no event loop that outlives a request to host the group commit, so the same
checks run with a plain insert (webhooks.receive).
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from .webhooks import receive, receive_async


@csrf_exempt
@require_POST
async def bigcommerce_webhook(request, token: str):
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0) or None
    except ValueError:
        length = None
    if isinstance(request, ASGIRequest):
        outcome = await receive_async(token, request.headers, request.read, length)
    else:
        outcome = await sync_to_async(receive)(token, request.headers, request.read, length)
    # BigCommerce asks for an empty, fast 2xx; error answers stay bodiless too.
    return HttpResponse(status=outcome.status)
