"""Tenants, their users, the store and Sage connections, agents and integrations.

Every secret is an encrypted field (Fernet, key = FIELD_ENCRYPTION_KEY). Agent keys are not
secrets we need to read back, so only their SHA-256 is stored.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from encrypted_model_fields.fields import EncryptedCharField, EncryptedTextField

from accounts.certificates import validate_pem_certificates
from connector.routing import unrouted_reason


class Tenant(models.Model):
    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner (connections, agents, everything)"
        ACCOUNTANT = "accountant", "Accountant (mappings, records, replay)"
        VIEWER = "viewer", "Viewer (read only)"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.ACCOUNTANT)
    # E-mail notifications, each opted into by the person (sent to the user's e-mail address).
    notify_failures = models.BooleanField(default=False, help_text="E-mail me at once when a record fails.")
    notify_agent_offline = models.BooleanField(default=False,
                                               help_text="E-mail me when an agent has been offline this long.")
    agent_offline_minutes = models.PositiveIntegerField(default=15)
    daily_digest = models.BooleanField(default=False, help_text="E-mail me each morning the previous day's "
                                       "reconciliation summary.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "user"], name="uniq_membership")]

    def __str__(self):
        return f"{self.user} @ {self.tenant} ({self.role})"


class StoreConnection(models.Model):
    class Platform(models.TextChoices):
        BIGCOMMERCE = "bigcommerce", "BigCommerce"
        ADOBE_COMMERCE = "adobe_commerce", "Adobe Commerce"

    class AdobeAuth(models.TextChoices):
        OAUTH1 = "oauth1", "OAuth 1.0a integration (PaaS / on-premises)"
        IMS = "ims", "Adobe IMS server-to-server (Cloud Service)"
        BEARER = "bearer", "Integration token as Bearer (PaaS, only if the store allows it)"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="stores")
    name = models.CharField(max_length=200)
    platform = models.CharField(max_length=20, choices=Platform.choices, default=Platform.BIGCOMMERCE)
    # BigCommerce
    store_hash = models.CharField(max_length=64, blank=True)
    api_base_url = models.URLField(
        default="https://api.bigcommerce.com",
        help_text="BigCommerce API host. Change only to point at the sandbox store.",
    )
    client_id = models.CharField(max_length=200, blank=True)
    access_token = EncryptedCharField(max_length=500, blank=True, help_text="BigCommerce API account token "
                                      "or Adobe OAuth access token.")
    client_secret = EncryptedCharField(max_length=500, blank=True, help_text="BigCommerce app client secret "
                                       "(verifies webhook signatures).")
    # Adobe Commerce
    base_url = models.URLField(blank=True, help_text="Adobe Commerce base URL, e.g. https://shop.example.com")
    store_code = models.CharField(max_length=64, blank=True, default="default")
    adobe_auth = models.CharField(max_length=10, choices=AdobeAuth.choices, blank=True)
    consumer_key = EncryptedCharField(max_length=500, blank=True)
    consumer_secret = EncryptedCharField(max_length=500, blank=True)
    access_token_secret = EncryptedCharField(max_length=500, blank=True)
    ims_client_id = models.CharField(max_length=200, blank=True)
    ims_client_secret = EncryptedCharField(max_length=500, blank=True)
    ims_org_id = models.CharField(max_length=200, blank=True)
    ims_token_url = models.URLField(blank=True, help_text="Adobe IMS token endpoint; empty = Adobe's "
                                    "(https://ims-na1.adobelogin.com/ims/token/v3).")
    adobe_webhook_public_key = models.TextField(
        blank=True, help_text="Adobe Commerce Webhooks: the PEM public key shown in Admin › Stores › Configuration › "
                              "Adobe Services › Webhooks › Digital Signature (verifies each delivery).")
    adobe_io_client_id = models.CharField(
        max_length=200, blank=True, help_text="Adobe I/O Events: the Developer Console client id deliveries are "
                                              "addressed to (recipient_client_id); empty = not checked.")
    verify_tls = models.BooleanField(default=True)
    timezone = models.CharField(
        max_length=64, default="UTC",
        help_text="The store's time zone (IANA name, e.g. Europe/London): an order's day is its date there.")
    tls_ca_bundle = models.CharField(max_length=500, blank=True,
                                     help_text="Path of a CA bundle that signs the store's certificate "
                                               "(a private CA); empty = the system's.")
    # The store's sales channels as last read through its adapter (connector.stores.SalesChannel as
    # dicts), refreshed whenever the account-mapping page opens: the picker offers them, and the
    # mapping loader reads which website an Adobe store view belongs to from here, not from the store.
    sales_channels = models.JSONField(default=list, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    SECRET_FIELDS = ("access_token", "client_secret", "consumer_key", "consumer_secret",
                     "access_token_secret", "ims_client_secret")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.get_platform_display()})"


class SageConnection(models.Model):
    class Edition(models.TextChoices):
        SAGE50_US = "sage50us", "Sage 50 US (.NET SDK)"
        SAGE50_UK = "sage50uk", "Sage 50 UK (SDO)"
        SAGE100 = "sage100", "Sage 100"
        SAGEX3 = "sagex3", "Sage X3"

    class Transport(models.TextChoices):
        AGENT = "agent", "Local agent"
        EBUSINESS_SOAP = "ebusiness_soap", "Sage 100 eBusiness Web Services (SOAP)"
        X3_REST = "x3_rest", "Sage X3 REST api1"
        X3_GRAPHQL = "x3_graphql", "Sage X3 GraphQL"

    class X3Auth(models.TextChoices):
        BASIC = "basic", "HTTP Basic (api1)"
        OAUTH = "oauth", "OAuth2 via Sage's cloud gateway"
        JWT = "jwt", "Connected application JWT (on-premises)"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="sage_connections")
    name = models.CharField(max_length=200)
    edition = models.CharField(max_length=20, choices=Edition.choices)
    transport = models.CharField(max_length=20, choices=Transport.choices, default=Transport.AGENT)
    company_path = models.CharField(max_length=500, blank=True, help_text="Sage 50: company data path.")
    company_code = models.CharField(max_length=50, blank=True, help_text="Sage 100 company code / X3 company.")
    server_url = models.URLField(blank=True, help_text="X3 or eBusiness Web Services server URL.")
    folder = models.CharField(max_length=100, blank=True, help_text="Sage X3 endpoint folder, e.g. SEED.")
    username = models.CharField(max_length=200, blank=True)
    password = EncryptedCharField(max_length=500, blank=True)
    x3_auth = models.CharField(max_length=10, choices=X3Auth.choices, blank=True)
    oauth_client_id = models.CharField(max_length=200, blank=True)
    oauth_client_secret = EncryptedCharField(max_length=500, blank=True)
    oauth_token_url = models.URLField(blank=True)
    access_token = EncryptedTextField(blank=True)
    access_token_expires_at = models.DateTimeField(null=True, blank=True)
    refresh_token = EncryptedTextField(blank=True)
    refresh_token_expires_at = models.DateTimeField(null=True, blank=True)
    x3_rest_class = models.CharField(max_length=50, blank=True, default="GACCENTRY",
                                     help_text="api1 class that creates journal entries on this site.")
    x3_rest_representation = models.CharField(max_length=50, blank=True, default="GACCENTRY")
    x3_graphql_endpoint = models.CharField(max_length=100, blank=True,
                                           help_text="Value of the x-xtrem-endpoint header.")
    x3_graphql_mutation = models.TextField(blank=True, help_text="Leave blank for the documented default.")
    verify_tls = models.BooleanField(default=True, help_text="Turn off only for self-signed on-premises servers; "
                                     "better: paste the server's certificate below.")
    tls_ca_pem = models.TextField(
        blank=True, validators=[validate_pem_certificates], verbose_name="trusted server certificate (PEM)",
        help_text="For a server with a self-signed or private-CA certificate (Sage 100 eBusiness Web Services in "
                  "your IIS): paste that certificate, or the CA that signed it (Base-64 X.509, starting with "
                  "-----BEGIN CERTIFICATE-----). Only it is then trusted, and the host name is still checked.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    SECRET_FIELDS = ("password", "oauth_client_secret", "access_token", "refresh_token")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return f"{self.name} ({self.get_edition_display()})"


class Integration(models.Model):
    """One store paired with one Sage company, and the flows that run between them."""

    class CustomerStrategy(models.TextChoices):
        MATCH_OR_CREATE = "match_or_create", "Match by email, else create a customer"
        WEB_SALES_ACCOUNT = "web_sales_account", "Post to one web-sales account per currency"

    class WithoutEmail(models.TextChoices):
        WEB_SALES = "web_sales", "Post to the web-sales account of the order's currency"
        HOLD = "hold", "Hold the record until the buyer has an email"

    class CurrencyAccounts(models.TextChoices):
        PER_CURRENCY = "per_currency", "One customer account per email and currency (Sage 50 UK foreign trader)"
        BASE_CURRENCY = "base_currency", "Convert to the base currency at the order's rate (Sage 50 US)"

    class StockQuantity(models.TextChoices):
        AVAILABLE = "available", "Available (in stock − allocated)"
        IN_STOCK = "in_stock", "In stock"

    class RefundStyle(models.TextChoices):
        NEGATIVE = "negative", "Same sense, negative amounts"
        SWAPPED = "swapped", "Swapped debit/credit, positive amounts"

    class GlDateRule(models.TextChoices):
        ORDER_DATE = "order_date", "Order date"
        STATUS_DATE = "status_date", "Date the order reached a posting status"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="integrations")
    name = models.CharField(max_length=200)
    store = models.ForeignKey(StoreConnection, on_delete=models.PROTECT, related_name="integrations")
    sage = models.ForeignKey(SageConnection, on_delete=models.PROTECT, related_name="integrations")
    is_active = models.BooleanField(default=True)
    # flows
    post_invoices = models.BooleanField(default=True)
    post_receipts = models.BooleanField(default=True)
    post_refunds = models.BooleanField(default=True)
    push_stock = models.BooleanField(default=True)
    post_gl_entries = models.BooleanField(default=False, help_text="Sage X3: post orders as GL journal entries.")
    post_sales_orders = models.BooleanField(default=True, help_text="Sage 100: post orders as sales orders.")
    sage100_settings = models.JSONField(
        default=dict, blank=True,
        help_text="Sage 100: division, web_customer_no, numbering, ship_via {store method: code}, default_ship_via, "
                  "warehouses {channel id: code}, default_warehouse, tax_mode (store_tax_line or sage_tax_schedule), "
                  "tax_item_code, tax_schedule, sales_order_prefix, options_in_comment, timezone.")
    sage100_price_level = models.CharField(
        max_length=10, blank=True, default="", verbose_name="Sage 100 price level pushed to the store",
        help_text="Sage 100: the price level whose item prices become the store's selling prices (as set up in "
                  "Sage 100's pricing, e.g. 1 or 2). Leave blank for each item's standard price. Two integrations "
                  "on one Sage 100 company may use different levels.")
    # schedule
    poll_interval_seconds = models.PositiveIntegerField(default=300)
    next_poll_at = models.DateTimeField(
        null=True, blank=True, db_index=True, editable=False,
        help_text="When the next scheduled poll is due (empty: at the next beat tick). One beat entry hands out "
                  "due integrations in batches (connector/services/scheduling.py).")
    stock_push_interval_seconds = models.PositiveIntegerField(default=300)
    poll_overlap_seconds = models.PositiveIntegerField(
        default=300, help_text="Each poll re-reads this far behind its watermark, for late writes on the store.")
    # order rules
    paid_status_ids = models.JSONField(
        default=list, blank=True,
        help_text="The order statuses that count as paid, as the store names them: BigCommerce status ids, "
                  "Adobe Commerce order states (processing, complete…); empty = the store's default.")
    store_comment_after_posting = models.BooleanField(
        default=False, help_text="Adobe Commerce: add an order comment with the Sage invoice number once it is posted.")
    status_after_import = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Status to set once an order is posted (BigCommerce status id; empty = leave it).")
    customer_strategy = models.CharField(max_length=30, choices=CustomerStrategy.choices,
                                         default=CustomerStrategy.MATCH_OR_CREATE)
    without_email = models.CharField(
        max_length=20, choices=WithoutEmail.choices, default=WithoutEmail.WEB_SALES,
        help_text="Buyers with neither an email nor a store customer account are never matched by name.")
    currency_accounts = models.CharField(max_length=20, choices=CurrencyAccounts.choices,
                                         default=CurrencyAccounts.PER_CURRENCY)
    base_currency = models.CharField(max_length=3, blank=True,
                                     help_text="The Sage company's base currency (for converting documents).")
    same_code_fallback = models.BooleanField(
        default=False, help_text="Use the store SKU as the Sage stock code when no item mapping exists.")
    default_tax_code = models.CharField(max_length=20, blank=True, default="T1")
    rounding_tolerance = models.DecimalField(max_digits=6, decimal_places=2, default=0,
                                             help_text="Largest difference a rounding line may absorb.")
    stock_quantity = models.CharField(max_length=20, choices=StockQuantity.choices, default=StockQuantity.AVAILABLE)
    # Sage X3 GL posting
    x3_entry_type = models.CharField(max_length=10, blank=True, default="ODT")
    x3_journal = models.CharField(max_length=10, blank=True, default="VEN")
    x3_site = models.CharField(max_length=10, blank=True)
    x3_company = models.CharField(max_length=10, blank=True)
    x3_refund_style = models.CharField(max_length=10, choices=RefundStyle.choices, default=RefundStyle.NEGATIVE)
    x3_gl_date_rule = models.CharField(max_length=20, choices=GlDateRule.choices, default=GlDateRule.ORDER_DATE)
    x3_cost_posting = models.BooleanField(default=False)
    x3_collective_accounts = models.CharField(
        max_length=200, blank=True, default="411000",
        help_text="Accounts X3 treats as collective, comma-separated: their lines need a business partner "
                  "(map one per channel). 411000 is the French chart's customers account.")
    # webhooks
    webhook_token = models.CharField(max_length=64, unique=True, editable=False,
                                     help_text="Public part of this integration's webhook URL.")
    webhook_secret = EncryptedCharField(max_length=200, blank=True,
                                        help_text="Sent by the store in a custom header on every delivery.")
    archive_retention_days = models.PositiveIntegerField(default=90)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    SECRET_FIELDS = ("webhook_secret",)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        if not self.webhook_token:
            self.webhook_token = secrets.token_urlsafe(24)
        if not self.webhook_secret:
            self.webhook_secret = secrets.token_urlsafe(32)
        super().save(*args, **kwargs)

    def clean(self):
        """A store and a Sage connection that have no route between them are refused here, with
        what to choose instead, rather than failing every record they would queue."""
        super().clean()
        if self.store_id and self.sage_id:
            reason = unrouted_reason(str(self.store), self.store.platform, str(self.sage), self.sage.edition)
            if reason:
                raise ValidationError({"sage": reason})

    @property
    def webhook_path(self) -> str:
        """Where the integration's store delivers webhooks (connector/webhook_urls.py): one URL
        shape per store platform, the same token."""
        platform = self.store.platform if self.store_id else StoreConnection.Platform.BIGCOMMERCE
        if platform == StoreConnection.Platform.ADOBE_COMMERCE:
            return f"/webhooks/adobe/{self.webhook_token}/"
        return f"/webhooks/bigcommerce/{self.webhook_token}/"


def hash_agent_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Agent(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="agents")
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=200)
    key_prefix = models.CharField(max_length=12, editable=False, help_text="First characters, to recognise a key.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    agent_version = models.CharField(max_length=50, blank=True)
    backend = models.CharField(max_length=50, blank=True)
    sage_edition = models.CharField(max_length=50, blank=True)
    sage_version = models.CharField(max_length=50, blank=True)
    company = models.CharField(max_length=200, blank=True)
    # The last `agent doctor` result the agent reported (None: never run).
    doctor_ok = models.BooleanField(null=True, blank=True)
    doctor_checked_at = models.DateTimeField(null=True, blank=True)
    doctor_checks = models.PositiveIntegerField(default=0)
    doctor_problems = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    ONLINE_WITHIN_SECONDS = 90

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def issue_key(self) -> str:
        """Make a new key, keep only its hash, and return the key (to show once)."""
        key = "mlc_" + secrets.token_urlsafe(32)
        self.key_prefix = key[:12]
        self.key_hash = hash_agent_key(key)
        return key

    @property
    def is_online(self) -> bool:
        if not self.last_heartbeat_at or self.revoked_at:
            return False
        return (timezone.now() - self.last_heartbeat_at).total_seconds() < self.ONLINE_WITHIN_SECONDS


def secret_fields(model, through: str = "") -> tuple[str, ...]:
    """The model's encrypted fields, as ``defer()`` names reached ``through`` a relation path
    (e.g. "record__integration__"): rows loaded in bulk skip a Fernet decryption per row for a
    secret the caller never reads."""
    return tuple(f"{through}{field.name}" for field in model._meta.concrete_fields
                 if isinstance(field, EncryptedCharField | EncryptedTextField))
