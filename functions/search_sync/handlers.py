"""search_sync: image, pricing and order events -> the search read model and the serving index.

Every image event carries `revision`; the read model keeps the newest one applied and ignores
older ones, so a late or redelivered event never overwrites newer state. Removed and rejected
images stay as tombstones (with their revision) for the same reason.

The serving index is written inside the read-model transaction, after the rows: if the index
write fails, the transaction (and the inbox claim) rolls back and the bus redelivers; if the
commit fails after the index write, the redelivery writes the same document again.

Every change public search can show also bumps the index generation (`search.generation`) in the same
transaction, which keys search_api's result cache; sales do not (see `_apply_order`).

Every such transaction holds the shared side of the reindex barrier (`INDEX_WRITERS_LOCK`), so a
full reindex can wait, right after its swap, until every write that may have gone to the old
index has committed, and then re-apply them to the new one (functions/search_sync/reindex.py).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Final, Literal
from uuid import UUID

import asyncpg
import structlog

from functions.search_sync.documents import adjust_keyword_counts, public_document, suggestion_keywords
from shared.bus.events import (
    Event,
    ImageApproved,
    ImageFlagged,
    ImageListing,
    ImageProcessed,
    ImageRejected,
    ImageRemoved,
    ImageUpdated,
    OrderCompleted,
    OrderRefunded,
    PricingUpdated,
    parse_event,
)
from shared.bus.inbox import claim_message
from shared.bus.port import ReceivedMessage
from shared.db import Database
from shared.search.generation import bump_generation, index_scope
from shared.search.port import SearchIndex

SUBSCRIPTIONS: Final = {"images": "search-sync", "orders": "search-sync"}
log = structlog.get_logger()

Status = Literal["pending", "flagged", "approved", "rejected", "removed"]


async def handle_message(db: Database, index: SearchIndex, message: ReceivedMessage) -> bool:
    """Apply one bus message exactly once. Returns False for a redelivery or an out-of-date event."""
    event = parse_event(message.subject, message.body)
    async with db.transaction() as conn:
        if not await claim_message(conn, "search", message.subscription, message.message_id):
            return False
        return await apply_event(conn, index, event)


# pg advisory lock key (any fixed bigint): handlers hold it shared, the reindex takes it exclusively.
INDEX_WRITERS_LOCK: Final = 0x5EA2C4_1D3E


async def apply_event(conn: asyncpg.Connection, index: SearchIndex, event: Event) -> bool:
    await conn.execute("select pg_advisory_xact_lock_shared($1)", INDEX_WRITERS_LOCK)
    match event:
        case ImageProcessed():
            return await _apply_image(conn, index, event, "pending", listing=event.listing)
        case ImageFlagged():
            # An edit while in review carries the new listing; the contributor searches their portfolio by it.
            return await _apply_image(
                conn, index, event, "flagged", reason=", ".join(event.reasons), listing=event.listing
            )
        case ImageApproved():
            return await _apply_image(
                conn, index, event, "approved", listing=event.listing, approved_at=event.approved_at
            )
        case ImageUpdated():
            return await _apply_image(conn, index, event, None, listing=event.listing)
        case ImageRejected():
            return await _apply_image(conn, index, event, "rejected", reason=event.note or event.reason_code)
        case ImageRemoved():
            return await _apply_image(conn, index, event, "removed", reason=event.reason)
        case PricingUpdated():
            return await _apply_pricing(conn, event)
        case OrderCompleted():
            return await _apply_order(conn, index, Counter(event.image_ids))
        case OrderRefunded():
            # Refunded sales no longer count towards "popular".
            return await _apply_order(conn, index, Counter({i: -n for i, n in Counter(event.image_ids).items()}))
    log.info("search_sync.ignored_event", subject=event.subject)
    return False


async def _apply_image(
    conn: asyncpg.Connection,
    index: SearchIndex,
    event: ImageProcessed | ImageFlagged | ImageApproved | ImageUpdated | ImageRejected | ImageRemoved,
    status: Status | None,  # None: keep the current status (an edit)
    *,
    listing: ImageListing | None = None,
    approved_at: datetime | None = None,
    reason: str | None = None,
) -> bool:
    image_id = event.image_id
    # A placeholder row (revision 0) gives a row to lock when this image is new to us, so two
    # events about one image are applied one after the other.
    await conn.execute(
        "insert into search.documents (image_id, contributor_id, revision, status) values ($1, $2, 0, 'pending') "
        "on conflict (image_id) do nothing",
        image_id,
        event.contributor_id,
    )
    current = await conn.fetchrow("select * from search.documents where image_id = $1 for update", image_id)
    if event.revision < current["revision"]:
        log.info("search_sync.stale_event", image_id=str(image_id), revision=event.revision, have=current["revision"])
        return False
    if status is None and current["revision"] == 0:
        status = "approved"  # only approved images are edited; the approval itself is still on its way
    popularity = await _popularity(conn, image_id)
    before = public_document(current, popularity)
    updated = await conn.fetchrow(
        """
        update search.documents set
          contributor_id = $2,
          revision = $3,
          status = coalesce($4, status),
          status_reason = case when $4::text is null then status_reason else $5 end,
          listing = coalesce($6::jsonb, listing),
          approved_at = coalesce($7, approved_at),
          updated_at = now()
        where image_id = $1
        returning *
        """,
        image_id,
        event.contributor_id,
        event.revision,
        status,
        reason,
        None if listing is None else listing.model_dump(mode="json"),
        approved_at,
    )
    after = public_document(updated, popularity)
    old_words, new_words = suggestion_keywords(before), suggestion_keywords(after)
    await adjust_keyword_counts(conn, sorted(old_words - new_words), sorted(new_words - old_words))
    if after is not None:
        await index.upsert([after], within=conn)
        await bump_generation(conn, index_scope(index))  # exactly the index writes above
    elif before is not None or status in ("rejected", "removed"):
        await index.delete([image_id], within=conn)
        await bump_generation(conn, index_scope(index))  # exactly the index writes above
    log.info("search_sync.image_applied", image_id=str(image_id), status=updated["status"], public=after is not None)
    return True


async def _popularity(conn: asyncpg.Connection, image_id: UUID) -> int:
    return await conn.fetchval("select licenses from search.popularity where image_id = $1", image_id) or 0


async def _apply_pricing(conn: asyncpg.Connection, event: PricingUpdated) -> bool:
    status = await conn.execute(
        "insert into search.pricing (revision, prices) values ($1, $2) "
        "on conflict (singleton) do update set revision = excluded.revision, prices = excluded.prices "
        "where search.pricing.revision < excluded.revision",
        event.revision,
        {name: price.model_dump() for name, price in event.prices.items()},
    )
    if not status.endswith(" 1"):
        return False
    await bump_generation(conn)  # results show the standard price: cached pages must not outlive it
    return True


async def _apply_order(conn: asyncpg.Connection, index: SearchIndex, sold: Counter[UUID]) -> bool:
    """Add `sold` (negative for refunds) to each image's license count and re-upsert the public ones."""
    if not sold:
        return False
    ids = sorted(sold)  # one lock order for every order: no deadlocks between concurrent orders
    await conn.execute(
        "insert into search.popularity (image_id, licenses) select unnest($1::uuid[]), 0 on conflict do nothing",
        ids,
    )
    await conn.execute(
        "update search.popularity p set licenses = greatest(p.licenses + t.n, 0) "
        "from unnest($1::uuid[], $2::int[]) as t(id, n) where p.image_id = t.id",
        ids,
        [sold[i] for i in ids],
    )
    rows = await conn.fetch(
        "select d.*, p.licenses from search.documents d join search.popularity p using (image_id) "
        "where d.image_id = any($1::uuid[]) and d.status = 'approved' order by d.image_id for update of d",
        ids,
    )
    # No generation bump: sales are frequent and only move sort=popular, which search_api caches for a
    # bounded time instead (SEARCH_CACHE_POPULAR_TTL_SECONDS).
    # updated_at moves with the popularity, so a reindex running now re-applies the new count (catch_up).
    await conn.execute(
        "update search.documents set updated_at = now() where image_id = any($1::uuid[])",
        [row["image_id"] for row in rows],
    )
    documents = [doc for row in rows if (doc := public_document(row, row["licenses"])) is not None]
    await index.upsert(documents, within=conn)
    return True
