from django.apps import AppConfig


class BigCommerceConfig(AppConfig):
    """Installing this app (``connector.bigcommerce`` in INSTALLED_APPS) lets Django find the
    ``bc_backfill`` command and Celery autodiscover this package's tasks. It has no models."""

    name = "connector.bigcommerce"
    label = "connector_bigcommerce"
    verbose_name = "BigCommerce"
