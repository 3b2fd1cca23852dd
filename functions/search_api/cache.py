"""Public search result pages, cached per instance, valid at the newest index generation seen.

Correct by construction rather than by expiry: search_sync bumps `search.generation` in the same
transaction as every change public search can show (approval, edit, takedown, reindex, price), and each
request reads the generation *after* it arrived (shared.search.generation.GenerationReader) before it
looks in the cache. Every entry is valid at `_generation`, the newest generation this instance has seen;
a request that reads a newer one first brings the cache up to it:

- whole-cache invalidation (no change log): every entry goes;
- match-based (SEARCH_CACHE_INVALIDATION=match, the local index): the steps since `_generation` are read
  once from the serving index's change log (shared/search/changes.py), each changed image as it was
  before and after; an entry goes if its MatchRule (shared/search/matching.py) says the image may be in
  its matching set on either side. A page is a function of its matching set (and the prices, whose change
  is an 'all' step), so an entry whose rule says no to every changed image still equals a fresh search.
  A step the log cannot describe (a price, a reindex swap, a gap, too many changes) drops everything.

A page is computed after its request read generation g, so it shows at least g's state. It is stored
only if no step after g that this instance has already applied may touch it (the recent steps are kept
for that check); later steps are applied to it like to any entry.

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
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Literal

import numpy as np

from functions.search_api.models import SearchParams
from shared.search.changes import Step
from shared.search.generation import Generation
from shared.search.matching import ImageState, MatchRule, anchors

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
    expires_at: float | None  # monotonic clock; None: until a change may touch it
    rule: MatchRule | None  # which images could move the page; None: any change drops it
    since: int  # the generation read before it was computed: the page shows at least that state


class _Dependents:
    """Which cached pages a changed image may touch, found without testing every page: pages by the
    lexemes one of which any image their keyword leg may match holds (matching.anchors), pages with a
    vector leg by one matrix product, the rest (browse, unreadable queries, no rule) always."""

    def __init__(self) -> None:
        self.by_lexeme: dict[str, set[Hashable]] = {}
        self.always: set[Hashable] = set()
        self.dim: int | None = None
        self.vectors = np.zeros((0, 0), dtype=np.float32)  # unit rows, one slot per page with a vector leg
        self.floors = np.zeros(0)
        self.slot_of: dict[Hashable, int] = {}
        self.key_at: list[Hashable | None] = []
        self.free: list[int] = []

    def add(self, key: Hashable, rule: MatchRule | None) -> None:
        found = anchors(rule.text) if rule is not None and rule.text is not None else frozenset()
        if rule is None or rule.browse or found is None:
            self.always.add(key)
            return
        for lexeme in found:
            self.by_lexeme.setdefault(lexeme, set()).add(key)
        if rule.vector is not None:
            self._add_vector(key, rule.vector, rule.max_distance)

    def _add_vector(self, key: Hashable, vector: np.ndarray, floor: float) -> None:
        if self.dim is None:
            self.dim = len(vector)
            self.vectors = np.zeros((0, self.dim), dtype=np.float32)
        norm = float(np.linalg.norm(vector))
        if len(vector) != self.dim or not norm > 0:
            self.always.add(key)  # another model's or a zero vector: not comparable by the matrix
            return
        if not self.free:  # grow by doubling
            old = len(self.key_at)
            size = max(64, 2 * old)
            vectors = np.zeros((size, self.dim), dtype=np.float32)
            vectors[:old] = self.vectors
            floors = np.full(size, -np.inf)
            floors[:old] = self.floors
            self.vectors, self.floors = vectors, floors
            self.key_at.extend([None] * (size - old))
            self.free = list(range(size - 1, old - 1, -1))
        slot = self.free.pop()
        self.vectors[slot] = vector / norm
        self.floors[slot] = floor
        self.slot_of[key], self.key_at[slot] = slot, key

    def remove(self, key: Hashable, rule: MatchRule | None) -> None:
        self.always.discard(key)
        if rule is not None and rule.text is not None:
            for lexeme in anchors(rule.text) or ():
                keys = self.by_lexeme.get(lexeme)
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self.by_lexeme[lexeme]
        slot = self.slot_of.pop(key, None)
        if slot is not None:
            self.floors[slot], self.key_at[slot] = -np.inf, None
            self.free.append(slot)

    def clear(self) -> None:
        self.__init__()

    def candidates(self, image: ImageState) -> set[Hashable]:
        found = set(self.always)
        for lexeme in image.lexemes:
            found |= self.by_lexeme.get(lexeme, set())
        if self.slot_of and image.embedding is not None:
            if len(image.embedding) != self.dim:
                found |= set(self.slot_of)
            else:
                norm = float(np.linalg.norm(image.embedding))
                similarity = self.vectors @ (image.embedding / norm) if norm > 0 else np.full(len(self.floors), np.nan)
                # A loose margin: the page's own rule decides with the exact distance; this only finds it.
                near = ~(1.0 - similarity > self.floors + 0.01)
                found |= {self.key_at[s] for s in np.flatnonzero(near) if self.key_at[s] is not None}
        return found


class ResultCache:
    """LRU over key -> response body, bounded by entries and bytes. Every entry is valid at `_generation`,
    the newest generation seen: when a request reads a newer one, the change log's steps since then are
    read once and the entries a changed image may touch go (`changes`), or all of them (no `changes`:
    whole-cache invalidation, or a step the log cannot describe)."""

    def __init__(
        self,
        *,
        max_entries: int,
        max_bytes: int,
        popular_ttl: float,
        settle_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        changes: Callable[[int, int], Awaitable[list[Step]]] | None = None,
        history_steps: int = 2048,
    ) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self.popular_ttl, self.settle_seconds, self.clock = popular_ttl, settle_seconds, clock
        self.changes, self.history_steps = changes, history_steps
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._dependents = _Dependents()
        self._bytes = 0
        self._generation = 0  # the newest generation seen; every entry is valid at it
        # The steps up to _generation from just after _history_from: a page computed from an older
        # generation is checked against the steps it may have missed before it is stored.
        self._history: deque[Step] = deque()
        self._history_from = 0
        self._advancing = asyncio.Lock()
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
        rule: Callable[[], Awaitable[MatchRule | None]] | None = None,
    ) -> tuple[bytes, Outcome]:
        """The cached page for `key` (valid at `generation` or newer), else `compute()` (once for concurrent
        callers). `rule`: which images could move the page, asked after a miss (None: any change)."""
        if generation.value > self._generation:
            await self._advance(generation.value)
        entry = self._entries.get(key)
        if entry is not None:
            if entry.expires_at is None or self.clock() < entry.expires_at:
                self._entries.move_to_end(key)
                self.stats["hit"] += 1
                self.stats["hit_across_changes"] += entry.since < self._generation  # kept by match-based rule
                return entry.body, "hit"
            self._remove(key)
        slot = (generation.value, key)
        pending = self._inflight.get(slot)
        if pending is not None:
            # The computation began after this generation was read, so it shows every change this caller
            # must see; waiting for it costs less than running the same query again.
            self.stats["coalesced"] += 1
            return await asyncio.shield(pending), "coalesced"
        self.stats["miss"] += 1
        task = asyncio.ensure_future(self._fill(slot, generation, compute, popular, rule))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # nobody left waiting: no warning
        self._inflight[slot] = task
        return await asyncio.shield(task), "miss"

    async def _advance(self, target: int) -> None:
        async with self._advancing:
            if target <= self._generation:
                return  # another request advanced while this one waited
            if not self._entries and not self._inflight:
                steps = [Step(target, None)]  # nothing to check: no need to read what changed
            elif self.changes is None:
                steps = [Step(target, None)]
            else:
                steps = await self.changes(self._generation, target)
            for step in steps:
                self._apply(step)
            self._generation = target

    def _apply(self, step: Step) -> None:
        self._history.append(step)
        if len(self._history) > self.history_steps:
            self._history_from = self._history.popleft().generation
        if step.images is None:
            self.stats["invalidated"] += len(self._entries)
            self._entries.clear()
            self._dependents.clear()
            self._bytes = 0
            return
        doomed: set[Hashable] = set()
        for image in step.images:
            for key in self._dependents.candidates(image) - doomed:
                rule = self._entries[key].rule
                if rule is None or rule.may_match(image):
                    doomed.add(key)
        for key in doomed:
            self._remove(key)
        self.stats["invalidated"] += len(doomed)

    def _unchanged_since(self, since: int, rule: MatchRule | None) -> bool:
        """Whether no step after `since` (up to _generation) may touch a page with this rule."""
        if since >= self._generation:
            return True
        if since < self._history_from:
            return False
        for step in reversed(self._history):
            if step.generation <= since:
                break
            if step.images is None or rule is None or any(rule.may_match(image) for image in step.images):
                return False
        return True

    async def _fill(
        self,
        slot: tuple[int, Hashable],
        generation: Generation,
        compute: Callable[[], Awaitable[bytes]],
        popular: bool,
        describe: Callable[[], Awaitable[MatchRule | None]] | None,
    ) -> bytes:
        try:
            started = self.clock()
            body = await compute()
            rule = await describe() if describe is not None and self.changes is not None else None
            if not self._unchanged_since(generation.value, rule):
                self.stats["not_stored_superseded"] += 1
            elif generation.age_seconds < self.settle_seconds:
                self.stats["not_stored_settling"] += 1
            elif len(body) > self.max_bytes:
                self.stats["not_stored_too_big"] += 1
            else:
                entry = _Entry(body, started + self.popular_ttl if popular else None, rule, generation.value)
                self._store(slot[1], entry)
            return body
        finally:
            self._inflight.pop(slot, None)

    def _store(self, key: Hashable, entry: _Entry) -> None:
        self._remove(key)
        self._entries[key] = entry
        self._dependents.add(key, entry.rule)
        self._bytes += len(entry.body)
        while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
            self._remove(next(iter(self._entries)))
            self.stats["evicted"] += 1

    def _remove(self, key: Hashable) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry.body)
            self._dependents.remove(key, entry.rule)
