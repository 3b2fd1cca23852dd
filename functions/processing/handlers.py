"""The processing service's handler: image.uploaded -> renditions, metadata, ML -> image.processed.

One photo, once: the original is read from `originals`, decoded once at preview size,
rendered to public renditions without metadata, described (colours, hashes, EXIF) and
analysed (tags, embedding, safety). The result row, the inbox claim and the outbox
event commit in one transaction.

Failures: a transient one (storage, database, a model run that crashed) raises, and
the bus redelivers. A permanent one (the original is gone or cannot be decoded, the
model rejects the input), or a transient one on the last delivery the bus allows,
completes the message with `image.processing_failed` carrying a reason the contributor
can read: nothing ends in the dead-letter queue unexplained.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

import numpy as np
import structlog
from PIL import Image

from functions.processing.withdrawal import rendition_blob
from functions.processing.work import RENDITION_CONTAINERS, ImageWork, ProcessingOptions, render_and_describe
from shared.bus.events import (
    ColorShare,
    ImageListing,
    ImageProcessed,
    ImageProcessingFailed,
    ImageUploaded,
    Renditions,
    Tag,
)
from shared.bus.inbox import claim_message
from shared.bus.outbox import add_to_outbox
from shared.bus.port import ReceivedMessage, error_text
from shared.db import Database
from shared.imaging.decode import UndecodableImage
from shared.ml import ImageAnalysis, ModelInputError
from shared.storage.port import ORIGINALS, BlobNotFound, BlobStore

SUBSCRIPTION = "processing"
SQUARE_TOLERANCE = 0.02  # sides within 2% of each other count as square
log = structlog.get_logger()


class Analyzer(Protocol):
    """May also name its model set-up's `version`: stored with each result, so the re-embed job
    (functions/processing/reembed.py) knows which images an older model analysed."""

    async def analyze(self, image: Image.Image) -> ImageAnalysis: ...


class PermanentFailure(Exception):
    """Retrying cannot help; `reason` is shown to the contributor."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Outcome:
    status: Literal["processed", "failed", "redelivered"]  # redelivered: handled before, nothing done
    image_id: str
    reason: str | None = None
    stage_ms: dict[str, float] | None = None


async def process_uploaded_image(
    message: ReceivedMessage,
    *,
    db: Database,
    storage: BlobStore,
    analyzer: Analyzer,
    options: ProcessingOptions,
    max_deliveries: int,
    executor: Executor | None = None,
    admission: asyncio.Semaphore | None = None,
) -> Outcome:
    """Handle one `image.uploaded` delivery. Raises on a transient failure so that the bus retries.

    `admission` bounds how many originals a worker holds in memory at once (download and decode run
    inside it): an original may be 100 MB, and the bus hands a worker many messages together.
    """
    uploaded = ImageUploaded.model_validate(message.body)
    image_id = str(uploaded.image_id)
    if await _already_handled(db, message.message_id):
        # A redelivery after a commit whose settlement was lost: skip the expensive work entirely.
        return Outcome("redelivered", image_id)
    stage_ms: dict[str, float] = {}
    try:
        work, analysis = await _process(uploaded, storage, analyzer, options, executor, admission, stage_ms)
    except PermanentFailure as failure:
        return await _record_failure(db, message, uploaded, failure.reason, stage_ms)
    except Exception as exc:
        if message.delivery_count < max_deliveries:
            raise
        # The bus would dead-letter this delivery: tell the contributor instead. The error itself goes to
        # the log only (it may name hosts or internals).
        log.error("processing.gave_up", image_id=image_id, error=error_text(exc), deliveries=message.delivery_count)
        reason = (
            f"Processing failed {message.delivery_count} times in a row because of a problem on our side; "
            f"please upload the image again later (reference {image_id})."
        )
        return await _record_failure(db, message, uploaded, reason, stage_ms)

    started = time.perf_counter()
    listing = build_listing(uploaded, work, analysis, storage, message.enqueued_time)
    processed = ImageProcessed(
        image_id=uploaded.image_id,
        contributor_id=uploaded.contributor_id,
        revision=1,
        original_blob=uploaded.original_blob,
        file_name=uploaded.file_name,
        size_bytes=uploaded.size_bytes,
        sha256=uploaded.sha256,
        near_duplicate_of=uploaded.near_duplicate_of,
        listing=listing,
    )
    async with db.transaction() as conn:
        if not await claim_message(conn, "processing", SUBSCRIPTION, message.message_id):
            return Outcome("redelivered", image_id)
        await conn.execute(
            _UPSERT_RESULT,
            uploaded.image_id,
            uploaded.contributor_id,
            message.message_id,
            "processed",
            None,
            uploaded.original_blob,
            uploaded.sha256,
            listing.width,
            listing.height,
            listing.phash,
            listing.blurhash,
            json.dumps(_rendition_blobs(uploaded)),
            listing.model_dump_json(),
            json.dumps(stage_ms),
            message.delivery_count,
            getattr(analyzer, "version", None),
        )
        await add_to_outbox(conn, processed, correlation_id=message.correlation_id)
    stage_ms["commit"] = _ms_since(started)
    log.info("processing.done", image_id=image_id, stage_ms=stage_ms, tags=[t.label for t in listing.tags[:3]])
    return Outcome("processed", image_id, stage_ms=stage_ms)


async def _process(
    uploaded: ImageUploaded,
    storage: BlobStore,
    analyzer: Analyzer,
    options: ProcessingOptions,
    executor: Executor | None,
    admission: asyncio.Semaphore | None,
    stage_ms: dict[str, float],
) -> tuple[ImageWork, ImageAnalysis]:
    async with admission or contextlib.nullcontext():
        started = time.perf_counter()
        try:
            data = await storage.get(ORIGINALS, uploaded.original_blob)
        except BlobNotFound:
            reason = "The original file is no longer in storage; please upload the image again."
            raise PermanentFailure(reason) from None
        stage_ms["download"] = _ms_since(started)
        try:
            work = await asyncio.get_running_loop().run_in_executor(executor, render_and_describe, data, options)
        except UndecodableImage as exc:
            reason = f"The image could not be decoded ({exc}); please export it again and re-upload."
            raise PermanentFailure(reason) from exc
        del data  # the original can be large; nothing below needs it
    stage_ms.update(work.stage_ms)

    started = time.perf_counter()
    try:
        analysis = await analyzer.analyze(work.analysis_input)
    except ModelInputError as exc:
        raise PermanentFailure(f"The image could not be analysed: {exc}") from exc
    stage_ms["inference"] = _ms_since(started)

    started = time.perf_counter()
    # Fixed names: a retry overwrites the same blobs, so nothing is left behind by a failed attempt.
    await asyncio.gather(
        *(
            storage.put(
                RENDITION_CONTAINERS[r.spec.name],
                _blob_name(uploaded, r.spec.name),
                r.data,
                content_type=r.content_type,
            )
            for r in work.renditions
        )
    )
    stage_ms["upload"] = _ms_since(started)
    return work, analysis


def build_listing(
    uploaded: ImageUploaded,
    work: ImageWork,
    analysis: ImageAnalysis,
    storage: BlobStore,
    enqueued_at: datetime,
) -> ImageListing:
    """The event-carried state of the image: the contributor's sidecar plus everything processing found."""
    width, height = work.decoded.width, work.decoded.height
    sidecar = uploaded.sidecar

    def url(name: str) -> str:
        return storage.public_url(RENDITION_CONTAINERS[name], _blob_name(uploaded, name))

    return ImageListing(
        title=sidecar.title,
        description=sidecar.description,
        keywords=list(sidecar.keywords),
        category=sidecar.category,
        usage=sidecar.usage,
        width=width,
        height=height,
        orientation=orientation_of(width, height),
        megapixels=round(width * height / 1_000_000, 1),
        colors=[ColorShare(name=c.name, hex=c.hex, share=c.share) for c in work.colors],
        tags=[Tag(label=label, confidence=_unit(conf)) for label, conf in analysis.tags],
        embedding=np.round(np.asarray(analysis.embedding, dtype=np.float64), 6).tolist(),
        safety_score=_unit(analysis.safety_score),
        renditions=Renditions(
            thumbnail_small_url=url("small"), thumbnail_url=url("medium"), preview_url=url("preview")
        ),
        blurhash=work.blurhash,
        phash=f"{work.phash:016x}",
        camera=work.exif.camera,
        lens=work.exif.lens,
        captured_at=work.exif.captured_at,
        uploaded_at=uploaded.uploaded_at or enqueued_at,
    )


def orientation_of(width: int, height: int) -> str:
    if abs(width - height) <= SQUARE_TOLERANCE * max(width, height):
        return "square"
    return "landscape" if width > height else "portrait"


async def _record_failure(
    db: Database, message: ReceivedMessage, uploaded: ImageUploaded, reason: str, stage_ms: dict[str, float]
) -> Outcome:
    image_id = str(uploaded.image_id)
    async with db.transaction() as conn:
        if not await claim_message(conn, "processing", SUBSCRIPTION, message.message_id):
            return Outcome("redelivered", image_id)
        await conn.execute(
            _UPSERT_RESULT,
            uploaded.image_id,
            uploaded.contributor_id,
            message.message_id,
            "failed",
            reason,
            uploaded.original_blob,
            uploaded.sha256,
            None,
            None,
            None,
            None,
            "{}",
            None,
            json.dumps(stage_ms),
            message.delivery_count,
            None,
        )
        failed = ImageProcessingFailed(
            image_id=uploaded.image_id, contributor_id=uploaded.contributor_id, reason=reason
        )
        await add_to_outbox(conn, failed, correlation_id=message.correlation_id)
    log.warning("processing.failed", image_id=image_id, reason=reason)
    return Outcome("failed", image_id, reason=reason, stage_ms=stage_ms)


async def _already_handled(db: Database, message_id: str) -> bool:
    async with db.connection() as conn:
        return bool(
            await conn.fetchval(
                "select true from processing.inbox where subscription = $1 and message_id = $2",
                SUBSCRIPTION,
                message_id,
            )
        )


# A later image.uploaded for the same image (re-ingestion) replaces the row: it is the newest truth.
_UPSERT_RESULT = """
insert into processing.results (
    image_id, contributor_id, message_id, status, reason, original_blob, sha256, width, height,
    phash, blurhash, renditions, listing, stage_ms, deliveries, model_version
) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::text::jsonb, $13::text::jsonb, $14::text::jsonb, $15,
          $16)
on conflict (image_id) do update set
    contributor_id = excluded.contributor_id, message_id = excluded.message_id, status = excluded.status,
    reason = excluded.reason, original_blob = excluded.original_blob, sha256 = excluded.sha256,
    width = excluded.width, height = excluded.height, phash = excluded.phash, blurhash = excluded.blurhash,
    renditions = excluded.renditions, listing = excluded.listing, stage_ms = excluded.stage_ms,
    deliveries = excluded.deliveries, model_version = excluded.model_version, processed_at = now()
"""


def _blob_name(uploaded: ImageUploaded, rendition: str) -> str:
    return rendition_blob(uploaded.image_id, rendition)


def _rendition_blobs(uploaded: ImageUploaded) -> dict[str, str]:
    return {name: f"{container}/{_blob_name(uploaded, name)}" for name, container in RENDITION_CONTAINERS.items()}


def _unit(value: float) -> float:
    return min(1.0, max(0.0, float(value)))


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)
