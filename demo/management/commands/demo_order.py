"""`make demo-order`: place a new paid order in the running sandbox store and say where to watch
it arrive (its webhooks reach the web process, a worker maps it, the agent posts it)."""

import json
import os

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from demo.seed import (
    default_adobe_company_path,
    default_company_path,
    demo_adobe_store_url,
    demo_store_url,
    place_adobe_order,
    place_order,
)


def running_admin_url() -> str | None:
    """The address `make run` serves on (it writes it down), whatever port it was given."""
    from demo.management.commands.runstack import RUNNING_STACK_FILE

    try:
        return json.loads((settings.DATA_DIR / RUNNING_STACK_FILE).read_text()).get("admin")
    except (OSError, ValueError, AttributeError):
        return None


class Command(BaseCommand):
    help = "Place a new paid order in the running demo sandbox store."

    def add_arguments(self, parser):
        parser.add_argument("--shape", default="{}", help='order shape as JSON, e.g. \'{"currency": "GBP"}\'')
        parser.add_argument("--admin", default=None, help="admin base URL (default: PUBLIC_BASE_URL)")
        parser.add_argument("--store", choices=("bigcommerce", "adobe"), default="bigcommerce",
                            help="which demo store takes the order (adobe: started by `make run ADOBE=1`)")

    def handle(self, *args, shape, admin, store, **options):
        try:
            shape = json.loads(shape)
        except ValueError as error:
            raise CommandError(f"--shape is not JSON: {error}") from error
        admin = (admin or running_admin_url() or settings.PUBLIC_BASE_URL).rstrip("/")
        if store == "adobe":
            return self.adobe_order(shape, admin)
        url = demo_store_url()
        if not url:
            raise CommandError("No demo store in the database: start it with `make run` first.")
        try:
            order = place_order(url, shape)
        except requests.RequestException as error:
            raise CommandError(f"The sandbox store at {url} did not take the order ({error}); is `make run` "
                               "still running?") from error
        company = os.path.relpath(default_company_path())
        self.stdout.write(self.style.SUCCESS(
            f"Order {order['id']} placed: {order.get('currency_code', '')} {order.get('total_inc_tax')} "
            f"({order.get('status')})."))
        self.stdout.write(f"  Watch it arrive: {admin}/admin/connector/syncrecord/?q={order['id']}")
        self.stdout.write(f"  In Sage (reference BC-{order['id']}): .venv/bin/python -m agent simulator inspect "
                          f"--company {company} invoices")

    def adobe_order(self, shape: dict, admin: str) -> None:
        url = demo_adobe_store_url()
        if not url:
            raise CommandError("No demo Adobe Commerce store in the database: start it with `make run ADOBE=1` "
                               "first.")
        try:
            order = place_adobe_order(url, shape)
        except requests.RequestException as error:
            raise CommandError(f"The sandbox Adobe store at {url} did not take the order ({error}); is "
                               "`make run ADOBE=1` still running?") from error
        company = os.path.relpath(default_adobe_company_path())
        self.stdout.write(self.style.SUCCESS(
            f"Adobe order {order.get('increment_id')} (entity {order['entity_id']}) placed and invoiced: "
            f"{order.get('order_currency_code', '')} {order.get('grand_total')}."))
        self.stdout.write(f"  Watch it arrive: {admin}/admin/connector/syncrecord/?q={order['entity_id']}")
        self.stdout.write(f"  In Sage (reference AC-{order['entity_id']}): .venv/bin/python -m agent simulator "
                          f"inspect --company {company} invoices")
