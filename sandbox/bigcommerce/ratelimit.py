"""BigCommerce's per-store request quota (150 requests per 30 s window on Standard/Plus plans).

Every response carries the four ``X-Rate-Limit-*`` headers; once the window's quota is used up the
store answers 429 until the window resets. The limiter also keeps a per-request log so tests can
assert that a client honoured the reset: a request that arrives after a 429 but before the reset that
429 announced is flagged ``premature`` with how early it came.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Decision:
    allowed: bool
    quota: int
    left: int
    window_ms: int
    reset_ms: int
    storm: bool = False

    def headers(self) -> dict[str, str]:
        headers = {
            "X-Rate-Limit-Requests-Left": str(self.left),
            "X-Rate-Limit-Requests-Quota": str(self.quota),
            "X-Rate-Limit-Time-Window-Ms": str(self.window_ms),
            "X-Rate-Limit-Time-Reset-Ms": str(self.reset_ms),
        }
        if not self.allowed:
            headers["X-Retry-After"] = str(max(1, -(-self.reset_ms // 1000)))
        return headers


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.lock = threading.Lock()
        self.window_start: float | None = None
        self.used = 0
        self.blocked_until = 0.0  # the reset announced by the latest 429
        self.storm_until = 0.0
        self.log: list[dict] = []

    def start_storm(self, seconds: float) -> None:
        with self.lock:
            self.storm_until = self.clock() + seconds if seconds > 0 else 0.0

    def _roll(self, now: float, window_s: float) -> None:
        if self.window_start is None or now >= self.window_start + window_s:
            self.window_start = now
            self.used = 0

    def peek(self, quota: int, window_ms: int) -> Decision:
        """Headers for a response that does not consume quota (e.g. an injected 503)."""
        with self.lock:
            now = self.clock()
            self._roll(now, window_ms / 1000)
            reset = int(max(0.0, self.window_start + window_ms / 1000 - now) * 1000)
            return Decision(True, quota, max(0, quota - self.used), window_ms, reset)

    def consume(self, quota: int, window_ms: int, method: str = "", path: str = "") -> Decision:
        with self.lock:
            now = self.clock()
            entry = {"at": now, "method": method, "path": path, "limited": False, "premature": False,
                     "early_ms": 0}
            if now < self.blocked_until:
                entry["premature"] = True
                entry["early_ms"] = int((self.blocked_until - now) * 1000)
            if now < self.storm_until:
                reset = int((self.storm_until - now) * 1000) or 1
                decision = Decision(False, quota, 0, window_ms, reset, storm=True)
                self.blocked_until = self.storm_until
            else:
                window_s = window_ms / 1000
                self._roll(now, window_s)
                reset = int(max(0.0, self.window_start + window_s - now) * 1000)
                if self.used >= quota:
                    decision = Decision(False, quota, 0, window_ms, reset or 1)
                    self.blocked_until = self.window_start + window_s
                else:
                    self.used += 1
                    decision = Decision(True, quota, quota - self.used, window_ms, reset)
            entry["limited"] = not decision.allowed
            entry["reset_ms"] = decision.reset_ms
            self.log.append(entry)
            return decision

    def summary(self) -> dict:
        with self.lock:
            limited = [e for e in self.log if e["limited"]]
            premature = [e for e in self.log if e["premature"]]
            return {
                "requests": len(self.log),
                "rate_limited": len(limited),
                "premature": len(premature),
                "max_early_ms": max((e["early_ms"] for e in premature), default=0),
            }
