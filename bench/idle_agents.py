"""One uvicorn process holding N idle long-polling agents, and how fast a job reaches one of them.

    from bench.idle_agents import run_idle_agents
    run_idle_agents(agents=1000)   # Django set up on a bench database (bench.environment)

Each agent belongs to its own integration and sends a raw HTTP/1.1 lease request with
``wait_seconds`` 25 from one asyncio loop (no client library per connection). When the server
holds them all (every authenticated poll leaves its throttle key in Redis), one job is queued for
the agent in the middle; its answer time minus the queue time is the handover latency. Wake-ups go
through a redis-server started for the run on a free port (never a shared Redis).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

WAIT_SECONDS = 25


class IdlePolls:
    """``keys``: one agent key per long poll; all sent from one event loop thread. ``answers``
    maps the poll's index to (monotonic time the answer arrived, raw response bytes)."""

    def __init__(self, port: int, keys: list[str], wait_seconds: int = WAIT_SECONDS):
        self.port, self.keys, self.wait_seconds = port, keys, wait_seconds
        self.answers: dict[int, tuple[float, bytes]] = {}
        self.sent = threading.Event()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.writers: list[asyncio.StreamWriter] = []
        self.future = None

    def _request(self, key: str) -> bytes:
        body = f'{{"max": 1, "wait_seconds": {self.wait_seconds}}}'.encode()
        return (b"POST /agent/v1/jobs/lease HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                b"Content-Type: application/json\r\nAuthorization: Bearer " + key.encode()
                + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)

    async def _open(self, key: str) -> asyncio.StreamReader:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writers.append(writer)
        writer.write(self._request(key))
        await writer.drain()
        return reader

    async def _read(self, index: int, reader: asyncio.StreamReader) -> None:
        data = await reader.read()
        self.answers[index] = (time.monotonic(), data)

    async def _all(self) -> None:
        readers = await asyncio.gather(*(self._open(key) for key in self.keys))
        self.sent.set()
        await asyncio.gather(*(self._read(i, r) for i, r in enumerate(readers)))

    def start(self) -> None:
        self.thread.start()
        self.future = asyncio.run_coroutine_threadsafe(self._all(), self.loop)

    def close(self) -> None:
        async def shut():
            for writer in self.writers:
                writer.close()

        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
            if self.future is not None:
                self.future.cancel()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


def make_idle_agents(count: int) -> list[tuple[int, str]]:
    """``count`` integrations with one agent each (bulk inserts); returns (integration id, key)."""
    from accounts.models import Agent, Integration, SageConnection, StoreConnection, Tenant, hash_agent_key

    tenant, _ = Tenant.objects.get_or_create(slug="bench-idle", defaults={"name": "Bench idle agents"})
    store = StoreConnection.objects.create(tenant=tenant, name="idle store", store_hash="benchidle",
                                           api_base_url="http://127.0.0.1:9", access_token="t", client_secret="s")
    sage = SageConnection.objects.create(tenant=tenant, name="idle sage", edition="sage50uk")
    tag = secrets.token_hex(4)
    Integration.objects.bulk_create([
        Integration(tenant=tenant, name=f"idle {tag} {n}", store=store, sage=sage,
                    webhook_token=secrets.token_urlsafe(16), webhook_secret="s") for n in range(count)])
    ids = list(Integration.objects.filter(name__startswith=f"idle {tag} ").order_by("id").values_list("id", flat=True))
    keys = [f"mlc_idle_{n}_{secrets.token_urlsafe(8)}" for n in range(count)]
    Agent.objects.bulk_create([
        Agent(tenant=tenant, integration_id=integration_id, name=f"idle agent {n}", key_prefix=key[:12],
              key_hash=hash_agent_key(key)) for n, (integration_id, key) in enumerate(zip(ids, keys, strict=True))])
    return list(zip(ids, keys, strict=True))


def _setting(name: str) -> str:
    from django.conf import settings

    return getattr(settings, name)


def run_idle_agents(agents: int = 1000) -> dict:
    import redis as redis_lib
    from django.test.utils import override_settings

    from bench.chaos import DedicatedRedis
    from connector.devstack import Stack, free_port
    from connector.services.jobs import queue_job

    if not shutil.which("redis-server"):
        return {"agents": agents, "skipped": "redis-server not installed (wake-ups need Redis)"}
    pairs = make_idle_agents(agents)
    target = agents // 2
    with tempfile.TemporaryDirectory(prefix="bench-idle-") as tmp:
        redis = DedicatedRedis(Path(tmp))
        redis.start()
        client = redis_lib.Redis.from_url(redis.url)
        env = {"DATABASE_URL": os.environ["DATABASE_URL"], "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1",
               "SECRET_KEY": _setting("SECRET_KEY"), "FIELD_ENCRYPTION_KEY": _setting("FIELD_ENCRYPTION_KEY"),
               "COORDINATION_REDIS_URL": redis.url, "CELERY_BROKER_URL": redis.url, "ML_DATA_DIR": tmp,
               "AGENT_THROTTLE_RATE": "600/min", "DB_CONN_MAX_AGE": "60", "LOG_LEVEL": "WARNING"}
        port = free_port()
        polls = IdlePolls(port, [key for _, key in pairs])
        try:
            with Stack(env=env, log_dir=Path(tmp) / "logs") as stack, override_settings(COORDINATION_REDIS_URL=redis.url):
                stack.web(port)
                stack.wait_http(f"http://127.0.0.1:{port}/agent/v1/schema/", "web")
                started = time.monotonic()
                polls.start()
                if not polls.sent.wait(30):
                    return {"agents": agents, "error": "could not open the connections"}
                deadline = started + WAIT_SECONDS - 3
                held = 0
                while time.monotonic() < deadline:
                    held = sum(1 for _ in client.scan_iter("*throttle_agent_*", count=1000))
                    if held >= agents:
                        break
                    time.sleep(0.2)
                held_after = time.monotonic() - started
                early = len(polls.answers)  # answered before any job: errors or a too-short wait
                queue_job(pairs[target][0], "create_sales_invoice", "BC-IDLE-1", {"reference": "BC-IDLE-1"})
                queued_at = time.monotonic()
                while target not in polls.answers and time.monotonic() < queued_at + 10:
                    time.sleep(0.005)
                answer = polls.answers.get(target)
                time.sleep(0.3)
                still_waiting = agents - len(polls.answers)
                alive = stack.alive("web")
                log = stack.log("web")[-2000:]
        finally:
            polls.close()
            redis.stop()
    latency_ms = round((answer[0] - queued_at) * 1000, 1) if answer else None
    ok_answer = bool(answer and answer[1].startswith(b"HTTP/1.1 200") and b"BC-IDLE-1" in answer[1])
    result = {"agents": agents, "held": held, "held_after_s": round(held_after, 1),
              "answered_before_job": early, "handover_ms": latency_ms, "job_delivered": ok_answer,
              "still_waiting_after": still_waiting, "web_alive": alive}
    if not ok_answer or early:
        result["web_log_tail"] = log
    return result
