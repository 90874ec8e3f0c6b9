"""Small factories for the agent API tests (plain functions; the data model is simple)."""

from __future__ import annotations

import itertools

from accounts.models import Agent, Integration, SageConnection, StoreConnection, Tenant
from connector.models import AgentJob, SyncRecord

_seq = itertools.count(1)


def make_integration(name: str = "") -> Integration:
    n = next(_seq)
    tenant = Tenant.objects.create(name=f"Tenant {n}", slug=f"tenant-{n}")
    store = StoreConnection.objects.create(tenant=tenant, name=f"Store {n}", store_hash=f"hash{n}")
    sage = SageConnection.objects.create(tenant=tenant, name=f"Sage {n}", edition=SageConnection.Edition.SAGE50_UK)
    return Integration.objects.create(tenant=tenant, name=name or f"Integration {n}", store=store, sage=sage)


def make_agent(integration: Integration | None = None, name: str = "agent") -> tuple[Agent, str]:
    """An agent and its key (the only time the key exists in clear)."""
    integration = integration or make_integration()
    agent = Agent(tenant=integration.tenant, integration=integration, name=name)
    key = agent.issue_key()
    agent.save()
    return agent, key


def make_job(integration: Integration, op: str = "create_sales_invoice", reference: str = "", *,
             with_record: bool = True, **fields) -> AgentJob:
    n = next(_seq)
    reference = reference or f"BC-{1000 + n}"
    record = None
    if with_record:
        record = SyncRecord.objects.create(integration=integration, kind=SyncRecord.Kind.ORDER, external_id=str(n),
                                           action=SyncRecord.Action.POST_INVOICE)
    return AgentJob.objects.create(integration=integration, op=op, reference=reference,
                                   payload={"reference": reference, "lines": []}, record=record, **fields)


def auth(key: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {key}", "HTTP_HOST": "127.0.0.1"}
