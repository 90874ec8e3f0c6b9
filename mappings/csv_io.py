"""CSV import and export of item mappings (columns: store_sku, sage_code, description).

Both directions are hostile-input paths: an exported cell that starts with ``= + - @`` (or a tab
or CR) would run as a formula when the bookkeeper opens the file in a spreadsheet, so it is
written with a leading apostrophe; an uploaded file is capped in bytes and rows, and a file that
is not clean CSV (NUL bytes, a field over the csv module's limit, bad quoting) is refused whole.
An import is all or nothing: one bad row and nothing is written.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from mappings.models import ItemMapping

CSV_COLUMNS = ("store_sku", "sage_code", "description")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
NEUTRALISER = "'"


class CsvRejected(ValueError):
    """The file as a whole cannot be imported; the message says why in words."""


def neutralise(value) -> str:
    text = "" if value is None else str(value)
    return NEUTRALISER + text if text.startswith(FORMULA_STARTS) else text


def _restore(text: str) -> str:
    """Undo ``neutralise`` so an exported file imports back to the same values."""
    if text.startswith(NEUTRALISER) and text[1:].startswith(FORMULA_STARTS):
        return text[1:]
    return text


def export_item_mappings(queryset) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in queryset.order_by("store_sku").values_list(*CSV_COLUMNS):
        writer.writerow([neutralise(cell) for cell in row])
    return out.getvalue()


def decode_upload(upload) -> str:
    """The uploaded file as text, or CsvRejected (too big, not UTF-8, NUL bytes)."""
    limit = settings.MAPPINGS_CSV_MAX_BYTES
    if upload.size is not None and upload.size > limit:
        raise CsvRejected(f"The file is {upload.size:,} bytes; the limit is {limit:,}. Split it into smaller files.")
    raw = upload.read(limit + 1)
    if len(raw) > limit:
        raise CsvRejected(f"The file is over the {limit:,}-byte limit. Split it into smaller files.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CsvRejected("The file is not UTF-8 text. Save it as 'CSV UTF-8' and try again.") from None
    if "\x00" in text:
        raise CsvRejected("The file contains NUL bytes, so it is not a CSV text file. Save it as 'CSV UTF-8'.")
    return text


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)


def _read_rows(text: str, report: ImportReport) -> dict[str, tuple[str, str]]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    max_rows = settings.MAPPINGS_CSV_MAX_ROWS
    rows: dict[str, tuple[str, str]] = {}
    try:
        missing = [c for c in ("store_sku", "sage_code") if c not in (reader.fieldnames or [])]
        if missing:
            raise CsvRejected(f"The header row must name {', '.join(missing)} (columns: {', '.join(CSV_COLUMNS)}).")
        for line_no, row in enumerate(reader, start=2):
            if line_no - 1 > max_rows:
                raise CsvRejected(f"The file has more than {max_rows:,} rows. Split it into smaller files.")
            sku = _restore((row.get("store_sku") or "").strip())
            code = _restore((row.get("sage_code") or "").strip())
            if not sku or not code:
                report.errors.append(f"Line {line_no}: store_sku and sage_code are both required.")
                continue
            if len(code) > 64 or len(sku) > 255:
                report.errors.append(f"Line {line_no}: value too long (SKU ≤ 255, Sage code ≤ 64 characters).")
                continue
            rows[sku] = (code, _restore((row.get("description") or "").strip())[:255])
    except csv.Error as error:
        raise CsvRejected(f"Line {reader.line_num}: this is not valid CSV ({error}).") from None
    return rows


def import_item_mappings(integration, text: str) -> ImportReport:
    """Upsert rows by (integration, store_sku), all or nothing: with any bad row the report lists
    the errors and nothing is written. Raises CsvRejected when the file itself is unreadable."""
    report = ImportReport()
    rows = _read_rows(text, report)
    if report.errors:
        return report
    with transaction.atomic():
        existing = set(ItemMapping.objects.filter(integration=integration, store_sku__in=rows)
                       .values_list("store_sku", flat=True))
        ItemMapping.objects.bulk_create(
            [ItemMapping(integration=integration, store_sku=s, sage_code=c, description=d)
             for s, (c, d) in rows.items()],
            update_conflicts=True, unique_fields=["integration", "store_sku"],
            update_fields=["sage_code", "description"],
        )
    report.updated = len(existing)
    report.created = len(rows) - len(existing)
    return report
