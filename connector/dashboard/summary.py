"""The home page's figures for a tenant and a day: counts by state in words, money from the
day's reconciliation (stored orders, no call to the store), agents, the oldest unresolved
problem, and 30 days of posted vs problems."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from accounts.models import Agent
from connector.dashboard.facts import latest_agent_results, state_in_words
from connector.dashboard.reconcile import Reconciliation, reconcile_day, records_of_day
from connector.models import SyncRecord

State = SyncRecord.State
PROBLEM_STATES = (State.FAILED, State.WAITING_MAPPING, State.HELD)


@dataclass
class DayCounts:
    orders: int = 0
    refunds: int = 0
    by_words: Counter = field(default_factory=Counter)  # "Posted" → n
    by_state: Counter = field(default_factory=Counter)  # raw state → n (for the list links)
    skipped_reasons: Counter = field(default_factory=Counter)

    @property
    def skipped_why(self) -> list[tuple[str, int]]:
        return self.skipped_reasons.most_common()

    @property
    def busy(self) -> int:
        return self.by_words["Sage is busy — retrying"]


@dataclass
class IntegrationDay:
    integration: object
    counts: DayCounts
    reconciliation: Reconciliation


def integration_day(integration, day: dt.date) -> IntegrationDay:
    records = records_of_day(integration, day)
    counts = DayCounts()
    latest = latest_agent_results([r.pk for r in records if r.state == State.DISPATCHED])
    for record in records:
        if record.kind == SyncRecord.Kind.ORDER:
            counts.orders += 1
        else:
            counts.refunds += 1
        agent = latest.get(record.pk)
        words = state_in_words(record.state, agent.error_code if agent else "", agent.job_state if agent else "")
        counts.by_words[words.label] += 1
        counts.by_state[record.state] += 1
        if record.state == State.SKIPPED:
            counts.skipped_reasons[(record.message or "no reason given")[:120]] += 1
    return IntegrationDay(integration, counts, reconcile_day(integration, day, use_store=False))


def agents_of(integrations) -> list[Agent]:
    return list(Agent.objects.filter(integration__in=integrations, revoked_at__isnull=True)
                .select_related("integration").order_by("name"))


def oldest_problem(integrations) -> SyncRecord | None:
    return (SyncRecord.objects.filter(integration__in=integrations, state__in=PROBLEM_STATES)
            .select_related("integration").order_by("created_at", "id").first())


def chart_30_days(integrations, today: dt.date) -> dict:
    """Per day of the last 30: records posted that day, and problems raised that day still open."""
    days = [today - dt.timedelta(days=n) for n in range(29, -1, -1)]
    since = timezone.make_aware(dt.datetime.combine(days[0], dt.time.min), dt.UTC)
    posted = dict(SyncRecord.objects.filter(integration__in=integrations, state=State.POSTED, posted_at__gte=since)
                  .annotate(day=TruncDate("posted_at")).values("day").annotate(n=Count("id")).values_list("day", "n"))
    problems = dict(SyncRecord.objects.filter(integration__in=integrations, state__in=PROBLEM_STATES,
                                              created_at__gte=since)
                    .annotate(day=TruncDate("created_at")).values("day").annotate(n=Count("id"))
                    .values_list("day", "n"))
    return {"labels": [d.strftime("%d %b") for d in days],
            "posted": [posted.get(d, 0) for d in days],
            "problems": [problems.get(d, 0) for d in days]}
