"""The local serving index on real embedded Postgres + pgvector: hybrid ranking, filters, facets, floor, rebuild."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from shared.search.port import SearchFilters, SearchQuery
from shared.search.postgres import PostgresSearchIndex
from tests.fixtures.search_corpus import T0, document, listing, near, topic_vector


def ids(result) -> list[uuid.UUID]:
    return [hit.document.image_id for hit in result.hits]


async def test_keyword_query_weights_title_over_keywords_over_description(pg_search_index):
    in_description = document(listing(title="Forest path", description="a lighthouse far away"), minutes=3)
    in_keywords = document(listing(title="Coast at dusk", keywords=["lighthouse", "sea"]), minutes=2)
    in_title = document(listing(title="Old lighthouse", keywords=["building"]), minutes=1)
    unrelated = document(listing(title="Mountain lake"))
    await pg_search_index.upsert([in_description, in_keywords, in_title, unrelated])

    result = await pg_search_index.search(SearchQuery(text="lighthouse", mode="keyword"))

    assert ids(result) == [in_title.image_id, in_keywords.image_id, in_description.image_id]
    assert result.total == 3


async def test_websearch_syntax_quotes_or_and_exclusion(pg_search_index):
    red_car = document(listing(title="Red sports car", keywords=["car", "red"]))
    blue_car = document(listing(title="Blue family car", keywords=["car", "blue"]))
    red_boat = document(listing(title="Red boat", keywords=["boat", "red"]))
    await pg_search_index.upsert([red_car, blue_car, red_boat])

    async def keyword(q: str) -> set[uuid.UUID]:
        return set(ids(await pg_search_index.search(SearchQuery(text=q, mode="keyword"))))

    assert await keyword("car -red") == {blue_car.image_id}
    assert await keyword("boat or blue") == {blue_car.image_id, red_boat.image_id}
    assert await keyword('"sports car"') == {red_car.image_id}


async def test_semantic_leg_ranks_by_cosine_distance_and_drops_what_is_beyond_the_floor(pg_search_index):
    cat = topic_vector("cat")
    close = document(listing(title="a", embedding=near(cat, 0.2, seed=1)))
    farther = document(listing(title="b", embedding=near(cat, 1.2, seed=2)))
    unrelated = document(listing(title="c", embedding=topic_vector("tractor")))
    await pg_search_index.upsert([unrelated, farther, close])

    result = await pg_search_index.search(SearchQuery(vector=cat, mode="semantic", max_vector_distance=0.6))

    # Random 384-d directions are ~1.0 apart in cosine distance: the tractor is cut by the floor.
    assert ids(result) == [close.image_id, farther.image_id]
    assert result.total == 2
    assert result.hits[0].score > result.hits[1].score


async def test_hybrid_fuses_both_rankings_so_a_document_strong_in_both_wins(pg_search_index):
    cat = topic_vector("cat")
    words_only = document(listing(title="Cat", keywords=["cat"], embedding=topic_vector("x")))
    vector_only = document(listing(title="Kitten on a sofa", embedding=near(cat, 0.1, seed=3)))
    both = document(listing(title="Cat portrait", keywords=["cat"], embedding=near(cat, 0.3, seed=4)))
    await pg_search_index.upsert([words_only, vector_only, both])

    result = await pg_search_index.search(SearchQuery(text="cat", vector=cat, mode="hybrid", max_vector_distance=0.6))

    assert ids(result)[0] == both.image_id
    assert set(ids(result)) == {words_only.image_id, vector_only.image_id, both.image_id}
    # RRF with k=60: second in both lists (the shorter title wins on words, the closer vector on meaning)
    assert result.hits[0].score == pytest.approx(1 / 62 + 1 / 62)


async def test_filters_are_anded_and_facets_count_the_filtered_matches(pg_search_index):
    docs = [
        document(listing(title="dog in snow", category="animals", colors=["white"], width=4000, height=3000)),
        document(listing(title="dog on beach", category="animals", colors=["blue", "yellow"], width=3000, height=4000)),
        document(listing(title="dog sketch", category="art", colors=["white"], usage="editorial")),
        document(listing(title="dog unsafe", category="animals", safety_score=0.9)),
        document(listing(title="cat in snow", category="animals", colors=["white"])),
    ]
    await pg_search_index.upsert(docs)

    result = await pg_search_index.search(
        SearchQuery(text="dog", mode="keyword", filters=SearchFilters(category="animals", max_safety_score=0.5))
    )
    assert set(ids(result)) == {docs[0].image_id, docs[1].image_id}
    assert result.total == 2
    facets = {field: {f.value: f.count for f in values} for field, values in result.facets.items()}
    assert facets["category"] == {"animals": 2}
    assert facets["orientation"] == {"landscape": 1, "portrait": 1}
    assert facets["colors"] == {"white": 1, "blue": 1, "yellow": 1}
    assert facets["usage"] == {"commercial": 2}

    portrait = await pg_search_index.search(
        SearchQuery(text="dog", mode="keyword", filters=SearchFilters(orientation="portrait", color="blue"))
    )
    assert ids(portrait) == [docs[1].image_id]
    editorial = await pg_search_index.search(SearchQuery(text="dog", filters=SearchFilters(usage="editorial")))
    assert ids(editorial) == [docs[2].image_id]
    big = await pg_search_index.search(SearchQuery(text="dog", filters=SearchFilters(min_width=3500, min_height=3000)))
    assert set(ids(big)) == {docs[0].image_id, docs[2].image_id, docs[3].image_id}


async def test_filtered_vector_query_still_returns_k_results(pg_search_index):
    """Iterative index scan: a selective filter must not starve the ANN leg."""
    cat = topic_vector("cat")
    common = [document(listing(title=f"n{i}", category="common", embedding=near(cat, 0.3, seed=i))) for i in range(300)]
    rare = [
        document(listing(title=f"r{i}", category="rare", embedding=near(cat, 1.0, seed=1000 + i))) for i in range(15)
    ]
    await pg_search_index.upsert(common + rare)

    result = await pg_search_index.search(
        SearchQuery(vector=cat, mode="semantic", filters=SearchFilters(category="rare"), limit=10, candidates=10)
    )

    assert len(result.hits) == 10
    assert {h.document.category for h in result.hits} == {"rare"}


async def test_sorts_newest_and_popular_and_browse_without_query(pg_search_index):
    old_popular = document(listing(title="tree"), minutes=1, popularity=50)
    new_unpopular = document(listing(title="tree"), minutes=30, popularity=1)
    middle = document(listing(title="tree"), minutes=10, popularity=7)
    await pg_search_index.upsert([old_popular, new_unpopular, middle])

    newest = await pg_search_index.search(SearchQuery(text="tree", sort="newest"))
    popular = await pg_search_index.search(SearchQuery(text="tree", sort="popular"))
    browse = await pg_search_index.search(SearchQuery(filters=SearchFilters(added_after=T0 + timedelta(minutes=5))))

    assert ids(newest) == [new_unpopular.image_id, middle.image_id, old_popular.image_id]
    assert ids(popular) == [old_popular.image_id, middle.image_id, new_unpopular.image_id]
    assert ids(browse) == [new_unpopular.image_id, middle.image_id]
    assert browse.total == 2


async def test_paging_and_total(pg_search_index):
    docs = [document(listing(title="river"), minutes=i) for i in range(7)]
    await pg_search_index.upsert(docs)

    first = await pg_search_index.search(SearchQuery(text="river", sort="newest", limit=3))
    third = await pg_search_index.search(SearchQuery(text="river", sort="newest", offset=6, limit=3))

    newest_first = [d.image_id for d in reversed(docs)]
    assert ids(first) == newest_first[:3]
    assert ids(third) == newest_first[6:]
    assert first.total == third.total == 7


async def test_exclusions_drop_the_image_itself_and_exact_duplicates(pg_search_index):
    cat = topic_vector("cat")
    source = document(listing(title="s", embedding=cat, phash="00ff00ff00ff00ff"))
    duplicate = document(listing(title="d", embedding=cat, phash="00ff00ff00ff00ff"))
    similar = document(listing(title="n", embedding=near(cat, 0.3, seed=9)))
    await pg_search_index.upsert([source, duplicate, similar])

    result = await pg_search_index.search(
        SearchQuery(
            vector=cat,
            mode="semantic",
            filters=SearchFilters(exclude_ids=[source.image_id], exclude_phashes=[source.phash]),
        )
    )

    assert ids(result) == [similar.image_id]


async def test_upsert_replaces_delete_removes_and_get_returns_the_embedding(pg_search_index):
    image_id = uuid.uuid4()
    await pg_search_index.upsert([document(listing(title="first title"), image_id=image_id)])
    await pg_search_index.upsert([document(listing(title="second title"), image_id=image_id)])

    stored = await pg_search_index.get(image_id)
    assert stored.title == "second title"
    assert len(stored.embedding) == 384
    assert ids(await pg_search_index.search(SearchQuery(text="first", mode="keyword"))) == []

    await pg_search_index.delete([image_id, uuid.uuid4()])
    assert await pg_search_index.get(image_id) is None


async def test_rebuild_swaps_in_a_new_table_with_exactly_the_given_documents(pg_search_index, db):
    stale = document(listing(title="stale"))
    await pg_search_index.upsert([stale])
    fresh = [document(listing(title=f"fresh {i}")) for i in range(5)]

    async def batches():
        yield fresh[:2]
        yield fresh[2:]

    seen: list[int] = []
    written = await pg_search_index.rebuild(batches(), progress=seen.append)

    assert written == 5 and seen == [2, 3]
    assert await pg_search_index.get(stale.image_id) is None
    result = await pg_search_index.search(SearchQuery(text="fresh", mode="keyword"))
    assert result.total == 5
    async with db.connection() as conn:
        tables = await conn.fetch(
            "select tablename from pg_tables where schemaname = 'search' and tablename like 'serving%'"
        )
        indexes = await conn.fetchval(
            "select count(*) from pg_indexes where schemaname = 'search' and tablename = 'serving_index'"
        )
    assert [t["tablename"] for t in tables] == ["serving_index"]
    assert indexes == 7  # primary key, tsv, hnsw, added, popular, contributor, facets
    # The swapped-in table's indexes carry its build name; a restart knows them and builds none again.
    await pg_search_index.ensure_ready()
    async with db.connection() as conn:
        again = await conn.fetchval(
            "select count(*) from pg_indexes where schemaname = 'search' and tablename = 'serving_index'"
        )
    assert again == 7
    await pg_search_index.upsert([stale])  # the swapped-in table takes writes as before
    assert (await pg_search_index.get(stale.image_id)).title == "stale"


async def test_the_vector_column_takes_the_models_dimension_and_a_model_switch_is_a_rebuild(pg_search_index, db):
    from shared.search.port import IndexDimensionMismatch
    from shared.search.postgres import PostgresSearchIndex

    old = document(listing(title="harbour", embedding=topic_vector("harbour")))  # the 384-d model's vector
    await pg_search_index.upsert([old])
    switched = PostgresSearchIndex(db, dimension=8)

    # Writers and readers of the new model refuse the old table, and say what replaces it.
    with pytest.raises(IndexDimensionMismatch, match=r"384-d vectors but the embedding model gives 8-d.*reindex"):
        await switched.ensure_ready()

    new = document(listing(title="harbour at night", embedding=[1.0] + [0.0] * 7))

    async def batches():
        yield [old, new]

    assert await switched.rebuild(batches()) == 2
    assert await switched.held_dimension() == 8
    await switched.ensure_ready()  # the swapped-in table fits the model
    # An image embedded by the old model stays findable by words until it is embedded again.
    assert (await switched.get(old.image_id)).embedding == []
    result = await switched.search(SearchQuery(text="harbour", vector=[1.0] + [0.0] * 7, max_vector_distance=0.1))
    assert ids(result) == [new.image_id, old.image_id]
    with pytest.raises(ValueError, match="8 dimensions"):
        await switched.search(SearchQuery(vector=topic_vector("harbour"), mode="semantic"))


async def test_ai_keywords_weigh_less_than_the_contributors_own_words(pg_search_index):
    guessed = document(listing(title="Coast at dusk", tags=["lighthouse"]), minutes=2)  # newer, so ties go to it
    typed = document(listing(title="Coast at dawn", keywords=["lighthouse"]), minutes=1)
    described = document(listing(title="Forest path", description="a lighthouse far away"))
    await pg_search_index.upsert([guessed, typed, described])

    result = await pg_search_index.search(SearchQuery(text="lighthouse", mode="keyword"))

    assert ids(result) == [typed.image_id, described.image_id, guessed.image_id]


async def test_a_word_matching_more_than_the_cap_ranks_the_newest_matches_and_estimates_its_total(db):
    index = PostgresSearchIndex(db, keyword_match_cap=5)
    await index.ensure_ready()
    dogs = [document(listing(title=f"dog number {n}", category="animals"), minutes=n) for n in range(12)]
    cats = [document(listing(title=f"cat number {n}", category="animals"), minutes=n) for n in range(3)]
    await index.upsert(dogs + cats)
    await db.pool.execute("analyze search.serving_index")  # the planner's estimate is the total past the cap

    broad = await index.search(SearchQuery(text="dog", mode="keyword", limit=20))
    narrow = await index.search(SearchQuery(text="cat", mode="keyword", limit=20))

    newest_five = {d.image_id for d in dogs[-5:]}
    assert set(ids(broad)) == newest_five  # only the newest matches are ranked: never a cat, never an old dog
    assert broad.total_is_estimate and broad.total >= 5
    assert sum(f.count for f in broad.facets["category"]) == broad.total  # facets scaled to the same estimate
    assert not narrow.total_is_estimate and narrow.total == 3  # under the cap: exact, as before


async def test_several_words_that_match_nothing_together_fall_back_to_any_of_them_most_words_first(pg_search_index):
    red_boat = document(listing(title="IMG_1", tags=["boat", "red"]), minutes=2)
    red_car = document(listing(title="IMG_2", tags=["car", "red"]), minutes=1)
    lake = document(listing(title="IMG_3", tags=["lake"]))
    await pg_search_index.upsert([red_boat, red_car, lake])

    async def keyword(q: str):
        return await pg_search_index.search(SearchQuery(text=q, mode="keyword"))

    # Together the words match nothing: any of them, the photo matching two words before the one matching one.
    fallback = await keyword("red boat at sunset")
    assert ids(fallback) == [red_boat.image_id, red_car.image_id]
    assert fallback.total == 2
    # When all the words match something, only that is returned.
    assert ids(await keyword("red boat")) == [red_boat.image_id]
    # Quotes, OR and exclusion say what the buyer wants: never loosened.
    assert ids(await keyword('"red boat at sunset"')) == []
    assert ids(await keyword("boat at sunset -red")) == []
    # A nonsense query still finds nothing.
    assert ids(await keyword("quarterly tax form")) == []
    # With a vector leg there is no fallback: the vector leg already finds what the words mean.
    far = SearchQuery(text="red boat at sunset", vector=topic_vector("x"), mode="hybrid", max_vector_distance=0.1)
    assert ids(await pg_search_index.search(far)) == []
