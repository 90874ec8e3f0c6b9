"""The per-connection trust setting: uploaded certificate, public CAs, or off; and what is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from accounts.certificates import summarise, validate_pem_certificates
from connector.sage100 import tls
from sandbox.sage100.certs import make_self_signed


@pytest.fixture
def pem(tmp_path) -> str:
    return make_self_signed(tmp_path / "cert").cert_pem


def test_uploaded_certificate_becomes_a_trust_store_file(pem, tmp_path, monkeypatch):
    monkeypatch.setenv("ML_DATA_DIR", str(tmp_path))
    path = tls.verify_setting(verify_tls=False, ca_pem=pem)  # the certificate wins over "off"
    assert isinstance(path, str) and Path(path).read_text() == pem
    assert tls.verify_setting(verify_tls=True, ca_pem="\n" + pem + "\n") == path  # same file, reused


def test_without_a_certificate_verify_follows_the_switch():
    assert tls.verify_setting(verify_tls=True, ca_pem="") is True
    assert tls.verify_setting(verify_tls=False, ca_pem="  ") is False


@pytest.mark.parametrize(("text", "says", "form_says"), [
    ("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----", "private key", "private key"),
    ("hello", "not PEM certificates", "not a PEM certificate"),
    ("-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----", "not PEM certificates", "damaged"),
])
def test_what_is_not_a_certificate_is_refused_with_the_reason(text, says, form_says):
    with pytest.raises(ValueError, match=says):
        tls.verify_setting(verify_tls=True, ca_pem=text)
    with pytest.raises(ValidationError, match=form_says):  # the connection form's words
        validate_pem_certificates(text)


def test_summary_names_the_certificate(pem):
    [summary] = summarise(pem)
    assert "sage100-sandbox" in summary.subject and len(summary.sha256) == 64
    validate_pem_certificates("")  # blank is allowed


def test_trust_session_keeps_its_verify_against_the_environment(monkeypatch, tmp_path):
    """requests would otherwise take REQUESTS_CA_BUNDLE over the session's own trust store."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    session = tls.TrustSession(str(tmp_path / "pinned.pem"))
    sent = {}
    monkeypatch.setattr("requests.Session.request", lambda self, method, url, **kw: sent.update(kw))
    session.get("https://sage.example/")
    assert sent["verify"] == str(tmp_path / "pinned.pem")
