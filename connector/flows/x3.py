"""Store → Sage X3: orders and refunds become GL journal entries, posted directly over HTTP.

One ``post_journal`` record per order (external id = order id) and per refund (external id =
refund id, payload ``{"order_id", "refund"}``). The mapper is ``connector.sagex3.journal``; this
module loads its inputs from the database (channel accounts, posting settings, the X3 connection)
and records what happened.

Exactly once: ``post_journal_entry`` looks the reference (the store adapter's, ``BC-1001``) up in X3
before it creates anything, the journal-entry ``RecordLink`` is unique, and the pipeline never
re-runs a posted record. A create that timed out is a RetryableError; the retry's look-up finds it.

Commit points: the X3 entry exists before the link does. If the process dies between the two,
the retry finds the entry by reference and writes the link then, so nothing is posted twice.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.models import Integration, SageConnection
from connector import exceptions as outcomes
from connector.models import SyncRecord
from connector.sagex3 import journal
from connector.sagex3.auth import ConnectedAppJWT, OAuth2Tokens
from connector.sagex3.client import GraphQLMapping, X3GraphQLClient, X3RestClient
from connector.sagex3.poster import post_journal_entry
from connector.services.audit import audit
from connector.services.pipeline import handles
from connector.services.records import set_state
from mappings.links import save_links
from mappings.models import AccountMapping, RecordLink
from mlcommon.http import AuthError
from mlcommon.ledger import JournalEntry, to_payload

from .channels import channel_parents
from .stores import store_adapter

State = SyncRecord.State
Purpose = AccountMapping.Purpose

# AccountMapping purpose -> ChannelAccounts field. Handling and wrapping are posted with shipping
# (the journal puts shipping + handling + wrapping on one "shipping revenue" line).
FIELD_FOR_PURPOSE = {
    Purpose.RECEIVABLE: "receivable",
    Purpose.REVENUE: "revenue",
    Purpose.TAX: "tax_payable",
    Purpose.SHIPPING: "shipping_revenue",
    Purpose.DISCOUNT: "discounts",
    Purpose.COST_OF_GOODS: "cost_of_goods",
    Purpose.STOCK: "stock",
    Purpose.HANDLING: "handling_revenue",
    Purpose.WRAPPING: "wrapping_revenue",
    Purpose.GIFT_CERTIFICATE: "gift_certificate",
    Purpose.STORE_CREDIT: "store_credit",
    Purpose.BUSINESS_PARTNER: "business_partner",
}
PURPOSE_FOR_FIELD = {field: str(purpose) for purpose, field in FIELD_FOR_PURPOSE.items()}
PURPOSE_FOR_LABEL = {label: PURPOSE_FOR_FIELD[field] for field, label in journal.ACCOUNT_PURPOSES.items()}

REFUND_STYLES = {Integration.RefundStyle.NEGATIVE: "negative", Integration.RefundStyle.SWAPPED: "swap"}
GL_DATE_RULES = {Integration.GlDateRule.ORDER_DATE: "created", Integration.GlDateRule.STATUS_DATE: "status_reached"}


# -- inputs from the database ------------------------------------------------------------------------

def channel_accounts(integration, channel_id: int) -> journal.ChannelAccounts:
    """The accounts for one sales channel: its own mappings, each blank one filled from its parent
    channel's (an Adobe store view's website), then channel 0's ("every channel"). Blank fields
    make the journal say exactly which purposes to map."""
    parent = channel_parents(integration.pk).get(channel_id)
    rank = {0: 0, parent: 1, channel_id: 2}
    rows = list(AccountMapping.objects.filter(integration=integration, channel_id__in=[c for c in rank if c is not None]))
    fields: dict[str, str] = {}
    name = ""
    for row in sorted(rows, key=lambda r: rank[r.channel_id]):  # channel 0 first, the channel's own win
        field = FIELD_FOR_PURPOSE.get(row.purpose)
        if field and row.account_code.strip():
            fields[field] = row.account_code.strip()
        if row.channel_id == channel_id and row.channel_name:
            name = row.channel_name
    return journal.ChannelAccounts(channel_id=channel_id, channel_name=name,
                                   cost_posting=integration.x3_cost_posting, **fields)


def posting_settings(integration) -> journal.PostingSettings:
    return journal.PostingSettings(
        entry_type=integration.x3_entry_type, journal=integration.x3_journal, site=integration.x3_site,
        company=integration.x3_company or integration.sage.company_code,
        refund_style=REFUND_STYLES.get(integration.x3_refund_style, "negative"),
        gl_date=GL_DATE_RULES.get(integration.x3_gl_date_rule, "created"),
        timezone=settings.TIME_ZONE,
        ledger_currency=integration.base_currency.upper(),
        collective_accounts=tuple(code.strip() for code in integration.x3_collective_accounts.split(",")
                                  if code.strip()),
    )


# -- mapping -------------------------------------------------------------------------------------------

def _translate(error: journal.JournalError, integration) -> outcomes.RecordOutcome:
    if isinstance(error, journal.NeedsMapping):
        purposes = [PURPOSE_FOR_LABEL.get(label, label) for label in error.purposes]
        keys = [f"account:{error.channel_id}:{purpose}" for purpose in purposes]
        where = f" (Integration '{integration}' › GL accounts by sales channel: channel {error.channel_id}, " \
                "or channel 0 for every channel)" if integration is not None else ""
        return outcomes.NeedsMapping(f"{error}{where}.", keys=keys)
    if isinstance(error, journal.Unbalanced):
        return outcomes.TotalsMismatch(str(error), data={"debits": str(error.debits), "credits": str(error.credits),
                                                         "difference": str(error.difference)})
    if isinstance(error, journal.NotPostable):
        return outcomes.NotPostable(f"{error}; it is posted when it reaches one.")
    if isinstance(error, journal.CurrencyMismatch):
        return outcomes.RecordOutcome(f"{error}. Change the integration's currency rule, then replay.")
    return outcomes.RecordOutcome(f"{error}. Fix the order in the store, then replay.")


def _normalized_order(integration, order: dict):
    # The integration's paid statuses are its posting statuses; by default the store's own paid
    # group, which includes fully refunded orders: refunds are posted as their own reversing
    # entries whatever the order's status, so a sale later refunded in full must be posted too.
    return store_adapter(integration).normalize_order(order, paid_status_ids=integration.paid_status_ids)


def build_entry_for_order(integration, order: dict) -> JournalEntry:
    """Pure apart from loading the mappings; raises journal errors (the admin preview shows them)."""
    store_order = _normalized_order(integration, order)
    accounts = channel_accounts(integration, store_order.channel_id)
    return journal.build_order_entry(store_order, None, accounts, posting_settings(integration))


def build_entry_for_refund(integration, order: dict, refund: dict) -> JournalEntry:
    store_order = _normalized_order(integration, order)
    store_refund = store_adapter(integration).normalize_refund(_decimals(refund), order_id=store_order.order_id)
    accounts = channel_accounts(integration, store_order.channel_id)
    return journal.build_refund_entry(store_order, store_refund, accounts, posting_settings(integration))


def _decimals(value):
    """Stored v3 refunds hold money as strings (or, from an older JSON round trip, floats)."""
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    if isinstance(value, float):
        return Decimal(str(value))
    return value


def entry_summary(entry: JournalEntry) -> dict:
    document = to_payload(entry)
    document.update(debit_total=str(entry.debit_total), credit_total=str(entry.credit_total),
                    balanced=entry.is_balanced)
    return document


# -- the X3 connection -------------------------------------------------------------------------------

class StoredOAuth2Tokens(OAuth2Tokens):
    """OAuth2 tokens shared by every worker through the SageConnection row.

    The gateway rotates the refresh token on each use, and the old one dies at once. Workers each
    hold a copy, so a refresh is done under a row lock (select_for_update on PostgreSQL; SQLite's
    IMMEDIATE transactions serialise writers) after re-reading the row: if another worker already
    refreshed, its tokens are adopted instead of spending a dead refresh token."""

    def __init__(self, connection_id: int, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connection_id = connection_id

    def _refresh_locked(self) -> None:
        with transaction.atomic():
            row = SageConnection.objects.select_for_update().get(pk=self.connection_id)
            fresh = row.access_token_expires_at and self.now() < row.access_token_expires_at - self.refresh_margin
            if row.access_token and row.access_token != self.access_token and fresh:
                self.access_token, self.refresh_token = row.access_token, row.refresh_token
                self.expires_at, self.refresh_expires_at = row.access_token_expires_at, row.refresh_token_expires_at
                return
            self.refresh_token = row.refresh_token or self.refresh_token
            super()._refresh_locked()  # on_tokens saves the new pair inside this transaction


def save_tokens(connection_id: int):
    """``on_tokens`` callback: store the rotated pair at once (encrypted fields), with a row update
    so a concurrent save of the connection's other fields is not overwritten."""

    def on_tokens(access: str, refresh: str, expires_at: dt.datetime, refresh_expires_at: dt.datetime | None):
        SageConnection.objects.filter(pk=connection_id).update(
            access_token=access, refresh_token=refresh, access_token_expires_at=expires_at,
            refresh_token_expires_at=refresh_expires_at, updated_at=timezone.now())

    return on_tokens


def x3_client(sage: SageConnection):
    """An api1 or GraphQL client for the connection, by its transport and auth settings."""
    if sage.edition != SageConnection.Edition.SAGEX3 or sage.transport not in (
            SageConnection.Transport.X3_REST, SageConnection.Transport.X3_GRAPHQL):
        raise outcomes.RecordOutcome(f"Sage connection '{sage}' is not a Sage X3 REST or GraphQL connection; "
                                     "GL journal entries are posted to Sage X3 only.")
    if not sage.server_url:
        raise outcomes.RecordOutcome(f"Sage connection '{sage}' has no server URL.")
    if sage.transport == SageConnection.Transport.X3_REST:
        return X3RestClient(sage.server_url, sage.folder, sage.username, sage.password,
                            class_name=sage.x3_rest_class or "GACCENTRY",
                            representation=sage.x3_rest_representation or "GACCENTRY", verify=sage.verify_tls)
    if sage.x3_auth == SageConnection.X3Auth.JWT:
        tokens = ConnectedAppJWT(sage.oauth_client_id, sage.oauth_client_secret, sage.username)
    elif sage.x3_auth == SageConnection.X3Auth.OAUTH:
        tokens = StoredOAuth2Tokens(
            sage.pk, sage.oauth_token_url, sage.oauth_client_id, sage.oauth_client_secret,
            access_token=sage.access_token, refresh_token=sage.refresh_token,
            expires_at=sage.access_token_expires_at, refresh_expires_at=sage.refresh_token_expires_at,
            on_tokens=save_tokens(sage.pk), verify=sage.verify_tls)
    else:
        raise outcomes.RecordOutcome(f"Sage connection '{sage}' uses GraphQL: choose OAuth2 or JWT authentication.")
    mapping = GraphQLMapping(create_mutation=sage.x3_graphql_mutation) if sage.x3_graphql_mutation.strip() \
        else GraphQLMapping()
    return X3GraphQLClient(sage.server_url, sage.x3_graphql_endpoint or sage.folder, tokens, mapping=mapping,
                           verify=sage.verify_tls)


# -- the record handler ------------------------------------------------------------------------------

def _order_for(record: SyncRecord, adapter, order_id, stored) -> tuple[dict, bool]:
    """The order, and whether it was fetched from the store now."""
    if adapter.is_full_order(stored, with_lines=record.integration.x3_cost_posting):
        return stored, False
    order = adapter.fetch_order(order_id)
    audit(record, "fetched", f"Fetched order {order_id} from the store.",
          {"status_id": order.get("status_id"), "date_modified": order.get("date_modified")})
    return order, True


def _refund_for(record: SyncRecord, adapter) -> tuple[dict, bool]:
    refund = (record.payload or {}).get("refund")
    if isinstance(refund, dict) and refund.get("id") is not None:
        return refund, False
    # A replay that re-fetches clears the payload: read the refund again by its id.
    found = adapter.fetch_refund(record.external_id)
    if not found:
        raise outcomes.RecordOutcome(f"Refund {record.external_id} no longer exists on the store.")
    audit(record, "fetched", f"Fetched refund {record.external_id} from the store.")
    return found, True


def _inputs(record: SyncRecord) -> tuple[dict, dict | None]:
    """(order, refund or None), fetched from the store when the stored payload lacks them; a
    fetched payload is kept on the record (admin shows it; a retry does not fetch again)."""
    payload = record.payload if isinstance(record.payload, dict) else {}
    adapter = store_adapter(record.integration)
    if record.kind == SyncRecord.Kind.ORDER:
        order, fetched = _order_for(record, adapter, record.external_id, payload)
        if fetched:
            SyncRecord.objects.filter(pk=record.pk).update(payload=adapter.storable(order))
        return order, None
    if record.kind == SyncRecord.Kind.REFUND:
        refund, refund_fetched = _refund_for(record, adapter)
        order_id = payload.get("order_id") or refund.get("order_id")
        order, order_fetched = _order_for(record, adapter, order_id, payload.get("order"))
        if refund_fetched or order_fetched:
            SyncRecord.objects.filter(pk=record.pk).update(
                payload=adapter.storable({"order_id": order_id, "refund": refund, "order": order}))
        return order, refund
    raise outcomes.RecordOutcome(f"GL journal entries are posted for orders and refunds, not {record.kind}.")


def _map(record: SyncRecord) -> JournalEntry:
    order, refund = _inputs(record)
    try:
        if refund is None:
            return build_entry_for_order(record.integration, order)
        return build_entry_for_refund(record.integration, order, refund)
    except journal.JournalError as error:
        raise _translate(error, record.integration) from error


@handles(SyncRecord.Action.POST_JOURNAL)
def post_journal(record: SyncRecord) -> None:
    integration = record.integration
    entry = _map(record)
    document = entry_summary(entry)
    set_state(record, State.PENDING,
              f"Mapped to X3 entry {entry.reference}: {len(entry.lines)} lines, {entry.currency} "
              f"{entry.debit_total} debit = {entry.credit_total} credit.",
              step="mapped", data=document, document=document, sage_reference=entry.reference, waiting_for=[])
    client = x3_client(integration.sage)
    try:
        number, existed = post_journal_entry(client, entry)
    except AuthError as error:
        raise _auth_failure(error, integration.sage) from error
    finally:
        exchange = client.last_exchange
        if exchange is not None:
            audit(record, "x3_exchange", f"Sage X3 {exchange.method} {exchange.url}",
                  _exchange_data(exchange))
    save_links(integration.pk, (RecordLink.Kind.JOURNAL_ENTRY, record.external_id, number, entry.reference))
    audit(record, "posted", f"X3 entry {number} {'already existed for' if existed else 'created for'} "
                            f"{entry.reference}.", {"number": number, "existed": existed})
    set_state(record, State.POSTED, f"Posted as X3 entry {number}", step="done", sage_id=number)


def _auth_failure(error: AuthError, sage: SageConnection) -> outcomes.RecordOutcome:
    if sage.transport == SageConnection.Transport.X3_GRAPHQL and sage.x3_auth == SageConnection.X3Auth.OAUTH:
        hint = "Re-authorise the Sage X3 connection (its refresh token is used, expired or revoked), then replay."
    else:
        hint = "Check the Sage X3 connection's user and password (or client id and secret), then replay."
    return outcomes.RecordOutcome(f"{error}. {hint}", data={"status": error.status})


def _exchange_data(exchange) -> dict:
    # last_exchange is already redacted by BaseApiClient; keep what an accountant can read.
    data = {}
    for name in ("method", "url", "status", "request_body", "response_body", "elapsed_ms"):
        if hasattr(exchange, name):
            data[name] = _jsonable(getattr(exchange, name))
    return data


def _jsonable(value):
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value
