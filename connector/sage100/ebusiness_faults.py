"""Sage 100 eBusiness Web Services faults → the typed errors of ``mlcommon.http``, with a message an
accountant can act on.

eBusiness Web Services reports every refusal as a SOAP 1.1 fault whose text carries a Sage message
id (``CI_NoKey``, ``CI_NOF``, ``WS_AlreadyExists`` …) or a sentence ("Logon failure … not enabled
for web services", "No Access …"). Which class an error gets decides what the pipeline does:

* ``RetryableError``: the record goes back to pending and is tried again (HTTP 5xx without a fault,
  timeouts, connection drops, a record open in Sage 100, the object cache busy);
* ``AuthError``: the connection is wrong (user, password, web services not enabled for the user or
  the company, role security): parked for a person, with what to change in Sage 100;
* ``SageRecordNotFound``: a look-up found nothing (``CI_NoKey``); the poster then creates;
* ``SageAlreadyExists``: a create found the record there (``WS_AlreadyExists``); the poster reads it
  back and reports it as existing;
* ``SageUnknownReference`` (``CI_NOF``): an item, customer, ship-via or warehouse code Sage 100 does
  not know; parked until the mapping (or Sage 100) is fixed;
* anything else is a ``PermanentError`` carrying Sage's own text.

Pure: no zeep, no Django, no I/O, so it is unit-tested on fault texts alone.
"""

from __future__ import annotations

import re

from mlcommon.http import AuthError, NotFoundError, PermanentError, RetryableError, typed_error

MESSAGE_ID = re.compile(r"\b((?:CI|WS|SO|AR|SY|IM|GL)_[A-Za-z0-9]+)\b")

# Sentences, lower-cased, that identify a fault without a message id (or with a generic one).
NOT_ENABLED = "not enabled for web services"
NO_ACCESS = "no access"
LOGON_FAILURE = ("logon failure", "invalid user", "invalid password", "user name or password")
BUSY = ("in use", "record is locked", "locked by", "try again", "timed out", "timeout")


class SageFault:
    """Mixin: what every error built from a SOAP fault carries besides the message."""

    message_id: str = ""
    fault_text: str = ""


class SageRecordNotFound(SageFault, NotFoundError):
    """CI_NoKey: the sales order or customer asked for does not exist."""


class SageAlreadyExists(SageFault, PermanentError):
    """WS_AlreadyExists: the record a create names is already there."""


class SageUnknownReference(SageFault, PermanentError):
    """CI_NOF: a code in the document (item, customer, ship via, warehouse …) is not on file."""


class WebServicesNotEnabled(SageFault, AuthError):
    pass


class SageNoAccess(SageFault, AuthError):
    pass


class SageLogonFailed(SageFault, AuthError):
    pass


class SageBusy(SageFault, RetryableError):
    pass


class SageRefused(SageFault, PermanentError):
    pass


def message_id_of(text: str) -> str:
    match = MESSAGE_ID.search(text or "")
    return match.group(1) if match else ""


def error_for_fault(fault_text: str, *, operation: str, company: str = "", username: str = "",
                    record: str = "") -> PermanentError | RetryableError:
    """The typed error for one SOAP fault. ``record`` names what the call was about
    ("sales order W001001", "customer 01-W1X2Y3Z") so the message says it."""
    text = " ".join((fault_text or "").split()) or "(empty fault)"
    lowered = text.lower()
    message_id = message_id_of(text)
    about = f" ({record})" if record else ""
    where = f"Sage 100 eBusiness Web Services refused {operation}{about}: {text}"
    if NOT_ENABLED in lowered:
        error = WebServicesNotEnabled(
            f"{where}. In Sage 100, enable web services for user '{username}' (User Maintenance) and for "
            f"company {company} (Company Maintenance), and in System Configuration.")
    elif any(phrase in lowered for phrase in LOGON_FAILURE):
        error = SageLogonFailed(f"{where}. Check the user name and password of the Sage connection.")
    elif lowered.startswith(NO_ACCESS) or f" {NO_ACCESS}" in lowered:
        error = SageNoAccess(
            f"{where}. Give user '{username}' a role that may create and view sales orders and customers in "
            f"company {company} (Role Maintenance).")
    elif message_id == "WS_AlreadyExists":
        error = SageAlreadyExists(where)
    elif message_id == "CI_NoKey":
        error = SageRecordNotFound(where)
    elif message_id == "CI_NOF":
        error = SageUnknownReference(
            f"{where}. A code in the order (item, customer, ship via or warehouse) is not on file in company "
            f"{company}: map it to one that is, or add it in Sage 100, then replay.")
    elif any(phrase in lowered for phrase in BUSY):
        error = SageBusy(f"{where}. Sage 100 is busy with this record; it is tried again shortly.")
    else:
        error = SageRefused(where)
    error.message_id = message_id
    error.fault_text = text
    return error


def error_for_http(status: int, *, operation: str, url: str, body: str = "") -> PermanentError | RetryableError:
    """An HTTP answer that carried no SOAP fault (IIS or a proxy answered): 5xx and 408/429 are
    retryable; 401/403 mean Windows authentication in front of the site; 404 a wrong URL."""
    snippet = " ".join((body or "").split())[:200]
    message = f"Sage 100 eBusiness Web Services answered HTTP {status} to {operation} at {url}"
    if status == 404:
        message += ": no eBusiness Web Services there; check the connection's server URL"
    elif status in (401, 403):
        message += ": the web server refused the request before Sage 100 saw it (IIS authentication)"
    elif snippet:
        message += f": {snippet}"
    return typed_error(status, message, body=snippet)


def error_for_connection(exc: Exception, *, operation: str, url: str, tls: str) -> PermanentError | RetryableError:
    """Timeouts and dropped connections are retryable. A certificate the connection does not trust
    is permanent: it does not fix itself, and the message says how to fix it."""
    name = exc.__class__.__name__
    if "SSL" in name or "certificate" in str(exc).lower():
        return PermanentError(
            f"TLS to Sage 100 eBusiness Web Services at {url} failed ({tls}): {exc}. If the server uses a "
            "self-signed certificate, upload that certificate (or the CA that signed it) on the Sage connection.")
    return RetryableError(f"{operation} to Sage 100 eBusiness Web Services at {url} failed: {name}: {exc}")
