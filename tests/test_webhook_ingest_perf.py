"""A concurrent burst of signed deliveries (with retries of the same events, racing each other)
through a real uvicorn web process with two workers: exactly one InboundEvent per distinct event,
exactly one processing task per stored event, every 2xx-answered event in the database, nothing
stored from a forged delivery. No timing assertion: the benchmark (python -m bench) measures.

The web process gets a filesystem broker of its own (tmp_path) and no Celery worker, so the
test can read every message it published — the "worker is down" case: all of it waits there.
"""

from __future__ import annotations

import base64
import json
import time

import pytest

from bench.loadgen import send_all
from connector.bigcommerce.signatures import SECRET_HEADER, sign_bc, sign_standard
from connector.devstack import Stack, free_port
from connector.models import InboundEvent
from tests.conftest import subprocess_env_for_test_db
from tests.support.bigcommerce import SANDBOX_SECRET
from tests.support.factories import make_integration

DISTINCT = 240
TASKS = {"connector.bigcommerce.process_webhook_event", "connector.bigcommerce.process_webhook_events"}


def deliveries(integration, distinct: int):
    """Each event once, a third of them again (retries), three schemes in turn; and forgeries."""
    stamp = int(time.time())
    sent, forged = [], []
    for n in range(distinct):
        body = json.dumps({"scope": "store/order/updated", "store_id": "1", "data": {"type": "order", "id": n},
                           "hash": f"burst{n}", "created_at": stamp - 3600 + n}).encode()
        scheme = n % 3
        if scheme == 0:
            headers = {"webhook-id": f"m{n}", "webhook-timestamp": str(stamp),
                       "webhook-signature": sign_standard(SANDBOX_SECRET, f"m{n}", stamp, body)}
        elif scheme == 1:
            headers = {"X-BC-Signature": sign_bc(SANDBOX_SECRET, body)}
        else:
            headers = {SECRET_HEADER: integration.webhook_secret}
        headers["Content-Type"] = "application/json"
        sent.append((headers, body))
        if n % 3 == 0:
            sent.append((headers, body))  # the same delivery again, in flight at the same time
        if n % 20 == 0:
            forged.append(({"X-BC-Signature": sign_bc("guess", body)}, body.replace(b"burst", b"forged")))
    return sent, forged


def published_event_ids(queue_dir) -> tuple[list[int], int]:
    """Event ids carried by the processing tasks in the broker folder, and the message count."""
    ids, messages = [], 0
    for path in sorted(queue_dir.glob("*")):
        message = json.loads(path.read_bytes())
        if message["headers"].get("task") not in TASKS:
            continue
        messages += 1
        args = json.loads(base64.b64decode(message["body"]))[0]
        ids += args[0] if isinstance(args[0], list) else [args[0]]
    return ids, messages


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_burst_with_duplicates_through_uvicorn(tmp_path):
    integration = make_integration()
    sent, forged = deliveries(integration, DISTINCT)
    port = free_port()
    env = {**subprocess_env_for_test_db(), "CELERY_BROKER_URL": "filesystem://", "COORDINATION_REDIS_URL": "",
           "ML_DATA_DIR": str(tmp_path), "LOG_LEVEL": "WARNING"}
    url = f"http://127.0.0.1:{port}{integration.webhook_path}"
    with Stack(env=env, log_dir=tmp_path / "logs") as stack:
        stack.web(port, workers=2)
        stack.wait_http(f"http://127.0.0.1:{port}/admin/login/", "web")
        statuses = send_all(url, sent + forged, connections=32)
        log = stack.log("web")

    valid, bad = statuses[:len(sent)], statuses[len(sent):]
    assert set(valid) == {200}, (sorted(set(valid)), log)
    assert set(bad) == {401}
    events = list(InboundEvent.objects.filter(integration=integration))
    hashes = [json.loads(e.body)["hash"] for e in events]
    # Every answered delivery is stored, each distinct event exactly once, no forgery at all.
    assert sorted(hashes) == sorted(f"burst{n}" for n in range(DISTINCT))
    assert all(e.source == "webhook" and e.processed_at is None for e in events)
    assert {e.signature_scheme for e in events} == {"standard-webhooks", "x-bc-signature", "secret-header"}

    ids, messages = published_event_ids(tmp_path / "broker" / "queue")
    # One processing task per stored event (none for a duplicate), carried by batch messages.
    assert sorted(ids) == sorted(e.pk for e in events)
    assert 1 <= messages <= len(events)
    print(f"\n{len(sent) + len(forged)} deliveries, {len(events)} events, {messages} broker message(s)")


# -- the pieces, without processes ----------------------------------------------------------------

def test_group_commit_batches_concurrent_submits_and_answers_each_in_order():
    import asyncio
    import threading

    from connector.webhook_batcher import GroupCommit

    seen_threads, batches = set(), []

    def flush(items):
        seen_threads.add(threading.get_ident())
        time.sleep(0.01)  # a commit: meanwhile the others queue up
        batches.append(list(items))
        if "boom" in items:
            raise RuntimeError("rolled back")
        return [item * 2 for item in items]

    group = GroupCommit(flush, max_batch=40)

    async def main():
        ok = await asyncio.gather(*(group.submit(str(n)) for n in range(100)))
        failed = await asyncio.gather(group.submit("a"), group.submit("boom"), return_exceptions=True)
        return ok, failed

    ok, failed = asyncio.run(main())
    assert ok == [str(n) * 2 for n in range(100)]
    assert 3 <= len(batches) <= 5 and max(len(b) for b in batches) <= 40  # batched, bounded
    assert all(isinstance(f, RuntimeError) for f in failed)  # a failed commit answers no one 2xx
    assert len(seen_threads) == 1  # one writer thread, one connection


def test_batch_task_processes_each_event_and_hands_failures_to_the_single_task(monkeypatch):
    from connector.bigcommerce import tasks, webhooks

    processed, handed = [], []

    def process_event(event_id, run_here=False):
        if event_id == 2:
            raise ValueError("store said no")
        processed.append(event_id)

    monkeypatch.setattr(webhooks, "process_event", process_event)
    monkeypatch.setattr(tasks.process_webhook_event, "delay", handed.append)
    assert tasks.process_webhook_events.run([1, 2, 3]) == "2 of 3 event(s) processed in the batch"
    assert processed == [1, 3] and handed == [2]


def test_enqueue_events_sends_one_message_per_chunk(monkeypatch):
    from connector.bigcommerce import tasks, webhooks

    batches, singles = [], []
    monkeypatch.setattr(tasks.process_webhook_events, "delay", batches.append)
    monkeypatch.setattr(tasks.process_webhook_event, "delay", singles.append)
    webhooks.enqueue_events(list(range(1, webhooks.EVENTS_PER_MESSAGE + 2)))
    assert batches == [list(range(1, webhooks.EVENTS_PER_MESSAGE + 1))]
    assert singles == [webhooks.EVENTS_PER_MESSAGE + 1]
