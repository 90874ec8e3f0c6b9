from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agentapi import services
from agentapi.tests.factories import auth, make_agent
from connector.models import InboundEvent, StockLevel, SyncCursor
from tests.support.factories import make_integration

pytestmark = pytest.mark.django_db


def push(client, key, body):
    return client.post("/agent/v1/changes", body, content_type="application/json", **auth(key))


def stock_item(code, in_stock, allocated="0", modified_at="2025-03-01T10:00:00Z"):
    return {"stock_code": code, "in_stock": in_stock, "allocated": allocated, "modified_at": modified_at}


def test_stock_changes_upsert_in_bulk_and_store_the_cursor(client, django_capture_on_commit_callbacks):
    integration = make_integration()
    _, key = make_agent(integration)
    StockLevel.objects.create(integration=integration, sku="SKU-1", sage_in_stock=1, pushed_quantity=1)
    items = [stock_item("SKU-1", "12", "2"), stock_item("SKU-2", "5.123456")] + [
        stock_item(f"BULK-{n}", str(n)) for n in range(200)]
    with CaptureQueriesContext(connection) as queries, django_capture_on_commit_callbacks(execute=False) as hooks:
        response = push(client, key, {"kind": "stock", "items": items, "cursor": "2025-03-01T10:00:00Z"})
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 202, "cursor": "2025-03-01T10:00:00Z"}
    assert len(queries) < 20  # not a query per item
    assert len(hooks) == 1  # the stock push hook, after commit
    one = StockLevel.objects.get(integration=integration, sku="SKU-1")
    assert (one.sage_in_stock, one.sage_allocated, one.pushed_quantity) == (Decimal("12"), Decimal("2"), 1)
    assert one.sage_modified_at == datetime(2025, 3, 1, 10, tzinfo=UTC)
    assert StockLevel.objects.get(integration=integration, sku="SKU-2").sage_in_stock == Decimal("5.1235")
    assert StockLevel.objects.filter(integration=integration).count() == 202
    assert SyncCursor.objects.get(integration=integration, stream="agent:stock").value == "2025-03-01T10:00:00Z"
    event = InboundEvent.objects.get(integration=integration, source="agent")
    assert event.scope == "agent/stock" and event.processed_at is not None


def test_same_sku_twice_in_one_push_keeps_the_newest(client):
    integration = make_integration()
    _, key = make_agent(integration)
    items = [stock_item("A", "7", modified_at="2025-03-02T00:00:00Z"), stock_item("A", "3", modified_at="2025-03-01T00:00:00Z")]
    assert push(client, key, {"kind": "stock", "items": items}).status_code == 200
    assert StockLevel.objects.get(integration=integration, sku="A").sage_in_stock == 7


def test_repeated_push_is_stored_once_and_cursor_comes_back_in_heartbeat(client):
    integration = make_integration()
    _, key = make_agent(integration)
    body = {"kind": "price", "items": [{"stock_code": "A", "price": "10.00"}], "cursor": "c-1"}
    assert push(client, key, body).json() == {"accepted": 1, "cursor": "c-1"}
    assert push(client, key, body).status_code == 200
    assert InboundEvent.objects.filter(integration=integration, scope="agent/price").count() == 1
    assert push(client, key, {"kind": "customer", "items": [{"account_ref": "SMITHJ01", "email": "j@x.com"}],
                              "cursor": "c-9"}).status_code == 200
    assert push(client, key, {"kind": "stock", "items": []}).json() == {"accepted": 0, "cursor": None}
    beat = client.post("/agent/v1/heartbeat", {"agent_version": "0.1.0", "backend": "simulator"},
                       content_type="application/json", **auth(key)).json()
    assert beat["config"]["cursors"] == {"stock": None, "price": "c-1", "customer": "c-9"}
    assert not StockLevel.objects.filter(integration=integration).exists()


def test_other_integrations_stock_is_untouched(client):
    mine, theirs = make_integration(), make_integration()
    _, key = make_agent(mine)
    StockLevel.objects.create(integration=theirs, sku="A", sage_in_stock=99)
    push(client, key, {"kind": "stock", "items": [stock_item("A", "1")]})
    assert StockLevel.objects.get(integration=theirs, sku="A").sage_in_stock == 99


def test_stock_changes_enqueue_the_stock_push(monkeypatch):
    from connector import tasks

    sent = []
    monkeypatch.setattr(tasks.push_stock, "delay", lambda integration_id: sent.append(integration_id))
    assert services.kick_stock_push(7) is True
    assert sent == [7]
