"""Match-based invalidation in the result cache, without a database: the change log's steps (fed by a
fake log) drop exactly the pages a changed image may touch, and a page computed from an older generation
is stored only if none of the steps it may have missed touch it."""

from __future__ import annotations

import asyncio

import numpy as np

from functions.search_api.cache import ResultCache
from shared.search.changes import Step
from shared.search.generation import Generation
from shared.search.matching import MatchRule, half, parse_tsquery
from shared.search.port import SearchFilters
from tests.unit.test_search_matching import image


class Log:
    """The steps a ChangeReader would return, by generation."""

    def __init__(self) -> None:
        self.steps: dict[int, Step] = {}
        self.reads = 0

    def add(self, generation: int, *images) -> None:
        self.steps[generation] = Step(generation, images or None)

    async def __call__(self, after: int, upto: int) -> list[Step]:
        self.reads += 1
        return [self.steps[g] for g in range(after + 1, upto + 1)]


def words(text: str, **filters) -> MatchRule:
    return MatchRule(SearchFilters(**filters), parse_tsquery(text))


def semantic(vector) -> MatchRule:
    return MatchRule(SearchFilters(), None, half(vector), max_distance=0.6)


def page(body: bytes):
    async def compute() -> bytes:
        return body

    return compute


def rule_of(r: MatchRule):
    async def describe() -> MatchRule:
        return r

    return describe


def g(n: int) -> Generation:
    return Generation(n, 60.0)


async def cache_with(log: Log, **pages: MatchRule) -> ResultCache:
    c = ResultCache(max_entries=100, max_bytes=100_000, popular_ttl=30.0, changes=log)
    for name, r in pages.items():
        await c.get(g(1), name, page(name.encode()), rule=rule_of(r))
    return c


async def outcome(c: ResultCache, generation: int, name: str) -> str:
    return (await c.get(g(generation), name, page(b"new"), rule=None))[1]


async def test_a_step_drops_only_the_pages_its_images_may_touch():
    log, e = Log(), np.eye(8)
    c = await cache_with(
        log,
        dog=words("'dog'"),
        dog_in_town=words("'dog'", category="city"),
        either=words("'dog' | 'citi'"),
        negated=words("!'cat'"),
        meaning=semantic(e[0]),
        browse_city=MatchRule(SearchFilters(category="city")),
    )
    log.add(2, image("boat", embedding=half(e[1])))  # category nature, far from e[0], no query word
    assert [await outcome(c, 2, n) for n in ("dog", "dog_in_town", "either", "meaning", "browse_city")] == ["hit"] * 5
    assert await outcome(c, 2, "negated") == "miss"  # a negation may match anything

    log.add(3, image("citi", embedding=half(e[0] + 0.1 * e[1]), category="city"))
    assert await outcome(c, 3, "dog") == "hit"
    assert [await outcome(c, 3, n) for n in ("either", "meaning", "browse_city")] == ["miss"] * 3
    assert await outcome(c, 3, "dog_in_town") == "hit"  # no "dog" and not near a keyword-only page
    assert log.reads == 2  # once per newer generation, not per request


async def test_a_step_the_log_cannot_describe_drops_every_page():
    log = Log()
    c = await cache_with(log, dog=words("'dog'"), cat=words("'cat'"))
    log.add(2)  # a price change, a reindex swap or a gap
    assert await outcome(c, 2, "dog") == "miss" and await outcome(c, 2, "cat") == "miss"


async def test_a_page_computed_from_an_older_generation_is_stored_unless_a_step_it_missed_touches_it():
    log = Log()
    c = await cache_with(log)
    gate = asyncio.Event()

    async def slow(body: bytes) -> bytes:
        await gate.wait()
        return body

    dog = asyncio.create_task(c.get(g(1), "dog", lambda: slow(b"dog"), rule=rule_of(words("'dog'"))))
    cat = asyncio.create_task(c.get(g(1), "cat", lambda: slow(b"cat"), rule=rule_of(words("'cat'"))))
    await asyncio.sleep(0)
    log.add(2, image("dog"))
    await c.get(g(2), "other", page(b"other"))  # the cache moves on while both are computed
    gate.set()
    await asyncio.gather(dog, cat)

    assert await outcome(c, 2, "cat") == "hit"
    assert await outcome(c, 2, "dog") == "miss"
    assert c.stats["not_stored_superseded"] == 1


async def test_without_a_change_log_every_step_drops_every_page():
    c = ResultCache(max_entries=100, max_bytes=100_000, popular_ttl=30.0)
    await c.get(g(1), "dog", page(b"dog"), rule=rule_of(words("'dog'")))
    assert await outcome(c, 1, "dog") == "hit"
    assert await outcome(c, 2, "dog") == "miss"
