"""The integration's Sage 50 mappings as plain data.

``Sage50Mappings`` is built elsewhere (from the ``mappings`` app's tables) and handed to the pure
mapper, so the mapper never touches the database. Every look-up key is normalised with ``norm``
(trimmed, upper case): Sage 50 stock codes are upper case and store SKUs, tax class names and
payment method names are typed by people, so case must not decide whether a mapping is found.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

MATCH_OR_CREATE = "match_or_create"
WEB_SALES_ACCOUNT = "web_sales_account"


def norm(key) -> str:
    return str(key).strip().upper()


@dataclass
class ItemMap:
    """Store SKU (variant SKU when a variant was bought) → Sage 50 stock code."""

    by_sku: dict[str, str] = field(default_factory=dict)
    # Use the SKU itself as the stock code when it has no explicit mapping (Zynk's default).
    same_code_fallback: bool = False
    # Sage 50 UK stock codes are at most 30 characters; a longer SKU cannot be used as-is.
    max_code_length: int = 30

    def lookup(self, sku: str) -> str | None:
        # An index of normalised keys, rebuilt only when the map changes size: a store has
        # thousands of SKUs and every order line looks one up.
        index = self.__dict__.get("_index")
        if index is None or self.__dict__.get("_indexed_size") != len(self.by_sku):
            index = {norm(key): code for key, code in self.by_sku.items()}
            self.__dict__["_index"], self.__dict__["_indexed_size"] = index, len(self.by_sku)
        return index.get(norm(sku))


@dataclass
class TaxMap:
    """Store tax class (name or id) or tax rate → Sage tax code (T1, T0, T2, T9 ...)."""

    by_class_name: dict[str, str] = field(default_factory=dict)
    by_class_id: dict[str, str] = field(default_factory=dict)
    # Percentages, e.g. {Decimal("20"): "T1", Decimal("5"): "T5", Decimal("0"): "T0"}.
    by_rate: dict[Decimal, str] = field(default_factory=dict)
    default: str | None = None
    # For lines that carry no tax by nature: gift certificate sales, order-level discounts and
    # refunds, rounding. T9 is Sage 50 UK's "outside the scope of VAT".
    outside_scope: str = "T9"

    def lookup_class(self, name: str | None, class_id) -> str | None:
        if name:
            for key, code in self.by_class_name.items():
                if norm(key) == norm(name):
                    return code
        if class_id not in (None, ""):
            for key, code in self.by_class_id.items():
                if norm(key) == norm(class_id):
                    return code
        return None


@dataclass
class NominalCodes:
    """Sage 50 nominal codes for the non-stock lines. ``None`` means "not mapped"."""

    shipping: str | None = None
    handling: str | None = None
    wrapping: str | None = None
    discount: str | None = None
    gift_certificate: str | None = None  # liability for gift certificates sold and redeemed
    store_credit: str | None = None  # liability for store credit issued and spent
    rounding: str | None = None  # optional: without it any difference is a TotalsMismatch
    # Sales nominal for item lines; None leaves each stock item's own sales nominal in Sage.
    sales: str | None = None


@dataclass(frozen=True)
class ChannelAccounts:
    """One sales channel's own accounts; ``None`` falls back to the integration's defaults."""

    sales: str | None = None
    shipping: str | None = None
    handling: str | None = None
    wrapping: str | None = None
    discount: str | None = None
    gift_certificate: str | None = None
    store_credit: str | None = None
    bank: str | None = None  # every payment of the channel's orders, whatever the method

    def overrides(self) -> dict[str, str]:
        return {name: value for name, value in vars(self).items() if value}


@dataclass
class PaymentMap:
    """Payment method (the order's payment method, a payment's gateway or method, a refund
    payment's provider) → Sage 50 bank account, optionally per currency (Sage 50 UK bank accounts
    have one currency each)."""

    accounts: dict[str, str] = field(default_factory=dict)
    # A channel's own bank account, set by ``Sage50Mappings.for_channel``: it wins over the methods.
    channel_bank: str | None = None
    accounts_by_currency: dict[str, dict[str, str]] = field(default_factory=dict)
    default: str | None = None
    default_by_currency: dict[str, str] = field(default_factory=dict)

    def lookup(self, method: str, currency: str) -> str | None:
        if self.channel_bank:
            return self.channel_bank
        for key, account in self.accounts_by_currency.get(norm(currency), {}).items():
            if norm(key) == norm(method):
                return account
        for key, account in self.accounts.items():
            if norm(key) == norm(method):
                return account
        return None

    def fallback(self, currency: str) -> str | None:
        return self.default_by_currency.get(norm(currency)) or self.default


@dataclass
class CustomerStrategy:
    """``match_or_create``: the agent finds the Sage account by email or creates one.
    ``web_sales_account``: every order goes to one account per currency (e.g. WEBGBP, WEBEUR).
    ``guests_to_web_sales`` sends guest checkouts to the web-sales account even under
    match_or_create (guests have no store account to keep in step)."""

    mode: str = MATCH_OR_CREATE
    web_sales_accounts: dict[str, str] = field(default_factory=dict)  # currency → account ref
    guests_to_web_sales: bool = False
    # A buyer with neither an email nor a linked store customer id: the web-sales account of the
    # order's currency (WITHOUT_EMAIL_WEB_SALES) or hold the record (WITHOUT_EMAIL_HOLD). Never a
    # match by name: two people share names, and the invoice would land on the other one's account.
    without_email: str = "web_sales"
    # Customer accounts hold one currency: one account per email and currency (PER_CURRENCY), or
    # every document converted to the company's base currency (BASE_CURRENCY, Sage 50 US).
    currency_accounts: str = "per_currency"
    base_currency: str = ""


WITHOUT_EMAIL_WEB_SALES = "web_sales"
WITHOUT_EMAIL_HOLD = "hold"
PER_CURRENCY = "per_currency"
BASE_CURRENCY = "base_currency"


@dataclass
class Sage50Mappings:
    items: ItemMap = field(default_factory=ItemMap)
    tax: TaxMap = field(default_factory=TaxMap)
    nominals: NominalCodes = field(default_factory=NominalCodes)
    payments: PaymentMap = field(default_factory=PaymentMap)
    customers: CustomerStrategy = field(default_factory=CustomerStrategy)
    # Largest difference a rounding line may absorb; 0 (or no rounding nominal) turns it off.
    rounding_tolerance: Decimal = Decimal("0.02")
    # Sage dates are local dates; store dates are moments in time.
    timezone: str = "UTC"
    channels: dict[int, ChannelAccounts] = field(default_factory=dict)

    def for_channel(self, channel_id: int) -> tuple[Sage50Mappings, str]:
        """These mappings with the channel's own accounts over the defaults, and a sentence for
        the record's trail saying which mapping was used."""
        accounts = self.channels.get(int(channel_id or 0))
        overrides = accounts.overrides() if accounts else {}
        if not overrides:
            return self, f"Accounts: the integration's defaults (channel {channel_id} has none of its own)."
        bank = overrides.pop("bank", None)
        mappings = replace(self, nominals=replace(self.nominals, **overrides),
                           payments=replace(self.payments, channel_bank=bank) if bank else self.payments)
        used = ", ".join(f"{name.replace('_', ' ')} {code}" for name, code in
                         sorted({**overrides, **({"bank": bank} if bank else {})}.items()))
        return mappings, f"Accounts: channel {channel_id}'s own ({used}); the integration's defaults for the rest."
