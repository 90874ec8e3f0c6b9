"""Exponential backoff with full jitter, for an unreachable server or an unavailable Sage."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


def backoff_delay(failures: int, *, base: float = 1.0, cap: float = 300.0, rng: random.Random | None = None) -> float:
    """Seconds to wait after ``failures`` consecutive failures (1 -> up to 2*base).

    The draw between half the ceiling and the ceiling ("equal jitter") keeps a minimum pause while
    spreading a fleet of agents that lost the server at the same moment, so they do not return in
    lockstep.
    """
    if failures <= 0:
        return 0.0
    ceiling = min(cap, base * (2 ** min(failures, 30)))
    return (rng or random).uniform(ceiling / 2, ceiling)


@dataclass
class Backoff:
    base: float = 1.0
    cap: float = 300.0
    failures: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def failure(self) -> float:
        self.failures += 1
        return backoff_delay(self.failures, base=self.base, cap=self.cap, rng=self.rng)

    def success(self) -> None:
        self.failures = 0
