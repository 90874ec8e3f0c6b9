from django.apps import AppConfig


class ConnectorConfig(AppConfig):
    name = "connector"
    verbose_name = "Sync engine"

    def ready(self):
        from connector import flows, signals  # noqa: F401  (flows register handlers and job callbacks)
