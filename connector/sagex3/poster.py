"""The idempotency contract for posting a journal entry to Sage X3.

X3 accepts no idempotency key, so every post is look-up-then-create by the entry's reference
(the store adapter's order or refund reference). A create that timed out may still have been applied: it raises
``RetryableError`` and the task runs this function again, whose look-up then finds the entry instead
of posting it twice. Two workers posting the same record at once are prevented upstream by the
unique sync record, not here.
"""

from __future__ import annotations

from connector.sagex3.journal import Unbalanced
from mlcommon.ledger import JournalEntry


def post_journal_entry(client, entry: JournalEntry) -> tuple[str, bool]:
    """Post ``entry`` through an ``X3RestClient`` or ``X3GraphQLClient``.

    Returns ``(x3_entry_number, existed)``; ``existed`` is True when X3 already held an entry with
    this reference and nothing was created.
    """
    if not entry.is_balanced:
        raise Unbalanced(entry.reference, entry.debit_total, entry.credit_total)
    found = client.find_entry_by_reference(entry.reference)
    if found is not None:
        return found.number, True
    created = client.create_entry(entry)
    return created.number, False
