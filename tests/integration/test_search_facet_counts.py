"""Browsing on the low-cardinality filters, and at the kept minimum widths (the portal's size presets),
counts from totals the serving index's writes keep (search.facet_counts): they must equal counting the
filtered images, through every kind of write. Other filters (other sizes) count the filtered images
themselves, with the same answer."""

from __future__ import annotations

import itertools
import random
import uuid

import pytest

from shared.search.facet_counts import Split
from shared.search.port import FACET_FIELDS, IndexDocument, SearchFilters, SearchQuery
from shared.search.postgres import PostgresSearchIndex
from tests.fixtures.search_corpus import document, listing

CATEGORIES = ["nature", "animals", "food", None]
COLORS = ["red", "blue", "white", "green"]


def random_docs(rng: random.Random, n: int) -> list[IndexDocument]:
    docs = []
    for i in range(n):
        width, height = rng.choice([(4000, 3000), (3000, 4000), (3000, 3000), (5000, 3000), (3500, 3500)])
        item = listing(
            title=f"photo {i}",
            category=rng.choice(CATEGORIES),
            usage=rng.choice(["commercial", "editorial"]),
            width=width,
            height=height,
            colors=rng.sample(COLORS, rng.randint(0, 3)),
            safety_score=rng.choice([0.01, 0.2, 0.5, 0.9]),
        )
        docs.append(document(item, minutes=i, popularity=rng.randint(0, 5)))
    return docs


def matching(docs: dict[uuid.UUID, IndexDocument], f: SearchFilters) -> list[IndexDocument]:
    return [
        d
        for d in docs.values()
        if (f.category is None or d.category == f.category)
        and (f.orientation is None or d.orientation == f.orientation)
        and (f.usage is None or d.usage == f.usage)
        and (f.color is None or f.color in d.colors)
        and (f.max_safety_score is None or d.safety_score < f.max_safety_score)
        and (f.min_width is None or d.width >= f.min_width)
        and (f.min_height is None or d.height >= f.min_height)
    ]


def expected(docs: dict[uuid.UUID, IndexDocument], f: SearchFilters) -> tuple[int, dict[str, dict[str, int]]]:
    """What counting the filtered images one by one gives."""
    kept = matching(docs, f)
    facets: dict[str, dict[str, int]] = {field: {} for field in FACET_FIELDS}
    for d in kept:
        for field in ("category", "orientation", "usage"):
            value = getattr(d, field)
            if value is not None:
                facets[field][value] = facets[field].get(value, 0) + 1
        for c in d.colors:
            facets["colors"][c] = facets["colors"].get(c, 0) + 1
    return len(kept), {field: counts for field, counts in facets.items() if counts}


FILTERS = [
    SearchFilters(),
    SearchFilters(max_safety_score=0.5),
    SearchFilters(category="animals", max_safety_score=0.5),
    SearchFilters(orientation="portrait", color="blue"),
    SearchFilters(color="red", usage="editorial", max_safety_score=0.5),
    SearchFilters(category="food", orientation="square", usage="commercial"),
    # Minimum widths at the kept breakpoints (PRESETS): from the kept counts; a width class starts at its
    # breakpoint, so 3,500 px wide passes min_width=3500.
    SearchFilters(min_width=3500, max_safety_score=0.5),
    SearchFilters(min_width=4500, color="blue", category="animals"),
    SearchFilters(min_width=3500, orientation="landscape", usage="editorial"),
    # Other sizes are not kept counted: these count the filtered images (the narrow facets index).
    SearchFilters(min_width=4000, max_safety_score=0.5),
    SearchFilters(min_height=3500, color="white", usage="editorial"),
]
PRESETS = (4500, 3500)  # out of order on purpose: the classes are the sorted breakpoints


@pytest.fixture
async def index(db):
    built = PostgresSearchIndex(db, counted_min_widths=PRESETS)
    await built.ensure_ready()
    return built


def test_the_presets_and_the_low_cardinality_filters_are_counted_and_other_sizes_are_not():
    split = Split(0.5, PRESETS)
    assert [split.counted(f) for f in FILTERS] == [True] * 9 + [False, False]
    assert not split.counted(SearchFilters(max_safety_score=0.3))  # counts are split at the configured one


async def assert_counts_exact(index: PostgresSearchIndex, docs: dict[uuid.UUID, IndexDocument]) -> None:
    for f in FILTERS:
        result = await index.search(SearchQuery(filters=f, sort="newest", limit=5))
        total, facets = expected(docs, f)
        assert result.total == total, f
        assert {field: {v.value: v.count for v in values} for field, values in result.facets.items()} == facets, f
        newest = sorted(matching(docs, f), key=lambda d: (-d.added_at.timestamp(), d.image_id))[:5]
        assert [h.document.image_id for h in result.hits] == [d.image_id for d in newest]


async def test_browse_counts_equal_counting_the_images_through_inserts_updates_deletes_and_a_rebuild(index, db):
    rng = random.Random(7)
    docs = {d.image_id: d for d in random_docs(rng, 120)}
    await index.upsert(list(docs.values())[:60])
    await index.upsert(list(docs.values())[60:])
    await assert_counts_exact(index, docs)

    # Updates move an image between facet values (colours, category, safety); deletes take it out.
    changed = []
    for image_id in rng.sample(list(docs), 40):
        replacement = random_docs(rng, 1)[0].model_copy(update={"image_id": image_id})
        docs[image_id] = replacement
        changed.append(replacement)
    await index.upsert(changed[:1])
    await index.upsert(changed[1:])
    gone = rng.sample(list(docs), 25)
    await index.delete(gone[:1])
    await index.delete(gone[1:])
    for image_id in gone:
        del docs[image_id]
    await assert_counts_exact(index, docs)

    # Many small writes: the deltas are folded together now and then without changing a count.
    for d in itertools.islice(docs.values(), 50):
        await index.upsert([d.model_copy(update={"popularity": d.popularity + 1})])
    async with db.connection() as conn:
        await conn.execute("select search.facet_counts_fold('search.serving_index'::regclass)")
    await assert_counts_exact(index, docs)

    fresh = {d.image_id: d for d in random_docs(rng, 30)}

    async def batches():
        yield list(fresh.values())

    await index.rebuild(batches())
    await assert_counts_exact(index, fresh)
    async with db.connection() as conn:
        tables = await conn.fetchval("select count(distinct relid) from search.facet_counts")
    assert tables == 1  # the old table's counts went with it


async def test_a_table_from_before_the_counts_or_another_safe_threshold_is_counted_at_start_up(pg_search_index, db):
    docs = {d.image_id: d for d in random_docs(random.Random(3), 40)}
    await pg_search_index.upsert(list(docs.values()))
    async with db.connection() as conn:
        await conn.execute("drop trigger facet_counts_ins on search.serving_index")
        await conn.execute("delete from search.facet_counts")

    stricter = PostgresSearchIndex(db, safe_max_score=0.3)
    await stricter.ensure_ready()

    result = await stricter.search(SearchQuery(filters=SearchFilters(max_safety_score=0.3)))
    assert result.total == expected(docs, SearchFilters(max_safety_score=0.3))[0]
    # Another threshold than the counts are split at is still answered, by counting the images.
    other = await stricter.search(SearchQuery(filters=SearchFilters(max_safety_score=0.5)))
    assert other.total == expected(docs, SearchFilters(max_safety_score=0.5))[0]


async def test_counts_kept_at_other_widths_are_recounted_at_start_up(pg_search_index, db):
    docs = {d.image_id: d for d in random_docs(random.Random(5), 40)}
    await pg_search_index.upsert(list(docs.values()))  # kept without width classes (the fixture's default)

    restarted = PostgresSearchIndex(db, counted_min_widths=PRESETS)
    await restarted.ensure_ready()
    await assert_counts_exact(restarted, docs)
    # Later writes are kept in their width classes too.
    more = {d.image_id: d for d in random_docs(random.Random(6), 20)}
    await restarted.upsert(list(more.values()))
    await assert_counts_exact(restarted, {**docs, **more})
