"""ASGI entry point. The web process runs under uvicorn so the agent API's long polls are
coroutines, not threads: one process holds a thousand idle agents."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "connector.settings")
# PostgreSQL connections from a pool in this process (settings.py says why).
os.environ.setdefault("DB_POOL", "1")
django_application = get_asgi_application()

# Webhook deliveries and the agent API's lease and batch complete take direct lanes (same checks,
# fewer hops); see those modules for why.
from agentapi.lane import with_agent_lane  # noqa: E402 - needs Django set up
from connector.bigcommerce.ingest_asgi import with_webhook_lane  # noqa: E402 - needs Django set up

application = with_webhook_lane(with_agent_lane(django_application))
