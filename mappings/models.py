"""What the accountant maps once so records post without questions, and the record links.

A saved mapping wakes the records that were waiting for it (see mappings/signals.py).
"""

from __future__ import annotations

from django.db import models

from accounts.models import Integration


class ItemMapping(models.Model):
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="item_mappings")
    store_sku = models.CharField("store SKU", max_length=255)
    sage_code = models.CharField("Sage stock code", max_length=64)
    description = models.CharField(max_length=255, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["store_sku"]
        constraints = [models.UniqueConstraint(fields=["integration", "store_sku"], name="uniq_item_mapping")]

    def __str__(self):
        return f"{self.store_sku} → {self.sage_code}"


class TaxMapping(models.Model):
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="tax_mappings")
    store_tax_class = models.CharField(max_length=100, help_text="BigCommerce tax class name (or id).")
    sage_tax_code = models.CharField(max_length=20, help_text="e.g. T1 (standard), T0 (zero), T9 (outside scope).")

    class Meta:
        ordering = ["store_tax_class"]
        constraints = [models.UniqueConstraint(fields=["integration", "store_tax_class"], name="uniq_tax_mapping")]

    def __str__(self):
        return f"{self.store_tax_class} → {self.sage_tax_code}"


class AccountMapping(models.Model):
    """A GL/nominal account per sales channel and purpose. channel_id 0 = every channel."""

    class Purpose(models.TextChoices):
        REVENUE = "revenue", "Sales revenue"
        TAX = "tax", "Tax payable"
        SHIPPING = "shipping", "Shipping revenue"
        HANDLING = "handling", "Handling revenue"
        WRAPPING = "wrapping", "Gift wrapping revenue"
        DISCOUNT = "discount", "Discounts"
        GIFT_CERTIFICATE = "gift_certificate", "Gift certificates liability (and store credit when not mapped)"
        STORE_CREDIT = "store_credit", "Store credit liability or clearing"
        BANK = "bank", "Bank account for the channel's payments (Sage 50)"
        BUSINESS_PARTNER = "business_partner", "X3 business partner for collective-account lines"
        RECEIVABLE = "receivable", "Receivable / clearing"
        COST_OF_GOODS = "cost_of_goods", "Cost of goods sold"
        STOCK = "stock", "Stock"
        ROUNDING = "rounding", "Rounding"

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="account_mappings")
    channel_id = models.PositiveIntegerField(default=0, help_text="BigCommerce channel id; 0 = every channel.")
    channel_name = models.CharField(max_length=100, blank=True)
    purpose = models.CharField(max_length=30, choices=Purpose.choices)
    account_code = models.CharField(max_length=30)

    class Meta:
        ordering = ["channel_id", "purpose"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "channel_id", "purpose"], name="uniq_account_mapping")
        ]

    def __str__(self):
        return f"channel {self.channel_id} {self.purpose} → {self.account_code}"


class PaymentMethodMapping(models.Model):
    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="payment_mappings")
    store_method = models.CharField(max_length=100, help_text="BigCommerce payment_method, e.g. 'Credit Card'. "
                                    "'*' = any method not listed.")
    bank_account = models.CharField(max_length=30, help_text="Sage bank/cash nominal code, e.g. 1200.")

    class Meta:
        ordering = ["store_method"]
        constraints = [models.UniqueConstraint(fields=["integration", "store_method"], name="uniq_payment_mapping")]

    def __str__(self):
        return f"{self.store_method} → {self.bank_account}"


class WebSalesAccount(models.Model):
    """Zynk's model: every web order in one currency goes to one Sage customer account."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="web_sales_accounts")
    currency = models.CharField(max_length=3)
    account_ref = models.CharField(max_length=20)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["integration", "currency"], name="uniq_web_sales_account")]

    def __str__(self):
        return f"{self.currency} → {self.account_ref}"


class RecordLink(models.Model):
    """A store record and the Sage record it became. The unique constraint is what makes a
    second posting impossible, whatever raced: two webhooks, a poll, a replay."""

    class Kind(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        INVOICE = "invoice", "Sales invoice"
        RECEIPT = "receipt", "Receipt"
        CREDIT_NOTE = "credit_note", "Credit note"
        REFUND_PAYMENT = "refund_payment", "Refund payment"
        SALES_ORDER = "sales_order", "Sales order"
        JOURNAL_ENTRY = "journal_entry", "GL journal entry"

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="record_links")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    external_id = models.CharField(max_length=255, help_text="Store id (order id, refund id, email).")
    sage_id = models.CharField(max_length=100, help_text="Sage's number or account ref.")
    reference = models.CharField(max_length=100, blank=True, help_text="Reference Sage holds, e.g. BC-1001.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["integration", "kind", "external_id"], name="uniq_record_link")
        ]
        indexes = [models.Index(fields=["integration", "kind", "sage_id"])]

    def __str__(self):
        return f"{self.kind} {self.external_id} → {self.sage_id}"
