"""The search result cache's rules without a database: what makes two requests the same page, how the
cache is bounded, when an entry may be served, and how the generation is read once for many callers."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta, timezone

import pytest

from functions.search_api.cache import PUBLIC, ResultCache, search_key
from functions.search_api.models import SearchParams
from shared.search.generation import Generation, GenerationReader

# One value per parameter that differs from the default: each must give another page.
DIFFERENT = {
    "q": "dog",
    "mode": "keyword",
    "sort": "popular",
    "facets": False,
    "page": 2,
    "per_page": 48,
    "category": "animals",
    "orientation": "portrait",
    "color": "blue",
    "contributor": "carol",
    "license": "editorial",
    "safe": False,
    "min_width": 3000,
    "min_height": 2000,
    "added_after": datetime(2026, 1, 1, tzinfo=UTC),
}


def key(**params):
    return search_key(SearchParams(**params))


def test_every_parameter_that_changes_the_answer_is_in_the_key():
    # Guards new parameters too: a field added to SearchParams must be listed here (and so be thought about).
    assert set(DIFFERENT) == set(SearchParams.model_fields) - {"explain"}
    base = key(q="cat")
    for name, value in DIFFERENT.items():
        changed = key(**{"q": "cat", name: value}) if name != "q" else key(q=value)
        assert changed != base, name


def test_two_parameters_that_differ_never_collide():
    keys = {key(**{name: value}) for name, value in DIFFERENT.items()} | {key()}
    assert len(keys) == len(DIFFERENT) + 1


def test_equivalent_requests_share_a_page():
    assert key(q="  dog   on a  beach ") == key(q="dog on a beach")
    assert key(q="") == key(q="   ") == key()
    assert key(color="Blue") == key(color="blue")
    instant = datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert key(added_after=instant) == key(added_after=instant.astimezone(timezone(timedelta(hours=2))))
    assert key(q="dog", explain=True) == key(q="dog")  # explained searches bypass the cache anyway


def test_words_keep_their_case_and_order():
    # websearch syntax (OR, quotes, -exclusion) and the encoder may read them differently: not merged.
    assert key(q="dog OR cat") != key(q="dog or cat")
    assert key(q="dog cat") != key(q="cat dog")
    assert key(q='"red car"') != key(q="red car")


def test_the_audience_is_part_of_the_key():
    params = SearchParams(q="dog")
    assert search_key(params, PUBLIC) != search_key(params, "admin")


class Pages:
    """compute() callables that count their calls."""

    def __init__(self) -> None:
        self.calls = 0

    def page(self, body: bytes, gate: asyncio.Event | None = None, error: Exception | None = None):
        async def compute() -> bytes:
            self.calls += 1
            if gate is not None:
                await gate.wait()
            if error is not None:
                raise error
            return body

        return compute


def cache(**overrides) -> ResultCache:
    return ResultCache(**{"max_entries": 100, "max_bytes": 10_000, "popular_ttl": 30.0, **overrides})


G1, G2 = Generation(1, 60.0), Generation(2, 60.0)


async def test_a_page_is_served_from_the_cache_until_the_generation_moves():
    c, pages = cache(), Pages()

    assert await c.get(G1, "k", pages.page(b"old")) == (b"old", "miss")
    assert await c.get(G1, "k", pages.page(b"old")) == (b"old", "hit")
    assert await c.get(G2, "k", pages.page(b"new")) == (b"new", "miss")
    assert pages.calls == 2


async def test_a_newer_generation_drops_every_older_page_and_a_late_old_result_is_not_stored():
    c, pages = cache(), Pages()
    await c.get(G1, "a", pages.page(b"a1"))
    await c.get(G2, "b", pages.page(b"b2"))
    assert len(c) == 1
    # A request that read generation 1 before the change finishes now: served, never stored.
    assert await c.get(G1, "c", pages.page(b"c1")) == (b"c1", "miss")
    assert len(c) == 1 and c.stats["not_stored_superseded"] == 1


async def test_the_cache_is_bounded_by_entries_and_bytes_least_recently_used_first():
    c, pages = cache(max_entries=2), Pages()
    await c.get(G1, "a", pages.page(b"a"))
    await c.get(G1, "b", pages.page(b"b"))
    await c.get(G1, "a", pages.page(b"a"))  # a is now the most recently used
    await c.get(G1, "c", pages.page(b"c"))
    assert (await c.get(G1, "a", pages.page(b"a")))[1] == "hit"
    assert (await c.get(G1, "b", pages.page(b"b")))[1] == "miss"

    c = cache(max_bytes=10)
    await c.get(G1, "x", pages.page(b"12345"))
    await c.get(G1, "y", pages.page(b"123456"))
    assert len(c) == 1 and c.size_bytes == 6
    await c.get(G1, "z", pages.page(b"12345678901"))  # larger than the whole cache: served, not kept
    assert c.stats["not_stored_too_big"] == 1 and c.size_bytes == 6


async def test_a_popular_page_is_served_for_at_most_the_ttl():
    now = [100.0]
    c, pages = cache(popular_ttl=30.0, clock=lambda: now[0]), Pages()
    await c.get(G1, "p", pages.page(b"order 1"), popular=True)
    now[0] += 29.9
    assert await c.get(G1, "p", pages.page(b"order 2"), popular=True) == (b"order 1", "hit")
    now[0] += 0.2
    assert await c.get(G1, "p", pages.page(b"order 2"), popular=True) == (b"order 2", "miss")


async def test_a_page_computed_while_the_newest_change_settles_is_served_but_not_stored():
    c, pages = cache(settle_seconds=2.0), Pages()
    assert await c.get(Generation(5, 0.5), "k", pages.page(b"maybe before the write")) == (
        b"maybe before the write",
        "miss",
    )
    assert await c.get(Generation(5, 2.5), "k", pages.page(b"after")) == (b"after", "miss")
    assert await c.get(Generation(5, 3.0), "k", pages.page(b"later")) == (b"after", "hit")
    assert c.stats["not_stored_settling"] == 1


async def test_concurrent_identical_misses_compute_once():
    c, pages, gate = cache(), Pages(), asyncio.Event()
    waiting = [asyncio.create_task(c.get(G1, "k", pages.page(b"page", gate))) for _ in range(8)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*waiting)

    assert pages.calls == 1
    assert {body for body, _ in results} == {b"page"}
    assert sorted(outcome for _, outcome in results) == ["coalesced"] * 7 + ["miss"]


async def test_a_failed_computation_fails_its_waiters_and_is_not_cached():
    c, pages, gate = cache(), Pages(), asyncio.Event()
    waiting = [
        asyncio.create_task(c.get(G1, "k", pages.page(b"", gate, error=RuntimeError("db down")))) for _ in range(3)
    ]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)

    assert all(isinstance(r, RuntimeError) for r in results)
    assert await c.get(G1, "k", pages.page(b"fine")) == (b"fine", "miss")


async def test_a_caller_that_gives_up_does_not_cancel_the_page_others_wait_for():
    c, pages, gate = cache(), Pages(), asyncio.Event()
    first = asyncio.create_task(c.get(G1, "k", pages.page(b"page", gate)))
    second = asyncio.create_task(c.get(G1, "k", pages.page(b"page", gate)))
    await asyncio.sleep(0)
    first.cancel()
    gate.set()
    assert await second == (b"page", "coalesced")
    assert (await c.get(G1, "k", pages.page(b"other")))[1] == "hit"


class FakeGenerationDb:
    """A Database whose generation query waits for a gate, so a test can hold a read in flight."""

    def __init__(self) -> None:
        self.value = 1
        self.gate = asyncio.Event()
        self.gate.set()
        self.reads = 0

    @asynccontextmanager
    async def connection(self):
        yield self

    async def fetchrow(self, sql: str):
        self.reads += 1
        value = self.value  # the snapshot is taken when the query starts
        await self.gate.wait()
        return {"value": value, "age": 1.0}


async def started(db: FakeGenerationDb, reads: int) -> None:
    while db.reads < reads:
        await asyncio.sleep(0)


async def test_concurrent_callers_share_one_generation_read():
    db = FakeGenerationDb()
    reader = GenerationReader(db)
    db.gate.clear()
    first = asyncio.create_task(reader.current())
    await started(db, 1)
    later = [asyncio.create_task(reader.current()) for _ in range(10)]
    await asyncio.sleep(0)
    db.gate.set()
    values = await asyncio.gather(first, *later)

    assert {g.value for g in values} == {1}
    assert db.reads == 2  # the one in flight, and one more for all who came while it ran


async def test_a_caller_never_shares_a_read_that_started_before_it_arrived():
    db = FakeGenerationDb()
    reader = GenerationReader(db)
    db.gate.clear()
    early = asyncio.create_task(reader.current())
    await started(db, 1)  # its read has started, with generation 1
    db.value = 2  # a change commits
    late = asyncio.create_task(reader.current())  # arrives after the change: must see it
    await asyncio.sleep(0)
    db.gate.set()

    assert (await early).value == 1
    assert (await late).value == 2


async def test_a_failed_generation_read_fails_its_callers_and_the_next_caller_reads_again():
    class Failing(FakeGenerationDb):
        async def fetchrow(self, sql):
            self.reads += 1
            if self.reads == 1:
                raise ConnectionError("gone")
            return await super().fetchrow(sql)

    reader = GenerationReader(Failing())
    with pytest.raises(ConnectionError):
        await reader.current()
    assert (await reader.current()).value == 1
