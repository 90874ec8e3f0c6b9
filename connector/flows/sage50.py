"""Store → Sage 50 (through the agent): orders become sales invoices and receipts, refunds
become credit notes and refund payments. The store is reached through its adapter
(``connector.stores``); the mapper reads the neutral model the adapter makes of a stored order.

Commit points: a record goes to DISPATCHED in the same transaction that queues its agent job;
each agent result is applied in the transaction that marks the job done (jobs.complete_job), so a
crash never leaves a posted document without its link, nor a link without its job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from connector import exceptions as outcomes
from connector.commerce import StoreOrder
from connector.models import AgentJob, SyncRecord
from connector.sage50 import errors as sage50_errors
from connector.sage50.mapper import map_order, map_refund
from connector.services.audit import audit, audit_many
from connector.services.bulk import update_rows
from connector.services.jobs import (
    JobSpec,
    dispatch_job,
    dispatched_entries,
    on_job_done,
    on_job_failed,
    queue_jobs,
)
from connector.services.pipeline import handles, handles_batch, settle_many
from connector.services.records import set_state, set_states
from connector.services.taskqueue import task_named
from mappings.links import save_links
from mappings.models import RecordLink
from mlcommon.ledger import to_payload

from .mapping_loader import sage50_mappings
from .stores import store_adapter
from .waiting import order_not_in_ledger, order_record_for

State = SyncRecord.State

# The agent creates the customer (found by email, or created) inside create_sales_invoice, so one
# job per order suffices; its serial execution per Sage company means concurrent orders from the
# same email still make one customer.
INVOICE_PRIORITY, RECEIPT_PRIORITY, CREDIT_PRIORITY, REFUND_PRIORITY = 10, 20, 30, 40


def _translate(error: Exception):
    if isinstance(error, sage50_errors.NeedsMapping):
        return outcomes.NeedsMapping(str(error), keys=[f"{kind}:{key}" for kind, key in error.keys])
    if isinstance(error, sage50_errors.TotalsMismatch):
        return outcomes.TotalsMismatch(str(error), data={"store_total": str(error.store_total),
                                                         "document_total": str(error.document_total),
                                                         "difference": str(error.difference)})
    if isinstance(error, sage50_errors.NotPostable):
        return outcomes.NotPostable(str(error))
    return error


def _fetch_order(record: SyncRecord, adapter, order_id) -> dict:
    order = adapter.fetch_order(order_id)
    audit(record, "fetched", f"Fetched order {order_id} from the store.", {"date_modified": order.get("date_modified")})
    return order


def _normalize(adapter, integration, order: dict, payments=None) -> StoreOrder:
    return adapter.normalize_order(order, paid_status_ids=integration.paid_status_ids, payments=payments)


# -- orders -------------------------------------------------------------------------------------

def customer_keys(email: str, store_customer_id: str, currency: str) -> list[str]:
    """The customer links' keys for a buyer, best first: the store's own customer id, then the
    email, each with the currency (a Sage 50 customer account holds one currency, so one buyer
    paying in two currencies has two accounts). Never the name."""
    keys = []
    if store_customer_id:
        keys.append(f"id:{store_customer_id}|{currency}")
    if email:
        keys.append(f"{email.lower()}|{currency}")
    return keys


def _keys_of(order: StoreOrder) -> list[str]:
    return customer_keys(order.party.email, order.party.store_customer_id, order.currency)


class _AccountRefs(dict):
    """Linked Sage accounts by customer key; ``of(order)`` picks the order's best one."""

    def of(self, order: StoreOrder) -> str | None:
        return next((self[key] for key in _keys_of(order) if key in self), None)


def _account_refs(integration, orders: list[StoreOrder]) -> _AccountRefs:
    """Sage customer accounts already linked to these orders' buyers (store customer id or email,
    in the order's currency)."""
    keys = {key for order in orders for key in _keys_of(order)}
    if not keys:
        return _AccountRefs()
    return _AccountRefs(RecordLink.objects.filter(integration=integration, kind=RecordLink.Kind.CUSTOMER,
                                                  external_id__in=keys).values_list("external_id", "sage_id"))


def _stored_order(record: SyncRecord) -> dict | None:
    return record.payload if isinstance(record.payload, dict) and record.payload.get("id") else None


def _map_invoice(record: SyncRecord, order: StoreOrder, mappings, account_ref) -> str:
    """Map the order onto the record (document, Sage reference); returns the record's new message."""
    try:
        posting = map_order(order, mappings=mappings, customer_account_ref=account_ref)
    except sage50_errors.Sage50MappingError as error:
        raise _translate(error) from error
    invoice = posting.invoice
    record.document = {"invoice": to_payload(invoice),
                       "receipts": [to_payload(r) for r in posting.receipts] if record.integration.post_receipts
                       else [],
                       "customer_keys": _keys_of(order)}
    record.sage_reference = invoice.reference
    return (f"Mapped to invoice {invoice.reference} ({invoice.currency} {invoice.gross_total}); waiting for the "
            f"agent. {posting.accounts_used}")


def preview_order(integration, order_id, raw: dict | None = None):
    """What an order would become in Sage 50 (customer, invoice, receipts), without posting or
    storing anything: the same fetch, normalising and mapping as post_invoice. Raises the record
    outcomes of ``connector.exceptions`` (not postable, needs a mapping, totals differ), as a record
    would meet them, and the store's ApiError."""
    adapter = store_adapter(integration)
    raw = raw if raw is not None else adapter.fetch_order(order_id)
    payments = adapter.order_payments(raw["id"]) if adapter.needs_payments(raw, integration.paid_status_ids) else []
    order = _normalize(adapter, integration, raw, payments)
    try:
        return map_order(order, mappings=sage50_mappings(integration),
                         customer_account_ref=_account_refs(integration, [order]).get(order.party.email))
    except sage50_errors.Sage50MappingError as error:
        outcome = _translate(error)
        raise (outcome if isinstance(outcome, outcomes.RecordOutcome) else outcomes.RecordOutcome(str(error))) \
            from error


@handles(SyncRecord.Action.POST_INVOICE)
def post_invoice(record: SyncRecord) -> None:
    """One order: fetched from the store first when the record holds none (a webhook's record)."""
    integration = record.integration
    adapter = store_adapter(integration)
    raw = _stored_order(record)
    if raw is None:
        raw = _fetch_order(record, adapter, record.external_id)
        # The client parses money as Decimal; the stored payload holds it as strings.
        SyncRecord.objects.filter(pk=record.pk).update(payload=adapter.storable(raw))
    mappings = sage50_mappings(integration)
    payments = []
    if adapter.needs_payments(raw, integration.paid_status_ids):
        payments = adapter.order_payments(raw["id"])
    order = _normalize(adapter, integration, raw, payments)
    message = _map_invoice(record, order, mappings, _account_refs(integration, [order]).of(order))
    _dispatch(integration, [(record, message)], INVOICE)


@handles_batch(SyncRecord.Action.POST_INVOICE)
def post_invoices(records: list[SyncRecord]) -> list[SyncRecord]:
    """post_invoice for a chunk of one integration's records (the backfill's path): the orders the
    poll stored are mapped in memory and dispatched together. Orders that need the store first (no
    stored order, a paid status without a captured payment) are left to post_invoice."""
    integration = records[0].integration
    adapter = store_adapter(integration)
    mappings = sage50_mappings(integration)
    paid = integration.paid_status_ids
    stored = [record for record in records
              if _stored_order(record) and not adapter.needs_payments(record.payload, paid)]
    mapped, failures, orders = [], [], []
    for record in stored:
        try:
            orders.append((record, _normalize(adapter, integration, record.payload)))
        except Exception as error:  # a malformed order: it fails, the others go on
            failures.append((record, error))
    accounts = _account_refs(integration, [order for _, order in orders])
    for record, order in orders:
        try:
            message = _map_invoice(record, order, mappings, accounts.of(order))
        except Exception as error:  # the record's own problem (a mapping, totals): it waits, the others go on
            failures.append((record, error))
            continue
        mapped.append((record, message))
    settle_many(failures)
    _dispatch(integration, mapped, INVOICE)
    return [record for record in records if record not in stored]


@on_job_done("create_sales_invoice")
def invoices_posted(jobs: list[AgentJob]) -> None:
    _documents_posted(jobs, INVOICE)


def _invoice_checks(record: SyncRecord, result: dict, number: str, links: list, entries: list) -> None:
    """The customer the agent found or created, and Sage's own total against the store's."""
    invoice = (record.document or {}).get("invoice") or {}
    if result.get("account_ref"):
        links += [(RecordLink.Kind.CUSTOMER, key, result["account_ref"], "")
                  for key in (record.document or {}).get("customer_keys") or []]
    _reconcile_invoice(record, invoice, result, entries)
    expected = invoice.get("store_total")
    if result.get("gross_total") and expected and str(result["gross_total"]) != str(expected):
        entries.append((record.pk, "warning", f"Sage computed {result['gross_total']} for invoice {number}; "
                                              f"the store total is {expected}. Check the tax codes' rates in Sage.",
                        None))


def reconcile(store: dict[str, Decimal], sage: dict[str, Decimal]) -> list[str]:
    """The reconciliation invariant, figure by figure: what differs, in words (empty: reconciled)."""
    return [f"{name}: store {store[name]}, Sage {sage[name]}" for name in store
            if name in sage and store[name] != sage[name]]


def _reconcile_invoice(record: SyncRecord, invoice: dict, result: dict, entries: list) -> None:
    """Store figures (the invoice gross; the amount its receipts and tenders settle; what is left
    owing) against what Sage reports for the invoice after its payments; any difference is flagged
    on the record and in its trail. Checked when the agent posted the payments in the same job
    (otherwise the figures are not final yet)."""
    reported = result.get("reconciliation")
    receipts = (record.document or {}).get("receipts") or []
    outcomes = result.get("payments") or []
    if not isinstance(reported, dict) or len(outcomes) != len(receipts) or \
            any(not isinstance(o, dict) or "result" not in o for o in outcomes):
        return
    gross = Decimal(str(invoice.get("store_total") or "0"))
    settled = sum((Decimal(str(r.get("amount") or "0")) for r in receipts), Decimal("0"))
    store = {"gross": gross, "allocated": settled, "outstanding": gross - settled}
    sage = {name: Decimal(str(reported[name])) for name in store if reported.get(name) is not None}
    differences = reconcile(store, sage)
    record.reconciliation = {"ok": not differences, "store": {k: str(v) for k, v in store.items()},
                             "sage": {k: str(v) for k, v in sage.items()}, "differences": differences}
    if differences:
        entries.append((record.pk, "reconciliation", "Sage does not agree with the store for invoice "
                        f"{invoice.get('reference')}: {'; '.join(differences)}.", record.reconciliation))


@on_job_done("create_receipt")
def receipts_posted(jobs: list[AgentJob]) -> None:
    _settle_payments(jobs, INVOICE)


# -- refunds ------------------------------------------------------------------------------------

def _map_credit_note(record: SyncRecord, adapter, order: StoreOrder, invoice: RecordLink | None,
                     invoice_job: AgentJob | None, mappings, account_ref) -> str:
    """Map the refund onto the record against the invoice (in Sage, or queued); returns the message."""
    try:
        refund = adapter.normalize_refund(_decimalise(record.payload["refund"]), order_id=record.payload["order_id"])
        posting = map_refund(order, refund, invoice.reference if invoice else invoice_job.reference, mappings,
                             customer_account_ref=account_ref)
    except sage50_errors.Sage50MappingError as error:
        raise _translate(error) from error
    credit_note = posting.credit_note
    record.document = {"credit_note": to_payload(credit_note), "refunds": [to_payload(r) for r in posting.refunds]}
    record.sage_reference = credit_note.reference
    against = f"invoice {invoice.sage_id}" if invoice else f"invoice {invoice_job.reference} (once it is posted)"
    return (f"Mapped to credit note {credit_note.reference} against {against} ({credit_note.gross_total}); "
            f"waiting for the agent. {posting.accounts_used}")


def _invoices_of(integration, order_ids: set[str]) -> tuple[dict[str, RecordLink], dict[str, AgentJob]]:
    """The orders' invoices in Sage (links), and for the others their queued invoice jobs: a credit
    note is queued behind its invoice's job (the lease hands it out once the invoice is done)
    instead of retrying on a timer."""
    links = {link.external_id: link for link in RecordLink.objects.filter(
        integration=integration, kind=RecordLink.Kind.INVOICE, external_id__in=order_ids)}
    jobs = {}
    if order_ids - links.keys():
        for job in (AgentJob.objects.filter(integration=integration, op=INVOICE.op, record__kind=SyncRecord.Kind.ORDER,
                                            record__external_id__in=order_ids - links.keys())
                    .exclude(state=AgentJob.State.FAILED).select_related("record").only("pk", "reference",
                                                                                      "record__external_id")):
            jobs.setdefault(job.record.external_id, job)
    return links, jobs


def _refund_parts(record: SyncRecord) -> tuple[str, dict]:
    payload = record.payload or {}
    if payload.get("order_id") is None or payload.get("refund") is None:
        raise outcomes.RecordOutcome(f"Refund {record.external_id} has no stored refund; replay it from the store.")
    return str(payload["order_id"]), payload["refund"]


@handles(SyncRecord.Action.POST_CREDIT_NOTE)
def post_credit_note(record: SyncRecord) -> None:
    integration = record.integration
    order_id, _ = _refund_parts(record)
    invoices, invoice_jobs = _invoices_of(integration, {order_id})
    invoice, invoice_job = invoices.get(order_id), invoice_jobs.get(order_id)
    if invoice is None and invoice_job is None:
        # Not even mapped yet (held, waiting for a mapping, pending) or skipped: the refund waits,
        # without retrying, until the order's record posts (connector.services.records wakes it).
        order_record = order_record_for(record, order_id, SyncRecord.Action.POST_INVOICE)
        raise order_not_in_ledger(record, order_record, "Sage 50")
    adapter = store_adapter(integration)
    raw = (record.payload or {}).get("order") or _invoiced_orders(integration, {order_id}).get(order_id)
    if not raw:
        raw = _fetch_order(record, adapter, order_id)
    order = _normalize(adapter, integration, raw)
    message = _map_credit_note(record, adapter, order, invoice, invoice_job, sage50_mappings(integration),
                               _account_refs(integration, [order]).of(order))
    _dispatch(integration, [(record, message)], CREDIT_NOTE, after={record.pk: invoice_job} if invoice_job else None)


@handles_batch(SyncRecord.Action.POST_CREDIT_NOTE)
def post_credit_notes(records: list[SyncRecord]) -> list[SyncRecord]:
    """post_credit_note for a chunk: refunds whose invoice is in Sage or queued, and whose order the
    poll stored on the order's record (the order the invoice was mapped from), are mapped and
    dispatched together. The others go one by one (fetch the order, wait for the invoice)."""
    integration = records[0].integration
    refunds = [record for record in records
               if (record.payload or {}).get("order_id") is not None and (record.payload or {}).get("refund")]
    order_ids = {str(record.payload["order_id"]) for record in refunds}
    invoices, invoice_jobs = _invoices_of(integration, order_ids)
    raw_orders = _invoiced_orders(integration, order_ids)
    adapter = store_adapter(integration)
    mappings = sage50_mappings(integration)
    ready = [(record, str(record.payload["order_id"])) for record in refunds]
    ready = [(record, order_id) for record, order_id in ready
             if order_id in raw_orders and (order_id in invoices or order_id in invoice_jobs)]
    orders, unreadable = {}, {}
    for order_id in {order_id for _, order_id in ready}:
        try:
            orders[order_id] = _normalize(adapter, integration, raw_orders[order_id])
        except Exception as error:  # a malformed order: its refunds fail, the others go on
            unreadable[order_id] = error
    accounts = _account_refs(integration, list(orders.values()))
    mapped, after, failures = [], {}, []
    for record, order_id in ready:
        if order_id in unreadable:
            failures.append((record, unreadable[order_id]))
            continue
        order = orders[order_id]
        try:
            message = _map_credit_note(record, adapter, order, invoices.get(order_id), invoice_jobs.get(order_id),
                                       mappings, accounts.of(order))
        except Exception as error:  # the record's own problem: it waits, the others go on
            failures.append((record, error))
            continue
        mapped.append((record, message))
        if order_id not in invoices:
            after[record.pk] = invoice_jobs[order_id]
    settle_many(failures)
    _dispatch(integration, mapped, CREDIT_NOTE, after=after)
    taken = {record.pk for record, _ in ready}
    return [record for record in records if record.pk not in taken]


def _invoiced_orders(integration, order_ids: set[str]) -> dict[str, dict]:
    """The store orders stored on these orders' invoice records, by order id."""
    return {external_id: payload for external_id, payload in SyncRecord.objects.filter(
        integration=integration, kind=SyncRecord.Kind.ORDER, action=SyncRecord.Action.POST_INVOICE,
        external_id__in=order_ids, payload__isnull=False).values_list("external_id", "payload")
        if isinstance(payload, dict) and payload.get("id")}


def _decimalise(value):
    """Refund money arrives stored as JSON strings; the mapper reads Decimal."""
    from decimal import Decimal

    if isinstance(value, dict):
        return {k: _decimalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimalise(v) for v in value]
    if isinstance(value, float):
        return Decimal(str(value))
    return value


@on_job_done("create_credit_note")
def credit_notes_posted(jobs: list[AgentJob]) -> None:
    _documents_posted(jobs, CREDIT_NOTE)


@on_job_done("create_refund_payment")
def refund_payments_posted(jobs: list[AgentJob]) -> None:
    _settle_payments(jobs, CREDIT_NOTE)


# -- shared ---------------------------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class DocumentKind:
    """A Sage document the agent creates, and the payments that follow it."""
    op: str
    document_key: str  # in the record's document
    priority: int
    followup_op: str
    followups_key: str
    followup_priority: int
    name: str  # for messages: "invoice"
    number_key: str  # the agent's result: the Sage number
    link_kind: str
    payment_name: str
    payment_link_kind: str
    payment_id_key: str  # the payment's result: its Sage id
    paid_message: str  # the record's message once the document and its payments are in Sage
    check_result: Callable | None = None  # (record, result, number, links, entries): kind-specific checks


INVOICE = DocumentKind(
    op="create_sales_invoice", document_key="invoice", priority=INVOICE_PRIORITY,
    followup_op="create_receipt", followups_key="receipts", followup_priority=RECEIPT_PRIORITY,
    name="invoice", number_key="invoice_number", link_kind=RecordLink.Kind.INVOICE,
    payment_name="receipt", payment_link_kind=RecordLink.Kind.RECEIPT, payment_id_key="receipt_id",
    paid_message="Posted as Sage invoice {sage_id} with its receipt(s).", check_result=_invoice_checks,
)
CREDIT_NOTE = DocumentKind(
    op="create_credit_note", document_key="credit_note", priority=CREDIT_PRIORITY,
    followup_op="create_refund_payment", followups_key="refunds", followup_priority=REFUND_PRIORITY,
    name="credit note", number_key="credit_note_number", link_kind=RecordLink.Kind.CREDIT_NOTE,
    payment_name="refund payment", payment_link_kind=RecordLink.Kind.REFUND_PAYMENT, payment_id_key="payment_id",
    paid_message="Posted as Sage credit note {sage_id} with its refund payment.",
)


def _dispatch(integration, mapped: list[tuple[SyncRecord, str]], kind: DocumentKind, *,
              after: dict[int, AgentJob] | None = None) -> None:
    """Commit point: mapped records go to DISPATCHED in the transaction that queues their jobs, the
    document's job and its payments' jobs at once (each payment leased only once its document is
    done: no second trip through a worker). One UPDATE, two job INSERTs and their audit INSERTs for
    any number of records. ``after``: record id → the job its document waits for."""
    if not mapped:
        return
    after = after or {}
    for record, _ in mapped:
        record.waiting_for = []
    with transaction.atomic():
        # Only records still waiting to be posted: one a concurrent run dispatched meanwhile is left alone.
        set_states(mapped, State.DISPATCHED, step="mapped", fields=("document", "sage_reference", "waiting_for",
                                                                    "attempts"),
                   data_of=lambda record: record.document, only_from=SyncRecord.RETRYABLE_STATES)
        documents = [JobSpec(kind.op, record.sage_reference, _job_payload(record, kind), record, kind.priority,
                             depends_on_id=after[record.pk].pk if record.pk in after else None)
                     for record, _ in mapped]
        created, earlier = queue_jobs(integration.pk, documents, audited=False)
        audit_many(dispatched_entries(documents, created))
        # An earlier attempt queued the document: dispatch_job's rules (re-queue a failed job with
        # the fresh payload, re-apply a done one's result, whose callback queues any payment the
        # agent did not post).
        for spec in earlier:
            dispatch_job(integration.pk, spec.op, spec.reference, spec.payload, record=spec.record,
                         priority=spec.priority)


def _job_payload(record: SyncRecord, kind: DocumentKind) -> dict:
    """The document, with its payments for the agent to post right after it (PROTOCOL.md: an
    agent that predates this ignores them, and the callback queues them as jobs of their own)."""
    payments = record.document.get(kind.followups_key) or []
    document = record.document[kind.document_key]
    return {**document, "payments": payments} if payments else document


def _documents_posted(jobs: list[AgentJob], kind: DocumentKind) -> None:
    """Apply documents the agent created: their links (and their payments' links when the agent
    posted the payments in the same job), audit entries; records whose payments are all in Sage
    are posted, the others keep the Sage number and get a job for each payment still missing."""
    links, finished, paid, followups, entries = [], [], [], [], []
    for job in jobs:
        record = job.record
        if record is None:
            continue
        result = job.result or {}
        number = str(result.get(kind.number_key, ""))
        links.append((kind.link_kind, record.external_id, number, job.reference))
        record.sage_id = number
        if kind.check_result:
            kind.check_result(record, result, number, links, entries)
        payments = (record.document or {}).get(kind.followups_key) or []
        if not payments:
            finished.append((record, f"Posted as Sage {kind.name} {number}."))
            continue
        posted = {}
        for outcome in result.get("payments") or []:
            if not isinstance(outcome, dict):
                continue
            reference = str(outcome.get("reference", ""))
            if isinstance(outcome.get("result"), dict):
                posted[reference] = outcome["result"]
            elif isinstance(outcome.get("error"), dict):
                error = outcome["error"]
                entries.append((record.pk, "agent_error",
                                f"Sage refused {kind.payment_name} {reference} ({error.get('code', '')}): "
                                f"{error.get('message', '')} It is queued again as a job of its own.", error))
        links += [(kind.payment_link_kind, reference, str(outcome.get(kind.payment_id_key, "")), reference)
                  for reference, outcome in posted.items()]
        missing = [payment for payment in payments if payment.get("reference") not in posted]
        if not missing:
            paid.append(record)
            continue
        entries.append((record.pk, "posted", f"Sage {kind.name} {number} created"
                                             f"{' (found existing)' if result.get('existed') else ''}; "
                                             f"its {len(missing)} {kind.payment_name}(s) follow.", None))
        followups.append(Followups(record=record, op=kind.followup_op, payloads=missing,
                                   priority=kind.followup_priority, after=job,
                                   account_ref=result.get("account_ref")))
    _settle_posted(jobs, links, entries, finished, followups)
    _touch(_finish_when_all_done(paid, kind.paid_message))
    checked = [job.record for job in jobs if job.record is not None and job.record.reconciliation is not None]
    if checked:
        update_rows(SyncRecord, checked, ["reconciliation"])


def _settle_posted(jobs: list[AgentJob], links: list[tuple], entries: list[tuple],
                   finished: list[tuple[SyncRecord, str]], followups: list[Followups]) -> None:
    """Apply documents the agent created: their links, audit entries, records without payments
    posted, the others keep the Sage number and get any payment job still missing."""
    if not links:
        return
    integration_id = jobs[0].integration_id
    save_links(integration_id, *links)
    audit_many(entries)
    _touch([entry.record for entry in followups])
    _finish(finished)
    _queue_followups(integration_id, followups)


def _settle_payments(jobs: list[AgentJob], kind: DocumentKind) -> None:
    """Apply payments the agent created as jobs of their own: their links, and records whose every
    job is done posted."""
    jobs = [job for job in jobs if job.record is not None]
    if not jobs:
        return
    save_links(jobs[0].integration_id, *[(kind.payment_link_kind, job.reference,
                                          (job.result or {}).get(kind.payment_id_key, ""), job.reference)
                                         for job in jobs])
    _finish_when_all_done([job.record for job in jobs], kind.paid_message)


@dataclass(frozen=True)
class Followups:
    """The payments still to post after a document: one job each, leased once ``after`` is done."""

    record: SyncRecord
    op: str
    payloads: list[dict]
    priority: int
    after: AgentJob
    account_ref: str | None  # the Sage customer the agent found or created for the document


def _queue_followups(integration_id: int, followups: list[Followups]) -> None:
    """Queue the payments that follow documents, each leased only once its document's job is done.
    Those already queued cost one query for the lot. One that failed for good goes back to the queue with the
    fresh payload (dispatch_job): this runs then only because the record was replayed, after the
    accountant fixed what Sage refused."""
    wanted = [(entry, payload) for entry in followups for payload in entry.payloads]
    if not wanted:
        return
    queued = {(op, reference) for op, reference, state in AgentJob.objects.filter(
        integration_id=integration_id, reference__in={payload["reference"] for _, payload in wanted})
        .values_list("op", "reference", "state") if state != AgentJob.State.FAILED}
    for entry, payload in wanted:
        if (entry.op, payload["reference"]) in queued:
            continue
        if entry.account_ref and not payload.get("account_ref"):
            payload = {**payload, "account_ref": entry.account_ref}
        dispatch_job(integration_id, entry.op, payload["reference"], payload, record=entry.record,
                     priority=entry.priority, depends_on=entry.after)


def _touch(records: list[SyncRecord]) -> None:
    """Keep the Sage number of records whose payments are still to come."""
    if records:
        now = timezone.now()
        for record in records:
            record.updated_at = now
        update_rows(SyncRecord, records, ["sage_id", "updated_at"])


def _finish_when_all_done(records: list[SyncRecord], message: str) -> list[SyncRecord]:
    """Records whose every job is done are posted (``message`` formatted with the record's sage_id);
    returns the others, which wait for their remaining jobs (say a payment job queued separately
    before its document's job carried the payments)."""
    records = list({record.pk: record for record in records}.values())
    if not records:
        return []
    waiting = set(AgentJob.objects.filter(record__in=records).exclude(state=AgentJob.State.DONE)
                  .values_list("record_id", flat=True))
    _finish([(record, message.format(sage_id=record.sage_id)) for record in records if record.pk not in waiting])
    return [record for record in records if record.pk in waiting]


def _finish(finished: list[tuple[SyncRecord, str]]) -> None:
    set_states(finished, State.POSTED, step="posted", fields=("sage_id",))
    imported = [record.pk for record, _ in finished
                if record.kind == SyncRecord.Kind.ORDER and (record.integration.status_after_import is not None
                                                             or record.integration.store_comment_after_posting)]
    if imported:
        set_store_order_status = task_named("connector.set_store_order_status")
        transaction.on_commit(lambda: [set_store_order_status.delay(pk) for pk in imported])


@on_job_failed("create_sales_invoice")
@on_job_failed("create_receipt")
@on_job_failed("create_credit_note")
@on_job_failed("create_refund_payment")
def sage_refused(job: AgentJob) -> None:
    if job.record is None:
        return
    set_state(job.record, State.FAILED,
              f"Sage refused {job.op.replace('_', ' ')} {job.reference}: {job.error_message} "
              f"Fix it in Sage or in the mappings, then replay this record.", step="failed")
