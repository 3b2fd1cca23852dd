"""search_sync on real Postgres: events in, read model and serving index out; idempotent and revision-ordered."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from functions.search_sync.handlers import handle_message
from shared.bus.events import (
    Event,
    ImageFlagged,
    ImageProcessed,
    ImageRejected,
    ImageRemoved,
    ImageUpdated,
    OrderCompleted,
    OrderRefunded,
    Price,
    PricingUpdated,
)
from shared.bus.port import ReceivedMessage
from shared.search.port import SearchQuery
from tests.fixtures.search_corpus import approved, listing


def message(event: Event, message_id: str | None = None) -> ReceivedMessage:
    now = datetime.now(UTC)
    return ReceivedMessage(
        message_id=message_id or uuid.uuid4().hex,
        topic=event.topic,
        subscription="search-sync",
        subject=event.subject,
        body=event.model_dump(mode="json"),
        correlation_id="test",
        delivery_count=1,
        enqueued_time=now,
        locked_until=now,
        lock_token="",
    )


async def found(index, text: str) -> list[uuid.UUID]:
    result = await index.search(SearchQuery(text=text, mode="keyword"))
    return [h.document.image_id for h in result.hits]


async def status_of(db, image_id) -> tuple[str, int]:
    async with db.connection() as conn:
        row = await conn.fetchrow("select status, revision from search.documents where image_id = $1", image_id)
    return row["status"], row["revision"]


async def test_an_approved_image_becomes_findable_and_its_keywords_suggestable(db, pg_search_index):
    event = approved(listing(title="Lighthouse at dawn", keywords=["Lighthouse", "coast"], tags=["beacon"]))

    assert await handle_message(db, pg_search_index, message(event))

    assert await found(pg_search_index, "lighthouse") == [event.image_id]
    doc = await pg_search_index.get(event.image_id)
    assert doc.keywords == ["lighthouse", "coast"] and doc.tags == ["beacon"]
    assert doc.added_at == event.approved_at
    async with db.connection() as conn:
        counts = dict(await conn.fetch("select keyword, images from search.keyword_counts"))
    assert counts == {"lighthouse": 1, "coast": 1, "beacon": 1}


async def test_a_redelivered_message_changes_nothing(db, pg_search_index):
    event = approved(listing(title="Lighthouse", keywords=["coast"]))
    msg = message(event)

    assert await handle_message(db, pg_search_index, msg)
    assert not await handle_message(db, pg_search_index, msg)

    async with db.connection() as conn:
        assert await conn.fetchval("select images from search.keyword_counts where keyword = 'coast'") == 1


async def test_removed_or_rejected_images_disappear_and_stay_gone_when_older_events_arrive_late(db, pg_search_index):
    first = approved(listing(title="Harbour", keywords=["boat"]), revision=2)
    await handle_message(db, pg_search_index, message(first))
    removed = ImageRemoved(image_id=first.image_id, contributor_id="carol", revision=4, reason="takedown")
    await handle_message(db, pg_search_index, message(removed))
    assert await found(pg_search_index, "harbour") == []

    # The edit (revision 3) was sent before the takedown but arrives after it.
    late_edit = ImageUpdated(
        image_id=first.image_id, contributor_id="carol", revision=3, listing=listing(title="Harbour edited")
    )
    assert not await handle_message(db, pg_search_index, message(late_edit))
    assert not await handle_message(db, pg_search_index, message(first.model_copy(update={"revision": 2})))

    assert await found(pg_search_index, "harbour") == []
    assert await status_of(db, first.image_id) == ("removed", 4)
    async with db.connection() as conn:
        assert await conn.fetchval("select images from search.keyword_counts where keyword = 'boat'") == 0

    other = approved(listing(title="Harbour two"))
    await handle_message(db, pg_search_index, message(other))
    rejected = ImageRejected(image_id=other.image_id, contributor_id="carol", revision=3, reason_code="quality")
    await handle_message(db, pg_search_index, message(rejected))
    assert await found(pg_search_index, "harbour") == []
    assert await status_of(db, other.image_id) == ("rejected", 3)


async def test_an_update_replaces_the_listing_of_an_approved_image(db, pg_search_index):
    event = approved(listing(title="Red barn", keywords=["barn"]))
    await handle_message(db, pg_search_index, message(event))
    update = ImageUpdated(
        image_id=event.image_id,
        contributor_id="carol",
        revision=3,
        listing=listing(title="Red farmhouse", keywords=["farm"]),
    )

    assert await handle_message(db, pg_search_index, message(update))

    assert await found(pg_search_index, "barn") == []
    assert await found(pg_search_index, "farmhouse") == [event.image_id]
    async with db.connection() as conn:
        counts = dict(await conn.fetch("select keyword, images from search.keyword_counts"))
    assert counts == {"barn": 0, "farm": 1}


async def test_an_update_that_overtakes_the_approval_still_makes_the_image_public(db, pg_search_index):
    event = approved(listing(title="Windmill"), revision=2)
    update = ImageUpdated(
        image_id=event.image_id, contributor_id="carol", revision=3, listing=listing(title="Windmill at sunset")
    )

    await handle_message(db, pg_search_index, message(update))
    assert not await handle_message(db, pg_search_index, message(event))

    assert await found(pg_search_index, "sunset") == [event.image_id]


async def test_pending_and_flagged_images_are_kept_but_not_public(db, pg_search_index):
    image_id = uuid.uuid4()
    processed = ImageProcessed(image_id=image_id, contributor_id="carol", revision=1, listing=listing(title="Volcano"))
    flagged = ImageFlagged(image_id=image_id, contributor_id="carol", revision=2, reasons=["low safety score"])

    await handle_message(db, pg_search_index, message(processed))
    assert await status_of(db, image_id) == ("pending", 1)
    await handle_message(db, pg_search_index, message(flagged))

    assert await status_of(db, image_id) == ("flagged", 2)
    assert await found(pg_search_index, "volcano") == []
    async with db.connection() as conn:
        assert await conn.fetchval("select listing->>'title' from search.documents where image_id = $1", image_id)


async def test_an_edit_in_review_renames_the_image_in_the_portfolio_but_keeps_it_private(db, pg_search_index):
    image_id = uuid.uuid4()
    processed = ImageProcessed(image_id=image_id, contributor_id="carol", revision=1, listing=listing(title="Volcano"))
    edited = ImageFlagged(
        image_id=image_id,
        contributor_id="carol",
        revision=2,
        reasons=["missing_keywords"],
        listing=listing(title="Erupting volcano at dusk"),
    )
    await handle_message(db, pg_search_index, message(processed))
    await handle_message(db, pg_search_index, message(edited))

    assert await status_of(db, image_id) == ("flagged", 2)
    assert await found(pg_search_index, "erupting") == []
    async with db.connection() as conn:
        title = await conn.fetchval("select listing->>'title' from search.documents where image_id = $1", image_id)
    assert title == "Erupting volcano at dusk"


async def test_sales_raise_popularity_of_public_images(db, pg_search_index):
    a, b = approved(listing(title="Beach a")), approved(listing(title="Beach b"))
    for event in (a, b):
        await handle_message(db, pg_search_index, message(event))
    order = OrderCompleted(
        order_id=uuid.uuid4(), buyer_id="bob", amount_minor=2900, currency="USD", image_ids=[b.image_id, b.image_id]
    )

    assert await handle_message(db, pg_search_index, message(order))

    popular = await pg_search_index.search(SearchQuery(text="beach", sort="popular"))
    assert [h.document.image_id for h in popular.hits] == [b.image_id, a.image_id]
    assert popular.hits[0].document.popularity == 2


async def test_a_refunded_sale_no_longer_counts_and_popularity_never_goes_below_zero(db, pg_search_index):
    image = approved(listing(title="Refunded beach"))
    await handle_message(db, pg_search_index, message(image))
    ids = [image.image_id]
    sold = OrderCompleted(order_id=uuid.uuid4(), buyer_id="bob", amount_minor=1, currency="USD", image_ids=ids)
    refund = OrderRefunded(order_id=sold.order_id, amount_minor=1, currency="USD", image_ids=ids)
    await handle_message(db, pg_search_index, message(sold))
    assert (await pg_search_index.get(image.image_id)).popularity == 1

    await handle_message(db, pg_search_index, message(refund))
    assert (await pg_search_index.get(image.image_id)).popularity == 0
    # A refund of a sale this index never saw (e.g. recorded before a reindex) leaves it at zero.
    again = OrderRefunded(order_id=uuid.uuid4(), amount_minor=1, currency="USD", image_ids=ids)
    await handle_message(db, pg_search_index, message(again))
    assert (await pg_search_index.get(image.image_id)).popularity == 0


async def test_a_sale_before_approval_counts_once_the_image_is_public(db, pg_search_index):
    event = approved(listing(title="Early bird"))
    order = OrderCompleted(
        order_id=uuid.uuid4(), buyer_id="bob", amount_minor=100, currency="USD", image_ids=[event.image_id]
    )
    await handle_message(db, pg_search_index, message(order))
    await handle_message(db, pg_search_index, message(event))

    assert (await pg_search_index.get(event.image_id)).popularity == 1


async def test_pricing_keeps_the_newest_revision(db, pg_search_index):
    newer = PricingUpdated(revision=5, prices={"standard": Price(amount_minor=1500, currency="USD")})
    older = PricingUpdated(revision=4, prices={"standard": Price(amount_minor=900, currency="USD")})

    assert await handle_message(db, pg_search_index, message(newer))
    assert not await handle_message(db, pg_search_index, message(older))

    async with db.connection() as conn:
        prices = await conn.fetchval("select prices from search.pricing")
    assert prices == {"standard": {"amount_minor": 1500, "currency": "USD"}}


async def test_a_failing_index_write_rolls_back_so_the_redelivery_applies_it(db, pg_search_index):
    class Unavailable:
        async def upsert(self, documents, *, within=None):
            raise ConnectionError("search service unavailable")

    event = approved(listing(title="Glacier"))
    msg = message(event)
    with pytest.raises(ConnectionError):
        await handle_message(db, Unavailable(), msg)

    assert await handle_message(db, pg_search_index, msg)
    assert await found(pg_search_index, "glacier") == [event.image_id]


async def test_full_reindex_rebuilds_the_serving_index_from_the_read_model(db, pg_search_index):
    from functions.search_sync.reindex import reindex

    public = [approved(listing(title=f"Meadow {i}")) for i in range(5)]
    gone = approved(listing(title="Meadow gone"))
    for event in (*public, gone):
        await handle_message(db, pg_search_index, message(event))
    await handle_message(
        db, pg_search_index, message(ImageRemoved(image_id=gone.image_id, contributor_id="c", revision=3, reason="x"))
    )
    # The serving index lost a document and holds one the read model never had public.
    await pg_search_index.delete([public[0].image_id])
    stray = (await pg_search_index.get(public[1].image_id)).model_copy(update={"image_id": uuid.uuid4()})
    await pg_search_index.upsert([stray])
    progress: list[int] = []

    written = await reindex(db, pg_search_index, batch_size=2, progress=progress.append)

    assert written == 5 and progress == [2, 2, 1]
    assert sorted(await found(pg_search_index, "meadow")) == sorted(e.image_id for e in public)


async def test_the_reindex_command_rebuilds_the_index_of_the_configured_database(db, database_dsn, pg_search_index):
    import asyncio
    import os
    import sys

    from shared.config import PROJECT_ROOT

    events = [approved(listing(title=f"Orchard {i}")) for i in range(3)]
    for event in events:
        await handle_message(db, pg_search_index, message(event))
    await pg_search_index.delete([events[0].image_id])

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "functions.search_sync.reindex",
        "--batch-size",
        "2",
        cwd=PROJECT_ROOT,
        env={**os.environ, "DATABASE_URL": database_dsn, "SEARCH_BACKEND": "postgres"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await proc.communicate()

    assert proc.returncode == 0, output.decode()
    assert "reindexed 3 documents" in output.decode()
    assert sorted(await found(pg_search_index, "orchard")) == sorted(e.image_id for e in events)


async def test_an_ai_keyword_the_model_is_unsure_of_is_not_indexed_or_suggested(db, pg_search_index):
    from shared.bus.events import Tag

    sure_and_unsure = listing(title="IMG_0001").model_copy(
        update={"tags": [Tag(label="lighthouse", confidence=0.8), Tag(label="missile", confidence=0.12)]}
    )
    event = approved(sure_and_unsure)

    await handle_message(db, pg_search_index, message(event))

    assert await found(pg_search_index, "lighthouse") == [event.image_id]
    assert await found(pg_search_index, "missile") == []
    assert (await pg_search_index.get(event.image_id)).tags == ["lighthouse"]
    async with db.connection() as conn:
        suggested = {r["keyword"] for r in await conn.fetch("select keyword from search.keyword_counts")}
    assert "missile" not in suggested and "lighthouse" in suggested


async def test_a_handler_writes_the_index_in_its_own_transaction_so_a_busy_pool_cannot_deadlock_it(database_dsn):
    # Every handler holding its transaction while waiting for a second pool connection starves the pool:
    # with one connection, a handler that needed two would wait forever.
    import asyncio

    from shared.db import connect_database
    from shared.search.postgres import PostgresSearchIndex

    db = await connect_database(database_dsn, min_size=1, max_size=1)
    try:
        index = PostgresSearchIndex(db)
        await index.ensure_ready()
        event = approved(listing(title="Lighthouse", keywords=["coast"]))

        assert await asyncio.wait_for(handle_message(db, index, message(event)), timeout=20)

        assert await found(index, "lighthouse") == [event.image_id]
    finally:
        await db.close()
