"""Sage 50 UK account references: at most 8 characters, upper case, letters and digits only."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator

MAX_LEN = 8
_VALID = re.compile(r"^[A-Z0-9]{1,8}$")


def is_valid_account_ref(ref: str | None) -> bool:
    return bool(ref) and bool(_VALID.match(ref))


def _words(text: str) -> list[str]:
    # Fold accents first (Zoë -> ZOE) so a letter is not lost from the reference.
    ascii_text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode()
    return [w for w in re.split(r"[^A-Z0-9]+", ascii_text.upper()) if w]


def account_ref_stem(name: str, company: str = "", email: str = "") -> str:
    """Six characters at most, so a two-digit counter fits: SMITHJ for "John Smith".

    A business customer is filed under the company name; a person under surname + initial,
    the way bookkeepers usually key them by hand.
    """
    words = _words(company) if company else []
    if words:
        return "".join(words)[:6]
    words = _words(name)
    if len(words) >= 2:
        return (words[-1][:5] + words[0][:1])[:6]
    if words:
        return words[0][:6]
    local = _words(email.split("@")[0]) if email else []
    return ("".join(local)[:6]) or "WEB"


def account_ref_candidates(name: str, company: str = "", email: str = "") -> Iterator[str]:
    """SMITHJ01, SMITHJ02 ... SMITHJ99, then stem + a stable hash so the search always ends."""
    stem = account_ref_stem(name, company, email)
    for counter in range(1, 100):
        yield f"{stem}{counter:02d}"
    digest = hashlib.sha256(f"{name}|{company}|{email}".lower().encode()).hexdigest().upper()
    for start in range(0, 40, 2):
        yield (stem[:4] + digest[start:start + 4])[:MAX_LEN]


def fit_reference(reference: str, limit: int) -> str:
    """``reference`` if it fits in ``limit`` characters, else a stable shortened form.

    Sage 50 US keeps at most 20 characters in ``ReferenceNumber``. The look-up before every create
    must search for exactly what was written, so both sides call this: the start of the reference
    (readable in Sage) plus a hash of the whole one (two long references sharing a start differ).
    """
    if len(reference) <= limit:
        return reference
    digest = hashlib.sha256(reference.encode()).hexdigest()[:8].upper()
    return f"{reference[:limit - len(digest) - 1]}~{digest}"
