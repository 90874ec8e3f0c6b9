"""The per-store request budget, shared by every worker process that calls one store.

BigCommerce's quota (e.g. 150 requests / 30 s) belongs to the store and is shared by every app
and every one of our workers, so counting locally per process is not enough. Each response
tells us ``X-Rate-Limit-Requests-Left`` and ``X-Rate-Limit-Time-Reset-Ms``; the budget keeps
that picture in one place (Redis when COORDINATION_REDIS_URL is set) and every request first
*reserves* a slot atomically. Processes together therefore never send more than the store said
was left, minus a small reserve for the other apps on the store.

Rules, in order:
- a 429 blocks every process until the reset the store announced (plus jitter); a 429 without
  rate-limit headers means platform load, so it blocks longer (30 s, doubling, plus jitter);
- when the window is unknown (first call, or the previous window has run out), exactly one
  request goes out as a probe and the others wait for its headers; a probe costs one round trip
  per window and means nobody guesses when the store's window really starts;
- otherwise a request goes when more than ``floor`` requests are left, else it waits for the
  reset.

The rules live once, in ``BudgetState`` (pure, explicit clock, unit-tested). ``RedisBudget`` runs
the same rules as Lua scripts so that read-decide-write is atomic across processes; the tests run
one scenario suite against both.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import random
import threading
import time
from dataclasses import dataclass

import redis
import redis.exceptions
from redis.backoff import ConstantBackoff
from redis.retry import Retry

from mlcommon.http import RateLimitedError

logger = logging.getLogger(__name__)
# Redis errors that mean "not reachable right now" (BusyLoadingError, a restart's first seconds,
# is a ConnectionError too), as opposed to a bug in our script.
REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

HEADER_LEFT = "X-Rate-Limit-Requests-Left"
HEADER_RESET_MS = "X-Rate-Limit-Time-Reset-Ms"
HEADER_QUOTA = "X-Rate-Limit-Requests-Quota"
HEADER_WINDOW_MS = "X-Rate-Limit-Time-Window-Ms"

DEFAULT_FLOOR = 3  # requests left untouched for the other apps sharing the store's quota
PROBE_TTL_MS = 5000  # a probe that never answers (timeout) frees the window after this
NEW_WINDOW_TOLERANCE_MS = 1000  # reset estimates jitter by the network latency; a new window is ~30 s later
NO_HEADER_429_BASE_MS = 30_000
NO_HEADER_429_MAX_STRIKES = 4  # 30 s, 60 s, 120 s, 240 s
POLL_SLICE_MS = 50  # how often a process waiting on someone else's probe looks again


@dataclass
class Headers:
    """What one response said about the quota (None = header absent)."""

    status: int
    left: int | None = None
    reset_ms: int | None = None
    quota: int | None = None
    window_ms: int | None = None

    @classmethod
    def from_response(cls, status: int, headers) -> Headers:
        return cls(status, _int(headers.get(HEADER_LEFT)), _int(headers.get(HEADER_RESET_MS)),
                   _int(headers.get(HEADER_QUOTA)), _int(headers.get(HEADER_WINDOW_MS)))


def _int(value) -> int | None:
    try:
        return int(float(value)) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


@dataclass
class BudgetState:
    """The shared picture of one store's quota. Times are epoch milliseconds."""

    left: int | None = None  # None = window unknown
    reset_at: int = 0
    blocked_until: int = 0
    probe_until: int = 0
    strikes: int = 0  # consecutive 429s without headers

    def reserve(self, now: int, floor: int = DEFAULT_FLOOR) -> int:
        """Take a request slot: 0 means go now; otherwise milliseconds to wait before asking again."""
        if now < self.blocked_until:
            return self.blocked_until - now
        if self.left is None or now >= self.reset_at:
            if self.probe_until > now:
                return min(POLL_SLICE_MS, self.probe_until - now)
            self.left = None
            self.probe_until = now + PROBE_TTL_MS
            return 0
        if self.left > floor:
            self.left -= 1
            return 0
        return max(1, self.reset_at - now)

    def observe(self, now: int, seen: Headers, jitter_ms: int = 0) -> None:
        """Fold one response's headers in. ``jitter_ms`` spreads the wake-up after a 429."""
        self.probe_until = 0
        if seen.status == 429:
            if seen.reset_ms is not None:
                self.strikes = 0
                self.left, self.reset_at = 0, now + seen.reset_ms
                self.blocked_until = max(self.blocked_until, now + seen.reset_ms + jitter_ms)
            else:
                self.strikes = min(self.strikes + 1, NO_HEADER_429_MAX_STRIKES)
                backoff = NO_HEADER_429_BASE_MS * 2 ** (self.strikes - 1)
                self.left = None
                self.blocked_until = max(self.blocked_until, now + backoff + jitter_ms * 20)
            return
        if seen.left is None or seen.reset_ms is None:
            return
        self.strikes = 0
        estimate = now + seen.reset_ms
        if self.left is None or now >= self.reset_at or estimate > self.reset_at + NEW_WINDOW_TOLERANCE_MS:
            self.left, self.reset_at = seen.left, estimate
        else:
            # Same window: answers arrive out of order, so never raise the count, and keep the
            # latest reset estimate (it is the conservative one).
            self.left = min(self.left, seen.left)
            self.reset_at = max(self.reset_at, estimate)


class Budget:
    """Interface the client uses: ``acquire`` before a request, ``observe`` after it."""

    floor = DEFAULT_FLOOR
    max_wait_seconds = 300.0

    def reserve(self, now: int) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def observe(self, now: int, seen: Headers) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def acquire(self, clock=time.time, sleep=time.sleep) -> float:
        """Block until a slot is ours; returns the seconds waited. Gives up after
        ``max_wait_seconds`` with a RateLimitedError so the task layer reschedules instead."""
        waited = 0.0
        while True:
            wait_ms = self.reserve(int(clock() * 1000))
            if wait_ms <= 0:
                return waited
            if waited + wait_ms / 1000 > self.max_wait_seconds:
                raise RateLimitedError("The store's API quota is used up; try again later.",
                                       retry_after=wait_ms / 1000)
            pause = wait_ms / 1000 + random.uniform(0, 0.02)
            sleep(pause)
            waited += pause

    def observe_response(self, response, clock=time.time) -> None:
        seen = Headers.from_response(response.status_code, response.headers)
        self.observe(int(clock() * 1000), seen)


class LocalBudget(Budget):
    """One process only: the embedded default with a single worker, and unit tests."""

    def __init__(self, floor: int = DEFAULT_FLOOR):
        self.floor = floor
        self.state = BudgetState()
        self.lock = threading.Lock()

    def reserve(self, now: int) -> int:
        with self.lock:
            return self.state.reserve(now, self.floor)

    def observe(self, now: int, seen: Headers) -> None:
        with self.lock:
            self.state.observe(now, seen, random.randint(0, 250))


# The Lua twins of BudgetState.reserve / observe. A missing field reads as the dataclass default.
_LUA_LOAD = """
local s = redis.call('HMGET', KEYS[1], 'left', 'reset_at', 'blocked_until', 'probe_until', 'strikes')
local left = tonumber(s[1])
local reset_at = tonumber(s[2]) or 0
local blocked_until = tonumber(s[3]) or 0
local probe_until = tonumber(s[4]) or 0
local strikes = tonumber(s[5]) or 0
"""

_LUA_RESERVE = _LUA_LOAD + """
local now = tonumber(ARGV[1])
local floor = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local slice = tonumber(ARGV[4])
local probe_ttl = tonumber(ARGV[5])
if now < blocked_until then return blocked_until - now end
if left == nil or now >= reset_at then
  if probe_until > now then return math.min(slice, probe_until - now) end
  redis.call('HDEL', KEYS[1], 'left')
  redis.call('HSET', KEYS[1], 'probe_until', now + probe_ttl)
  redis.call('EXPIRE', KEYS[1], ttl)
  return 0
end
if left > floor then
  redis.call('HINCRBY', KEYS[1], 'left', -1)
  return 0
end
return math.max(1, reset_at - now)
"""

_LUA_OBSERVE = _LUA_LOAD + """
local now = tonumber(ARGV[1])
local status = tonumber(ARGV[2])
local seen_left = tonumber(ARGV[3])
local seen_reset = tonumber(ARGV[4])
local jitter = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local max_strikes = tonumber(ARGV[7])
local base = tonumber(ARGV[8])
local tolerance = tonumber(ARGV[9])
redis.call('HSET', KEYS[1], 'probe_until', 0)
redis.call('EXPIRE', KEYS[1], ttl)
if status == 429 then
  if seen_reset ~= nil then
    redis.call('HSET', KEYS[1], 'strikes', 0, 'left', 0, 'reset_at', now + seen_reset,
               'blocked_until', math.max(blocked_until, now + seen_reset + jitter))
  else
    strikes = math.min(strikes + 1, max_strikes)
    local backoff = base * (2 ^ (strikes - 1))
    redis.call('HDEL', KEYS[1], 'left')
    redis.call('HSET', KEYS[1], 'strikes', strikes,
               'blocked_until', math.max(blocked_until, now + backoff + jitter * 20))
  end
  return 1
end
if seen_left == nil or seen_reset == nil then return 0 end
local estimate = now + seen_reset
if left == nil or now >= reset_at or estimate > reset_at + tolerance then
  redis.call('HSET', KEYS[1], 'strikes', 0, 'left', seen_left, 'reset_at', estimate)
else
  redis.call('HSET', KEYS[1], 'strikes', 0, 'left', math.min(left, seen_left),
             'reset_at', math.max(reset_at, estimate))
end
return 1
"""


class RedisBudget(Budget):
    """Shared by every process that reaches the same Redis. Times come from each caller's clock:
    workers are NTP-synchronised machines, and a few ms of skew only shifts a wait by as much."""

    key_ttl_seconds = 86400

    def __init__(self, redis_client, key: str, floor: int = DEFAULT_FLOOR):
        self.redis = redis_client
        self.key = key
        self.floor = floor
        self._reserve = redis_client.register_script(_LUA_RESERVE)
        self._observe = redis_client.register_script(_LUA_OBSERVE)
        # While Redis is unreachable (restarting, failing over) this process budgets on its own
        # from the headers it sees, rather than failing the store call: the shared budget is a
        # courtesy to the other workers, and a 429 from the store is still handled as a 429.
        self._fallback = LocalBudget(floor)
        self._on_fallback = False

    def _redis_down(self, error: Exception) -> None:
        if not self._on_fallback:
            self._on_fallback = True
            logger.warning("shared API budget %s unreachable (%s): budgeting in this process until it is back",
                           self.key, error)

    def _redis_up(self) -> None:
        if self._on_fallback:
            self._on_fallback = False
            logger.info("shared API budget %s reachable again", self.key)

    def reserve(self, now: int) -> int:
        try:
            wait_ms = int(self._reserve(keys=[self.key], args=[now, self.floor, self.key_ttl_seconds,
                                                               POLL_SLICE_MS, PROBE_TTL_MS]))
        except REDIS_DOWN as error:
            self._redis_down(error)
            return self._fallback.reserve(now)
        self._redis_up()
        return wait_ms

    def observe(self, now: int, seen: Headers) -> None:
        self._fallback.observe(now, seen)  # kept current, so a fallback starts from what we know
        try:
            self._observe(keys=[self.key], args=[
                now, seen.status, "" if seen.left is None else seen.left,
                "" if seen.reset_ms is None else seen.reset_ms, random.randint(0, 250), self.key_ttl_seconds,
                NO_HEADER_429_MAX_STRIKES, NO_HEADER_429_BASE_MS, NEW_WINDOW_TOLERANCE_MS,
            ])
        except REDIS_DOWN as error:
            self._redis_down(error)

    def state(self) -> BudgetState:
        raw = {k.decode(): v.decode() for k, v in self.redis.hgetall(self.key).items()}
        return BudgetState(
            left=int(raw["left"]) if "left" in raw else None, reset_at=int(float(raw.get("reset_at", 0))),
            blocked_until=int(float(raw.get("blocked_until", 0))),
            probe_until=int(float(raw.get("probe_until", 0))), strikes=int(raw.get("strikes", 0)),
        )


@functools.lru_cache(maxsize=8)
def _redis(url: str):
    # One quick retry, then the caller's fallback: redis-py's default (several retries with
    # growing backoff) would hold every store call for seconds while Redis restarts.
    return redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1,
                                retry=Retry(ConstantBackoff(0.05), 1))


class DatabaseBudget(Budget):
    """Shared by every process through one database row (connector.RateBudget), for the
    embedded default where there is no Redis. One short transaction per request: the row lock
    (SQLite: the IMMEDIATE write transaction) makes reserve/observe atomic across processes."""

    FIELDS = ("left", "reset_at", "blocked_until", "probe_until", "strikes")

    def __init__(self, key: str, floor: int = DEFAULT_FLOOR):
        self.key = key[:100]
        self.floor = floor

    def _apply(self, change):
        from django.db import transaction

        from connector.models import RateBudget

        with transaction.atomic():
            row, _ = RateBudget.objects.select_for_update().get_or_create(store_key=self.key)
            state = BudgetState(**{name: getattr(row, name) for name in self.FIELDS})
            result = change(state)
            for name in self.FIELDS:
                setattr(row, name, getattr(state, name))
            row.save(update_fields=list(self.FIELDS))
        return result

    def reserve(self, now: int) -> int:
        return self._apply(lambda state: state.reserve(now, self.floor))

    def observe(self, now: int, seen: Headers) -> None:
        self._apply(lambda state: state.observe(now, seen, random.randint(0, 250)))


_local_budgets: dict[str, LocalBudget] = {}
_local_lock = threading.Lock()


def store_key(api_base_url: str, store_hash: str) -> str:
    digest = hashlib.sha1(f"{api_base_url.rstrip('/')}|{store_hash}".encode()).hexdigest()[:16]
    return f"{store_hash}:{digest}"


def budget_for(api_base_url: str, store_hash: str, *, redis_url: str | None = None,
               prefix: str = "mlc:bc:budget", local: bool = False) -> Budget:
    """The budget of one store: in Redis when one is configured, else in the database, so
    every worker process shares it either way. ``local=True`` keeps it in this process (tests)."""
    if redis_url is None:
        from django.conf import settings

        redis_url = getattr(settings, "COORDINATION_REDIS_URL", "") or ""
    key = f"{prefix}:{store_key(api_base_url, store_hash)}"
    if redis_url:
        return RedisBudget(_redis(redis_url), key)
    if not local:
        return DatabaseBudget(store_key(api_base_url, store_hash))
    with _local_lock:
        return _local_budgets.setdefault(key, LocalBudget())
