"""Scheduled polls on the real processes: two Celery beats and a worker (the broker and database of
the test run), many sandbox BigCommerce stores behind one server. Each integration polls once per
interval — not twice although two beats run the dispatch tick, and none is skipped."""

import pytest

from accounts.models import Integration
from connector.devstack import Stack, wait_for
from connector.models import SyncRun
from sandbox.bigcommerce.many import ManyStores
from sandbox.httpserver import SandboxServer
from tests.support.bigcommerce import SANDBOX_TOKEN
from tests.support.factories import make_integration

pytestmark = pytest.mark.e2e
INTEGRATIONS = 12
INTERVAL = 8
TICK = 2
JITTER = 0.8  # 10 % of the interval (under POLL_JITTER_SECONDS)


def test_each_integration_polls_once_per_interval_under_two_beats(process_env):
    stores = ManyStores(token=SANDBOX_TOKEN, quota=10**6)
    reads: dict[str, list[float]] = {}
    route = stores.dispatch

    def dispatch(request):
        if request.method == "GET" and request.path.endswith("/v2/orders"):
            import time

            reads.setdefault(request.path.split("/")[2], []).append(time.time())
        return route(request)

    stores.dispatch = dispatch
    server = SandboxServer(stores).start()
    hashes = [f"poll{n}" for n in range(INTEGRATIONS)]
    ids = [make_integration(store__store_hash=h, store__api_base_url=server.url, poll_interval_seconds=INTERVAL,
                            post_refunds=False).pk for h in hashes]
    assert Integration.objects.filter(pk__in=ids, next_poll_at__isnull=True).count() == INTEGRATIONS
    env = {**process_env, "POLL_TICK_SECONDS": str(TICK), "POLL_MIN_INTERVAL_SECONDS": "5",
           "POLL_JITTER_SECONDS": "3"}
    try:
        with Stack(env=env) as stack:
            stack.worker(concurrency=2)
            stack.beat("beat")
            stack.beat("beat2")  # a second beat (a misconfigured deployment): still one poll per interval
            wait_for(lambda: all(len(reads.get(h, [])) >= 4 for h in hashes), timeout=120,
                     what=f"four polls of each of {INTEGRATIONS} stores (interval {INTERVAL} s)")
            assert stack.alive("worker") and stack.alive("beat") and stack.alive("beat2")
    finally:
        server.stop()
    for store_hash in hashes:
        times = sorted(reads[store_hash])
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        # The first poll is due at once; the second within the next interval (spread), then one
        # interval ± jitter apart, each started within a tick (plus the queue) of its due time.
        steady = gaps[1:]
        assert all(INTERVAL - JITTER - TICK - 0.5 <= gap <= INTERVAL + JITTER + TICK + 4 for gap in steady), \
            (store_hash, gaps)
    rollups = SyncRun.objects.filter(integration_id__in=ids, params__has_key="idle_polls")
    assert rollups.count() == INTEGRATIONS  # every idle poll of a day in one row per integration
    assert SyncRun.objects.filter(integration_id__in=ids).count() == INTEGRATIONS
    for run in rollups:
        assert run.params["idle_polls"] >= 4 and run.params["late_polls"] == 0
        assert run.api_calls == run.params["idle_polls"]  # one API call per idle poll
