"""The services layer imports no flow, store or task module: what it needs from them is registered
when Django's apps are ready, or looked up by task name. A fresh process that only sets Django up
(as the web process and a worker do) must therefore find everything in place."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import json, sys
import django
django.setup()
from connector.services import pipeline, sweeper
from connector.services.taskqueue import task_named
before = sorted(name for name in sys.modules if name.endswith(".tasks") and name.startswith("connector"))
task = task_named("connector.bigcommerce.process_webhook_event")
print(json.dumps({
    "handlers": sorted(pipeline._handlers),
    "batch_handlers": sorted(pipeline._batch_handlers),
    "mappings_listeners": [f"{fn.__module__}.{fn.__name__}" for fn in pipeline._mappings_changed_listeners],
    "store_work": {platform: [tasks.webhook_event, tasks.backfill]
                   for platform, tasks in sweeper._store_work_tasks.items()},
    "task_modules_before_lookup": before,
    "task": task.name,
}))
"""


def test_a_process_that_sets_django_up_has_every_registry_filled():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "connector.settings"}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"post_invoice", "post_credit_note", "post_journal"} <= set(found["handlers"])
    assert "post_invoice" in found["batch_handlers"]
    assert found["mappings_listeners"] == ["connector.flows.mapping_loader.mappings_changed"]
    assert found["store_work"] == {"bigcommerce": ["connector.bigcommerce.process_webhook_event",
                                                   "connector.bigcommerce.backfill"],
                                   "adobe_commerce": ["connector.adobe.process_webhook_event",
                                                      "connector.adobe.backfill"]}
    # The task modules are not imported by setting Django up; a lookup by name imports them.
    assert found["task_modules_before_lookup"] == []
    assert found["task"] == "connector.bigcommerce.process_webhook_event"
