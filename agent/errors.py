"""Errors a backend raises, each carrying the protocol failure code and whether it is retryable.

"Busy" and "locked" states of desktop Sage are normal working conditions (a bookkeeper editing a
record, a backup running, the integration user logged in elsewhere); they are retried, never
reported as a failure of the record.
"""

from __future__ import annotations


class SageError(Exception):
    code = "internal"
    retryable = False

    def __init__(self, message: str, *, sage_code: int | None = None):
        super().__init__(message)
        self.sage_code = sage_code


class SageBusy(SageError):
    """Sage answered "busy", or a licence slot was not free: try again in a moment."""

    code = "sage_busy"
    retryable = True


class SageLocked(SageError):
    """An exclusive task (backup, year end, check data) or single-user mode locks everyone out."""

    code = "sage_locked"
    retryable = True


class RecordLocked(SageError):
    """Someone has the customer, item or transaction open for editing."""

    code = "record_locked"
    retryable = True


class SameUserLoggedIn(SageError):
    """The integration's Sage user name is already logged in (Sage refuses a second login)."""

    code = "same_user_logged_in"
    retryable = True


class VersionMismatch(SageError):
    """SDO / SDK version does not match the Sage data version: a person must install the right one."""

    code = "version_mismatch"


class SageValidationError(SageError):
    code = "validation"


class SageNotFound(SageError):
    code = "not_found"


class BackendUnavailable(SageError):
    """The backend cannot run here at all (no Windows, no COM/pythonnet, SDK not installed)."""

    code = "internal"


RETRYABLE_CODES = frozenset({"sage_busy", "sage_locked", "record_locked", "same_user_logged_in"})
