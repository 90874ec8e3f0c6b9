"""E-mail notifications, each opted into per person (Membership): a record failed, an agent has
been offline for the person's chosen minutes, and the daily digest of yesterday's
reconciliation. Every mail links straight to the record or the day.

One beat tick (connector.dashboard.send_notifications) looks for what is due. A Notification row
with a unique key is claimed before the mail is sent, so two ticks, or two beats, never mail the
same event to the same person twice.
"""

from __future__ import annotations

import datetime as dt
import logging
import smtplib
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts.models import Agent, Integration, Membership
from connector.dashboard.facts import store_zone
from connector.dashboard.reconcile import reconcile_day
from connector.models import Notification, SyncRecord

log = logging.getLogger(__name__)
FAILURE_LOOKBACK = dt.timedelta(days=1)


def absolute(path: str) -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + path


@dataclass(frozen=True)
class Mail:
    key: str
    tenant_id: int
    kind: str
    to: str
    subject: str
    body: str


def _claim_and_send(mail: Mail) -> bool:
    try:
        with transaction.atomic():
            note = Notification.objects.create(key=mail.key[:200], tenant_id=mail.tenant_id, kind=mail.kind,
                                               recipients=mail.to, subject=mail.subject[:255])
    except IntegrityError:
        return False  # already sent (or being sent) by another tick
    if not settings.EMAIL_HOST:
        Notification.objects.filter(pk=note.pk).update(error="EMAIL_HOST is not set; nothing was sent.")
        return False
    try:
        EmailMessage(mail.subject, mail.body, settings.DEFAULT_FROM_EMAIL, [mail.to]).send()
    except (smtplib.SMTPException, OSError) as error:  # refused, unreachable, timed out: recorded, not raised
        log.warning("notification %s to %s failed: %s", mail.key, mail.to, error)
        Notification.objects.filter(pk=note.pk).update(error=str(error)[:2000])
        return False
    Notification.objects.filter(pk=note.pk).update(sent_at=timezone.now())
    return True


def _members(tenant_id: int, flag: str):
    return (Membership.objects.filter(tenant_id=tenant_id, **{flag: True}, user__is_active=True)
            .exclude(user__email="").select_related("user"))


def failure_mails(now) -> list[Mail]:
    mails = []
    failed = (SyncRecord.objects.filter(state=SyncRecord.State.FAILED, updated_at__gte=now - FAILURE_LOOKBACK)
              .select_related("integration"))
    for record in failed:
        url = absolute(reverse("admin:connector_syncrecord_change", args=[record.pk]))
        for member in _members(record.integration.tenant_id, "notify_failures"):
            mails.append(Mail(
                key=f"failed:{record.pk}:{record.updated_at.isoformat()}:{member.user_id}",
                tenant_id=record.integration.tenant_id, kind="failed", to=member.user.email,
                subject=f"Failed — needs you: {record} ({record.integration.name})",
                body=f"{record} could not be posted to Sage.\n\n{record.message}\n\nOpen it: {url}\n"))
    return mails


def offline_mails(now) -> list[Mail]:
    mails = []
    for agent in Agent.objects.filter(revoked_at__isnull=True).select_related("integration"):
        for member in _members(agent.tenant_id, "notify_agent_offline"):
            limit = dt.timedelta(minutes=member.agent_offline_minutes)
            seen = agent.last_heartbeat_at or agent.created_at
            if now - seen < limit:
                continue
            url = absolute(reverse("admin:accounts_agent_change", args=[agent.pk]))
            mails.append(Mail(
                key=f"offline:{agent.pk}:{seen.isoformat()}:{member.user_id}", tenant_id=agent.tenant_id,
                kind="agent_offline", to=member.user.email,
                subject=f"Agent {agent.name} is offline ({agent.integration.name})",
                body=(f"The agent {agent.name} has not called in since {seen:%d %b %Y %H:%M} UTC "
                      f"(more than {member.agent_offline_minutes} minutes). Orders wait until it is back.\n\n"
                      f"Check the Windows machine next to Sage; the agent: {url}\n")))
    return mails


def digest_mails(now, *, use_store: bool = True) -> list[Mail]:
    mails = []
    by_tenant: dict[int, list[Integration]] = {}
    for integration in Integration.objects.filter(is_active=True).select_related("store", "sage"):
        by_tenant.setdefault(integration.tenant_id, []).append(integration)
    for tenant_id, integrations in by_tenant.items():
        members = list(_members(tenant_id, "daily_digest"))
        if not members:
            continue
        local = now.astimezone(store_zone(integrations[0]))
        if local.hour < settings.DAILY_DIGEST_HOUR:
            continue
        day = local.date() - dt.timedelta(days=1)
        keys = {member.user_id: f"digest:{tenant_id}:{day.isoformat()}:{member.user_id}" for member in members}
        if Notification.objects.filter(key__in=keys.values()).count() == len(keys):
            continue  # everyone has today's digest: do not ask the store again
        lines = []
        for integration in integrations:
            report = reconcile_day(integration, day, use_store=use_store)
            url = absolute(reverse("mlc_dashboard:reconciliation", args=[integration.pk, day.isoformat()]))
            lines.append(f"{integration.name}: {report.headline}")
            for currency, t in report.by_currency.items():
                lines.append(f"  {currency}: {t.orders} orders, sales {t.sales} (in Sage {t.sage_sales}), "
                             f"refunds {t.refunds} (in Sage {t.sage_refunds})")
            for difference in report.differences[:20]:
                lines.append(f"  - {difference.what} {difference.store_id}: {difference.state}")
            lines.append(f"  Open the day: {url}")
        body = f"Store ↔ Sage for {day:%A %d %B %Y}\n\n" + "\n".join(lines) + "\n"
        for member in members:
            mails.append(Mail(key=keys[member.user_id], tenant_id=tenant_id,
                              kind="digest", to=member.user.email,
                              subject=f"Daily Sage check for {day:%d %b %Y}", body=body))
    return mails


def send_notifications(now=None) -> int:
    """Everything due now; returns how many mails were sent. Safe to run at any time, any number of times."""
    now = now or timezone.now()
    sent = 0
    for mail in failure_mails(now) + offline_mails(now) + digest_mails(now):
        if not Notification.objects.filter(key=mail.key[:200]).exists():
            sent += _claim_and_send(mail)
    return sent
