"""Each run's inbound payloads and results are downloadable, and pruned after the retention;
records and their audit trails stay (they are the books' evidence)."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from connector.models import InboundEvent, SyncRecord, SyncRun
from connector.services.archive import export_runs, prune_archives
from tests.support.factories import IntegrationFactory, MembershipFactory

pytestmark = pytest.mark.django_db


def make_run(integration, started_at, order_id):
    run = SyncRun.objects.create(integration=integration, kind="poll", started_at=started_at, seen=1)
    InboundEvent.objects.create(integration=integration, source="poll", dedup_key=f"k{order_id}", scope="order",
                                resource_id=str(order_id), body=json.dumps({"id": order_id}), run=run,
                                received_at=started_at)
    SyncRecord.objects.create(integration=integration, kind="order", external_id=str(order_id),
                              action="post_invoice", state="posted", sage_reference=f"BC-{order_id}")
    return run


def test_export_holds_payloads_and_results_and_prune_keeps_records(client):
    integration = IntegrationFactory(archive_retention_days=30)
    old = make_run(integration, timezone.now() - timedelta(days=40), 1001)
    new = make_run(integration, timezone.now(), 1002)

    exported = json.loads(export_runs(SyncRun.objects.filter(pk__in=[old.pk, new.pk]).order_by("pk")))
    assert [r["run"] for r in exported] == [old.pk, new.pk]
    assert json.loads(exported[0]["events"][0]["body"]) == {"id": 1001}
    assert exported[0]["records"][0]["sage_reference"] == "BC-1001"

    user = MembershipFactory(tenant=integration.tenant, role="accountant").user
    client.force_login(user)
    response = client.post("/admin/connector/syncrun/", {"action": "download_archive", "_selected_action": [new.pk]})
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    assert json.loads(response.content)[0]["events"][0]["resource_id"] == "1002"

    assert prune_archives(integration) == 1
    assert not SyncRun.objects.filter(pk=old.pk).exists() and SyncRun.objects.filter(pk=new.pk).exists()
    assert list(InboundEvent.objects.values_list("resource_id", flat=True)) == ["1002"]
    assert SyncRecord.objects.filter(integration=integration).count() == 2
