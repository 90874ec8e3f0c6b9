"""`make run`: web, Celery worker and beat (and, once configured, the sandbox store and the
simulated Sage company with its agent) as real processes in the foreground. Ctrl-C stops all."""

import json
import signal
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from connector.devstack import Stack

RUNNING_STACK_FILE = "running-stack.json"


class Command(BaseCommand):
    help = "Run web, worker and beat (and the demo sandbox and agent) until Ctrl-C."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-demo", action="store_true", help="Do not start the sandbox store and agent.")
        parser.add_argument("--adobe", action="store_true",
                            help="Also start a sandbox Adobe Commerce store with its own integration and agent.")

    def handle(self, *args, port, no_demo, adobe, **options):
        call_command("ensure_admin", url=f"http://127.0.0.1:{port}/admin/")
        stack = Stack(foreground=True, env={"PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"})
        adobe_port = None
        if adobe and not no_demo:
            from connector.devstack import free_port

            # Chosen before the web process starts: it fetches I/O Events keys from the sandbox.
            adobe_port = free_port()
            stack.env["ADOBE_IO_KEY_HOST"] = f"http://127.0.0.1:{adobe_port}"
        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        stack.web(port)
        stack.worker()
        stack.beat()
        demo = None
        if not no_demo:
            from demo.system import start_demo

            demo = start_demo(stack, web_port=port)
            if adobe_port:
                from demo.system import start_adobe_demo

                demo += "\n" + start_adobe_demo(stack, web_port=port, adobe_port=adobe_port)
        self.stdout.write(self.style.SUCCESS(
            f"ml-connector is running: http://127.0.0.1:{port}/admin/  (broker: {settings.CELERY_BROKER_URL}; "
            f"database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}). Ctrl-C stops everything."))
        if demo:
            self.stdout.write(demo)
        running_file = settings.DATA_DIR / RUNNING_STACK_FILE
        running_file.write_text(json.dumps({"admin": f"http://127.0.0.1:{port}"}))  # read by `make demo-order`
        try:
            while not stopping:
                for name in list(stack.processes):
                    if not stack.alive(name):
                        self.stderr.write(f"{name} exited; stopping the others.")
                        stopping = True
                time.sleep(0.5)
        finally:
            running_file.unlink(missing_ok=True)
            stack.stop()
            self.stdout.write("stopped.")
