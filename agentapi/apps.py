from django.apps import AppConfig


class AgentApiConfig(AppConfig):
    name = "agentapi"
    verbose_name = "Agent API"

    def ready(self):
        from agentapi import schema  # noqa: F401  (registers the OpenAPI security scheme)
