"""The search read model: one row per image in `search.documents`, and the public document built from it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, Final
from uuid import UUID

import asyncpg

from shared.bus.events import ImageListing
from shared.search.port import AI_KEYWORD_MIN_CONFIDENCE, IndexDocument

# AI keywords below AI_KEYWORD_MIN_CONFIDENCE stay out of the index (and weigh least when in it: tsv
# weight D, Azure field weight 1); contributors still see them with their confidence (portfolio search).
# Colours below MIN_COLOR_SHARE are not "the" colours.
MIN_TAG_CONFIDENCE: Final = AI_KEYWORD_MIN_CONFIDENCE
MIN_COLOR_SHARE: Final = 0.1


def index_document(
    image_id: UUID,
    contributor_id: str,
    revision: int,
    listing: ImageListing,
    added_at: datetime,
    popularity: int,
) -> IndexDocument:
    return IndexDocument(
        image_id=image_id,
        contributor_id=contributor_id,
        revision=revision,
        title=listing.title,
        description=listing.description,
        keywords=_dedupe(k.strip().lower() for k in listing.keywords),
        tags=_dedupe(t.label.strip().lower() for t in listing.tags if t.confidence >= MIN_TAG_CONFIDENCE),
        category=listing.category,
        usage=listing.usage,
        width=listing.width,
        height=listing.height,
        orientation=listing.orientation,
        colors=_dedupe(c.name.lower() for c in listing.colors if c.share >= MIN_COLOR_SHARE),
        embedding=listing.embedding,
        safety_score=listing.safety_score,
        thumbnail_small_url=listing.renditions.thumbnail_small_url,
        thumbnail_url=listing.renditions.thumbnail_url,
        preview_url=listing.renditions.preview_url,
        blurhash=listing.blurhash,
        phash=listing.phash,
        added_at=added_at,
        popularity=popularity,
    )


def _dedupe(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def suggestion_keywords(doc: IndexDocument | None) -> set[str]:
    """What a public document contributes to keyword suggestions."""
    return set() if doc is None else set(doc.keywords) | set(doc.tags)


def public_document(row: asyncpg.Record | dict[str, Any] | None, popularity: int) -> IndexDocument | None:
    """The serving-index document of a read-model row, or None if the image is not public."""
    if row is None or row["status"] != "approved" or row["listing"] is None:
        return None
    return index_document(
        row["image_id"],
        row["contributor_id"],
        row["revision"],
        ImageListing.model_validate(row["listing"]),
        row["approved_at"] or row["updated_at"],
        popularity,
    )


async def adjust_keyword_counts(conn: asyncpg.Connection, removed: Sequence[str], added: Sequence[str]) -> None:
    if added:
        await conn.execute(
            "insert into search.keyword_counts (keyword, images) select k, 1 from unnest($1::text[]) k "
            "on conflict (keyword) do update set images = search.keyword_counts.images + 1",
            sorted(added),
        )
    if removed:
        await conn.execute(
            "update search.keyword_counts set images = greatest(images - 1, 0) where keyword = any($1::text[])",
            sorted(removed),
        )
