"""The sync engine's state: inbound events, sync records with their audit trail, agent jobs,
runs (poll, backfill, stock push) with progress, cursors, and the per-SKU stock last pushed.

Models are thin: state transitions live in connector/services/.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Integration


class InboundEvent(models.Model):
    """Everything that arrives is stored before it is processed: the replay source and the
    first line of the audit trail. ``dedup_key`` is unique, so a repeated delivery is a no-op."""

    class Source(models.TextChoices):
        WEBHOOK = "webhook", "Webhook"
        POLL = "poll", "Poll"
        BACKFILL = "backfill", "Backfill"
        AGENT = "agent", "Agent changes"
        MANUAL = "manual", "Manual / replay"

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="inbound_events")
    source = models.CharField(max_length=20, choices=Source.choices)
    dedup_key = models.CharField(max_length=255, unique=True)
    scope = models.CharField(max_length=100, blank=True)
    resource_id = models.CharField(max_length=100, blank=True)
    headers = models.JSONField(default=dict, blank=True)
    body = models.TextField(blank=True)
    signature_scheme = models.CharField(max_length=40, blank=True)
    run = models.ForeignKey("SyncRun", null=True, blank=True, on_delete=models.SET_NULL, related_name="events")
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    note = models.TextField(blank=True, help_text="What processing did with it, in words.")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(fields=["integration", "scope", "resource_id"]),
            # The few events still to process, oldest first: the sweeper looks for lost ones every
            # tick, and without this it walked received_at through every event ever processed.
            models.Index(fields=["received_at"], condition=models.Q(processed_at__isnull=True),
                         name="inbound_event_unprocessed"),
        ]

    def __str__(self):
        return f"{self.source} {self.scope} {self.resource_id}"


class SyncRecord(models.Model):
    """One unit of work: (integration, kind, external id, action), unique in the database."""

    class Kind(models.TextChoices):
        ORDER = "order", "Order"
        REFUND = "refund", "Refund"
        CUSTOMER = "customer", "Customer"
        STOCK = "stock", "Stock push"

    class Action(models.TextChoices):
        POST_INVOICE = "post_invoice", "Post sales invoice (+ receipt)"
        POST_CREDIT_NOTE = "post_credit_note", "Post credit note (+ refund payment)"
        POST_SALES_ORDER = "post_sales_order", "Post sales order"
        POST_JOURNAL = "post_journal", "Post GL journal entry"
        NOTE_REFUND = "note_refund", "Mark the Sage document for the accountant (refund)"
        PUSH_STOCK = "push_stock", "Push stock to store"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        WAITING_MAPPING = "waiting_mapping", "Waiting for a mapping"
        # A refund whose order is not in the ledger yet (held, waiting for a mapping, pending): it
        # costs nothing while it waits and is woken when its order posts (records.py).
        WAITING_ORDER = "waiting_order", "Waiting for its order"
        HELD = "held", "Held (totals differ)"
        DISPATCHED = "dispatched", "Dispatched to Sage"
        POSTED = "posted", "Posted"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    RETRYABLE_STATES = (State.PENDING, State.WAITING_MAPPING, State.WAITING_ORDER, State.HELD, State.FAILED)

    # Indexes are few on purpose: a state change rewrites the row, and with it an entry in every
    # index (state is indexed, so the update cannot be HOT). The unique key and (integration,
    # state) both start with the integration, so its foreign key needs no index of its own; state
    # is a plain index for the sweeper's look-up across integrations (db_index=True on a CharField
    # would add a second, LIKE-pattern index nothing uses).
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="sync_records",
                                    db_index=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    external_id = models.CharField(max_length=255)
    action = models.CharField(max_length=30, choices=Action.choices)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True, help_text="What happened last, in words; on failure, what to fix.")
    waiting_for = models.JSONField(default=list, blank=True,
                                   help_text="Mapping keys this record waits for, e.g. 'sku:ABC-1'.")
    source_version = models.CharField(max_length=64, blank=True, help_text="Store date_modified last seen.")
    payload = models.JSONField(null=True, blank=True, help_text="The store record as last fetched.")
    document = models.JSONField(null=True, blank=True, help_text="The ledger document as last mapped.")
    # The reconciliation check after posting: the store's figures against what Sage reports for
    # the document ({"ok": bool, "store": {...}, "sage": {...}, "differences": [...]}); null until checked.
    reconciliation = models.JSONField(null=True, blank=True)
    sage_reference = models.CharField(max_length=100, blank=True)
    sage_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    posted_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True,
                                           help_text="When a scheduled retry is due (the sweeper re-sends it if "
                                                     "its message was lost).")

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "kind", "external_id", "action"], name="uniq_sync_record")
        ]
        indexes = [models.Index(fields=["integration", "state"]),
                   models.Index(fields=["state"], name="sync_record_state")]

    def __str__(self):
        return f"{self.get_kind_display()} {self.external_id} ({self.get_action_display()})"


class AuditEntry(models.Model):
    """Append-only trail of a record: what was fetched, mapped, sent and what came back."""

    record = models.ForeignKey(SyncRecord, on_delete=models.CASCADE, related_name="audit")
    step = models.CharField(max_length=40)
    message = models.TextField()
    data = models.JSONField(null=True, blank=True, help_text="Request/response snapshot, secrets removed.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "audit entries"

    def __str__(self):
        return f"{self.step}: {self.message[:60]}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("audit entries are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("audit entries are append-only")


class AgentJob(models.Model):
    """The outbox towards a local agent. (integration, op, reference) is unique: the same
    posting can never be queued twice, and the agent looks the reference up in Sage first."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        LEASED = "leased", "Leased by the agent"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    # No index of its own: the unique key and the leasing index both start with the integration.
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="agent_jobs",
                                    db_index=False)
    record = models.ForeignKey(SyncRecord, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    op = models.CharField(max_length=40)
    reference = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    priority = models.SmallIntegerField(default=0, help_text="Lower runs first (customer before invoice).")
    available_at = models.DateTimeField(default=timezone.now)
    lease_token = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    leased_by = models.ForeignKey("accounts.Agent", null=True, blank=True, on_delete=models.SET_NULL)
    attempts = models.PositiveIntegerField(default=0)
    result = models.JSONField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    depends_on = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="dependents",
        help_text="Leased only once this job is done (a receipt waits for its invoice, a credit note for "
                  "the invoice it credits).")

    class Meta:
        ordering = ["created_at"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "op", "reference"], name="uniq_agent_job")
        ]
        indexes = [
            models.Index(fields=["integration", "state", "available_at"]),
            # The lease's own index: only jobs still to do, in the order they are handed out. Every
            # job passes through queued and leased to done, and each step leaves a dead entry in an
            # index on state until VACUUM; the lease read the other index by bitmap (its OR), which
            # visits dead entries on every call and never marks them (measured: 8 ms per idle lease
            # after 10,000 jobs). A plain scan of this one marks them as it passes.
            models.Index(fields=["integration", "priority", "id"], name="agent_job_to_lease",
                         condition=models.Q(state__in=["queued", "leased"])),
        ]

    def __str__(self):
        return f"{self.op} {self.reference} ({self.state})"


class SyncRun(models.Model):
    """A poll, backfill, stock push or bulk replay: its progress, counters and archive."""

    class Kind(models.TextChoices):
        POLL = "poll", "Poll"
        BACKFILL = "backfill", "Backfill"
        STOCK_PUSH = "stock_push", "Stock push"
        PRICE_PUSH = "price_push", "Price push"
        REPLAY = "replay", "Bulk replay"

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="runs")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    state = models.CharField(max_length=20, choices=State.choices, default=State.RUNNING)
    params = models.JSONField(default=dict, blank=True)
    total = models.PositiveIntegerField(null=True, blank=True)
    seen = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    api_calls = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    progress_at = models.DateTimeField(
        null=True, blank=True,
        help_text="When the run last saved its progress. A running backfill that stops saving it lost its "
                  "worker; the sweeper hands it to another, which resumes where it stopped.")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk} ({self.state})"

    @property
    def progress(self) -> str:
        if self.total:
            return f"{self.seen} / {self.total} ({100 * self.seen // self.total} %)"
        return f"{self.seen} seen"


class SyncCursor(models.Model):
    """A watermark per integration and stream (orders by date_modified, refunds by date)."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="cursors")
    stream = models.CharField(max_length=40)
    value = models.CharField(max_length=100, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["integration", "stream"], name="uniq_sync_cursor")]

    def __str__(self):
        return f"{self.stream} = {self.value}"


class StockLevel(models.Model):
    """Per SKU: what Sage says, and what we last pushed to the store."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="stock_levels")
    sku = models.CharField(max_length=255)
    sage_in_stock = models.DecimalField(max_digits=14, decimal_places=4, default=0)
    sage_allocated = models.DecimalField(max_digits=14, decimal_places=4, default=0)
    sage_modified_at = models.DateTimeField(null=True, blank=True)
    pushed_quantity = models.IntegerField(null=True, blank=True)
    pushed_at = models.DateTimeField(null=True, blank=True)
    matched = models.BooleanField(null=True, help_text="Did the SKU match a product or variant in the store?")
    message = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["sku"]
        constraints = [models.UniqueConstraint(fields=["integration", "sku"], name="uniq_stock_level")]

    def __str__(self):
        return f"{self.sku}: {self.sage_in_stock}"


class PriceLevel(models.Model):
    """Per Sage item code: the price Sage says (at the integration's price level), and what we
    last pushed to the store."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="price_levels")
    sku = models.CharField(max_length=255, help_text="Sage item code (mapped to store SKUs by the item mapping).")
    sage_price = models.DecimalField(max_digits=14, decimal_places=4)
    sage_modified_at = models.DateTimeField(null=True, blank=True)
    pushed_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    pushed_at = models.DateTimeField(null=True, blank=True)
    matched = models.BooleanField(null=True, help_text="Did the SKU match a variant in the store?")
    message = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["sku"]
        constraints = [models.UniqueConstraint(fields=["integration", "sku"], name="uniq_price_level")]

    def __str__(self):
        return f"{self.sku}: {self.sage_price}"


class ServiceHeartbeat(models.Model):
    """Last sign of life of the worker and beat processes, shown on the admin index."""

    name = models.CharField(max_length=50, unique=True)
    beat_at = models.DateTimeField()
    detail = models.CharField(max_length=255, blank=True)

    def __str__(self):
        return f"{self.name} @ {self.beat_at:%H:%M:%S}"


class RateBudget(models.Model):
    """A store's shared API quota when there is no Redis (the embedded default): every worker
    process reserves its request slot in this row, under a row lock. Times are epoch ms."""

    store_key = models.CharField(max_length=100, unique=True)
    left = models.IntegerField(null=True)
    reset_at = models.BigIntegerField(default=0)
    blocked_until = models.BigIntegerField(default=0)
    probe_until = models.BigIntegerField(default=0)
    strikes = models.IntegerField(default=0)

    def __str__(self):
        return f"{self.store_key}: {self.left} left"


class Notification(models.Model):
    """An e-mail sent (or being sent). ``key`` is unique, e.g. ``failed:<record>:<attempt>`` or
    ``digest:<tenant>:<day>``: the same event never mails the same person twice, whichever
    worker or beat tick noticed it."""

    key = models.CharField(max_length=200, unique=True)
    tenant = models.ForeignKey("accounts.Tenant", on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=30)
    recipients = models.TextField(blank=True)
    subject = models.CharField(max_length=255)
    sent_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.subject
