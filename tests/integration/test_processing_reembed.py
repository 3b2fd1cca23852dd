"""The re-embed job on real embedded Postgres and Azurite: after a model switch, every image still on show
is analysed again from its original, once, and announced (image.reanalyzed); moderation turns that into
the listing update that search, checkout and the catalogue already follow."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pytest

from functions.moderation import handlers as moderation
from functions.moderation.policy import ModerationPolicy
from functions.processing.batching import BatchingAnalyzer
from functions.processing.handlers import process_uploaded_image
from functions.processing.reembed import reembed
from functions.processing.withdrawal import withdraw_renditions
from functions.processing.work import ProcessingOptions
from shared.bus.events import ImageProcessed, ImageReanalyzed, ImageRemoved, ImageUpdated, ImageUploaded
from shared.bus.port import ReceivedMessage
from shared.ml import ImageAnalysis
from shared.storage.port import ORIGINALS
from tests.fixtures.moderation import outbox, processed_event, received
from tests.fixtures.photos import jpeg_bytes, photo

OPTIONS = ProcessingOptions()


class VersionedFakeAnalyzer:
    """A fake of shared.ml's analyzer: its version and its tag say which model it stands for."""

    def __init__(self, version: str, dimension: int = 384) -> None:
        self.version = version
        self.dimension = dimension
        self.images = 0

    def analyze(self, images):
        self.images += len(images)
        results = []
        for img in images:
            vector = np.resize(np.asarray(img, dtype=np.float32).mean(axis=(0, 1)) + 1, self.dimension)
            results.append(ImageAnalysis([(f"tag of {self.version}", 0.8)], vector / np.linalg.norm(vector), 0.01))
        return results


def _message(event, subscription: str) -> ReceivedMessage:
    now = datetime.now(UTC)
    body = event.model_dump(mode="json")
    return ReceivedMessage(str(uuid.uuid4()), "images", subscription, event.subject, body, None, 1, now, now, "lock")


async def _processed(db, storage, analyzer, name: str = "coffee") -> ImageUploaded:
    image_id = uuid.uuid4()
    blob = f"c-1/{image_id}.jpg"
    data = jpeg_bytes(photo(name, megapixels=0.3))
    await storage.put(ORIGINALS, blob, data, content_type="image/jpeg")
    uploaded = ImageUploaded(
        image_id=image_id,
        contributor_id="c-1",
        original_blob=blob,
        content_type="image/jpeg",
        size_bytes=len(data),
        sha256="ab" * 32,
    )
    outcome = await process_uploaded_image(
        _message(uploaded, "processing"),
        db=db,
        storage=storage,
        analyzer=BatchingAnalyzer(analyzer),
        options=OPTIONS,
        max_deliveries=10,
    )
    assert outcome.status == "processed"
    return uploaded


async def _versions(db) -> dict[uuid.UUID, str | None]:
    rows = await db.pool.fetch("select image_id, model_version from processing.results")
    return {r["image_id"]: r["model_version"] for r in rows}


async def _reanalyzed(db) -> list[ImageReanalyzed]:
    return [ImageReanalyzed.model_validate(body) for body in await outbox(db, "image.reanalyzed")]


async def test_after_a_model_switch_each_image_on_show_is_reembedded_once_and_announced(db, blob_store):
    old = VersionedFakeAnalyzer("model-a")
    kept = [await _processed(db, blob_store, old, name) for name in ("coffee", "china")]
    taken_down = await _processed(db, blob_store, old, "coffee")
    removed = ImageRemoved(image_id=taken_down.image_id, contributor_id="c-1", revision=3, reason="DMCA")
    await withdraw_renditions(_message(removed, "processing"), db=db, storage=blob_store, subscription="processing")
    assert set((await _versions(db)).values()) == {"model-a"}  # processing records which model it ran

    new = VersionedFakeAnalyzer("model-b", dimension=512)
    report = await reembed(db, blob_store, BatchingAnalyzer(new), OPTIONS, batch_size=1, actor="admin-alice")

    assert (report.model_version, report.reembedded, report.failed) == ("model-b", 2, {})
    events = {e.image_id: e for e in await _reanalyzed(db)}
    assert set(events) == {u.image_id for u in kept}  # the taken-down image is left alone
    for event in events.values():
        assert event.model_version == "model-b" and [t.label for t in event.tags] == ["tag of model-b"]
        assert len(event.embedding) == 512 and np.linalg.norm(event.embedding) == pytest.approx(1, abs=1e-4)
    versions = await _versions(db)
    assert [versions[u.image_id] for u in kept] == ["model-b", "model-b"]
    assert versions[taken_down.image_id] == "model-a"
    listing = await db.pool.fetchval("select listing from processing.results where image_id = $1", kept[0].image_id)
    assert listing["tags"] == [{"label": "tag of model-b", "confidence": 0.8}] and len(listing["embedding"]) == 512
    audit = [body["action"] for body in await outbox(db, "audit.recorded")]
    assert audit == ["images.reembed.start", "images.reembed.finish"]

    again = await reembed(db, blob_store, BatchingAnalyzer(new), OPTIONS, actor="admin-alice")

    assert again.reembedded == 0 and new.images == 2  # nothing left at this version: no model run, no event
    assert len(await _reanalyzed(db)) == 2


async def test_a_run_stopped_half_way_goes_on_where_it_stopped(db, blob_store):
    old = VersionedFakeAnalyzer("model-a")
    images = [await _processed(db, blob_store, old) for _ in range(3)]
    new = BatchingAnalyzer(VersionedFakeAnalyzer("model-b"))

    first = await reembed(db, blob_store, new, OPTIONS, batch_size=2, limit=1)
    second = await reembed(db, blob_store, new, OPTIONS, batch_size=2)

    assert (first.reembedded, second.reembedded) == (1, 2)
    assert sorted(e.image_id for e in await _reanalyzed(db)) == sorted(u.image_id for u in images)


async def test_an_image_whose_original_is_gone_is_reported_and_left_as_it_was(db, blob_store):
    old = VersionedFakeAnalyzer("model-a")
    lost, fine = await _processed(db, blob_store, old), await _processed(db, blob_store, old)
    await blob_store.delete(ORIGINALS, lost.original_blob)

    report = await reembed(db, blob_store, BatchingAnalyzer(VersionedFakeAnalyzer("model-b")), OPTIONS)

    assert report.reembedded == 1 and report.failed == {str(lost.image_id): "original missing"}
    assert [e.image_id for e in await _reanalyzed(db)] == [fine.image_id]
    assert (await _versions(db))[lost.image_id] == "model-a"  # a later run tries it again


async def test_an_analyzer_without_a_version_is_refused(db, blob_store):
    with pytest.raises(ValueError, match="version"):
        await reembed(db, blob_store, BatchingAnalyzer(VersionedFakeAnalyzer("")), OPTIONS)


# --- moderation, which owns the listing ------------------------------------------------------------


def _reanalysis(image_id: uuid.UUID, version: str = "model-b") -> ImageReanalyzed:
    return ImageReanalyzed(
        image_id=image_id,
        contributor_id="contributor-1",
        model_version=version,
        tags=[{"label": "beach", "confidence": 0.7}],
        embedding=[1.0] + [0.0] * 511,
    )


async def _decided(db, event: ImageProcessed) -> None:
    await moderation.handle_image_processed(db, received(event), ModerationPolicy())


async def test_a_live_image_announces_its_new_tags_and_embedding_with_the_next_revision(db):
    event = processed_event()
    await _decided(db, event)  # approved at revision 2
    message = received(_reanalysis(event.image_id))

    assert await moderation.handle_image_reanalyzed(db, message) == "updated"
    assert await moderation.handle_image_reanalyzed(db, message) == "duplicate"

    [updated] = [ImageUpdated.model_validate(body) for body in await outbox(db, "image.updated")]
    assert updated.revision == 3 and [t.label for t in updated.listing.tags] == ["beach"]
    assert updated.listing.embedding == [1.0] + [0.0] * 511
    assert (updated.listing.title, updated.listing.keywords) == (event.listing.title, event.listing.keywords)


async def test_a_pending_image_keeps_waiting_with_the_new_listing_and_a_removed_one_stays_quiet(db):
    pending = processed_event(keywords=["coffee"])  # too few keywords: waits for a human
    await _decided(db, pending)
    await moderation.handle_image_reanalyzed(db, received(_reanalysis(pending.image_id)))
    flagged = [body for body in await outbox(db, "image.flagged") if body.get("listing")]
    assert len(flagged) == 1 and flagged[0]["listing"]["tags"] == [{"label": "beach", "confidence": 0.7}]

    live = processed_event()
    await _decided(db, live)
    await moderation.take_down_image(db, live.image_id, "DMCA", moderation.Actor("admin-alice"))
    assert await moderation.handle_image_reanalyzed(db, received(_reanalysis(live.image_id))) == "ignored_removed"
    assert await outbox(db, "image.updated") == []


async def test_a_reanalysis_that_overtakes_the_first_processing_is_delivered_again_later(db):
    with pytest.raises(moderation.NotYetKnown):
        await moderation.handle_image_reanalyzed(db, received(_reanalysis(uuid.uuid4())))
    assert await db.pool.fetchval("select count(*) from moderation.inbox") == 0  # not claimed: the bus retries
