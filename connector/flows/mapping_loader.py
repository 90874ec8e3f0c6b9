"""Build the pure mappers' inputs from the mappings tables.

The tables are read once per integration and process and kept as a snapshot: a backfill maps
thousands of orders against the same mappings, and re-reading every item mapping per order was
most of a record's database time. The snapshot carries a generation (a SyncCursor row per
integration, stream ``mappings:generation``) that every mapping save or delete bumps, in whichever
process it happens; a record reads that one row and reloads when it moved. Bulk writes send no
signal: the mapping screens' CSV import wakes the waiting records (pipeline.resume_waiting),
which bumps the generation too, and a snapshot never lives longer than SNAPSHOT_MAX_AGE_SECONDS.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from decimal import Decimal

from django.db.models.signals import post_delete, post_save

from connector.sage50.mappings import (
    BASE_CURRENCY,
    ChannelAccounts,
    CustomerStrategy,
    ItemMap,
    NominalCodes,
    PaymentMap,
    Sage50Mappings,
    TaxMap,
)
from connector.services.pipeline import on_mappings_changed
from mappings.models import AccountMapping, ItemMapping, PaymentMethodMapping, TaxMapping, WebSalesAccount

from .channels import channel_parents, with_parents

Purpose = AccountMapping.Purpose


GENERATION_STREAM = "mappings:generation"
SNAPSHOT_MAX_AGE_SECONDS = 60.0
MAPPING_MODELS = (ItemMapping, TaxMapping, AccountMapping, PaymentMethodMapping, WebSalesAccount)


@dataclass(frozen=True)
class _Tables:
    generation: str
    loaded_at: float
    items: dict
    tax_codes: dict
    nominal: dict
    payments: dict
    web_sales: dict
    channels: dict  # channel id → {purpose: account}, channels other than 0 (every channel)


_snapshots: dict[int, _Tables] = {}
_lock = threading.Lock()


def _generation(integration_id: int) -> str:
    from connector.models import SyncCursor

    return SyncCursor.objects.filter(integration_id=integration_id, stream=GENERATION_STREAM) \
        .values_list("value", flat=True).first() or ""


@on_mappings_changed
def mappings_changed(integration_id: int) -> None:
    """Every process's snapshot of this integration's mappings is stale from the commit on."""
    from connector.models import SyncCursor

    SyncCursor.objects.update_or_create(integration_id=integration_id, stream=GENERATION_STREAM,
                                        defaults={"value": secrets.token_hex(8)})
    _snapshots.pop(integration_id, None)


def _load(integration_id: int, generation: str) -> _Tables:
    def pairs(model, key, value, **extra):
        return dict(model.objects.filter(integration_id=integration_id, **extra).values_list(key, value))

    return _Tables(
        generation=generation, loaded_at=time.monotonic(),
        items=pairs(ItemMapping, "store_sku", "sage_code"),
        tax_codes=pairs(TaxMapping, "store_tax_class", "sage_tax_code"),
        nominal=pairs(AccountMapping, "purpose", "account_code", channel_id=0),
        channels=_channel_accounts(integration_id),
        payments=pairs(PaymentMethodMapping, "store_method", "bank_account"),
        web_sales=pairs(WebSalesAccount, "currency", "account_ref"),
    )


def _channel_accounts(integration_id: int) -> dict[int, dict[str, str]]:
    channels: dict[int, dict[str, str]] = {}
    for channel_id, purpose, code in AccountMapping.objects.filter(integration_id=integration_id) \
            .exclude(channel_id=0).values_list("channel_id", "purpose", "account_code"):
        channels.setdefault(channel_id, {})[purpose] = code
    # An Adobe store view without accounts of its own takes its website's (connector/flows/channels.py).
    return with_parents(channels, channel_parents(integration_id)) if channels else channels


# The Sage 50 account each AccountMapping purpose fills for one channel.
CHANNEL_PURPOSES = {
    "sales": Purpose.REVENUE, "shipping": Purpose.SHIPPING, "handling": Purpose.HANDLING,
    "wrapping": Purpose.WRAPPING, "discount": Purpose.DISCOUNT, "gift_certificate": Purpose.GIFT_CERTIFICATE,
    "store_credit": Purpose.STORE_CREDIT, "bank": Purpose.BANK,
}


def _sage50_channels(channels: dict[int, dict[str, str]]) -> dict[int, ChannelAccounts]:
    return {channel_id: ChannelAccounts(**{name: accounts.get(purpose) for name, purpose in CHANNEL_PURPOSES.items()})
            for channel_id, accounts in channels.items()}


def mapping_tables(integration_id: int) -> _Tables:
    """The integration's mapping rows: one query (the generation) while the snapshot is current."""
    generation = _generation(integration_id)
    snapshot = _snapshots.get(integration_id)
    if (snapshot is None or snapshot.generation != generation
            or time.monotonic() - snapshot.loaded_at > SNAPSHOT_MAX_AGE_SECONDS):
        snapshot = _load(integration_id, generation)
        with _lock:
            _snapshots[integration_id] = snapshot
    return snapshot


def _mapping_saved(sender, instance, **kwargs):
    mappings_changed(instance.integration_id)


for _model in MAPPING_MODELS:
    post_save.connect(_mapping_saved, sender=_model, dispatch_uid=f"mapping-generation-save-{_model.__name__}")
    post_delete.connect(_mapping_saved, sender=_model, dispatch_uid=f"mapping-generation-delete-{_model.__name__}")


def sage50_mappings(integration) -> Sage50Mappings:
    tables = mapping_tables(integration.pk)
    tax_codes = tables.tax_codes
    nominal = tables.nominal
    payments = dict(tables.payments)
    default_bank = payments.pop("*", None)
    web_sales = tables.web_sales
    return Sage50Mappings(
        items=ItemMap(
            by_sku=tables.items,
            same_code_fallback=integration.same_code_fallback,
        ),
        tax=TaxMap(by_class_name=tax_codes, by_class_id=tax_codes, default=integration.default_tax_code or None),
        nominals=NominalCodes(
            shipping=nominal.get(Purpose.SHIPPING),
            handling=nominal.get(Purpose.HANDLING) or nominal.get(Purpose.SHIPPING),
            wrapping=nominal.get(Purpose.WRAPPING),
            discount=nominal.get(Purpose.DISCOUNT),
            gift_certificate=nominal.get(Purpose.GIFT_CERTIFICATE),
            # Store credit has its own liability (or clearing) account when mapped; before it had
            # one, both tenders shared the gift-certificate account, and still do by default.
            store_credit=nominal.get(Purpose.STORE_CREDIT) or nominal.get(Purpose.GIFT_CERTIFICATE),
            rounding=nominal.get(Purpose.ROUNDING),
            sales=nominal.get(Purpose.REVENUE),
        ),
        payments=PaymentMap(accounts=payments, default=nominal.get(Purpose.BANK) or default_bank),
        customers=CustomerStrategy(mode=integration.customer_strategy, web_sales_accounts=web_sales,
                                   without_email=integration.without_email,
                                   # Sage 50 US holds the base currency only, whatever was chosen.
                                   currency_accounts=BASE_CURRENCY if integration.sage.edition == "sage50us"
                                   else integration.currency_accounts,
                                   base_currency=integration.base_currency),
        rounding_tolerance=Decimal(integration.rounding_tolerance),
        channels=_sage50_channels(tables.channels),
    )
