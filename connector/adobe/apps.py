from django.apps import AppConfig


class AdobeCommerceConfig(AppConfig):
    """Installing this app registers the Adobe Commerce store adapter and lets Celery find its
    tasks (poll, backfill, webhook processing). It has no models."""

    name = "connector.adobe"
    label = "connector_adobe"
    verbose_name = "Adobe Commerce"

    def ready(self):
        from connector.stores import register

        from .adapter import PLATFORM, AdobeCommerceAdapter

        register(PLATFORM, AdobeCommerceAdapter)

        from accounts.models import StoreConnection
        from connector.services.sweeper import StoreWorkTasks, register_store_work_tasks

        register_store_work_tasks(StoreConnection.Platform.ADOBE_COMMERCE, StoreWorkTasks(
            webhook_event="connector.adobe.process_webhook_event",
            backfill="connector.adobe.backfill",
            poll="connector.adobe.poll_integration",
        ))
