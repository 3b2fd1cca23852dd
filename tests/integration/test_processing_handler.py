"""Processing on real embedded Postgres and real Azurite: one image.uploaded in, renditions and one
image.processed (or image.processing_failed) out, whatever awkward file the contributor sent."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from datetime import UTC, datetime

import httpx
import numpy as np
import pytest
from PIL import Image
from PIL.ExifTags import IFD

from functions.processing.batching import BatchingAnalyzer
from functions.processing.handlers import process_uploaded_image
from functions.processing.work import ProcessingOptions
from shared.bus.events import ImageProcessed, ImageProcessingFailed, ImageUploaded, Sidecar
from shared.bus.port import ReceivedMessage
from shared.ml import ImageAnalysis, ModelInputError
from shared.storage.port import ORIGINALS, THUMBNAILS, WATERMARKED
from tests.fixtures import bad_images
from tests.fixtures.photos import jpeg_bytes, photo

OPTIONS = ProcessingOptions()
RENDITIONS = {"small": (THUMBNAILS, 260), "medium": (THUMBNAILS, 450), "preview": (WATERMARKED, 1000)}


class FakeAnalyzer:
    """A fake of shared.ml's analyzer port: answers from the picture's mean colour, so results follow the input."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.seen: list[tuple[int, int]] = []

    def analyze(self, images):
        if self.error is not None:
            raise self.error
        results = []
        for img in images:
            self.seen.append(img.size)
            vector = np.resize(np.asarray(img, dtype=np.float32).mean(axis=(0, 1)), 384)
            results.append(ImageAnalysis([("warm", 0.9), ("cup", 0.4)], vector / np.linalg.norm(vector), 0.01))
        return results


async def upload_original(storage, data: bytes, **fields) -> ImageUploaded:
    image_id = uuid.uuid4()
    blob = f"c-1/{image_id}.jpg"
    await storage.put(ORIGINALS, blob, data, content_type="image/jpeg")
    return ImageUploaded(
        image_id=image_id,
        contributor_id="c-1",
        original_blob=blob,
        file_name="photo.jpg",
        content_type="image/jpeg",
        size_bytes=len(data),
        sha256="ab" * 32,
        uploaded_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        **fields,
    )


def delivery(event: ImageUploaded, message_id: str | None = None, delivery_count: int = 1) -> ReceivedMessage:
    now = datetime.now(UTC)
    return ReceivedMessage(
        message_id or str(uuid.uuid4()),
        "images",
        "processing",
        "image.uploaded",
        event.model_dump(mode="json"),
        "corr-1",
        delivery_count,
        now,
        now,
        "lock",
    )


async def process(db, storage, message, analyzer=None, max_deliveries=10):
    return await process_uploaded_image(
        message,
        db=db,
        storage=storage,
        analyzer=BatchingAnalyzer(analyzer or FakeAnalyzer()),
        options=OPTIONS,
        max_deliveries=max_deliveries,
    )


async def outbox(db) -> list[tuple[str, dict, str | None]]:
    rows = await db.pool.fetch("select subject, body::text, correlation_id from bus.outbox order by seq")
    return [(r["subject"], json.loads(r["body"]), r["correlation_id"]) for r in rows]


async def processed_event(db) -> ImageProcessed:
    (subject, body, _), *rest = await outbox(db)
    assert subject == "image.processed" and not rest
    return ImageProcessed.model_validate(body)


async def public_rendition(storage, url: str) -> Image.Image:
    # Fetched anonymously through its public URL, as a browser would.
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200, url
    assert response.headers["content-type"] == "image/jpeg"
    return Image.open(io.BytesIO(response.content))


async def test_a_real_photo_gets_renditions_metadata_and_one_image_processed_event(db, blob_store):
    sidecar = Sidecar(title="Red cup", keywords=["coffee", "cup"], category="food", usage="editorial")
    original = bad_images.jpeg_with_gps()  # 5 MP camera JPEG with make, model, date and GPS
    event = await upload_original(blob_store, original, sidecar=sidecar, near_duplicate_of=uuid.uuid4())
    analyzer = FakeAnalyzer()

    outcome = await process(db, blob_store, delivery(event), analyzer)

    assert outcome.status == "processed"
    processed = await processed_event(db)
    listing = processed.listing
    assert (processed.image_id, processed.revision, processed.contributor_id) == (event.image_id, 1, "c-1")
    assert (processed.original_blob, processed.sha256, processed.near_duplicate_of) == (
        event.original_blob,
        event.sha256,
        event.near_duplicate_of,
    )
    assert (listing.title, listing.keywords, listing.category, listing.usage) == (
        "Red cup",
        ["coffee", "cup"],
        "food",
        "editorial",
    )
    source = photo("coffee", megapixels=5)
    assert (listing.width, listing.height, listing.orientation) == (*source.size, "landscape")
    assert listing.model_extra["megapixels"] == round(source.width * source.height / 1e6, 1)
    assert (listing.camera, listing.captured_at) == ("Canon EOS R5", datetime(2024, 5, 17, 8, 30))
    assert listing.colors[0].name == "brown" and sum(c.share for c in listing.colors) <= 1
    assert [(t.label, t.confidence) for t in listing.tags] == [("warm", 0.9), ("cup", 0.4)]
    assert len(listing.embedding) == 384 and listing.safety_score == pytest.approx(0.01)
    assert analyzer.seen == [(450, 300)]  # the models see the medium thumbnail, not the 5 MP original
    assert len(listing.phash) == 16 and int(listing.phash, 16) > 0
    assert len(listing.blurhash) == 28
    assert listing.uploaded_at == event.uploaded_at

    urls = {
        "small": listing.renditions.thumbnail_small_url,
        "medium": listing.renditions.thumbnail_url,
        "preview": listing.renditions.preview_url,
    }
    for name, (container, long_side) in RENDITIONS.items():
        assert urls[name] == blob_store.public_url(container, f"{event.image_id}/{name}.jpg")
        img = await public_rendition(blob_store, urls[name])
        assert max(img.size) == long_side and img.mode == "RGB"

    # The original stays private and byte-for-byte untouched.
    assert await blob_store.get(ORIGINALS, event.original_blob) == original
    with pytest.raises(ValueError):
        blob_store.public_url(ORIGINALS, event.original_blob)

    row = await db.pool.fetchrow("select * from processing.results where image_id = $1", event.image_id)
    assert (row["status"], row["width"], row["height"], row["phash"]) == ("processed", *source.size, listing.phash)
    assert set(row["stage_ms"]) >= {"download", "decode", "render", "inference", "upload"}


async def test_gps_and_all_exif_are_absent_from_every_public_rendition(db, blob_store):
    original = bad_images.jpeg_with_gps()
    with Image.open(io.BytesIO(original)) as source:
        assert source.getexif().get_ifd(IFD.GPSInfo)  # the upload does carry a position
    event = await upload_original(blob_store, original)
    await process(db, blob_store, delivery(event))

    for container, name in [(THUMBNAILS, "small"), (THUMBNAILS, "medium"), (WATERMARKED, "preview")]:
        data = await blob_store.get(container, f"{event.image_id}/{name}.jpg")
        with Image.open(io.BytesIO(data)) as img:
            assert not img.getexif(), name
            assert not {"exif", "xmp", "icc_profile", "photoshop"} & set(img.info), name
        assert b"Exif\x00\x00" not in data and b"GPS" not in data, name


@pytest.mark.parametrize(("orientation", "turn"), [(6, Image.Transpose.ROTATE_270), (8, Image.Transpose.ROTATE_90)])
async def test_exif_orientation_6_and_8_give_upright_portrait_renditions(db, blob_store, orientation, turn):
    event = await upload_original(blob_store, bad_images.jpeg_with_orientation(orientation))
    await process(db, blob_store, delivery(event))
    listing = (await processed_event(db)).listing
    assert listing.orientation == "portrait" and listing.width < listing.height

    upright = photo("coffee", megapixels=5).transpose(turn)
    for container, name in [(THUMBNAILS, "small"), (THUMBNAILS, "medium")]:
        with Image.open(io.BytesIO(await blob_store.get(container, f"{event.image_id}/{name}.jpg"))) as img:
            assert img.width < img.height
            expected = np.asarray(upright.resize(img.size, Image.Resampling.BOX), dtype=np.int16)
            assert np.abs(np.asarray(img.convert("RGB"), dtype=np.int16) - expected).mean() < 8, name


@pytest.mark.parametrize("make", [bad_images.cmyk_jpeg, bad_images.png_16bit, bad_images.png_16bit_grey])
async def test_cmyk_and_16_bit_originals_give_8_bit_srgb_renditions(db, blob_store, make):
    event = await upload_original(blob_store, make())
    outcome = await process(db, blob_store, delivery(event))
    assert outcome.status == "processed"
    listing = (await processed_event(db)).listing
    for container, name in [(THUMBNAILS, "small"), (THUMBNAILS, "medium"), (WATERMARKED, "preview")]:
        with Image.open(io.BytesIO(await blob_store.get(container, f"{event.image_id}/{name}.jpg"))) as img:
            assert (img.format, img.mode) == ("JPEG", "RGB")
    expected = "grey" if make is bad_images.png_16bit_grey else "brown"
    assert listing.colors[0].name == expected


async def test_a_huge_exif_block_is_read_and_left_behind(db, blob_store):
    original = bad_images.jpeg_with_huge_exif()
    event = await upload_original(blob_store, original)
    await process(db, blob_store, delivery(event))
    listing = (await processed_event(db)).listing
    assert listing.camera == "HugeExifCam"
    small = await blob_store.get(THUMBNAILS, f"{event.image_id}/small.jpg")
    assert len(small) < 60_000 and b"xxxxxxxxxxxxxxxx" not in small


async def test_a_redelivered_message_is_processed_once(db, blob_store):
    event = await upload_original(blob_store, jpeg_bytes(photo("chelsea", megapixels=4)))
    message = delivery(event, message_id="m-1")
    assert (await process(db, blob_store, message)).status == "processed"
    assert (await process(db, blob_store, message)).status == "redelivered"
    assert [subject for subject, _, _ in await outbox(db)] == ["image.processed"]
    assert await db.pool.fetchval("select count(*) from processing.results") == 1


@pytest.mark.parametrize(
    ("make", "expected_reason"),
    [(lambda: bad_images.truncated_jpeg(megapixels=1), "could not be decoded"), (lambda: b"<html>", "decoded")],
)
async def test_an_original_that_cannot_be_decoded_fails_for_good_with_a_reason(db, blob_store, make, expected_reason):
    event = await upload_original(blob_store, make())
    outcome = await process(db, blob_store, delivery(event))  # returns: the message completes, no retry
    assert outcome.status == "failed"
    [(subject, body, correlation_id)] = await outbox(db)
    failed = ImageProcessingFailed.model_validate(body)
    assert (subject, failed.image_id, correlation_id) == ("image.processing_failed", event.image_id, "corr-1")
    assert expected_reason in failed.reason
    row = await db.pool.fetchrow("select status, reason from processing.results where image_id = $1", event.image_id)
    assert (row["status"], row["reason"]) == ("failed", failed.reason)
    assert not [b async for b in blob_store.list(THUMBNAILS, prefix=str(event.image_id))]


async def test_a_missing_original_fails_for_good(db, blob_store):
    event = await upload_original(blob_store, jpeg_bytes(photo("coffee")))
    await blob_store.delete(ORIGINALS, event.original_blob)
    assert (await process(db, blob_store, delivery(event))).status == "failed"
    [(subject, body, _)] = await outbox(db)
    assert subject == "image.processing_failed" and "no longer in storage" in body["reason"]


async def test_an_input_the_model_rejects_fails_for_good(db, blob_store):
    event = await upload_original(blob_store, jpeg_bytes(photo("coffee")))
    outcome = await process(db, blob_store, delivery(event), FakeAnalyzer(ModelInputError("unsupported input")))
    assert outcome.status == "failed" and "unsupported input" in outcome.reason
    assert [subject for subject, _, _ in await outbox(db)] == ["image.processing_failed"]


async def test_a_transient_failure_raises_for_the_bus_to_retry_and_changes_nothing(db, blob_store):
    event = await upload_original(blob_store, jpeg_bytes(photo("coffee")))
    with pytest.raises(RuntimeError, match="session crashed"):
        await process(db, blob_store, delivery(event), FakeAnalyzer(RuntimeError("session crashed")))
    assert await outbox(db) == []
    assert await db.pool.fetchval("select count(*) from processing.inbox") == 0


async def test_on_the_last_allowed_delivery_a_transient_failure_is_reported_instead_of_dead_lettered(db, blob_store):
    event = await upload_original(blob_store, jpeg_bytes(photo("coffee")))
    message = delivery(event, delivery_count=10)
    outcome = await process(db, blob_store, message, FakeAnalyzer(RuntimeError("session crashed")), max_deliveries=10)
    assert outcome.status == "failed"
    [(subject, body, _)] = await outbox(db)
    assert subject == "image.processing_failed" and "10 times" in body["reason"]
    assert "session crashed" not in body["reason"]  # internals stay in the log


class CountingStorage:
    """The real blob store, counting downloads of originals in flight."""

    def __init__(self, real) -> None:
        self.real = real
        self.active = 0
        self.most = 0

    async def get(self, container, name):
        self.active += 1
        self.most = max(self.most, self.active)
        try:
            await asyncio.sleep(0.05)
            return await self.real.get(container, name)
        finally:
            self.active -= 1

    def __getattr__(self, name):
        return getattr(self.real, name)


async def test_admission_bounds_how_many_originals_a_worker_holds_at_once(db, blob_store):
    events = [await upload_original(blob_store, jpeg_bytes(photo(name, megapixels=4))) for name in ("coffee", "china")]
    events.append(await upload_original(blob_store, jpeg_bytes(photo("rocket"))))
    storage = CountingStorage(blob_store)
    analyzer = BatchingAnalyzer(FakeAnalyzer())
    gate = asyncio.Semaphore(1)  # one per worker process, shared by every message it handles
    outcomes = await asyncio.gather(
        *(
            process_uploaded_image(
                delivery(event),
                db=db,
                storage=storage,
                analyzer=analyzer,
                options=OPTIONS,
                max_deliveries=10,
                admission=gate,
            )
            for event in events
        )
    )
    assert [o.status for o in outcomes] == ["processed"] * 3
    assert storage.most == 1
