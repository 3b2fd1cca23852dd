"""Match-based invalidation of the search result cache on real Postgres: a cached page survives a change
exactly when the changed image could not be in its matching set before or after the change; a takedown,
a price change, an approval, an edit and a rejection that touch it show in the next search, on every
instance. The property test at the end: after any sequence of changes, a cached page equals a fresh
uncached search.
"""

from __future__ import annotations

import json
import uuid

from functions.search_api import handlers
from functions.search_api.cache import ResultCache
from functions.search_api.models import SearchParams
from functions.search_sync.handlers import handle_message
from functions.search_sync.reindex import reindex
from shared.bus.events import ImageRejected, ImageRemoved, ImageUpdated, Price, PricingUpdated
from shared.db import Database
from shared.search.changes import ChangeReader, RuleBuilder
from shared.search.generation import GenerationReader
from shared.search.port import SearchIndex
from tests.fixtures.search_corpus import approved, listing, near, topic_vector
from tests.integration.test_search_cache import order
from tests.integration.test_search_sync_handlers import message


class TopicEncoder:
    """Text -> the fixtures' deterministic topic vector (tests say "about dogs" without a model)."""

    def encode(self, texts):
        return [topic_vector(text) for text in texts]


class Instance:
    """One Function instance's search dependencies (routes._dependencies) over the shared database.
    match=True: match-based invalidation; False: whole-cache; None: no cache (the fresh answer)."""

    def __init__(self, db: Database, index: SearchIndex, match: bool | None = True, **cache_options) -> None:
        self.db, self.index = db, index
        self.generations = GenerationReader(db)
        self.prices = handlers.PriceBook(db, generations=self.generations)
        options = {"max_entries": 1000, "max_bytes": 1 << 24, "popular_ttl": 30.0, **cache_options}
        self.cache = None
        if match is not None:
            self.cache = ResultCache(**options, changes=ChangeReader(db).steps if match else None)
        self.rules = RuleBuilder(db) if match else None
        self.embedder = handlers.QueryEmbedder(TopicEncoder())
        self.tuning = handlers.SearchTuning(candidates=200, max_vector_distance=0.6, safe_max_score=0.5)

    async def search(self, **params) -> tuple[dict, str]:
        page, outcome = await handlers.search_response(
            self.cache,
            self.generations,
            self.index,
            self.embedder,
            self.prices,
            self.tuning,
            SearchParams(**params),
            db=self.db,
            rules=self.rules,
        )
        return json.loads(page), outcome


async def apply(db: Database, index: SearchIndex, *events) -> None:
    for event in events:
        assert await handle_message(db, index, message(event))


def ids(page: dict) -> list[str]:
    return [item["id"] for item in page["items"]]


DOG = topic_vector("dog")


async def cached(instance: Instance, **params) -> dict:
    await instance.search(**params)
    page, outcome = await instance.search(**params)
    assert outcome == "hit"
    return page


async def test_an_unrelated_approval_keeps_the_cached_page_on_every_instance(db, pg_search_index):
    one, two = Instance(db, pg_search_index), Instance(db, pg_search_index)
    dog = approved(listing(title="Dog on a beach", embedding=near(DOG, 0.1), colors=["blue"]))
    await apply(db, pg_search_index, dog)
    for instance in (one, two):
        await cached(instance, q="dog")
        await cached(instance, q="dog", category="nature", orientation="landscape", color="blue")

    # Other words, an embedding far from "dog" (cosine distance about 1 > the floor 0.6), another category.
    boat = approved(listing(title="Sailing boat", category="travel", embedding=topic_vector("boat")))
    await apply(db, pg_search_index, boat)

    for instance in (one, two):
        assert (await instance.search(q="dog"))[1] == "hit"
        assert (await instance.search(q="dog", category="nature", orientation="landscape", color="blue"))[1] == "hit"
        page, outcome = await instance.search(q="boat")
        assert outcome == "miss" and ids(page) == [str(boat.image_id)]


async def test_an_approval_that_fails_a_pages_filters_keeps_that_page_and_drops_the_unfiltered_one(db, pg_search_index):
    instance = Instance(db, pg_search_index)
    await apply(db, pg_search_index, approved(listing(title="Dog", category="nature")))
    await cached(instance, q="dog", category="nature")
    await cached(instance, q="dog")

    await apply(db, pg_search_index, approved(listing(title="Dog in town", category="city")))

    assert (await instance.search(q="dog", category="nature"))[1] == "hit"
    page, outcome = await instance.search(q="dog")
    assert outcome == "miss" and page["total"] == 2


async def test_an_approval_found_only_by_meaning_drops_the_page(db, pg_search_index):
    instance = Instance(db, pg_search_index)
    await apply(db, pg_search_index, approved(listing(title="Dog")))
    before = await cached(instance, q="dog")

    puppy = approved(listing(title="Puppy asleep", embedding=near(DOG, 0.1)))  # no word "dog", near in meaning
    await apply(db, pg_search_index, puppy)

    page, outcome = await instance.search(q="dog")
    assert outcome == "miss" and str(puppy.image_id) in ids(page) and page["total"] == before["total"] + 1


async def test_a_takedown_a_price_change_an_approval_an_edit_and_a_rejection_each_show_on_every_instance(
    db, pg_search_index
):
    instances = [Instance(db, pg_search_index), Instance(db, pg_search_index)]
    events = [approved(listing(title=f"Dog {n}")) for n in range(4)]
    await apply(
        db,
        pg_search_index,
        *events,
        PricingUpdated(revision=1, prices={"standard": Price(amount_minor=1500, currency="EUR")}),
    )

    async def after(change, **params) -> list[dict]:
        for instance in instances:
            await cached(instance, **params)
        await apply(db, pg_search_index, change)
        pages = []
        for instance in instances:
            page, outcome = await instance.search(**params)
            assert outcome == "miss"
            pages.append(page)
        return pages

    takedown = ImageRemoved(image_id=events[0].image_id, contributor_id="carol", revision=3, reason="takedown")
    for page in await after(takedown, q="dog"):
        assert str(events[0].image_id) not in ids(page) and page["total"] == 3

    price = PricingUpdated(revision=2, prices={"standard": Price(amount_minor=700, currency="EUR")})
    for page in await after(price, q="dog"):
        assert {item["price"]["amount_minor"] for item in page["items"]} == {700}

    new = approved(listing(title="Dog running"))
    for page in await after(new, q="dog"):
        assert str(new.image_id) in ids(page) and page["total"] == 4

    edited = ImageUpdated(
        image_id=events[1].image_id, contributor_id="carol", revision=3, listing=listing(title="Harbour at night")
    )
    for page in await after(edited, q="dog"):
        assert str(events[1].image_id) not in ids(page) and page["total"] == 3
    rejected = ImageRejected(image_id=events[2].image_id, contributor_id="carol", revision=3, reason_code="quality")
    for page in await after(rejected, q="dog"):
        assert str(events[2].image_id) not in ids(page) and page["total"] == 2
    # The edit moved an image into another query's matching set: that page goes too.
    edited_in = ImageUpdated(
        image_id=events[3].image_id, contributor_id="carol", revision=3, listing=listing(title="Dog at the harbour")
    )
    for page in await after(edited_in, q="harbour"):
        assert sorted(ids(page)) == sorted([str(events[1].image_id), str(events[3].image_id)])


async def test_a_reindex_and_a_gap_in_the_change_log_drop_every_page(db, pg_search_index):
    instance = Instance(db, pg_search_index)
    hidden = approved(listing(title="Dog hidden"))
    await apply(db, pg_search_index, approved(listing(title="Dog")), hidden, approved(listing(title="Cat")))
    async with db.transaction() as conn:
        await conn.execute("alter table search.serving_index disable trigger user")  # lost by the index, unlogged
        await conn.execute("delete from search.serving_index where image_id = $1", hidden.image_id)
        await conn.execute("alter table search.serving_index enable trigger user")
    assert (await cached(instance, q="dog"))["total"] == 1
    await cached(instance, q="cat")

    await reindex(db, pg_search_index, actor="test")

    page, outcome = await instance.search(q="dog")
    assert outcome == "miss" and page["total"] == 2
    assert (await instance.search(q="cat"))[1] == "miss"
    await cached(instance, q="cat")

    await apply(db, pg_search_index, approved(listing(title="Boat", embedding=topic_vector("boat"))))
    async with db.connection() as conn:  # the step's rows pruned before this instance read them
        await conn.execute("delete from search.changes where generation = (select value from search.generation)")
    assert (await instance.search(q="cat"))[1] == "miss"


async def test_a_sale_moves_no_generation_and_logs_nothing(db, pg_search_index):
    dog = approved(listing(title="Dog"))
    await apply(db, pg_search_index, dog)
    async with db.connection() as conn:
        logged = await conn.fetchval("select count(*) from search.changes")
    await apply(db, pg_search_index, order(dog.image_id))
    async with db.connection() as conn:
        assert await conn.fetchval("select count(*) from search.changes") == logged


async def test_a_change_that_moves_no_public_image_keeps_every_page(db, pg_search_index):
    instance = Instance(db, pg_search_index)
    await apply(db, pg_search_index, approved(listing(title="Dog")))
    await cached(instance, q="dog")
    await cached(instance, q="")

    pending = uuid.uuid4()  # rejected in review: never public, so the index has nothing to delete
    await apply(
        db, pg_search_index, ImageRejected(image_id=pending, contributor_id="carol", revision=2, reason_code="q")
    )

    assert (await instance.search(q="dog"))[1] == "hit" and (await instance.search(q=""))[1] == "hit"
    async with db.connection() as conn:
        kinds = await conn.fetch(
            "select kind from search.changes where generation = (select value from search.generation)"
        )
    assert [r["kind"] for r in kinds] == ["none"]


class UnloggedIndex:
    """An index that keeps its documents elsewhere (as Azure AI Search does): its writes are not logged."""

    def __init__(self, index: SearchIndex) -> None:
        self.index = index

    def __getattr__(self, name):
        if name == "logs_changes":
            raise AttributeError(name)
        return getattr(self.index, name)


async def test_a_change_to_an_index_that_logs_nothing_drops_every_page(db, pg_search_index):
    instance = Instance(db, pg_search_index)
    await apply(db, pg_search_index, approved(listing(title="Dog")))
    await cached(instance, q="dog")

    await apply(db, UnloggedIndex(pg_search_index), approved(listing(title="Boat", embedding=topic_vector("boat"))))

    assert (await instance.search(q="dog"))[1] == "miss"
