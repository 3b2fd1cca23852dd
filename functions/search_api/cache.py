"""Public search result pages, cached per instance and keyed by the index generation.

Correct by construction rather than by expiry: search_sync bumps `search.generation` in the same
transaction as every change public search can show (approval, edit, takedown, reindex, price), and each
request reads the generation *after* it arrived (shared.search.generation.GenerationReader) before it
looks in the cache. A page cached under generation g was computed after every change counted up to g
committed, so a request that reads g gets a page at least that new; once a change commits, the next
request reads g+1 and misses. The entries of older generations can never be hit again and are dropped
the moment a newer generation is seen.

Bounded staleness, by design:
- sort=popular: sales do not bump the generation (an order per second would empty the cache every
  second), so a popular-order page is served for at most `popular_ttl` seconds after it was computed.
  Which images match, and their prices, still change at once (those bump the generation).
- a backend that shows writes late (Azure AI Search: about 1 s after the call): a page computed within
  `settle_seconds` of the newest change is served but not stored, so the cache never pins a page that
  predates the write to the generation that counts it.

Concurrent identical misses are computed once: the others wait for the first (a Zipf head of popular
queries would otherwise run the same query once per concurrent client when it misses).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Literal

from functions.search_api.models import SearchParams
from shared.search.generation import Generation

Outcome = Literal["hit", "miss", "coalesced"]
# Who the page was computed for. Public search answers every caller the same today (explain=true, which
# shows ranking internals to admins, is never cached); a role-dependent view would get its own audience.
PUBLIC: str = "public"


def search_key(params: SearchParams, audience: str = PUBLIC) -> tuple[Hashable, ...]:
    """Every parameter that changes the answer, normalised so equivalent requests share an entry.

    Built from every field of SearchParams (a new parameter is part of the key without anyone
    remembering to add it); explain is left out because explained searches are never cached.
    """
    values: dict[str, Any] = params.model_dump(exclude={"explain"})
    # Runs of spaces split words the same way for the keyword leg and the text encoder; "" is no query.
    values["q"] = (" ".join(params.q.split()) or None) if params.q else None
    values["color"] = params.color.lower() if params.color else None  # the filter compares lower-case
    if params.added_after is not None:
        values["added_after"] = params.added_after.astimezone(UTC).isoformat()  # the same instant, one key
    return (audience, *sorted(values.items()))


@dataclass(frozen=True)
class _Entry:
    body: bytes
    expires_at: float | None  # monotonic clock; None: until the generation moves


class ResultCache:
    """LRU over (generation, key) -> response body, bounded by entries and bytes."""

    def __init__(
        self,
        *,
        max_entries: int,
        max_bytes: int,
        popular_ttl: float,
        settle_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.popular_ttl, self.settle_seconds, self.clock = popular_ttl, settle_seconds, clock
        self._entries: OrderedDict[tuple[int, Hashable], _Entry] = OrderedDict()
        self._bytes = 0
        self._generation = 0  # the newest generation seen
        self._inflight: dict[tuple[int, Hashable], asyncio.Future[bytes]] = {}
        self.stats: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    async def get(
        self,
        generation: Generation,
        key: Hashable,
        compute: Callable[[], Awaitable[bytes]],
        *,
        popular: bool = False,
    ) -> tuple[bytes, Outcome]:
        """The cached page for `key` at `generation`, else `compute()` (once for concurrent callers)."""
        if generation.value > self._generation:
            self._generation = generation.value
            self._entries.clear()  # older generations can never be asked for again
            self._bytes = 0
        slot = (generation.value, key)
        entry = self._entries.get(slot)
        if entry is not None:
            if entry.expires_at is None or self.clock() < entry.expires_at:
                self._entries.move_to_end(slot)
                self.stats["hit"] += 1
                return entry.body, "hit"
            self._remove(slot)
        pending = self._inflight.get(slot)
        if pending is not None:
            # The computation began after this generation was read, so it shows every change this caller
            # must see; waiting for it costs less than running the same query again.
            self.stats["coalesced"] += 1
            return await asyncio.shield(pending), "coalesced"
        self.stats["miss"] += 1
        task = asyncio.ensure_future(self._fill(slot, generation, compute, popular))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # nobody left waiting: no warning
        self._inflight[slot] = task
        return await asyncio.shield(task), "miss"

    async def _fill(
        self, slot: tuple[int, Hashable], generation: Generation, compute: Callable[[], Awaitable[bytes]], popular: bool
    ) -> bytes:
        try:
            started = self.clock()
            body = await compute()
            if generation.value < self._generation:
                self.stats["not_stored_superseded"] += 1
            elif generation.age_seconds < self.settle_seconds:
                self.stats["not_stored_settling"] += 1
            elif len(body) > self.max_bytes:
                self.stats["not_stored_too_big"] += 1
            else:
                self._store(slot, _Entry(body, started + self.popular_ttl if popular else None))
            return body
        finally:
            self._inflight.pop(slot, None)

    def _store(self, slot: tuple[int, Hashable], entry: _Entry) -> None:
        self._remove(slot)
        self._entries[slot] = entry
        self._bytes += len(entry.body)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted.body)
            self.stats["evicted"] += 1

    def _remove(self, slot: tuple[int, Hashable]) -> None:
        entry = self._entries.pop(slot, None)
        if entry is not None:
            self._bytes -= len(entry.body)
