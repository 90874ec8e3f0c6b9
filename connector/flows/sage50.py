"""BigCommerce → Sage 50 (through the agent): orders become sales invoices and receipts,
refunds become credit notes and refund payments.

Commit points: a record goes to DISPATCHED in the same transaction that queues its agent job;
each agent result is applied in the transaction that marks the job done (jobs.complete_job), so a
crash never leaves a posted document without its link, nor a link without its job.
"""

from __future__ import annotations

from django.db import transaction

from connector import exceptions as outcomes
from connector.bigcommerce.client import BigCommerceClient
from connector.bigcommerce.formats import jsonable
from connector.ledger import to_payload
from connector.models import AgentJob, SyncRecord
from connector.sage50 import errors as sage50_errors
from connector.sage50.mapper import map_order, map_refund
from connector.services.audit import audit
from connector.services.jobs import dispatch_job, on_job_done, on_job_failed
from connector.services.pipeline import handles
from connector.services.records import enqueue, set_state, upsert_record
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

@handles(SyncRecord.Action.POST_INVOICE)
def post_invoice(record: SyncRecord) -> None:
    integration = record.integration
    client = None
    order = record.payload if isinstance(record.payload, dict) and record.payload.get("id") else None
    if order is None:
        order, client = _fetch_order(record, None, record.external_id)
        SyncRecord.objects.filter(pk=record.pk).update(payload=jsonable(order))  # the client parses money as Decimal
    transactions = []
    if (order.get("payment_status") or "").strip().lower() not in CAPTURED and order.get("payment_status"):
        client = client or _client(integration)
        transactions = client.order_transactions(int(order["id"]))
    account_ref = RecordLink.objects.filter(integration=integration, kind=RecordLink.Kind.CUSTOMER,
                                            external_id=(order.get("billing_address") or {}).get("email", "").lower()
                                            ).values_list("sage_id", flat=True).first()
    try:
        posting = map_order(order, mappings=sage50_mappings(integration), transactions=transactions,
                            customer_account_ref=account_ref)
    except sage50_errors.Sage50MappingError as error:
        raise _translate(error) from error
    document = {"invoice": to_payload(posting.invoice),
                "receipts": [to_payload(r) for r in posting.receipts] if integration.post_receipts else []}
    with transaction.atomic():
        set_state(record, State.DISPATCHED,
                  f"Mapped to invoice {posting.invoice.reference} ({posting.invoice.currency} "
                  f"{posting.invoice.gross_total}); waiting for the agent.",
                  step="mapped", data=document, document=document, sage_reference=posting.invoice.reference,
                  waiting_for=[])
        invoice_job = dispatch_job(integration.pk, "create_sales_invoice", posting.invoice.reference,
                                   document["invoice"], record=record, priority=INVOICE_PRIORITY)
        # Queued now, leased once the invoice is done: no second trip through a worker. The
        # agent takes the account from the invoice it finds by reference when the payload has none.
        _queue_followups(integration.pk, record, "create_receipt", document["receipts"], RECEIPT_PRIORITY,
                         invoice_job)


@on_job_done("create_sales_invoice")
def invoice_posted(job: AgentJob) -> None:
    record = job.record
    if record is None:
        return
    result = job.result or {}
    number = str(result.get("invoice_number", ""))
    document = record.document or {}
    links = [(RecordLink.Kind.INVOICE, record.external_id, number, job.reference)]
    customer = (document.get("invoice") or {}).get("customer") or {}
    if result.get("account_ref") and customer.get("email"):
        links.append((RecordLink.Kind.CUSTOMER, customer["email"].lower(), result["account_ref"], ""))
    save_links(job.integration_id, *links)
    expected = (document.get("invoice") or {}).get("store_total")
    if result.get("gross_total") and expected and str(result["gross_total"]) != str(expected):
        audit(record, "warning", f"Sage computed {result['gross_total']} for invoice {number}; the store total "
                                 f"is {expected}. Check the tax codes' rates in Sage.")
    record.sage_id = number
    receipts = document.get("receipts") or []
    if not receipts:
        _finish(record, f"Posted as Sage invoice {number}.")
        return
    record.save(update_fields=["sage_id", "updated_at"])
    audit(record, "posted", f"Sage invoice {number} created{' (found existing)' if result.get('existed') else ''}; "
                            f"its {len(receipts)} receipt(s) follow.")
    # Records mapped before receipts were queued with their invoice still get theirs here.
    _queue_followups(job.integration_id, record, "create_receipt", receipts, RECEIPT_PRIORITY, job,
                     account_ref=result.get("account_ref"))


@on_job_done("create_receipt")
def receipt_posted(job: AgentJob) -> None:
    record = job.record
    if record is None:
        return
    result = job.result or {}
    save_links(job.integration_id,
               (RecordLink.Kind.RECEIPT, job.reference, result.get("receipt_id", ""), job.reference))
    _finish_when_all_done(record, f"Posted as Sage invoice {record.sage_id} with its receipt(s).")


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
        _queue_followups(integration.pk, record, "create_refund_payment", document["refunds"], REFUND_PRIORITY,
                         credit_job)


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
def credit_note_posted(job: AgentJob) -> None:
    record = job.record
    if record is None:
        return
    result = job.result or {}
    number = str(result.get("credit_note_number", ""))
    save_links(job.integration_id, (RecordLink.Kind.CREDIT_NOTE, record.external_id, number, job.reference))
    record.sage_id = number
    refunds = (record.document or {}).get("refunds") or []
    if not refunds:
        _finish(record, f"Posted as Sage credit note {number}.")
        return
    record.save(update_fields=["sage_id", "updated_at"])
    audit(record, "posted", f"Sage credit note {number} created; its refund payment follows.")
    _queue_followups(job.integration_id, record, "create_refund_payment", refunds, REFUND_PRIORITY, job,
                     account_ref=result.get("account_ref"))


@on_job_done("create_refund_payment")
def refund_payment_posted(job: AgentJob) -> None:
    record = job.record
    if record is None:
        return
    save_links(job.integration_id, (RecordLink.Kind.REFUND_PAYMENT, job.reference,
                                    (job.result or {}).get("payment_id", ""), job.reference))
    _finish_when_all_done(record, f"Posted as Sage credit note {record.sage_id} with its refund payment.")


# -- shared ---------------------------------------------------------------------------------------

def _queue_followups(integration_id: int, record: SyncRecord, op: str, payloads: list[dict], priority: int,
                     after: AgentJob, *, account_ref: str | None = None) -> None:
    """Queue the payments that follow a document, each leased only once ``after`` is done. Those
    already queued (the usual case when ``after`` completes) cost one query, not one per payment."""
    if not payloads:
        return
    queued = set(AgentJob.objects.filter(integration_id=integration_id, op=op,
                                         reference__in=[p["reference"] for p in payloads])
                 .values_list("reference", flat=True))
    for payload in payloads:
        if payload["reference"] in queued:
            continue
        if account_ref and not payload.get("account_ref"):
            payload = {**payload, "account_ref": account_ref}
        dispatch_job(integration_id, op, payload["reference"], payload, record=record, priority=priority,
                     depends_on=after)


def _finish_when_all_done(record: SyncRecord, message: str) -> None:
    if AgentJob.objects.filter(record=record).exclude(state=AgentJob.State.DONE).exists():
        record.save(update_fields=["sage_id", "updated_at"])
        return
    _finish(record, message)


def _finish(record: SyncRecord, message: str) -> None:
    set_state(record, State.POSTED, message, step="posted")
    integration = record.integration
    if record.kind == SyncRecord.Kind.ORDER and integration.status_after_import is not None:
        from connector.tasks import set_store_order_status

        transaction.on_commit(lambda: set_store_order_status.delay(record.pk))


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
