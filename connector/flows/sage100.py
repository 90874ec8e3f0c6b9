"""Store → Sage 100: orders become sales orders, with the buyer as an AR customer.

One ``post_sales_order`` record per order. The mapper is ``connector.sage100`` (pure); this module
loads its inputs (the item mapping, the integration's Sage 100 settings, the customer the record
links keep for the buyer's email) and posts the document by the connection's transport:

- agent (BOI): one ``create_sales_order`` job. The agent looks the ``SalesOrderNo`` up before it
  creates, and finds the customer (division + number, else email) or creates it inside the same
  job; jobs of one Sage company run one at a time, so concurrent orders from one email make one
  customer.
- eBusiness Web Services (SOAP): ``connector.sage100.ebusiness.post_sales_order`` called here,
  the same look-up-then-create over SOAP.

Either way the result is applied once: record links (order → SalesOrderNo, email → division-customer)
are unique, and Sage's own total and tax are shown beside the store's.
"""

from __future__ import annotations

import importlib
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import SageConnection
from connector import exceptions as outcomes
from connector.models import AgentJob, SyncRecord
from connector.sage100 import errors as sage100_errors
from connector.sage100.mapper import map_sales_order
from connector.sage100.mappings import MATCH_OR_CREATE, WEB_CUSTOMER, Customers, ItemCodes, Sage100Mappings
from connector.sage100.transport import PostResult
from connector.services.audit import audit, audit_many
from connector.services.jobs import dispatch_job, on_job_done, on_job_failed
from connector.services.pipeline import handles
from connector.services.records import set_state, set_states
from connector.services.taskqueue import task_named
from mappings.links import save_links
from mappings.models import RecordLink
from mlcommon.ledger import SalesOrder, from_payload, to_payload

from .mapping_loader import mapping_tables
from .stores import store_adapter
from .waiting import order_not_in_ledger, order_record_for

State = SyncRecord.State
OP = "create_sales_order"
SALES_ORDER_PRIORITY = 10
ATTENTION = "Needs the accountant: "
SETTINGS_FIELDS = {"ship_via", "default_ship_via", "warehouses", "default_warehouse", "tax_mode", "tax_item_code",
                   "tax_schedule", "sales_order_prefix", "options_in_comment", "timezone", "rounding_item_code"}


def sage100_mappings(integration) -> Sage100Mappings:
    """The pure mapper's input from the item mapping and ``Integration.sage100_settings``. A bad
    setting is the record's problem (it fails with the reason), not a crash."""
    settings = dict(integration.sage100_settings or {})
    unknown = set(settings) - SETTINGS_FIELDS - {"division", "web_customer_no", "numbering"}
    if unknown:
        raise outcomes.RecordOutcome(f"Unknown Sage 100 setting(s) {', '.join(sorted(unknown))} on the integration: "
                                     "remove them.")
    mode = WEB_CUSTOMER if integration.customer_strategy == "web_sales_account" else MATCH_OR_CREATE
    try:
        return Sage100Mappings(
            items=ItemCodes(by_sku=mapping_tables(integration.pk).items,
                            same_code_fallback=integration.same_code_fallback),
            customers=Customers(mode=mode, division=str(settings.get("division") or "01"),
                                web_customer_no=str(settings.get("web_customer_no") or ""),
                                numbering=str(settings.get("numbering") or "")),
            **{key: value for key, value in settings.items() if key in SETTINGS_FIELDS},
        )
    except (TypeError, ValueError) as error:
        raise outcomes.RecordOutcome(f"The integration's Sage 100 settings are not valid: {error}") from error


def _translate(error: Exception) -> Exception:
    if isinstance(error, sage100_errors.NeedsMapping):
        return outcomes.NeedsMapping(str(error), keys=[f"{kind}:{key}" for kind, key in error.keys])
    if isinstance(error, sage100_errors.TotalsMismatch):
        return outcomes.TotalsMismatch(str(error), data={"store_total": str(error.store_total),
                                                         "document_total": str(error.document_total),
                                                         "difference": str(error.difference)})
    if isinstance(error, sage100_errors.NotPostable):
        return outcomes.NotPostable(str(error))
    return error


def _customer_ref(integration, email: str) -> str | None:
    if not email:
        return None
    return RecordLink.objects.filter(integration=integration, kind=RecordLink.Kind.CUSTOMER,
                                     external_id=email).values_list("sage_id", flat=True).first()


def _order_of(record: SyncRecord, integration, adapter):
    raw = record.payload if isinstance(record.payload, dict) and record.payload.get("id") else None
    if raw is None:
        raw = adapter.fetch_order(record.external_id)
        audit(record, "fetched", f"Fetched order {record.external_id} from the store.",
              {"date_modified": raw.get("date_modified")})
        SyncRecord.objects.filter(pk=record.pk).update(payload=adapter.storable(raw))
    payments = adapter.order_payments(raw["id"]) if adapter.needs_payments(raw, integration.paid_status_ids) else []
    return adapter.normalize_order(raw, paid_status_ids=integration.paid_status_ids, payments=payments)


@handles(SyncRecord.Action.POST_SALES_ORDER)
def post_sales_order(record: SyncRecord) -> None:
    integration = record.integration
    order = _order_of(record, integration, store_adapter(integration))
    try:
        document = map_sales_order(order, mappings=sage100_mappings(integration),
                                   customer_ref=_customer_ref(integration, order.party.email))
    except sage100_errors.Sage100MappingError as error:
        raise _translate(error) from error
    record.document = {"sales_order": to_payload(document)}
    record.sage_reference = document.sales_order_no
    if integration.sage.transport == SageConnection.Transport.EBUSINESS_SOAP:
        _post_over_soap(record, document)
        return
    message = (f"Mapped to Sage 100 sales order {document.sales_order_no} ({document.currency} "
               f"{document.order_total}); waiting for the agent.")
    with transaction.atomic():
        set_states([(record, message)], State.DISPATCHED, step="mapped", fields=("document", "sage_reference"),
                   data_of=lambda r: r.document, only_from=SyncRecord.RETRYABLE_STATES)
        dispatch_job(integration.pk, OP, document.sales_order_no, record.document["sales_order"], record=record,
                     priority=SALES_ORDER_PRIORITY)


def _post_over_soap(record: SyncRecord, document: SalesOrder) -> None:
    """eBusiness Web Services: the SOAP client (SAGE100SOAP's ``connector.sage100.ebusiness``) posts
    it here and now; a RetryableError from it retries the record (its look-up finds a sales order an
    earlier try created)."""
    ebusiness = importlib.import_module("connector.sage100.ebusiness")
    audit(record, "mapped", f"Mapped to Sage 100 sales order {document.sales_order_no}; posting over eBusiness "
                            "Web Services.", record.document)
    result: PostResult = ebusiness.post_sales_order(record.integration.sage, document)
    _apply(record, document.order_id or record.external_id, to_payload(document), {
        "sales_order_number": result.sales_order_no, "existed": result.existed, "account_ref": result.customer_ref,
        "customer_created": result.customer_created,
        "order_total": None if result.order_total is None else str(result.order_total),
        "sales_tax": None if result.sales_tax is None else str(result.sales_tax)})


def _checks(document: dict, result: dict) -> list[str]:
    """Sage's own figures beside the store's: a difference is shown, never silently absorbed."""
    notes = []
    store_total = document.get("store_total")
    if result.get("order_total") not in (None, "") and store_total \
            and Decimal(str(result["order_total"])) != Decimal(store_total):
        notes.append(f"Sage 100 shows an order total of {result['order_total']}; the store total is {store_total} "
                     f"(difference {Decimal(store_total) - Decimal(str(result['order_total']))}).")
    if document.get("tax_mode") == "sage_tax_schedule" and result.get("sales_tax") not in (None, ""):
        store_tax, sage_tax = Decimal(document.get("store_tax") or "0"), Decimal(str(result["sales_tax"]))
        if store_tax != sage_tax:
            notes.append(f"Sage's tax schedule {document.get('tax_schedule')} computed {sage_tax} of tax; the "
                         f"store charged {store_tax} (difference {store_tax - sage_tax}). Check the schedule or the "
                         "store's tax settings.")
    return notes


def _apply(record: SyncRecord, order_id: str, document: dict, result: dict) -> None:
    number = str(result.get("sales_order_number") or "")
    links = [(RecordLink.Kind.SALES_ORDER, order_id, number, document.get("reference", ""))]
    email = ((document.get("customer") or {}).get("email") or "").lower()
    if result.get("account_ref") and email and not document.get("customer_no"):
        links.append((RecordLink.Kind.CUSTOMER, email, str(result["account_ref"]), ""))
    save_links(record.integration_id, *links)
    notes = _checks(document, result)
    customer = f" for customer {result['account_ref']}" if result.get("account_ref") else ""
    found = " (found, posted by an earlier attempt)" if result.get("existed") else ""
    message = " ".join([f"Posted as Sage 100 sales order {number}{customer}{found}.", *notes])
    set_state(record, State.POSTED, message, step="posted", data=result, sage_id=number,
              document=record.document or {"sales_order": document}, sage_reference=number)
    reconcile_task = task_named("connector.sage100_reconcile")
    transaction.on_commit(lambda: reconcile_task.delay(record.pk))


@on_job_done(OP)
def sales_orders_posted(jobs: list[AgentJob]) -> None:
    entries = []
    for job in jobs:
        record = job.record
        if record is None:
            continue
        document = job.payload or {}
        _apply(record, document.get("order_id") or record.external_id, document, job.result or {})
        if (job.result or {}).get("customer_created"):
            entries.append((record.pk, "customer", f"Sage 100 customer {job.result.get('account_ref')} created.",
                            None))
    audit_many(entries)


@on_job_failed(OP)
def sage_refused(job: AgentJob) -> None:
    if job.record is None:
        return
    set_state(job.record, State.FAILED,
              f"Sage 100 refused sales order {job.reference}: {job.error_message} "
              "Fix it in Sage 100 or in the mappings, then replay this record.", step="failed")


def document_of(record: SyncRecord) -> SalesOrder | None:
    """The record's sales order as the mapper made it (admin, reconciliation)."""
    payload = (record.document or {}).get("sales_order")
    return from_payload(OP, payload) if payload else None


# -- reconciliation (read only) and refunds after posting ------------------------------------------

def _settlement_view(settlement) -> dict:
    return {"read_at": timezone.now().isoformat(), "captured": str(settlement.captured),
            "gateways": settlement.gateways, "refunded": str(settlement.refunded),
            "refunds": [{"refund_id": refund.refund_id, "amount": str(refund.total),
                         "created_at": refund.created_at.isoformat() if refund.created_at else None,
                         "reason": refund.reason} for refund in settlement.refunds]}


def reconcile(record_id: int) -> None:
    """The store's captured payments and refunds, read for a posted sales order and kept beside it
    (``document["reconciliation"]``); never written back. A refund marks the record."""
    record = SyncRecord.objects.select_related("integration__store").filter(
        pk=record_id, action=SyncRecord.Action.POST_SALES_ORDER, state=State.POSTED).first()
    if record is None:
        return
    settlement = store_adapter(record.integration).order_settlement(record.external_id)
    view = _settlement_view(settlement)
    with transaction.atomic():
        record = SyncRecord.objects.select_for_update().get(pk=record.pk)
        document = dict(record.document or {})
        document["reconciliation"] = view
        sales_order = document.get("sales_order") or {}
        note = (f"Store: {settlement.captured} captured through {', '.join(settlement.gateways) or 'no gateway'}"
                f"{f', {settlement.refunded} refunded' if settlement.refunds else ''}; the sales order is "
                f"{sales_order.get('store_total', '?')}.")
        fields = {"document": document}
        if settlement.refunds and not record.message.startswith(ATTENTION):
            fields["message"] = _attention(record, settlement.refunded)
        SyncRecord.objects.filter(pk=record.pk).update(**fields)
        audit(record, "reconciled", note, view)


def _attention(record: SyncRecord, refunded) -> str:
    return (f"{ATTENTION}{refunded} was refunded in the store after Sage 100 sales order {record.sage_id} was "
            f"posted. Sage 100 sales orders are not credited: adjust or cancel the order in Sage 100. "
            f"{record.message}")


@handles(SyncRecord.Action.NOTE_REFUND)
def note_refund(record: SyncRecord) -> None:
    """A store refund against an order posted as a Sage 100 sales order: the order's record is
    marked for the accountant, the refund beside it; nothing is written to Sage."""
    payload = record.payload or {}
    if payload.get("order_id") is None:
        raise outcomes.RecordOutcome(f"Refund {record.external_id} has no stored order id; replay it from the store.")
    order_id = str(payload["order_id"])
    integration = record.integration
    order_record = order_record_for(record, order_id, SyncRecord.Action.POST_SALES_ORDER)
    if order_record.state != State.POSTED:
        # Skipped with its order, or waiting without retrying until the order's record posts
        # (connector.services.records wakes it).
        raise order_not_in_ledger(record, order_record, "Sage 100")
    settlement = store_adapter(integration).order_settlement(order_id)
    with transaction.atomic():
        order_record = SyncRecord.objects.select_for_update().get(pk=order_record.pk)
        document = dict(order_record.document or {})
        document["reconciliation"] = _settlement_view(settlement)
        message = order_record.message if order_record.message.startswith(ATTENTION) else \
            _attention(order_record, settlement.refunded)
        SyncRecord.objects.filter(pk=order_record.pk).update(document=document, message=message)
        audit(order_record, "attention", f"Refund {record.external_id} after posting: {settlement.refunded} refunded "
                                         f"in total. Adjust Sage 100 sales order {order_record.sage_id}.",
              document["reconciliation"])
        set_state(record, State.SKIPPED, f"Sage 100 sales orders are not credited: refund {record.external_id} is "
                                         f"noted on sales order {order_record.sage_id}'s record for the accountant.",
                  step="noted", sage_id=order_record.sage_id, waiting_for=[])
