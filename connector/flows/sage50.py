"""BigCommerce → Sage 50 (through the agent): orders become sales invoices and receipts,
refunds become credit notes and refund payments.

Commit points: a record goes to DISPATCHED in the same transaction that queues its agent job;
each agent result is applied in the transaction that marks the job done (jobs.complete_job), so a
crash never leaves a posted document without its link, nor a link without its job.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from connector import exceptions as outcomes
from connector.bigcommerce.client import BigCommerceClient
from connector.bigcommerce.formats import jsonable
from connector.ledger import to_payload
from connector.models import AgentJob, SyncRecord
from connector.sage50 import errors as sage50_errors
from connector.sage50.mapper import map_order, map_refund
from connector.services.audit import audit, audit_many
from connector.services.jobs import JobSpec, dispatch_job, on_job_done, on_job_failed, queue_jobs
from connector.services.pipeline import handles, handles_batch, settle
from connector.services.records import enqueue, set_state, set_states, upsert_record
from mappings.links import save_links
from mappings.models import RecordLink

from .mapping_loader import sage50_mappings

State = SyncRecord.State
CAPTURED = {"captured", "paid", "partially refunded", "refunded"}

# The agent creates the customer (found by email, or created) inside create_sales_invoice, so one
# job per order suffices; its serial execution per Sage company means concurrent orders from the
# same email still make one customer.
REFUND_RECHECK_SECONDS = 2
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


def _client(integration) -> BigCommerceClient:
    return BigCommerceClient.for_store(integration.store)


def _fetch_order(record: SyncRecord, client: BigCommerceClient | None, order_id) -> tuple[dict, BigCommerceClient]:
    client = client or _client(record.integration)
    order = client.get_order(int(order_id), with_lines=True)
    audit(record, "fetched", f"Fetched order {order_id} from the store.", {"date_modified": order.get("date_modified")})
    return order, client


# -- orders -------------------------------------------------------------------------------------

def _account_refs(integration, emails) -> dict[str, str]:
    """Sage customer accounts already linked to these store emails, by lower-cased email."""
    emails = {email.lower() for email in emails if email}
    if not emails:
        return {}
    return dict(RecordLink.objects.filter(integration=integration, kind=RecordLink.Kind.CUSTOMER,
                                          external_id__in=emails).values_list("external_id", "sage_id"))


def _email(order: dict) -> str:
    return ((order.get("billing_address") or {}).get("email") or "").lower()


def _needs_transactions(order: dict) -> bool:
    """Orders whose payment is not captured yet: the mapper needs the store's payment transactions."""
    status = order.get("payment_status")
    return bool(status) and status.strip().lower() not in CAPTURED


def _map_invoice(record: SyncRecord, order: dict, mappings, transactions, account_ref) -> str:
    """Map the order onto the record (document, Sage reference); returns the record's new message."""
    try:
        posting = map_order(order, mappings=mappings, transactions=transactions, customer_account_ref=account_ref)
    except sage50_errors.Sage50MappingError as error:
        raise _translate(error) from error
    invoice = posting.invoice
    record.document = {"invoice": to_payload(invoice),
                       "receipts": [to_payload(r) for r in posting.receipts] if record.integration.post_receipts
                       else []}
    record.sage_reference = invoice.reference
    record.waiting_for = []
    return f"Mapped to invoice {invoice.reference} ({invoice.currency} {invoice.gross_total}); waiting for the agent."


@handles(SyncRecord.Action.POST_INVOICE)
def post_invoice(record: SyncRecord) -> None:
    integration = record.integration
    client = None
    order = record.payload if isinstance(record.payload, dict) and record.payload.get("id") else None
    if order is None:
        order, client = _fetch_order(record, None, record.external_id)
        SyncRecord.objects.filter(pk=record.pk).update(payload=jsonable(order))  # the client parses money as Decimal
    transactions = []
    if _needs_transactions(order):
        client = client or _client(integration)
        transactions = client.order_transactions(int(order["id"]))
    message = _map_invoice(record, order, sage50_mappings(integration), transactions,
                           _account_refs(integration, [_email(order)]).get(_email(order)))
    document = record.document
    with transaction.atomic():
        set_state(record, State.DISPATCHED, message, step="mapped", data=document, document=document)
        invoice_job = dispatch_job(integration.pk, "create_sales_invoice", record.sage_reference,
                                   document["invoice"], record=record, priority=INVOICE_PRIORITY)
        # Queued now, leased once the invoice is done: no second trip through a worker. The
        # agent takes the account from the invoice it finds by reference when the payload has none.
        _queue_followups(integration.pk, [(record, "create_receipt", document["receipts"], RECEIPT_PRIORITY,
                                           invoice_job, None)])


@handles_batch(SyncRecord.Action.POST_INVOICE)
def post_invoices(records: list[SyncRecord]) -> list[SyncRecord]:
    """post_invoice for a chunk of one integration's records (the backfill's path): the orders the
    poll stored are mapped in memory and dispatched with one UPDATE of the records, one INSERT of
    invoice jobs, one of receipt jobs and one of audit entries. Orders that need the store first
    (no stored order, payment not captured yet) are left to post_invoice."""
    integration = records[0].integration
    stored = [record for record in records if isinstance(record.payload, dict) and record.payload.get("id")
              and not _needs_transactions(record.payload)]
    if not stored:
        return records
    mappings = sage50_mappings(integration)
    accounts = _account_refs(integration, [_email(record.payload) for record in stored])
    mapped = []
    for record in stored:
        try:
            message = _map_invoice(record, record.payload, mappings, [], accounts.get(_email(record.payload)))
        except Exception as error:  # the record's own problem (a mapping, totals): it waits, the others go on
            settle(record, error)
            continue
        mapped.append((record, message))
    with transaction.atomic():
        # Only records still waiting to be posted: one a concurrent run already dispatched is left alone.
        set_states(mapped, State.DISPATCHED, step="mapped",
                   fields=("document", "sage_reference", "waiting_for", "attempts"),
                   data_of=lambda record: record.document, only_from=SyncRecord.RETRYABLE_STATES)
        created, earlier = queue_jobs(integration.pk, [
            JobSpec("create_sales_invoice", record.sage_reference, record.document["invoice"], record,
                    INVOICE_PRIORITY) for record, _ in mapped])
        receipts, followups = [], []
        for record, _ in mapped:
            invoice_id = created.get(("create_sales_invoice", record.sage_reference))
            if invoice_id is None:
                continue
            receipts += [JobSpec("create_receipt", receipt["reference"], receipt, record, RECEIPT_PRIORITY,
                                 depends_on_id=invoice_id) for receipt in record.document["receipts"]]
        queue_jobs(integration.pk, receipts)  # a receipt queued by an earlier attempt stays as it is
        # An earlier attempt queued the invoice: dispatch_job's rules (re-queue a failed one,
        # re-apply a done one's result), as post_invoice does.
        for spec in earlier:
            invoice_job = dispatch_job(integration.pk, spec.op, spec.reference, spec.payload, record=spec.record,
                                       priority=spec.priority)
            followups.append((spec.record, "create_receipt", spec.record.document["receipts"], RECEIPT_PRIORITY,
                              invoice_job, None))
        _queue_followups(integration.pk, followups)
    return [record for record in records if record not in stored]


@on_job_done("create_sales_invoice")
def invoices_posted(jobs: list[AgentJob]) -> None:
    links, finished, followups, entries = [], [], [], []
    for job in jobs:
        record = job.record
        if record is None:
            continue
        result = job.result or {}
        number = str(result.get("invoice_number", ""))
        document = record.document or {}
        links.append((RecordLink.Kind.INVOICE, record.external_id, number, job.reference))
        customer = (document.get("invoice") or {}).get("customer") or {}
        if result.get("account_ref") and customer.get("email"):
            links.append((RecordLink.Kind.CUSTOMER, customer["email"].lower(), result["account_ref"], ""))
        expected = (document.get("invoice") or {}).get("store_total")
        if result.get("gross_total") and expected and str(result["gross_total"]) != str(expected):
            entries.append((record.pk, "warning", f"Sage computed {result['gross_total']} for invoice {number}; "
                                                  f"the store total is {expected}. Check the tax codes' rates in Sage.",
                            None))
        record.sage_id = number
        receipts = document.get("receipts") or []
        if not receipts:
            finished.append((record, f"Posted as Sage invoice {number}."))
            continue
        entries.append((record.pk, "posted", f"Sage invoice {number} created"
                                             f"{' (found existing)' if result.get('existed') else ''}; "
                                             f"its {len(receipts)} receipt(s) follow.", None))
        # Records mapped before receipts were queued with their invoice still get theirs here.
        followups.append((record, "create_receipt", receipts, RECEIPT_PRIORITY, job, result.get("account_ref")))
    if not links:
        return
    integration_id = jobs[0].integration_id
    save_links(integration_id, *links)
    audit_many(entries)
    _touch([record for record, *_ in followups])
    _finish(finished)
    _queue_followups(integration_id, followups)


@on_job_done("create_receipt")
def receipts_posted(jobs: list[AgentJob]) -> None:
    jobs = [job for job in jobs if job.record is not None]
    if not jobs:
        return
    save_links(jobs[0].integration_id, *[(RecordLink.Kind.RECEIPT, job.reference, (job.result or {}).get(
        "receipt_id", ""), job.reference) for job in jobs])
    _finish_when_all_done([job.record for job in jobs], "Posted as Sage invoice {sage_id} with its receipt(s).")


# -- refunds ------------------------------------------------------------------------------------

@handles(SyncRecord.Action.POST_CREDIT_NOTE)
def post_credit_note(record: SyncRecord) -> None:
    integration = record.integration
    payload = record.payload or {}
    order_id = payload.get("order_id")
    refund = payload.get("refund")
    client = None
    if order_id is None or refund is None:
        raise outcomes.RecordOutcome(f"Refund {record.external_id} has no stored refund; replay it from the store.")
    invoice = RecordLink.objects.filter(integration=integration, kind=RecordLink.Kind.INVOICE,
                                        external_id=str(order_id)).first()
    invoice_job = None
    if invoice is None:
        # The invoice is queued but not in Sage yet: the credit note is queued behind it (the
        # lease hands it out once the invoice is done) instead of retrying on a timer.
        invoice_job = (AgentJob.objects.filter(integration=integration, op="create_sales_invoice",
                                               record__kind=SyncRecord.Kind.ORDER,
                                               record__external_id=str(order_id))
                       .exclude(state=AgentJob.State.FAILED).first())
    if invoice is None and invoice_job is None:
        order_record, created = upsert_record(integration.pk, SyncRecord.Kind.ORDER, str(order_id),
                                              SyncRecord.Action.POST_INVOICE,
                                              reason=f"Refund {record.external_id} needs its invoice.")
        if created or order_record.state in (State.PENDING, State.FAILED):
            enqueue(order_record.pk)
        # Not an error: the order is not even mapped yet (its record was just queued), so there is no
        # invoice job to wait on; look again shortly, by then it usually is and the credit note
        # queues behind it.
        from connector.http import RetryableError

        raise RetryableError(f"Order {order_id} is not invoiced in Sage yet (its record is "
                             f"{order_record.get_state_display().lower()}); the credit note waits for it",
                             retry_after=REFUND_RECHECK_SECONDS)
    order = payload.get("order")
    if not order:
        order, client = _fetch_order(record, client, order_id)
    account_ref = RecordLink.objects.filter(integration=integration, kind=RecordLink.Kind.CUSTOMER,
                                            external_id=(order.get("billing_address") or {}).get("email", "").lower()
                                            ).values_list("sage_id", flat=True).first()
    try:
        posting = map_refund(order, _decimalise(refund), invoice.reference if invoice else invoice_job.reference,
                             sage50_mappings(integration), customer_account_ref=account_ref)
    except sage50_errors.Sage50MappingError as error:
        raise _translate(error) from error
    document = {"credit_note": to_payload(posting.credit_note),
                "refunds": [to_payload(r) for r in posting.refunds]}
    with transaction.atomic():
        against = f"invoice {invoice.sage_id}" if invoice else f"invoice {invoice_job.reference} (once it is posted)"
        set_state(record, State.DISPATCHED,
                  f"Mapped to credit note {posting.credit_note.reference} against {against} "
                  f"({posting.credit_note.gross_total}); waiting for the agent.",
                  step="mapped", data=document, document=document, sage_reference=posting.credit_note.reference,
                  waiting_for=[])
        credit_job = dispatch_job(integration.pk, "create_credit_note", posting.credit_note.reference,
                                  document["credit_note"], record=record, priority=CREDIT_PRIORITY,
                                  depends_on=invoice_job)
        _queue_followups(integration.pk, [(record, "create_refund_payment", document["refunds"], REFUND_PRIORITY,
                                           credit_job, None)])


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
    finished, followups, entries, links = [], [], [], []
    for job in jobs:
        record = job.record
        if record is None:
            continue
        result = job.result or {}
        number = str(result.get("credit_note_number", ""))
        links.append((RecordLink.Kind.CREDIT_NOTE, record.external_id, number, job.reference))
        record.sage_id = number
        refunds = (record.document or {}).get("refunds") or []
        if not refunds:
            finished.append((record, f"Posted as Sage credit note {number}."))
            continue
        entries.append((record.pk, "posted", f"Sage credit note {number} created; its refund payment follows.", None))
        followups.append((record, "create_refund_payment", refunds, REFUND_PRIORITY, job, result.get("account_ref")))
    if not links:
        return
    save_links(jobs[0].integration_id, *links)
    audit_many(entries)
    _touch([record for record, *_ in followups])
    _finish(finished)
    _queue_followups(jobs[0].integration_id, followups)


@on_job_done("create_refund_payment")
def refund_payments_posted(jobs: list[AgentJob]) -> None:
    jobs = [job for job in jobs if job.record is not None]
    if not jobs:
        return
    save_links(jobs[0].integration_id, *[(RecordLink.Kind.REFUND_PAYMENT, job.reference, (job.result or {}).get(
        "payment_id", ""), job.reference) for job in jobs])
    _finish_when_all_done([job.record for job in jobs],
                          "Posted as Sage credit note {sage_id} with its refund payment.")


# -- shared ---------------------------------------------------------------------------------------

def _queue_followups(integration_id: int, followups: list[tuple]) -> None:
    """Queue the payments that follow documents, each leased only once its document's job is done.
    ``followups``: (record, op, payloads, priority, after job, account ref or None). Those already
    queued (the usual case when the document's job completes) cost one query for the lot."""
    wanted = [(entry, payload) for entry in followups for payload in entry[2]]
    if not wanted:
        return
    queued = set(AgentJob.objects.filter(integration_id=integration_id,
                                         reference__in={payload["reference"] for _, payload in wanted})
                 .values_list("op", "reference"))
    for (record, op, _, priority, after, account_ref), payload in wanted:
        if (op, payload["reference"]) in queued:
            continue
        if account_ref and not payload.get("account_ref"):
            payload = {**payload, "account_ref": account_ref}
        dispatch_job(integration_id, op, payload["reference"], payload, record=record, priority=priority,
                     depends_on=after)


def _touch(records: list[SyncRecord]) -> None:
    """Keep the Sage number of records whose payments are still to come."""
    if records:
        now = timezone.now()
        for record in records:
            record.updated_at = now
        SyncRecord.objects.bulk_update(records, ["sage_id", "updated_at"])


def _finish_when_all_done(records: list[SyncRecord], message: str) -> None:
    """Records whose every job is done are posted (``message`` formatted with the record's sage_id);
    the others wait for their remaining payments."""
    records = list({record.pk: record for record in records}.values())
    waiting = set(AgentJob.objects.filter(record__in=records).exclude(state=AgentJob.State.DONE)
                  .values_list("record_id", flat=True))
    _finish([(record, message.format(sage_id=record.sage_id)) for record in records if record.pk not in waiting])


def _finish(finished: list[tuple[SyncRecord, str]]) -> None:
    set_states(finished, State.POSTED, step="posted", fields=("sage_id",))
    imported = [record.pk for record, _ in finished
                if record.kind == SyncRecord.Kind.ORDER and record.integration.status_after_import is not None]
    if imported:
        from connector.tasks import set_store_order_status

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
