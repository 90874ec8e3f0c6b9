"""Webhook receivers, one URL per integration (see connector/bigcommerce/webhooks.py)."""

from django.urls import path

from connector.adobe.views import adobe_webhook
from connector.bigcommerce.views import bigcommerce_webhook

urlpatterns: list = [
    path("bigcommerce/<str:token>/", bigcommerce_webhook, name="bigcommerce-webhook"),
    path("adobe/<str:token>/", adobe_webhook, name="adobe-webhook"),
]
