"""Request rate limiting with GCRA (the generic cell rate algorithm).

GCRA keeps one number per key, the theoretical arrival time (TAT) of the next
request, which gives a smooth `limit` per `period` with bursts up to `limit`,
and an exact Retry-After. The in-process store is fine for one worker; a
shared store (Redis, Postgres) can replace it behind the `RateLimiter`
protocol when the app scales out, since each instance only sees its share.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    # Seconds until this request would be allowed; 0 when allowed.
    retry_after: float
    # Requests still allowed right now after this one.
    remaining: int

    @property
    def retry_after_header(self) -> str:
        """Retry-After is whole seconds; round up so a client that obeys it succeeds."""
        return str(max(1, math.ceil(self.retry_after)))


class RateLimiter(Protocol):
    async def hit(self, key: str, *, limit: int, period: float, cost: int = 1) -> RateDecision:
        """Count one request (of `cost` units) against `key`, at most `limit` per `period` seconds."""
        ...


class InMemoryRateLimiter:
    """GCRA in process memory, bounded to `max_keys` keys.

    A key whose TAT has passed is indistinguishable from a key never seen, so
    idle keys are dropped as we go. If more than `max_keys` keys are active at
    once (a flood of spoofed client addresses), the least recently used are
    dropped, which resets their budget: we accept that rather than grow without
    bound.
    """

    def __init__(self, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic) -> None:
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self._max_keys = max_keys
        self._clock = clock
        self._tat: OrderedDict[str, float] = OrderedDict()
        # The Functions worker may call from several threads (sync functions run in a pool).
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tat)

    async def hit(self, key: str, *, limit: int, period: float, cost: int = 1) -> RateDecision:
        return self.hit_now(key, limit=limit, period=period, cost=cost)

    def hit_now(self, key: str, *, limit: int, period: float, cost: int = 1) -> RateDecision:
        if limit < 1 or period <= 0 or cost < 1:
            raise ValueError("limit and cost must be >= 1 and period > 0")
        interval = period / limit  # one request "costs" this much time
        with self._lock:
            now = self._clock()
            self._evict_idle(now)
            tat = max(self._tat.get(key, now), now)
            new_tat = tat + interval * cost
            allow_at = new_tat - period
            if allow_at > now:
                return RateDecision(allowed=False, retry_after=allow_at - now, remaining=0)
            self._tat[key] = new_tat
            self._tat.move_to_end(key)
            while len(self._tat) > self._max_keys:
                self._tat.popitem(last=False)
            remaining = math.floor((period - (new_tat - now)) / interval + 1e-9)
            return RateDecision(allowed=True, retry_after=0.0, remaining=max(0, remaining))

    def _evict_idle(self, now: float) -> None:
        # Oldest-touched first; stop at the first key still inside its window so
        # each call does O(evicted) work.
        while self._tat:
            key, tat = next(iter(self._tat.items()))
            if tat > now:
                break
            del self._tat[key]
