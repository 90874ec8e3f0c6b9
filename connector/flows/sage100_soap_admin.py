"""Admin pieces for Sage 100 over eBusiness Web Services, attached in accounts/admin.py:

* ``SageConnectionForm``: the trusted server certificate can be uploaded as a file (``.cer``/``.pem``,
  Base-64 X.509) as well as pasted; either is checked before it is saved;
* ``transport_note(connection)``: what the chosen transport can and cannot do, shown on the
  connection: eBusiness Web Services carries sales orders and customers only, so prices and stock
  out of Sage 100 need the agent (BOI); and how TLS is verified;
* the ``test_sage100_ebusiness`` action: one stateless call per selected connection (URL, TLS,
  user, company), with Sage's own words when it fails;
* ``product_data_warning(integration)``: the sentence the integration page shows when its Sage 100
  connection is SOAP and stock or price pushing is on.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError

from accounts import roles
from accounts.certificates import load_pem_certificates, summarise
from accounts.models import SageConnection
from accounts.roles import Capability
from connector.sage100 import ebusiness
from connector.security import check_outbound_url
from mlcommon.http import ApiError

MAX_CERTIFICATE_BYTES = 256 * 1024

PRODUCT_DATA_NEEDS_AGENT = (
    "eBusiness Web Services carries sales orders and customers only: it has no items, prices or inventory. "
    "Sage 100 prices and on-hand quantities reach the store only through the agent (BOI) on the Sage 100 "
    "server: add an agent to the integration for the product-data direction, or leave stock pushing off.")


class SageConnectionForm(forms.ModelForm):
    tls_certificate_file = forms.FileField(
        required=False, label="upload the server's certificate",
        help_text="The .cer or .pem file (Base-64 encoded X.509) of the server's certificate or of the CA that "
                  "signed it. Replaces the pasted text above.")

    class Meta:
        model = SageConnection
        fields = ("tls_ca_pem",)  # admin adds the fieldsets' fields

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("tls_certificate_file")
        if upload:
            if upload.size > MAX_CERTIFICATE_BYTES:
                self.add_error("tls_certificate_file", "That file is too large for a certificate.")
                return cleaned
            try:
                text = upload.read().decode("ascii")
            except UnicodeDecodeError:
                self.add_error("tls_certificate_file", "Not a usable certificate: the file is binary (DER); export "
                                                       "the certificate as Base-64 encoded X.509.")
                return cleaned
            try:
                load_pem_certificates(text)
            except ValueError as exc:
                self.add_error("tls_certificate_file", f"Not a usable certificate: {exc}.")
                return cleaned
            cleaned["tls_ca_pem"] = text.strip() + "\n"
            self.instance.tls_ca_pem = cleaned["tls_ca_pem"]
        return cleaned


def transport_note(connection: SageConnection | None) -> str:
    if connection is None or not connection.pk:
        return "—"
    notes = []
    if connection.edition == SageConnection.Edition.SAGE100 and \
            connection.transport == SageConnection.Transport.EBUSINESS_SOAP:
        notes.append(PRODUCT_DATA_NEEDS_AGENT)
    if connection.tls_ca_pem.strip():
        try:
            certificates = summarise(connection.tls_ca_pem)
        except ValueError as exc:
            notes.append(f"The trusted certificate cannot be read: {exc}.")
        else:
            names = "; ".join(f"{c.subject} (SHA-256 {c.sha256[:16]}…, valid until {c.not_after[:10]})"
                              for c in certificates)
            notes.append(f"TLS: only the uploaded certificate is trusted: {names}.")
    elif connection.server_url.startswith("https://"):
        notes.append("TLS: verified against the public certificate authorities." if connection.verify_tls else
                     "TLS: verification is OFF. Upload the server's certificate instead.")
    return " ".join(notes) or "—"


# The boi backend reads CI_ItemCode's standard price only (agent/backends/boi.py says why).
PRICE_LEVEL_NEEDS_STANDARD_PRICE = (
    "This integration's agent reads Sage 100 through BOI, which gives each item's standard price only: with a "
    "price level chosen, no prices reach the store (stock still does). Clear the Sage 100 price level, or keep "
    "the store's prices at the standard price.")


def product_data_warning(integration) -> str | None:
    sage = integration.sage
    if sage.edition == SageConnection.Edition.SAGE100 and sage.transport == SageConnection.Transport.EBUSINESS_SOAP \
            and integration.push_stock and not integration.agents.filter(revoked_at__isnull=True).exists():
        return PRODUCT_DATA_NEEDS_AGENT
    if sage.edition == SageConnection.Edition.SAGE100 and integration.sage100_price_level \
            and integration.agents.filter(revoked_at__isnull=True, backend="boi").exists():
        return PRICE_LEVEL_NEEDS_STANDARD_PRICE
    return None


@roles.admin_action(Capability.TEST_CONNECTION, description="Test the Sage 100 eBusiness Web Services connection")
def test_sage100_ebusiness(modeladmin, request, queryset):
    for connection in queryset:
        if connection.transport != SageConnection.Transport.EBUSINESS_SOAP:
            modeladmin.message_user(request, f"{connection}: not an eBusiness Web Services connection.",
                                    messages.WARNING)
            continue
        try:
            # Checked when saved; again here for a URL saved before the check existed: the test
            # sends the Sage password to it.
            check_outbound_url(connection.server_url)
        except ValidationError as error:
            modeladmin.message_user(request, f"{connection}: not tested: {' '.join(error.messages)} Fix the server "
                                             f"URL (and enter the password again) first.", messages.ERROR)
            continue
        try:
            modeladmin.message_user(request, f"{connection}: {ebusiness.check_connection(connection)}",
                                    messages.SUCCESS)
        except ApiError as error:
            modeladmin.message_user(request, f"{connection}: {error}", messages.ERROR)
