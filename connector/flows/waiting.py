"""A refund whose order is not in the ledger yet: the outcome that parks it (every ledger's flow
raises the same one, so the accountant reads the same words). The waking is the engine's
(connector.services.records: an order's record reaching POSTED or SKIPPED wakes its refunds)."""

from __future__ import annotations

from connector import exceptions as outcomes
from connector.models import SyncRecord
from connector.services.records import enqueue, upsert_record

State = SyncRecord.State


def order_record_for(refund: SyncRecord, order_id: str, action: str) -> SyncRecord:
    """The order's record (created if no webhook or poll has brought it yet), queued when it has
    not run or failed: the refund needs it."""
    order_record, created = upsert_record(refund.integration_id, SyncRecord.Kind.ORDER, order_id, action,
                                          reason=f"Refund {refund.external_id} needs its order.")
    if created or order_record.state in (State.PENDING, State.FAILED):
        enqueue(order_record.pk)
    return order_record


def order_not_in_ledger(refund: SyncRecord, order_record: SyncRecord, ledger: str) -> outcomes.RecordOutcome:
    """What the refund does while its order is not in ``ledger`` ("Sage 50", "Sage 100"): it is
    skipped, saying so, if the order was; otherwise it waits without retrying, saying what the
    order is waiting for, and resumes by itself when the order posts (or is skipped)."""
    order_id = order_record.external_id
    why = order_record.message.strip() or order_record.get_state_display().lower()
    if order_record.state == State.SKIPPED:
        return outcomes.OrderNotPosted(
            f"Order {order_id} was not posted to {ledger} ({why}), so refund {refund.external_id} has nothing "
            f"to credit there. If the order is posted later, this refund follows it by itself.", order_id=order_id)
    waiting = {State.HELD: "held", State.WAITING_MAPPING: "waiting for a mapping", State.FAILED: "failed",
               State.DISPATCHED: "sent to the agent", State.WAITING_ORDER: "waiting"}.get(order_record.state,
                                                                                         "not processed yet")
    return outcomes.WaitingForOrder(
        f"Waiting for order {order_id} to reach {ledger}: the order is {waiting} ({why}). Refund "
        f"{refund.external_id} is credited by itself as soon as the order posts.", order_id=order_id,
        data={"order_state": order_record.state})
