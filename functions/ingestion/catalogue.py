"""The catalogue: each image's record as its contributor sees it, kept current from the `images` topic.

Events are applied at most once (inbox) and in order: an event whose `revision` is not newer than the
record's is ignored, so a redelivered or overtaken event never overwrites newer state. Processing emits
revision 1; moderation numbers every later change.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import structlog

from functions.ingestion.models import ContributorImage, ImageState, decode_cursor, encode_cursor
from shared.bus.events import (
    Event,
    ImageApproved,
    ImageFlagged,
    ImageListing,
    ImageProcessed,
    ImageProcessingFailed,
    ImageRejected,
    ImageRemoved,
    ImageUpdated,
    parse_event,
)
from shared.bus.inbox import claim_message
from shared.bus.port import ReceivedMessage
from shared.db import Database

SUBSCRIPTION = "ingestion"
log = structlog.get_logger()


async def apply_image_event(db: Database, message: ReceivedMessage) -> bool:
    """Apply one images-topic event to the catalogue. False when it changed nothing (redelivered or stale)."""
    event = parse_event(message.subject, message.body)
    image_id = getattr(event, "image_id", None)
    async with db.transaction() as conn:
        if not await claim_message(conn, "ingestion", SUBSCRIPTION, message.message_id):
            return False
        if image_id is None:
            return False
        row = await conn.fetchrow(
            "select state, revision from ingestion.images where image_id = $1 for update", image_id
        )
        if row is None:
            log.warning("catalogue.unknown_image", image_id=str(image_id), subject=message.subject)
            return False
        changes = _changes(event, row)
        if changes is None:
            log.info("catalogue.stale_event_ignored", image_id=str(image_id), subject=message.subject)
            return False
        columns = list(changes)
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(columns, start=2))
        await conn.execute(
            f"update ingestion.images set {assignments}, updated_at = now() where image_id = $1",
            image_id,
            *changes.values(),
        )
    return True


def _changes(event: Event, row: asyncpg.Record) -> dict[str, Any] | None:
    """The columns an event sets, or None if it is older than what the record already shows."""
    if isinstance(event, ImageProcessingFailed):
        # No revision: it can only come before processing succeeded.
        if row["revision"] > 0 or row["state"] != "processing":
            return None
        return {"state": "failed", "reason_code": "processing-failed", "reason": event.reason}
    revision = getattr(event, "revision", None)
    if revision is None or revision <= row["revision"]:
        return None
    changes: dict[str, Any] = {"revision": revision}
    if isinstance(event, ImageProcessed):
        changes |= {"state": "processed", "listing": _listing(event.listing), "reason_code": None, "reason": None}
    elif isinstance(event, ImageFlagged):
        changes |= {"state": "flagged", "moderation_reasons": list(event.reasons)}
        if event.listing is not None:
            changes["listing"] = _listing(event.listing)
    elif isinstance(event, ImageApproved):
        changes |= {"state": "approved", "listing": _listing(event.listing), "reason_code": None, "reason": None}
    elif isinstance(event, ImageRejected):
        changes |= {"state": "rejected", "reason_code": event.reason_code, "reason": event.note or event.reason_code}
    elif isinstance(event, ImageUpdated):
        changes |= {"listing": _listing(event.listing)}
    elif isinstance(event, ImageRemoved):
        changes |= {"state": "removed", "reason_code": "removed", "reason": event.reason}
    else:
        return None
    return changes


def _listing(listing: ImageListing) -> dict[str, Any]:
    # The embedding is search's business and 384 floats per row; the contributor never sees it.
    return listing.model_dump(mode="json", exclude={"embedding"})


# --- reads -----------------------------------------------------------------------------------

_COLUMNS = """
    image_id, state, file_name, created_at, ingested_at, size_bytes, content_type, width, height, sidecar,
    reason_code, reason, duplicate_of, near_duplicate_of, moderation_reasons, listing
"""


async def list_images(
    db: Database,
    contributor_id: str,
    *,
    state: ImageState | None = None,
    per_page: int = 50,
    cursor: str | None = None,
    ids: Sequence[uuid.UUID] | None = None,
) -> tuple[list[ContributorImage], str | None]:
    """One page of the contributor's images (all, or only `ids`), newest first, and the next page's cursor."""
    conditions = ["contributor_id = $1"]
    args: list[Any] = [contributor_id]
    if state is not None:
        args.append(state)
        conditions.append(f"state = ${len(args)}")
    if ids is not None:
        args.append(list(ids))
        conditions.append(f"image_id = any(${len(args)}::uuid[])")
    if cursor is not None:
        created_at, image_id = decode_cursor(cursor)
        args += [created_at, image_id]
        conditions.append(f"(created_at, image_id) < (${len(args) - 1}, ${len(args)})")
    args.append(per_page + 1)
    async with db.connection() as conn:
        rows = await conn.fetch(
            f"select {_COLUMNS} from ingestion.images where {' and '.join(conditions)} "
            f"order by created_at desc, image_id desc limit ${len(args)}",
            *args,
        )
    items = [_image(row) for row in rows[:per_page]]
    if len(rows) <= per_page:
        return items, None
    last = rows[per_page - 1]
    return items, encode_cursor(last["created_at"], last["image_id"])


async def get_image(db: Database, contributor_id: str, image_id: uuid.UUID) -> ContributorImage | None:
    """The contributor's own image; None for an unknown id or someone else's image alike."""
    async with db.connection() as conn:
        row = await conn.fetchrow(
            f"select {_COLUMNS} from ingestion.images where image_id = $1 and contributor_id = $2",
            image_id,
            contributor_id,
        )
    return _image(row) if row is not None else None


def _image(row: asyncpg.Record) -> ContributorImage:
    return ContributorImage.model_validate(dict(row))
