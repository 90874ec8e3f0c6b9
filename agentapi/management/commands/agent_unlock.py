from django.core.management.base import BaseCommand

from agentapi.auth import unlock_address


class Command(BaseCommand):
    help = "Lift the wrong-agent-key lock-out of a client address (see SECURITY.md)."

    def add_arguments(self, parser):
        parser.add_argument("address", nargs="+", help="client IP address(es) as logged by the lock-out")

    def handle(self, *args, **options):
        for address in options["address"]:
            unlock_address(address)
            self.stdout.write(f"{address}: agent-key lock-out lifted")
