"""OpenAPI details: the bearer-key security scheme and the scope of the agent API's schema."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

PREFIX = "/agent/v1/"


def only_agent_api(endpoints, **kwargs):
    """The schema at /agent/v1/schema/ documents the agent API only, not other DRF views."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith(PREFIX) and "/schema" not in endpoint[0]]


class AgentKeyScheme(OpenApiAuthenticationExtension):
    target_class = "agentapi.auth.AgentKeyAuthentication"
    name = "agentKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer",
                "description": "The agent key shown once when the agent was created in admin."}
