"""Sage 100 eBusiness Web Services faults → typed errors and messages (unit: fault texts only)."""

from __future__ import annotations

import pytest
import requests

from connector.sage100 import ebusiness_faults as faults
from mlcommon.http import AuthError, NotFoundError, PermanentError, RetryableError


def classify(text, **kwargs):
    kwargs.setdefault("operation", "CreateSalesOrder")
    kwargs.setdefault("company", "ABC")
    kwargs.setdefault("username", "WEBUSER")
    return faults.error_for_fault(text, **kwargs)


@pytest.mark.parametrize(("text", "cls", "base", "message_id"), [
    ("CI_NoKey: The Sales Order No. W000001 is not on file.", faults.SageRecordNotFound, NotFoundError, "CI_NoKey"),
    ("WS_AlreadyExists: Sales order W000001 already exists.", faults.SageAlreadyExists, PermanentError,
     "WS_AlreadyExists"),
    ("CI_NOF: Item code ZZZ is not on file.", faults.SageUnknownReference, PermanentError, "CI_NOF"),
    ("Logon failure: user WEBUSER is not enabled for web services.", faults.WebServicesNotEnabled, AuthError, ""),
    ("Logon failure: company ABC is not enabled for web services.", faults.WebServicesNotEnabled, AuthError, ""),
    ("No Access: user WEBUSER is not authorized for company ABC.", faults.SageNoAccess, AuthError, ""),
    ("Logon failure: unknown user name or bad password.", faults.SageLogonFailed, AuthError, ""),
    ("SY_RecordInUse: Sales order W000001 is in use by another user.", faults.SageBusy, RetryableError,
     "SY_RecordInUse"),
    ("CI_CharLength: The CustomerName is greater than 30 character(s).", faults.SageRefused, PermanentError,
     "CI_CharLength"),
])
def test_each_sage_fault_gets_its_class(text, cls, base, message_id):
    error = classify(text, record="sales order W000001")
    assert type(error) is cls
    assert isinstance(error, base)
    assert error.message_id == message_id
    assert text in str(error) and "sales order W000001" in str(error)


def test_retryable_only_for_what_a_later_try_can_fix():
    assert classify("SY_RecordInUse: in use").retryable
    for text in ("CI_NOF: Customer 01-X is not on file.", "No Access", "WS_AlreadyExists: x", "something odd"):
        assert not classify(text).retryable, text


def test_messages_say_what_to_change_in_sage():
    not_enabled = str(classify("Logon failure: user WEBUSER is not enabled for web services."))
    assert "User Maintenance" in not_enabled and "Company Maintenance" in not_enabled and "WEBUSER" in not_enabled
    no_access = str(classify("No Access: user WEBUSER is not authorized for company ABC."))
    assert "Role Maintenance" in no_access and "ABC" in no_access
    unknown = str(classify("CI_NOF: Item code ZZZ is not on file."))
    assert "map it" in unknown and "replay" in unknown


def test_message_id_found_anywhere_in_the_text():
    assert faults.message_id_of("Error (WS_AlreadyExists) while saving") == "WS_AlreadyExists"
    assert faults.message_id_of("nothing here") == ""
    assert classify("").fault_text == "(empty fault)"


@pytest.mark.parametrize(("status", "retryable", "base"), [
    (500, True, RetryableError), (502, True, RetryableError), (503, True, RetryableError),
    (504, True, RetryableError), (429, True, RetryableError), (408, True, RetryableError),
    (401, False, AuthError), (403, False, AuthError), (404, False, NotFoundError), (400, False, PermanentError),
])
def test_http_answers_without_a_fault(status, retryable, base):
    error = faults.error_for_http(status, operation="GetSalesOrder", url="https://sage.example/svc", body="<html/>")
    assert error.retryable is retryable
    assert isinstance(error, base)
    assert str(status) in str(error)


def test_404_points_at_the_url():
    assert "server URL" in str(faults.error_for_http(404, operation="x", url="https://sage.example/svc"))


def test_timeouts_and_drops_are_retryable_but_certificates_are_not():
    url = "https://sage.example/svc"
    assert faults.error_for_connection(requests.Timeout("read timed out"), operation="x", url=url, tls="").retryable
    assert faults.error_for_connection(requests.ConnectionError("reset"), operation="x", url=url, tls="").retryable
    bad_cert = faults.error_for_connection(
        requests.exceptions.SSLError("certificate verify failed: self-signed certificate"), operation="x", url=url,
        tls="verified against the public certificate authorities")
    assert not bad_cert.retryable
    assert "upload that certificate" in str(bad_cert)
