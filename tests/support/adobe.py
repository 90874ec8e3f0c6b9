"""Point a demo integration at a running sandbox Adobe Commerce (``sandbox.adobe.testkit.Adobe``)."""

from __future__ import annotations

from accounts.models import StoreConnection
from connector.flows import stores as flow_stores
from demo import seed as demo


def adobe_integration(sandbox, tmp_path, **store_fields):
    """The demo's integration, its store switched to the sandbox over OAuth 1.0a (PaaS URL shape).
    The caller clears ``flow_stores._platform_of_store`` again when done (the platform is cached)."""
    seed = demo.seed_demo(store_url="http://127.0.0.1:9", company_path=tmp_path / "company.sqlite3", skus=["X"])
    store = seed.integration.store
    i = sandbox.integration
    store.platform = StoreConnection.Platform.ADOBE_COMMERCE
    store.base_url, store.store_code, store.adobe_auth = sandbox.root, "default", StoreConnection.AdobeAuth.OAUTH1
    store.consumer_key, store.consumer_secret = i.consumer_key, i.consumer_secret
    store.access_token, store.access_token_secret = i.access_token, i.access_token_secret
    for name, value in store_fields.items():
        setattr(store, name, value)
    store.save()
    flow_stores._platform_of_store.clear()
    return seed.integration
