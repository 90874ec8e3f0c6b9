"""Store ↔ Sage reconciliation of one day from the command line (cron, or to file the PDF)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Integration
from connector.dashboard.export import summary_rows, to_csv, to_pdf
from connector.dashboard.reconcile import reconcile_day


class Command(BaseCommand):
    help = "Reconcile one integration's day (the orders' own date in the store's time zone) with Sage."

    def add_arguments(self, parser):
        parser.add_argument("--integration", required=True, help="Integration id or exact name.")
        parser.add_argument("--date", default="yesterday", help="YYYY-MM-DD, 'today' or 'yesterday'.")
        parser.add_argument("--format", choices=["text", "csv", "pdf"], default="text")
        parser.add_argument("--output", help="File to write (required for pdf); default: standard output.")
        parser.add_argument("--stored-only", action="store_true",
                            help="Do not ask the store; use the orders the connector stored.")

    def handle(self, *args, **options):
        integration = self._integration(options["integration"])
        day = self._day(options["date"])
        report = reconcile_day(integration, day, use_store=not options["stored_only"])
        fmt, output = options["format"], options["output"]
        if fmt == "pdf":
            if not output:
                raise CommandError("--format pdf needs --output FILE.pdf")
            Path(output).write_bytes(to_pdf(report))
            self.stdout.write(f"{report.headline} Written to {output}.")
        else:
            text = to_csv(report) if fmt == "csv" else self._text(report)
            if output:
                Path(output).write_text(text, encoding="utf-8")
                self.stdout.write(f"{report.headline} Written to {output}.")
            else:
                self.stdout.write(text)
        if not report.reconciles:
            raise SystemExit(1)  # for cron and scripts: a day with differences is not a success

    @staticmethod
    def _text(report) -> str:
        lines = [f"{report.integration_name}, {report.day:%A %d %B %Y} ({report.zone}); source: {report.source}",
                 report.headline, ""]
        lines += ["  ".join(f"{cell:>14}" for cell in row) for row in summary_rows(report)]
        for d in report.differences:
            lines.append(f"- {d.what} {d.store_id} {d.currency} store {d.store_amount} sage {d.sage_amount} ({d.state})")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _integration(value: str) -> Integration:
        found = Integration.objects.select_related("store", "sage").filter(
            **({"pk": int(value)} if value.isdigit() else {"name": value})).first()
        if found is None:
            raise CommandError(f"No integration {value!r}.")
        return found

    @staticmethod
    def _day(value: str) -> dt.date:
        today = dt.date.today()
        if value == "today":
            return today
        if value == "yesterday":
            return today - dt.timedelta(days=1)
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise CommandError("--date is YYYY-MM-DD, 'today' or 'yesterday'.") from None
