from django.apps import AppConfig


class BigCommerceConfig(AppConfig):
    """Installing this app (``connector.bigcommerce`` in INSTALLED_APPS) lets Django find the
    ``bc_backfill`` command and Celery autodiscover this package's tasks, and registers the
    BigCommerce store adapter. It has no models."""

    name = "connector.bigcommerce"
    label = "connector_bigcommerce"
    verbose_name = "BigCommerce"

    def ready(self):
        from connector.stores import register

        from .adapter import PLATFORM, BigCommerceAdapter

        register(PLATFORM, BigCommerceAdapter)
