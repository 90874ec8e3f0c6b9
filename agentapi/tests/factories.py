"""Agents, jobs and auth headers for the agent API tests; integrations come from
tests.support.factories.make_integration."""

from __future__ import annotations

import itertools

from accounts.models import Agent, Integration
from connector.models import AgentJob, SyncRecord
from tests.support.factories import make_integration

_seq = itertools.count(1)


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
