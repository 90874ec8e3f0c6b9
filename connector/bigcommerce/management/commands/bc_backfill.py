"""python manage.py bc_backfill --integration ID --since 2026-01-01 [--until 2026-03-31]"""

from __future__ import annotations

import datetime as dt

from django.core.management.base import BaseCommand, CommandError

from accounts.models import Integration
from connector.bigcommerce.poller import backfill, start_backfill


def _date(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"not a date: {value!r} (use 2026-01-01 or 2026-01-01T00:00:00)") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
    help = "Read every BigCommerce order created in a date range and queue what it needs."

    def add_arguments(self, parser):
        parser.add_argument("--integration", type=int, required=True)
        parser.add_argument("--since", required=True, help="first order date, e.g. 2026-01-01")
        parser.add_argument("--until", help="last order date (inclusive), e.g. 2026-03-31")

    def handle(self, *args, **options):
        integration = Integration.objects.select_related("store", "sage").filter(pk=options["integration"]).first()
        if integration is None:
            raise CommandError(f"no integration with id {options['integration']}")
        since = _date(options["since"])
        until = _date(options["until"]) if options.get("until") else None
        if until is not None and len(options["until"]) == 10:
            until = until + dt.timedelta(days=1, seconds=-1)  # a bare end date means the whole day
        run = start_backfill(integration, since, until)
        self.stdout.write(f"Backfill run #{run.pk} for {integration}: orders created since {since:%Y-%m-%d %H:%M}"
                          + (f" until {until:%Y-%m-%d %H:%M}" if until else ""))

        def progress(current):
            self.stdout.write(f"  {current.progress}, {current.api_calls} API calls")

        run = backfill(integration, since, until, run=run, progress=progress)
        self.stdout.write(self.style.SUCCESS(f"Done: {run.message} ({run.api_calls} API calls)"))
