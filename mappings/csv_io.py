"""CSV import and export of item mappings (columns: store_sku, sage_code, description)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from django.db import transaction

from mappings.models import ItemMapping

CSV_COLUMNS = ("store_sku", "sage_code", "description")


def export_item_mappings(queryset) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in queryset.order_by("store_sku").values_list(*CSV_COLUMNS):
        writer.writerow(row)
    return out.getvalue()


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)


def import_item_mappings(integration, text: str) -> ImportReport:
    """Upsert rows by (integration, store_sku). Bad rows are reported by line, good rows kept."""
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [c for c in ("store_sku", "sage_code") if c not in (reader.fieldnames or [])]
    if missing:
        report.errors.append(f"The header row must name {', '.join(missing)} (columns: {', '.join(CSV_COLUMNS)}).")
        return report
    rows: dict[str, tuple[str, str]] = {}
    for line_no, row in enumerate(reader, start=2):
        sku = (row.get("store_sku") or "").strip()
        code = (row.get("sage_code") or "").strip()
        if not sku or not code:
            report.errors.append(f"Line {line_no}: store_sku and sage_code are both required.")
            continue
        if len(code) > 64 or len(sku) > 255:
            report.errors.append(f"Line {line_no}: value too long (SKU ≤ 255, Sage code ≤ 64 characters).")
            continue
        rows[sku] = (code, (row.get("description") or "").strip()[:255])
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
