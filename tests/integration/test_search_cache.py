"""The search result cache on real Postgres: once a page is cached, a takedown, a price change, a new
approval and a reindex show in the very next search, on every instance; identical concurrent misses
query the index once; one caller's view is never served to another; sort=popular lags sales by at
most its TTL.

"Instances" below are what each Function instance builds (routes._dependencies): their own generation
reader, price book and cache over the same database.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

from functions.search_api import handlers
from functions.search_api.cache import ResultCache
from functions.search_api.models import SearchParams
from functions.search_sync.handlers import handle_message
from functions.search_sync.reindex import reindex
from shared.bus.events import ImageRemoved, ImageUpdated, OrderCompleted, Price, PricingUpdated
from shared.db import Database
from shared.search.generation import GenerationReader
from shared.search.port import SearchIndex
from tests.fixtures.search_corpus import approved, listing
from tests.integration.test_search_api import body, publish
from tests.integration.test_search_sync_handlers import message


def ids(page: dict) -> list[str]:
    return [item["id"] for item in page["items"]]


async def test_a_takedown_shows_in_the_next_search(search_app):
    dogs = [approved(listing(title=f"Dog {n}")) for n in range(3)]
    await publish(search_app, *dogs)
    first = await search_app.get("search", {"q": "dog"})
    again = await search_app.get("search", {"q": "dog"})
    assert first.headers["X-Search-Cache"] == "miss" and again.headers["X-Search-Cache"] == "hit"
    taken_down = dogs[0]

    await publish(
        search_app,
        ImageRemoved(image_id=taken_down.image_id, contributor_id="carol", revision=3, reason="copyright claim"),
    )
    after = await search_app.get("search", {"q": "dog"})

    assert after.headers["X-Search-Cache"] == "miss"
    assert str(taken_down.image_id) not in ids(body(after)) and body(after)["total"] == 2
    assert str(taken_down.image_id) in ids(body(again))


async def test_a_price_change_shows_in_the_next_search_and_on_the_image_page(search_app):
    dog = approved(listing(title="Dog"))
    await publish(
        search_app, dog, PricingUpdated(revision=1, prices={"standard": Price(amount_minor=1500, currency="EUR")})
    )
    await search_app.get("search", {"q": "dog"})
    assert (await search_app.get("search", {"q": "dog"})).headers["X-Search-Cache"] == "hit"
    await search_app.get(f"images/{dog.image_id}")

    await publish(search_app, PricingUpdated(revision=2, prices={"standard": Price(amount_minor=900, currency="EUR")}))

    assert body(await search_app.get("search", {"q": "dog"}))["items"][0]["price"] == {
        "amount_minor": 900,
        "currency": "EUR",
    }
    assert body(await search_app.get(f"images/{dog.image_id}"))["prices"]["standard"]["amount_minor"] == 900


async def test_a_new_approval_and_an_edit_show_in_the_next_search(search_app):
    await publish(search_app, approved(listing(title="Lighthouse at dawn")))
    await search_app.get("search", {"q": "lighthouse", "sort": "newest"})
    assert body(await search_app.get("search", {"q": "lighthouse", "sort": "newest"}))["total"] == 1
    new = approved(listing(title="Lighthouse in a storm"))

    await publish(search_app, new)
    page = body(await search_app.get("search", {"q": "lighthouse", "sort": "newest"}))

    assert page["total"] == 2 and str(new.image_id) in ids(page)
    edited = listing(title="Harbour in a storm")
    await publish(search_app, ImageUpdated(image_id=new.image_id, contributor_id="carol", revision=3, listing=edited))
    assert body(await search_app.get("search", {"q": "lighthouse", "sort": "newest"}))["total"] == 1
    assert body(await search_app.get("search", {"q": "harbour", "sort": "newest"}))["total"] == 1


class Instance:
    """One Function instance's search dependencies over the shared database (keyword mode: no encoder)."""

    def __init__(self, db: Database, index: SearchIndex, **cache_options) -> None:
        self.db, self.index = db, index
        self.generations = GenerationReader(db)
        self.prices = handlers.PriceBook(db, generations=self.generations)
        options = {"max_entries": 100, "max_bytes": 1 << 20, "popular_ttl": 30.0, **cache_options}
        self.cache = ResultCache(**options)
        self.embedder = handlers.QueryEmbedder(encoder=None)  # keyword mode never encodes
        self.tuning = handlers.SearchTuning(candidates=200, max_vector_distance=0.6, safe_max_score=0.5)

    async def search(self, **params) -> tuple[dict, str]:
        page, outcome = await handlers.search_response(
            self.cache,
            self.generations,
            self.index,
            self.embedder,
            self.prices,
            self.tuning,
            SearchParams(mode="keyword", **params),
            db=self.db,
        )
        return json.loads(page), outcome


async def apply(db: Database, index: SearchIndex, *events) -> None:
    for event in events:
        assert await handle_message(db, index, message(event))


async def test_a_second_instance_sees_each_change_in_its_next_search(db, pg_search_index):
    one, two = Instance(db, pg_search_index), Instance(db, pg_search_index)
    dogs = [approved(listing(title=f"Dog {n}")) for n in range(2)]
    await apply(
        db,
        pg_search_index,
        *dogs,
        PricingUpdated(revision=1, prices={"standard": Price(amount_minor=1500, currency="EUR")}),
    )
    for instance in (one, two):
        await instance.search(q="dog")
        assert (await instance.search(q="dog"))[1] == "hit"

    await apply(
        db,
        pg_search_index,
        ImageRemoved(image_id=dogs[0].image_id, contributor_id="carol", revision=3, reason="takedown"),
        PricingUpdated(revision=2, prices={"standard": Price(amount_minor=700, currency="EUR")}),
    )

    for instance in (one, two):
        page, outcome = await instance.search(q="dog")
        assert outcome == "miss"
        assert ids(page) == [str(dogs[1].image_id)]
        assert page["items"][0]["price"] == {"amount_minor": 700, "currency": "EUR"}


class CountingIndex:
    """The real index, counting searches and holding each one until released."""

    def __init__(self, index: SearchIndex) -> None:
        self.index, self.searches, self.release = index, 0, asyncio.Event()

    async def search(self, query):
        self.searches += 1
        await self.release.wait()
        return await self.index.search(query)

    def __getattr__(self, name):
        return getattr(self.index, name)


async def test_concurrent_identical_misses_query_the_index_once(db, pg_search_index):
    counting = CountingIndex(pg_search_index)
    instance = Instance(db, counting)
    await apply(db, pg_search_index, approved(listing(title="Dog")))

    waiting = [asyncio.create_task(instance.search(q="dog")) for _ in range(12)]
    while counting.searches == 0:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # every request has read the generation and is waiting
    counting.release.set()
    results = await asyncio.gather(*waiting)

    assert counting.searches == 1
    assert sorted(outcome for _, outcome in results) == ["coalesced"] * 11 + ["miss"]
    assert all(page["total"] == 1 for page, _ in results)


async def test_an_admins_explained_page_is_never_served_to_anyone_else_nor_theirs_to_the_admin(search_app):
    await publish(search_app, approved(listing(title="Dog on a beach")))
    admin = search_app.token("ada", "admin")

    explained = await search_app.get("search", {"q": "dog", "explain": "true"}, token=admin)
    plain = await search_app.get("search", {"q": "dog"})
    plain_again = await search_app.get("search", {"q": "dog"}, token=search_app.token("bob", "buyer"))
    explained_again = await search_app.get("search", {"q": "dog", "explain": "true"}, token=admin)

    assert explained.headers["X-Search-Cache"] == explained_again.headers["X-Search-Cache"] == "bypass"
    assert body(explained)["items"][0]["explanation"] is not None
    assert body(explained_again)["items"][0]["explanation"] is not None
    assert plain.headers["X-Search-Cache"] == "miss" and plain_again.headers["X-Search-Cache"] == "hit"
    assert body(plain)["items"][0]["explanation"] is None


async def test_safe_search_pages_are_kept_apart(search_app):
    await publish(
        search_app, approved(listing(title="Beach party", safety_score=0.8)), approved(listing(title="Beach"))
    )

    safe = body(await search_app.get("search", {"q": "beach"}))
    unsafe = body(await search_app.get("search", {"q": "beach", "safe": "false"}))
    safe_again = body(await search_app.get("search", {"q": "beach"}))

    assert safe["total"] == safe_again["total"] == 1 and unsafe["total"] == 2


async def test_sales_reorder_popular_pages_within_the_ttl_and_takedowns_still_show_at_once(db, pg_search_index):
    now = [1000.0]
    instance = Instance(db, pg_search_index, popular_ttl=30.0, clock=lambda: now[0])
    older = approved(listing(title="Dog old"))
    newer = approved(listing(title="Dog new"), approved_at=older.approved_at + timedelta(days=1))
    await apply(db, pg_search_index, older, newer)
    before, _ = await instance.search(q="dog", sort="popular")
    assert ids(before) == [str(newer.image_id), str(older.image_id)]  # no sales yet: newest first

    await apply(db, pg_search_index, order(older.image_id, older.image_id))
    now[0] += 29.0
    within, outcome = await instance.search(q="dog", sort="popular")
    assert outcome == "hit" and ids(within) == ids(before)  # the documented lag, within its bound
    now[0] += 1.5
    after, outcome = await instance.search(q="dog", sort="popular")
    assert outcome == "miss" and ids(after) == [str(older.image_id), str(newer.image_id)]

    await apply(
        db, pg_search_index, ImageRemoved(image_id=older.image_id, contributor_id="carol", revision=3, reason="x")
    )
    assert ids((await instance.search(q="dog", sort="popular"))[0]) == [str(newer.image_id)]


def order(*image_ids: uuid.UUID) -> OrderCompleted:
    return OrderCompleted(
        order_id=uuid.uuid4(),
        buyer_id="bob",
        amount_minor=1000 * len(image_ids),
        currency="EUR",
        image_ids=list(image_ids),
    )


async def test_a_full_reindex_moves_the_generation(db, pg_search_index):
    instance = Instance(db, pg_search_index)
    hidden = approved(listing(title="Dog hidden"))
    await apply(db, pg_search_index, approved(listing(title="Dog")), hidden)
    await pg_search_index.delete([hidden.image_id])  # lost by the index (no generation move): a rebuild finds it
    await instance.search(q="dog")
    page, outcome = await instance.search(q="dog")
    assert outcome == "hit" and page["total"] == 1

    await reindex(db, pg_search_index, actor="test")

    page, outcome = await instance.search(q="dog")
    assert outcome == "miss" and page["total"] == 2


async def test_a_backend_that_shows_writes_late_gets_no_page_cached_while_the_change_settles(db, pg_search_index):
    settling = Instance(db, pg_search_index, settle_seconds=3600.0)  # every change is "recent"
    await apply(db, pg_search_index, approved(listing(title="Dog")))

    assert [(await settling.search(q="dog"))[1] for _ in range(2)] == ["miss", "miss"]
    assert settling.cache.stats["not_stored_settling"] == 2
