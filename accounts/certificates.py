"""Certificates a merchant uploads for a Sage server that uses its own (often self-signed) one.

Sage 100 eBusiness Web Services runs in the merchant's IIS, usually with a certificate no public CA
signed. Rather than turning verification off, the merchant pastes (or uploads) the server's own
certificate or the CA that signed it; the client then trusts that and nothing else. This module
only checks that what was given is PEM certificates and describes them; it holds no secret (a
certificate is public) and does no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.core.exceptions import ValidationError

PEM_BEGIN = "-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True)
class CertificateSummary:
    subject: str
    not_after: str
    sha256: str  # of the DER, colon-free hex: what a browser shows as the certificate's fingerprint


def load_pem_certificates(text: str) -> list[x509.Certificate]:
    """The certificates in ``text`` (one or a bundle). Raises ValueError with a sentence a merchant
    can act on when it is not PEM certificates (a private key, DER bytes, an empty paste)."""
    text = (text or "").strip()
    if not text:
        raise ValueError("no certificate given")
    if "PRIVATE KEY" in text:
        raise ValueError("this is a private key: paste the server's certificate (-----BEGIN CERTIFICATE-----), "
                         "never its key")
    if PEM_BEGIN not in text:
        raise ValueError("not a PEM certificate: export the certificate as Base-64 encoded X.509 (.cer/.pem), "
                         f"the text that starts with {PEM_BEGIN}")
    try:
        return x509.load_pem_x509_certificates(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise ValueError(f"the certificate text is damaged ({exc}); export it again") from exc


def summarise(text: str) -> list[CertificateSummary]:
    return [
        CertificateSummary(subject=cert.subject.rfc4514_string(), not_after=cert.not_valid_after_utc.isoformat(),
                           sha256=hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest())
        for cert in load_pem_certificates(text)
    ]


def validate_pem_certificates(text: str) -> None:
    """Model-field validator: blank is allowed (verification against the public CAs)."""
    if not (text or "").strip():
        return
    try:
        load_pem_certificates(text)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc
