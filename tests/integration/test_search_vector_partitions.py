"""Vector partitions: a large category gets its own HNSW graph, which its category-filtered vector queries walk."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest

from shared.search import partitions
from shared.search.port import SearchFilters, SearchQuery
from shared.search.postgres import TABLE, PostgresSearchIndex
from tests.fixtures.search_corpus import document, listing, near, topic_vector

CAT = topic_vector("cat")


def docs_in(category: str | None, n: int, seed: int, **fields) -> list:
    return [
        document(listing(title=f"{category} {i}", category=category, embedding=near(CAT, 1.5, seed=seed + i), **fields))
        for i in range(n)
    ]


def ids(result) -> list[uuid.UUID]:
    return [hit.document.image_id for hit in result.hits]


def nearest(docs, k: int) -> list[uuid.UUID]:
    """Exact search in Python: the ids of the k documents closest to CAT by cosine distance."""
    q = np.asarray(CAT)
    dist = [(1 - float(np.dot(q, d.embedding) / np.linalg.norm(d.embedding)), d.image_id) for d in docs]
    return [i for _, i in sorted(dist)[:k]]


async def scans_of(index: PostgresSearchIndex, db, query: SearchQuery) -> list[str]:
    """The indexes the adapter's own statement reads, as Postgres plans it; sequential and bitmap scans off,
    since a table of a few dozen rows is cheapest read whole."""
    async with db.connection() as conn:
        partition = await index._partition(conn, query)
        sql, values = index._search_sql(query, partition=partition)
        async with conn.transaction():
            await conn.execute("set local enable_seqscan = off; set local enable_bitmapscan = off")
            plan = await conn.fetchval(f"explain (format json) {sql}", *values)
    names: list[str] = []

    def walk(node: dict) -> None:
        if "Index Name" in node:
            names.append(node["Index Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])
    return names


def partition_scanned(names: list[str], category: str, column: str = "category") -> bool:
    suffix = partitions.index_name("", (column, category))  # the partition's name, less the table it was built under
    return any(n.endswith(suffix) for n in names)


async def held(db) -> set[str]:
    async with db.connection() as conn:
        return {partitions.label(key) for key in await partitions.held(conn, TABLE)}


async def test_a_reindex_gives_each_large_category_its_own_graph_which_its_filtered_vector_queries_walk(db):
    # Sizes at which Postgres plans an HNSW scan at all (with fewer rows it sorts them, which is exact anyway).
    index = PostgresSearchIndex(db, vector_partition_min_images=100)
    animals, food, art = docs_in("animals", 150, 0), docs_in("food", 120, 1000), docs_in("art", 10, 2000)
    others = docs_in("nature", 150, 3000)

    async def batches():
        yield animals + food + art + others

    await index.rebuild(batches())

    # art is too small to be worth a graph; nature is under half the catalogue (150 of 430)
    assert await held(db) == {"animals", "food", "nature"}
    query = SearchQuery(vector=CAT, mode="semantic", filters=SearchFilters(category="food"), limit=10, candidates=10)
    assert partition_scanned(await scans_of(index, db, query), "food")
    result = await index.search(query)
    assert ids(result) == nearest(food, 10)  # the exact answer: the partition holds every food image and only them
    small = query.model_copy(update={"filters": SearchFilters(category="art")})
    assert ids(await index.search(small)) == nearest(art, 10)  # no partition: the whole graph, filtered, as before
    assert not any("_hnsw_c" in name for name in await scans_of(index, db, small))


async def test_a_partition_walk_uses_its_own_breadth_unless_another_filter_narrows_it(db):
    index = PostgresSearchIndex(db, ef_search=100, ef_search_filtered=800, ef_search_partition=400)
    only_category = SearchQuery(vector=CAT, filters=SearchFilters(category="food"), candidates=200)
    also_colour = SearchQuery(vector=CAT, filters=SearchFilters(category="food", color="red"), candidates=200)

    assert "ef_search = 400" in index._session_settings(only_category, partition="category")
    assert "ef_search = 800" in index._session_settings(only_category, partition=None)
    assert "ef_search = 800" in index._session_settings(also_colour, partition="category")


async def test_maintain_builds_a_partition_when_a_category_grows_and_drops_it_when_it_shrinks(db):
    index = PostgresSearchIndex(db, vector_partition_min_images=100)
    await index.ensure_ready()
    food, nature = docs_in("food", 120, 0), docs_in("nature", 150, 1000)
    await index.upsert(food + nature + docs_in(None, 200, 2000))  # uncategorised images count in the catalogue

    assert await index.maintain() == {
        "partitions_built": ["food", "nature"],
        "partitions_dropped": [],
        "partitions_kept": [],
    }
    # A write after the build goes into the partition too: the new image is found through it.
    late = document(listing(title="late", category="food", embedding=near(CAT, 0.05, seed=9)))
    await index.upsert([late])
    query = SearchQuery(vector=CAT, mode="semantic", filters=SearchFilters(category="food"), limit=5, candidates=5)
    assert partition_scanned(await scans_of(index, db, query), "food")
    assert ids(await index.search(query))[0] == late.image_id

    # Hysteresis: under the threshold but not under half of it, kept; under half, dropped.
    await index.delete([d.image_id for d in food[:40]])  # 81 food images left
    assert (await index.maintain())["partitions_kept"] == ["food", "nature"]
    await index.delete([d.image_id for d in food[40:]])  # 1 left
    assert await index.maintain() == {
        "partitions_built": [],
        "partitions_dropped": ["food"],
        "partitions_kept": ["nature"],
    }
    assert await held(db) == {"nature"}
    result = await index.search(query)  # the dropped partition's category is found through the whole graph again
    assert ids(result) == [late.image_id]


async def test_a_category_holding_most_of_the_catalogue_gets_no_graph_of_its_own(db):
    index = PostgresSearchIndex(db, vector_partition_min_images=5)
    await index.ensure_ready()
    await index.upsert(docs_in("nature", 30, 0) + docs_in("food", 10, 100))

    assert (await index.maintain())["partitions_built"] == ["food"]  # nature is 75%: its filter drops little


@pytest.mark.parametrize("category", ["o'brien's", "Robert'); drop table search.serving_index; --", "café ☕"])
async def test_any_category_text_is_a_quoted_literal_in_the_partition_and_the_query(db, category):
    index = PostgresSearchIndex(db, vector_partition_min_images=5)
    await index.ensure_ready()
    mine = docs_in(category, 8, 0)
    await index.upsert(mine + docs_in("other", 8, 100))
    assert (await index.maintain())["partitions_built"] == sorted([category, "other"])

    query = SearchQuery(vector=CAT, mode="semantic", filters=SearchFilters(category=category), limit=3, candidates=3)
    assert partition_scanned(await scans_of(index, db, query), category)
    assert ids(await index.search(query)) == nearest(mine, 3)
    async with db.connection() as conn:
        assert await conn.fetchval(f"select count(*) from search.{TABLE}") == 16


async def test_a_threshold_of_zero_turns_partitions_off_without_dropping_what_is_held(db):
    index = PostgresSearchIndex(db, vector_partition_min_images=100)
    await index.ensure_ready()
    await index.upsert(docs_in("food", 120, 0) + docs_in(None, 200, 1000))
    await index.maintain()
    off = PostgresSearchIndex(db, vector_partition_min_images=0)
    await off.ensure_ready()

    query = SearchQuery(vector=CAT, mode="semantic", filters=SearchFilters(category="food"), limit=5, candidates=5)
    assert not any("_hnsw_c" in name for name in await scans_of(off, db, query))
    assert "ef_search = 800" in off._session_settings(query, partition=await off._partition(db.pool, query))
    assert await off.maintain() == {}
    assert await held(db) == {"food"}


async def test_license_types_get_graphs_too_and_a_query_walks_the_smallest_its_filters_match(db):
    index = PostgresSearchIndex(db, vector_partition_min_images=100)
    editorial = docs_in("animals", 60, 0, usage="editorial") + docs_in("art", 60, 100, usage="editorial")
    portrait = docs_in("art", 110, 200, width=3000, height=4000)
    landscape = docs_in("food", 150, 400) + docs_in("art", 30, 600)

    async def batches():
        yield editorial + portrait + landscape

    await index.rebuild(batches())

    # 410 images: editorial (120) gets a graph, commercial (290) is most of the catalogue; of the categories,
    # art (200) and food (150) are large enough, animals (60) is not. Orientations get none (measured slower).
    assert await held(db) == {"usage: editorial", "art", "food"}
    by_usage = SearchQuery(
        vector=CAT, mode="semantic", filters=SearchFilters(usage="editorial"), limit=10, candidates=10
    )
    assert partition_scanned(await scans_of(index, db, by_usage), "editorial", "usage")
    assert ids(await index.search(by_usage)) == nearest(editorial, 10)

    # art (200) and editorial (120) both have a graph: the smaller is walked, filtered on the category, exactly.
    both = by_usage.model_copy(update={"filters": SearchFilters(category="art", usage="editorial")})
    assert await index._partition(db.pool, both) == "usage"
    assert partition_scanned(await scans_of(index, db, both), "editorial", "usage")
    assert ids(await index.search(both)) == nearest(editorial[60:], 10)
    # animals has no graph of its own: the editorial one is chosen (here the planner finds 60 rows cheaper to sort).
    small = by_usage.model_copy(update={"filters": SearchFilters(category="animals", usage="editorial")})
    assert await index._partition(db.pool, small) == "usage"
    assert ids(await index.search(small)) == nearest(editorial[:60], 10)
    by_orientation = by_usage.model_copy(update={"filters": SearchFilters(orientation="portrait")})
    assert await index._partition(db.pool, by_orientation) is None
    assert ids(await index.search(by_orientation)) == nearest(portrait, 10)


async def test_maintain_keeps_license_type_graphs_in_step_with_the_catalogue(db):
    index = PostgresSearchIndex(db, vector_partition_min_images=100)
    await index.ensure_ready()
    editorial = docs_in(None, 120, 0, usage="editorial")
    await index.upsert(editorial + docs_in(None, 200, 1000))

    assert (await index.maintain())["partitions_built"] == ["usage: editorial"]
    await index.delete([d.image_id for d in editorial[:80]])
    assert (await index.maintain())["partitions_dropped"] == ["usage: editorial"]
    assert await held(db) == set()


async def test_maintain_drops_an_orientation_graph_left_from_when_orientations_had_them(db):
    index = PostgresSearchIndex(db, vector_partition_min_images=100)
    await index.ensure_ready()
    await index.upsert(docs_in(None, 120, 0, width=3000, height=4000) + docs_in(None, 200, 1000))
    async with db.connection() as conn:
        await partitions.build(conn, TABLE, ("orientation", "portrait"), concurrently=False, limit_s=60)
    assert await held(db) == {"orientation: portrait"}

    assert (await index.maintain())["partitions_dropped"] == ["orientation: portrait"]
    assert await held(db) == set()
