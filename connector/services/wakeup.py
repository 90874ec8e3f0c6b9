"""Wake long-polling agents when a job is ready for their integration.

Two sources of wake-ups, one per-process hub that fans them out to the waiting requests:

* Redis pub/sub (production, and this machine's tests): ``notify_jobs_available`` publishes on
  ``mlc:jobs:<integration id>`` when a job is queued, and each web process holds ONE pattern
  subscription for all integrations. A thousand waiting agents cost one Redis connection per
  process, not a thousand.
* A periodic sweep: one database query per process for all the integrations that have a waiting
  agent. It is needed even with Redis, because some jobs become ready without anyone publishing
  (a retry delay elapses, a lease expires) and a publish can be lost. Without Redis (the embedded
  default) it is the only source, so it runs more often.

Waiters register their ``asyncio.Event`` before they look at the database, so a wake-up that
arrives between "nothing to lease" and "wait" is never lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable, Iterable, Iterator

from django.conf import settings

logger = logging.getLogger(__name__)

CHANNEL_PREFIX = "mlc:jobs:"
SWEEP_SECONDS_WITH_REDIS = 1.5
SWEEP_SECONDS_WITHOUT_REDIS = 0.5
REDIS_IDLE_DISCONNECT_SECONDS = 60.0


def channel_for(integration_id: int) -> str:
    return f"{CHANNEL_PREFIX}{integration_id}"


_clients: dict[str, object] = {}


def _redis(url: str):
    # Keyed by URL: tests switch COORDINATION_REDIS_URL with override_settings.
    client = _clients.get(url)
    if client is None:
        import redis

        client = _clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return client


def notify_jobs_available(integration_id: int) -> None:
    url = settings.COORDINATION_REDIS_URL
    if not url:
        return
    try:
        _redis(url).publish(channel_for(integration_id), b"1")
    except Exception:  # a lost wake-up only costs latency: the long poll's sweep re-checks the database
        logger.warning("could not publish job wake-up for integration %s", integration_id, exc_info=True)


class JobWaiters:
    """The per-process (per event loop) fan-out from wake-up sources to waiting long polls.

    ``ready_integrations`` is an async callable that, given integration ids, returns those
    with a job ready now; the agent API passes one that runs the query off the event loop.
    """

    def __init__(self, ready_integrations: Callable[[list[int]], object], redis_url: str = ""):
        self._ready_integrations = ready_integrations
        self._redis_url = redis_url
        self._waiters: dict[int, set[asyncio.Event]] = {}
        self._woken_at: dict[int, float] = {}
        self._sweeper: asyncio.Task | None = None
        self._listener: asyncio.Task | None = None
        self.redis_connected = False

    @property
    def waiting_integrations(self) -> list[int]:
        return list(self._waiters)

    @property
    def waiter_count(self) -> int:
        return sum(len(events) for events in self._waiters.values())

    @contextlib.contextmanager
    def waiting(self, integration_id: int) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._waiters.setdefault(integration_id, set()).add(event)
        self._ensure_tasks()
        try:
            yield event
        finally:
            events = self._waiters.get(integration_id)
            if events is not None:
                events.discard(event)
                if not events:
                    del self._waiters[integration_id]

    def wake(self, integration_ids: Iterable[int]) -> None:
        now = asyncio.get_running_loop().time()
        for integration_id in integration_ids:
            self._woken_at[integration_id] = now
            for event in self._waiters.get(integration_id, ()):
                event.set()

    def woken_since(self, integration_id: int, since: float) -> bool:
        """Did a wake-up for this integration arrive at or after loop time ``since``? For a caller
        that looked at the database before it registered as a waiter."""
        return self._woken_at.get(integration_id, float("-inf")) >= since

    def _ensure_tasks(self) -> None:
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())
        if self._redis_url and (self._listener is None or self._listener.done()):
            self._listener = asyncio.get_running_loop().create_task(self._listen_forever())

    async def _sweep_forever(self) -> None:
        # Ends when nobody waits; the next waiter starts it again.
        while self._waiters:
            interval = SWEEP_SECONDS_WITH_REDIS if self.redis_connected else SWEEP_SECONDS_WITHOUT_REDIS
            await asyncio.sleep(interval)
            ids = self.waiting_integrations
            if not ids:
                break
            try:
                ready = await self._ready_integrations(ids)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("job sweep failed; retrying", exc_info=True)
                continue
            self.wake(ready)

    async def _listen_forever(self) -> None:
        import redis.asyncio as aioredis

        backoff = 0.5
        idle_since = None
        loop = asyncio.get_running_loop()
        while True:
            client = aioredis.Redis.from_url(self._redis_url, socket_connect_timeout=2, socket_keepalive=True,
                                             health_check_interval=30)
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(CHANNEL_PREFIX + "*")
                self.redis_connected = True
                backoff = 0.5
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self.wake(_integration_ids_from([message.get("channel")]))
                    if self._waiters:
                        idle_since = None
                    elif idle_since is None:
                        idle_since = loop.time()
                    elif loop.time() - idle_since > REDIS_IDLE_DISCONNECT_SECONDS:
                        return
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("job wake-up subscription lost; the sweep covers until it is back", exc_info=True)
            finally:
                self.redis_connected = False
                with contextlib.suppress(Exception):
                    await asyncio.shield(_close_quietly(pubsub, client))
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 10.0)


async def _close_quietly(pubsub, client) -> None:
    with contextlib.suppress(Exception):
        await pubsub.aclose()
    with contextlib.suppress(Exception):
        await client.aclose()


def _integration_ids_from(channels) -> list[int]:
    ids = []
    for channel in channels:
        if isinstance(channel, bytes):
            channel = channel.decode("ascii", "replace")
        if isinstance(channel, str) and channel.startswith(CHANNEL_PREFIX):
            suffix = channel[len(CHANNEL_PREFIX):]
            if suffix.isdigit():
                ids.append(int(suffix))
    return ids


_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def waiters_for_loop(ready_integrations: Callable[[list[int]], object]) -> JobWaiters:
    """The hub of the running event loop (uvicorn runs one loop per process; tests make many)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = JobWaiters(ready_integrations, settings.COORDINATION_REDIS_URL or "")
    return hub
