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

        # The sweeper (services layer) names no store: it re-sends this package's lost webhook
        # events and stalled backfills through the tasks registered here.
        from accounts.models import StoreConnection
        from connector.services.sweeper import StoreWorkTasks, register_store_work_tasks

        register_store_work_tasks(StoreConnection.Platform.BIGCOMMERCE, StoreWorkTasks(
            webhook_event="connector.bigcommerce.process_webhook_event",
            backfill="connector.bigcommerce.backfill",
            poll="connector.bigcommerce.poll_integration",
        ))
