"""The result cache's defining property, on real Postgres: after any sequence of catalogue changes
(approvals, edits, takedowns, rejections, price changes, sales), every search answered by a cached
instance, with match-based or whole-cache invalidation, equals a fresh uncached search.

Small vocabularies (five words, five topics, two categories and colours) make the changes often touch and
often miss the cached queries, and the queries repeat, so pages are served from the cache across changes.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.bus.events import ImageRejected, ImageRemoved, ImageUpdated, Price, PricingUpdated
from shared.db import connect_database
from shared.search.postgres import PostgresSearchIndex
from tests.fixtures.postgres import with_database
from tests.fixtures.search_corpus import T0, approved, listing, near, topic_vector
from tests.integration.test_search_cache import order
from tests.integration.test_search_cache_invalidation import Instance, apply

WORDS = ["dog", "cat", "beach", "red", "city"]
SEEN: Counter[str] = Counter()  # what the examples exercised: a run that never hit across a change fails

images = st.fixed_dictionaries(
    {
        "words": st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
        "topic": st.sampled_from(WORDS),
        "noise": st.sampled_from([0.1, 1.5, 6.0]),  # cosine distance to the topic about 0.005, 0.5, 0.95
        "category": st.sampled_from(["nature", "city"]),
        "colors": st.lists(st.sampled_from(["blue", "red"]), max_size=2, unique=True),
        "wide": st.booleans(),
        "usage": st.sampled_from(["commercial", "editorial"]),
        "unsafe": st.sampled_from([False, False, False, True]),
    }
)
# Few enough that they repeat (a page is cached, then asked again after changes); every leg and filter.
QUERIES = [
    {"q": "dog"},
    {"q": "dog", "mode": "keyword", "per_page": 2},
    {"q": "cat beach", "mode": "semantic"},
    {"q": "dog -cat", "sort": "newest", "category": "nature"},
    {"q": '"red dog"', "mode": "keyword"},
    {"q": "dog or city", "color": "blue"},
    {"q": "the"},
    {},
    {"category": "city", "orientation": "landscape", "safe": False, "per_page": 2, "page": 2},
    {"q": "beach", "license": "editorial", "sort": "newest"},
    {"q": "city", "mode": "semantic", "orientation": "portrait", "per_page": 2},
]
queries = st.sampled_from(QUERIES)
slot = st.integers(0, 15)
_OPERATION = {
    "approve": st.tuples(st.just("approve"), images),
    "edit": st.tuples(st.just("edit"), slot, images),
    "takedown": st.tuples(st.just("takedown"), slot),
    "reject": st.tuples(st.just("reject"), slot),
    "price": st.tuples(st.just("price"), st.integers(100, 2000)),
    "sale": st.tuples(st.just("sale"), slot),
    "search": st.tuples(st.just("search"), queries),
}
# Searches half the time (a cached page is asked again between changes); a price change, which drops
# every page, now and then.
operations = st.sampled_from(
    ["search"] * 10 + ["approve"] * 3 + ["edit"] * 3 + ["takedown", "reject", "sale"] * 1 + ["price"]
).flatmap(_OPERATION.__getitem__)


SERIAL = itertools.count()


def image_listing(spec: dict):
    # A distinct vector per image: the legs rank ties (equal distance, equal rank and date) in whatever
    # order the rows lie, which a sale's row update moves, cached or not; no two images here tie.
    return listing(
        title=" ".join(spec["words"]),
        category=spec["category"],
        colors=spec["colors"],
        width=4000 if spec["wide"] else 3000,
        height=3000 if spec["wide"] else 4000,
        usage=spec["usage"],
        safety_score=0.9 if spec["unsafe"] else 0.01,
        embedding=near(topic_vector(spec["topic"]), spec["noise"], seed=next(SERIAL)),
    )


async def run_example(admin_dsn: str, template: str, steps: list[tuple]) -> None:
    name = f"p_{uuid.uuid4().hex[:16]}"
    await _admin(admin_dsn, f'create database "{name}" template "{template}"')
    db = await connect_database(with_database(admin_dsn, name), min_size=1, max_size=4)
    try:
        index = PostgresSearchIndex(db)
        await index.ensure_ready()
        fresh = Instance(db, index, match=None)
        cached = [Instance(db, index, match=True), Instance(db, index, match=True), Instance(db, index, match=False)]
        live: list[list] = []  # [image_id, revision] of every image ever approved (taken down ones stay)
        price = 1
        for step in steps:
            kind, *args = step
            if kind == "search":
                want, _ = await fresh.search(**args[0])
                for instance in cached:
                    page, outcome = await instance.search(**args[0])
                    assert page == want, f"a {outcome} differs from a fresh search: {args[0]} after {steps}"
                    SEEN[outcome] += 1
                continue
            if kind == "approve":
                event = approved(image_listing(args[0]), approved_at=T0 + timedelta(minutes=next(SERIAL)))
                live.append([event.image_id, event.revision])
            elif kind == "price":
                price += 1
                event = PricingUpdated(revision=price, prices={"standard": Price(amount_minor=args[0], currency="EUR")})
            elif not live:
                continue
            else:
                target = live[args[0] % len(live)]
                target[1] += 1
                image_id, revision = target
                if kind == "edit":
                    event = ImageUpdated(
                        image_id=image_id, contributor_id="carol", revision=revision, listing=image_listing(args[1])
                    )
                elif kind == "takedown":
                    event = ImageRemoved(image_id=image_id, contributor_id="carol", revision=revision, reason="x")
                elif kind == "reject":
                    event = ImageRejected(image_id=image_id, contributor_id="carol", revision=revision, reason_code="q")
                else:
                    event = order(image_id)
            await apply(db, index, event)
        for instance in cached:
            SEEN["hit across changes" if instance.rules else "hit across changes, whole cache"] += instance.cache.stats[
                "hit_across_changes"
            ]
    finally:
        await db.close()
        await _admin(admin_dsn, f'drop database if exists "{name}" with (force)')


async def _admin(admin_dsn: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_cached_page_after_any_sequence_of_changes_equals_a_fresh_search(pg_admin_dsn, pg_template):
    loop = asyncio.new_event_loop()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(operations, min_size=10, max_size=60))
    def example(steps):
        loop.run_until_complete(run_example(pg_admin_dsn, pg_template, steps))

    try:
        example()
    finally:
        loop.close()
    assert SEEN["hit across changes"] >= 50 and SEEN["miss"] > 0, SEEN
    print(dict(SEEN))
