"""What an accountant recognises about a sync record, read from what the engine stored: the
order's own date (in the store's time zone), the customer, the amount and currency, the Sage
document number, and the state in words with the real, latest reason."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from connector.dashboard.store_side import StoredRecord, adapter_of, customer_name, read_record
from connector.models import AgentJob, SyncRecord

State = SyncRecord.State


@dataclass(frozen=True)
class StateWords:
    label: str
    css: str  # posted | busy | mapping | failed | held | waiting | skipped


def state_in_words(state: str, job_error: str = "", job_state: str = "") -> StateWords:
    if state == State.POSTED:
        return StateWords("Posted", "posted")
    if state == State.WAITING_MAPPING:
        return StateWords("Needs a mapping", "mapping")
    if state == State.WAITING_ORDER:
        return StateWords("Waiting for its order", "waiting")
    if state == State.FAILED:
        return StateWords("Failed — needs you", "failed")
    if state == State.HELD:
        return StateWords("Held — totals differ", "held")
    if state == State.SKIPPED:
        return StateWords("Skipped", "skipped")
    if state == State.DISPATCHED and job_error and job_state in (AgentJob.State.QUEUED, AgentJob.State.LEASED):
        return StateWords("Sage is busy — retrying", "busy")
    if state == State.DISPATCHED:
        return StateWords("Sent — waiting for Sage", "waiting")
    return StateWords("Queued", "waiting")


def store_zone(integration) -> zoneinfo.ZoneInfo:
    name = getattr(integration.store, "timezone", "") or "UTC"
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def to_money(value) -> Decimal | None:
    if value is None or value == "" or isinstance(value, float | bool):
        return None
    try:
        return Decimal(str(value)).quantize(Decimal("0.01"))
    except InvalidOperation:
        return None


@dataclass(frozen=True)
class RecordFacts:
    store_time: dt.datetime | None  # when the order (or refund) was made, in the store's zone
    customer: str
    amount: Decimal | None
    currency: str
    payment_method: str
    channel: str

    @property
    def store_date(self) -> dt.date | None:
        return self.store_time.date() if self.store_time else None


def _document_part(document, *names):
    if isinstance(document, dict):
        for name in names:
            part = document.get(name)
            if isinstance(part, dict):
                return part
        if "lines" in document:
            return document
    return {}


def record_facts(record: SyncRecord, zone: dt.tzinfo, stored: StoredRecord | None = None) -> RecordFacts:
    """``stored``: the record's payload already read (records_of_day reads each record once);
    else it is read here through the record's integration's store adapter."""
    if stored is None:
        stored = read_record(record, adapter_of(record.integration), record.integration)
    document = _document_part(record.document, "invoice", "credit_note", "sales_order")
    order, refund = stored.order, stored.refund
    if record.kind == SyncRecord.Kind.REFUND:
        when = refund.created_at if refund else None
        amount = refund.total if refund else None
        method = ", ".join(sorted({p.method for p in refund.payments if p.method})) if refund else ""
    else:
        when = order.created_at if order else None
        amount = order.totals.total_inc_tax if order else None
        method = order.payment_method if order else ""
    return RecordFacts(store_time=when.astimezone(zone) if when else None,
                       customer=(customer_name(order.party) if order else "") or _document_customer(document),
                       amount=amount, currency=(order.currency if order else "") or document.get("currency", ""),
                       payment_method=method, channel=str(order.channel_id) if order else "")


def _document_customer(document: dict) -> str:
    customer = document.get("customer") if isinstance(document, dict) else None
    return (customer or {}).get("name", "") if isinstance(customer, dict) else ""


@dataclass(frozen=True)
class LatestAgentResult:
    reason: str
    attempts: int
    job_state: str
    error_code: str


def latest_agent_results(record_ids) -> dict[int, LatestAgentResult]:
    """Per record, the newest word from the agent: its latest job's error (if any) and the true
    number of tries (the sum of the attempts of the record's jobs), not the record's first count."""
    out: dict[int, LatestAgentResult] = {}
    jobs = (AgentJob.objects.filter(record_id__in=list(record_ids))
            .order_by("record_id", "updated_at", "id")
            .values("record_id", "attempts", "state", "error_code", "error_message"))
    for job in jobs:
        previous = out.get(job["record_id"])
        attempts = (previous.attempts if previous else 0) + job["attempts"]
        reason = job["error_message"] or (previous.reason if previous and job["state"] != "done" else "")
        out[job["record_id"]] = LatestAgentResult(reason=reason, attempts=attempts, job_state=job["state"],
                                                  error_code=job["error_code"])
    return out


SKU_KEY_PREFIXES = ("item:", "sku:")


def skus_waited_for(record: SyncRecord) -> list[str]:
    """The store SKUs a waiting record needs an item mapping for (its ``waiting_for`` keys)."""
    out = []
    for key in record.waiting_for or []:
        if isinstance(key, str):
            out += [key[len(prefix):] for prefix in SKU_KEY_PREFIXES if key.startswith(prefix)]
    return out
