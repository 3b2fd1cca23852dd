"""A full reindex while events keep arriving: every write that lands during it is in the new index after the swap."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence

from functions.search_sync.documents import public_document
from functions.search_sync.handlers import handle_message
from functions.search_sync.reindex import reindex, wait_for_index_writers
from shared.bus.events import ImageRemoved, ImageUpdated, OrderCompleted
from shared.search.port import IndexDocument, SearchIndex
from tests.fixtures.search_corpus import approved, listing
from tests.integration.test_search_sync_handlers import message


async def settled_long_ago(db) -> None:
    """The images so far were last changed an hour ago, long before the reindex starts."""
    async with db.connection() as conn:
        await conn.execute("update search.documents set updated_at = now() - interval '1 hour'")


class WritesDuringRebuild:
    """The real index; `during` runs after the rebuild has loaded its first batch into the new index aside."""

    def __init__(self, inner: SearchIndex, during: Callable[[], Awaitable[None]]) -> None:
        self.inner, self.during = inner, during

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    async def rebuild(self, batches: AsyncIterable[Sequence[IndexDocument]], progress=None) -> int:
        async def interleaved():
            first = True
            async for batch in batches:
                yield batch
                if first:
                    first = False
                    await self.during()

        return await self.inner.rebuild(interleaved(), progress)


async def public_state(db) -> dict[uuid.UUID, tuple[str, int]]:
    """What the serving index must hold: (title, popularity) of every public image of the read model."""
    async with db.connection() as conn:
        rows = await conn.fetch(
            "select d.*, coalesce(p.licenses, 0) as licenses from search.documents d "
            "left join search.popularity p using (image_id)"
        )
    docs = [doc for row in rows if (doc := public_document(row, row["licenses"])) is not None]
    return {doc.image_id: (doc.title, doc.popularity) for doc in docs}


async def index_state(db, index) -> dict[uuid.UUID, tuple[str, int]]:
    async with db.connection() as conn:
        ids = [r["image_id"] for r in await conn.fetch("select image_id from search.serving_index")]
    docs = [await index.get(i) for i in ids]
    return {doc.image_id: (doc.title, doc.popularity) for doc in docs}


async def test_writes_landing_while_the_new_index_is_built_aside_are_in_it_after_the_swap(db, pg_search_index):
    # Batches go in image_id order: the first three images are in the new index before the writes land.
    loaded = sorted((approved(listing(title=f"Orchard {i}")) for i in range(6)), key=lambda e: e.image_id)
    for event in loaded:
        await handle_message(db, pg_search_index, message(event))
    await settled_long_ago(db)
    # A new image whose id the keyset cursor has already passed.
    arriving = approved(listing(title="Orchard newcomer"), image_id=uuid.UUID(int=1))
    edit = ImageUpdated(
        image_id=loaded[0].image_id, contributor_id="carol", revision=3, listing=listing(title="Orchard edited")
    )
    takedown = ImageRemoved(image_id=loaded[1].image_id, contributor_id="carol", revision=3, reason="takedown")
    sale = OrderCompleted(
        order_id=uuid.uuid4(), buyer_id="bob", amount_minor=100, currency="USD", image_ids=[loaded[2].image_id]
    )

    async def writes() -> None:
        # These go to the old index: the new one already holds the first batch's documents as they were.
        for event in (arriving, edit, takedown, sale):
            assert await handle_message(db, pg_search_index, message(event))

    index = WritesDuringRebuild(pg_search_index, writes)

    await reindex(db, index, batch_size=3)

    assert await index_state(db, pg_search_index) == await public_state(db)
    assert await pg_search_index.get(arriving.image_id) is not None
    assert (await pg_search_index.get(loaded[0].image_id)).title == "Orchard edited"
    assert await pg_search_index.get(loaded[1].image_id) is None
    assert (await pg_search_index.get(loaded[2].image_id)).popularity == 1


async def test_a_stream_of_events_interleaved_with_a_reindex_leaves_the_index_equal_to_the_read_model(
    db, pg_search_index
):
    rng = random.Random(16)
    images = [approved(listing(title=f"Dune {i}")) for i in range(12)]
    for event in images[:8]:
        await handle_message(db, pg_search_index, message(event))
    await settled_long_ago(db)
    revision = dict.fromkeys((e.image_id for e in images), 2)
    stream = list(images[8:])
    for n in range(30):  # edits, takedowns and sales of images old and new, in a fixed random order
        target = rng.choice(images).image_id
        revision[target] += 1
        stream.append(
            rng.choice(
                [
                    ImageUpdated(
                        image_id=target,
                        contributor_id="carol",
                        revision=revision[target],
                        listing=listing(title=f"Dune edit {n}"),
                    ),
                    OrderCompleted(
                        order_id=uuid.uuid4(), buyer_id="bob", amount_minor=1, currency="USD", image_ids=[target]
                    ),
                ]
            )
        )
    stream.append(ImageRemoved(image_id=images[3].image_id, contributor_id="carol", revision=99, reason="takedown"))

    async def events() -> None:
        for event in stream:
            await handle_message(db, pg_search_index, message(event))
            await asyncio.sleep(0)  # let the reindex make progress between events

    await asyncio.gather(reindex(db, pg_search_index, batch_size=2), events())

    assert await index_state(db, pg_search_index) == await public_state(db)
    assert await pg_search_index.get(images[3].image_id) is None


async def test_the_reindex_barrier_waits_for_a_handler_transaction_still_writing(db, pg_search_index):
    event = approved(listing(title="Slow write"))
    written, release = asyncio.Event(), asyncio.Event()

    class SlowIndex:
        """Upserts, then keeps the handler's transaction open until released."""

        def __getattr__(self, name: str):
            return getattr(pg_search_index, name)

        async def upsert(self, documents):
            await pg_search_index.upsert(documents)
            written.set()
            await release.wait()

    handler = asyncio.create_task(handle_message(db, SlowIndex(), message(event)))
    await written.wait()
    barrier = asyncio.create_task(wait_for_index_writers(db))
    async with db.connection() as conn:
        while not await conn.fetchval("select count(*) from pg_locks where locktype = 'advisory' and not granted"):
            await asyncio.sleep(0.01)  # until the barrier is queued behind the open transaction

    assert not barrier.done()
    release.set()
    assert await handler
    await barrier
