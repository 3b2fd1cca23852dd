"""A file landing in `incoming`, on real Postgres and Azurite: accepted into originals with one
image.uploaded event, or quarantined with a reason the contributor can read; never silently dropped."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from functions.ingestion.ingest import ingest_blob
from functions.ingestion.models import UploadRequest
from functions.ingestion.policy import IngestionPolicy
from functions.ingestion.uploads import incoming_blob_name, register_upload
from shared.bus.events import ImageUploaded, Sidecar
from shared.storage import INCOMING, ORIGINALS, QUARANTINE
from tests.fixtures import bad_images
from tests.fixtures.photos import jpeg_bytes, photo

POLICY = IngestionPolicy()  # the defaults: 100 MiB, 4 MP, 150 MP, distance 7


async def _upload(db, store, data: bytes, *, contributor="carol", policy=POLICY, file_name="photo.jpg", sidecar=None):
    """Register an upload as the API does, then write the file where the ticket says."""
    request = UploadRequest(
        file_name=file_name,
        size_bytes=max(1, len(data)),
        content_type="image/jpeg",
        sidecar=sidecar or Sidecar(),
    )
    ticket = await register_upload(db, store, policy, contributor, request)
    name = incoming_blob_name(contributor, ticket.image_id)
    await store.put(INCOMING, name, data)
    return ticket.image_id, name


async def _row(db, image_id):
    return await db.pool.fetchrow("select * from ingestion.images where image_id = $1", image_id)


async def _uploaded_events(db) -> list[ImageUploaded]:
    rows = await db.pool.fetch("select body from bus.outbox where subject = 'image.uploaded' order by seq")
    return [ImageUploaded.model_validate(row["body"]) for row in rows]


async def _names(store, container: str) -> list[str]:
    return [blob.name async for blob in store.list(container)]


async def test_a_valid_photo_moves_to_originals_with_one_uploaded_event(db, blob_store):
    data = jpeg_bytes(photo("coffee", megapixels=5))
    sidecar = Sidecar(title="Morning coffee", keywords=["coffee", "cup"], usage="editorial")
    image_id, name = await _upload(db, blob_store, data, file_name="IMG_0001.JPG", sidecar=sidecar)

    result = await ingest_blob(db, blob_store, POLICY, name)

    assert result.outcome == "accepted"
    assert await blob_store.get(ORIGINALS, name) == data
    assert await _names(blob_store, INCOMING) == []
    row = await _row(db, image_id)
    assert row["state"] == "processing"
    assert (row["width"], row["height"], row["content_type"]) == (2739, 1826, "image/jpeg")
    [event] = await _uploaded_events(db)
    assert event.image_id == image_id
    assert event.contributor_id == "carol"
    assert event.original_blob == name
    assert event.file_name == "IMG_0001.JPG"
    assert event.sidecar == sidecar
    assert event.size_bytes == len(data)
    assert event.sha256 == row["sha256"] and len(event.sha256) == 64
    assert event.near_duplicate_of is None


async def test_originals_get_the_validated_bytes_even_if_incoming_was_overwritten_since(db, blob_store):
    # The upload SAS stays writable until it expires: the blob in `incoming` can be replaced after the
    # trigger read it. What lands in `originals` must be the file that was validated, never the newer one.
    data = jpeg_bytes(photo("coffee", megapixels=5))
    image_id, name = await _upload(db, blob_store, b"\x00" * len(data))  # same size, not an image

    result = await ingest_blob(db, blob_store, POLICY, name, data=data)  # what the binding read

    assert result.outcome == "accepted"
    assert await blob_store.get(ORIGINALS, name) == data
    assert (await _row(db, image_id))["sha256"] == hashlib.sha256(data).hexdigest()


async def test_redelivery_of_the_same_blob_event_changes_nothing(db, blob_store):
    image_id, name = await _upload(db, blob_store, jpeg_bytes(photo("chelsea", megapixels=5)))
    assert (await ingest_blob(db, blob_store, POLICY, name)).outcome == "accepted"
    before = dict(await _row(db, image_id))

    assert (await ingest_blob(db, blob_store, POLICY, name)).outcome == "gone"

    assert dict(await _row(db, image_id)) == before
    assert len(await _uploaded_events(db)) == 1


async def test_a_redelivery_after_a_crash_before_the_incoming_delete_only_finishes_the_cleanup(db, blob_store):
    data = jpeg_bytes(photo("rocket", megapixels=5))
    image_id, name = await _upload(db, blob_store, data)
    etag = (await blob_store.properties(INCOMING, name)).etag
    await ingest_blob(db, blob_store, POLICY, name)
    # The worker died after its transaction, before deleting: same blob version still in incoming.
    await db.pool.execute("update ingestion.images set incoming_etag = 'pending' where image_id = $1", image_id)
    await blob_store.put(INCOMING, name, data)
    new_etag = (await blob_store.properties(INCOMING, name)).etag
    await db.pool.execute("update ingestion.images set incoming_etag = $2 where image_id = $1", image_id, new_etag)
    assert etag != new_etag

    result = await ingest_blob(db, blob_store, POLICY, name)

    assert result.outcome == "already-decided"
    assert await _names(blob_store, INCOMING) == []
    assert (await _row(db, image_id))["state"] == "processing"
    assert len(await _uploaded_events(db)) == 1


async def test_a_second_file_put_to_a_used_ticket_is_quarantined_and_the_image_kept(db, blob_store):
    image_id, name = await _upload(db, blob_store, jpeg_bytes(photo("china", megapixels=5)))
    await ingest_blob(db, blob_store, POLICY, name)
    await blob_store.put(INCOMING, name, jpeg_bytes(photo("flower", megapixels=5)))

    result = await ingest_blob(db, blob_store, POLICY, name)

    assert result.outcome == "unregistered"
    assert (await _row(db, image_id))["state"] == "processing"
    (kept,) = await _names(blob_store, QUARANTINE)
    assert kept.startswith(f"unregistered/{name}/")
    assert (await blob_store.properties(QUARANTINE, kept)).metadata["reason_code"] == "upload-already-used"
    assert await _names(blob_store, INCOMING) == []


async def test_a_blob_written_to_incoming_without_an_upload_is_quarantined_with_a_reason(db, blob_store):
    names = ("mallory/not-an-id.jpg", f"mallory/{uuid.uuid4()}", "mallory/not-an-id.jpg")  # the same name twice
    for name in names:
        await blob_store.put(INCOMING, name, jpeg_bytes(photo("coffee", megapixels=5)))
        assert (await ingest_blob(db, blob_store, POLICY, name)).outcome == "unregistered"
    kept = await _names(blob_store, QUARANTINE)
    assert len(kept) == 3  # each version kept; the second "not-an-id.jpg" did not overwrite the first
    for blob in kept:
        assert (await blob_store.properties(QUARANTINE, blob)).metadata["reason_code"] == "unregistered"
    assert await _names(blob_store, INCOMING) == []
    assert await db.pool.fetchval("select count(*) from ingestion.images") == 0


async def test_another_contributors_ticket_id_does_not_claim_their_upload(db, blob_store):
    image_id, _ = await _upload(db, blob_store, b"")  # carol's ticket, empty file for now
    await blob_store.delete(INCOMING, incoming_blob_name("carol", image_id))
    forged = incoming_blob_name("mallory", image_id)
    await blob_store.put(INCOMING, forged, jpeg_bytes(photo("coffee", megapixels=5)))

    assert (await ingest_blob(db, blob_store, POLICY, forged)).outcome == "unregistered"
    assert (await _row(db, image_id))["state"] == "awaiting_upload"


BAD_INPUTS = {
    # name: (bytes, expected reason code)
    "zero-byte file": (bad_images.zero_byte, "empty-file"),
    "truncated JPEG": (bad_images.truncated_jpeg, "corrupt"),
    "PNG declaring 50000x50000": (bad_images.png_declaring, "too-many-pixels"),
    "HTML renamed .jpg": (bad_images.html_page, "unsupported-type"),
    "SVG renamed .jpg": (bad_images.svg_drawing, "unsupported-type"),
    "animated GIF": (bad_images.animated_gif, "animated"),
    "animated WebP": (bad_images.animated_webp, "animated"),
    "below 4 MP": (bad_images.too_small_jpeg, "too-small"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
async def test_each_bad_file_is_quarantined_with_a_reason_the_contributor_reads(db, blob_store, case):
    make, code = BAD_INPUTS[case]
    data = make()
    image_id, name = await _upload(db, blob_store, data)

    result = await ingest_blob(db, blob_store, POLICY, name)

    assert (result.outcome, result.reason_code) == ("quarantined", code)
    row = await _row(db, image_id)
    assert (row["state"], row["reason_code"]) == ("quarantined", code)
    assert row["reason"] and len(row["reason"]) > 20  # a sentence, not a code
    assert await blob_store.get(QUARANTINE, name) == data  # kept, not dropped
    assert (await blob_store.properties(QUARANTINE, name)).metadata["reason_code"] == code
    assert await _names(blob_store, INCOMING) == []
    assert await _names(blob_store, ORIGINALS) == []
    assert await _uploaded_events(db) == []


async def test_an_upload_larger_than_the_limit_is_quarantined_before_it_is_read(db, blob_store):
    policy = IngestionPolicy(max_upload_bytes=1_000_000)
    data = bad_images.oversize(1_000_000)
    image_id, name = await _upload(db, blob_store, data, policy=IngestionPolicy())

    result = await ingest_blob(db, blob_store, policy, name)

    assert result.reason_code == "too-large"
    row = await _row(db, image_id)
    assert row["state"] == "quarantined" and row["sha256"] is None  # never downloaded
    assert "1,000,000 bytes" in row["reason"]  # says what the limit is
    assert await blob_store.get(QUARANTINE, name) == data


@pytest.mark.parametrize(
    "make",
    [
        bad_images.cmyk_jpeg,
        bad_images.png_16bit,
        lambda: bad_images.jpeg_with_orientation(6),
        lambda: bad_images.jpeg_with_orientation(8),
        bad_images.jpeg_with_huge_exif,
        bad_images.jpeg_with_gps,
    ],
    ids=["CMYK JPEG", "16-bit PNG", "EXIF orientation 6", "EXIF orientation 8", "huge EXIF", "GPS tags"],
)
async def test_unusual_but_valid_photos_are_accepted_for_processing(db, blob_store, make):
    image_id, name = await _upload(db, blob_store, make())
    assert (await ingest_blob(db, blob_store, POLICY, name)).outcome == "accepted"
    assert (await _row(db, image_id))["state"] == "processing"
    assert await blob_store.exists(ORIGINALS, name)


async def test_an_exact_duplicate_is_refused_with_a_pointer_to_the_contributors_own_image(db, blob_store):
    data = jpeg_bytes(photo("astronaut", megapixels=5))
    first, first_name = await _upload(db, blob_store, data, contributor="carol")
    await ingest_blob(db, blob_store, POLICY, first_name)
    second, second_name = await _upload(db, blob_store, data, contributor="carol")

    result = await ingest_blob(db, blob_store, POLICY, second_name)

    assert (result.outcome, result.duplicate_of) == ("quarantined", first)
    row = await _row(db, second)
    assert (row["state"], row["reason_code"], row["duplicate_of"]) == ("quarantined", "duplicate", first)
    assert str(first) in row["reason"]
    assert len(await _uploaded_events(db)) == 1


async def test_a_duplicate_of_another_contributors_image_is_refused_without_naming_that_image(db, blob_store):
    data = jpeg_bytes(photo("astronaut", megapixels=5))
    first, first_name = await _upload(db, blob_store, data, contributor="carol")
    await ingest_blob(db, blob_store, POLICY, first_name)
    second, second_name = await _upload(db, blob_store, data, contributor="dave")

    result = await ingest_blob(db, blob_store, POLICY, second_name)

    assert result.outcome == "quarantined"
    row = await _row(db, second)
    assert (row["state"], row["reason_code"], row["duplicate_of"]) == ("quarantined", "duplicate", None)
    assert "another contributor" in row["reason"] and str(first) not in row["reason"]
    assert len(await _uploaded_events(db)) == 1


async def test_a_file_written_again_while_the_first_is_being_ingested_is_not_deleted_unseen(db, blob_store):
    _, name = await _upload(db, blob_store, jpeg_bytes(photo("china", megapixels=5)))
    first = await blob_store.properties(INCOMING, name)
    await blob_store.put(INCOMING, name, jpeg_bytes(photo("flower", megapixels=5)))  # the SAS is still valid

    # Deleting the version that was read leaves the newer one, which then fires its own trigger.
    assert await blob_store.delete(INCOMING, name, if_etag=first.etag) is False
    assert await blob_store.exists(INCOMING, name)
    newest = await blob_store.properties(INCOMING, name)
    assert await blob_store.delete(INCOMING, name, if_etag=newest.etag) is True


async def test_a_file_the_trigger_kept_failing_on_is_quarantined_with_a_reason_not_forgotten(db, blob_store):
    from datetime import timedelta

    from functions.ingestion.ingest import quarantine_stuck_uploads
    from functions.ingestion.uploads import forget_stale_tickets

    stuck, _ = await _upload(db, blob_store, jpeg_bytes(photo("rocket", megapixels=5)))
    await db.pool.execute("update ingestion.images set upload_expires_at = now() - interval '2 hours'")

    assert await quarantine_stuck_uploads(db, blob_store, older_than=timedelta(hours=1)) == 1
    assert await forget_stale_tickets(db) == 0  # it has its reason now; nothing to forget
    row = await _row(db, stuck)
    assert (row["state"], row["reason_code"]) == ("quarantined", "ingestion-failed")
    assert await _names(blob_store, INCOMING) == []
    assert len(await _names(blob_store, QUARANTINE)) == 1


async def test_a_file_refused_for_a_fixable_reason_does_not_block_its_next_upload(db, blob_store):
    data = jpeg_bytes(photo("motorcycle", megapixels=5))
    strict = IngestionPolicy(min_megapixels=6.0)
    _, name = await _upload(db, blob_store, data)
    assert (await ingest_blob(db, blob_store, strict, name)).reason_code == "too-small"
    _, again = await _upload(db, blob_store, data)
    assert (await ingest_blob(db, blob_store, POLICY, again)).outcome == "accepted"


async def test_a_near_duplicate_is_accepted_and_flagged_with_the_image_it_resembles(db, blob_store):
    original = jpeg_bytes(photo("chelsea", megapixels=6))
    first, first_name = await _upload(db, blob_store, original)
    await ingest_blob(db, blob_store, POLICY, first_name)
    _, other_name = await _upload(db, blob_store, jpeg_bytes(photo("rocket", megapixels=5)))
    await ingest_blob(db, blob_store, POLICY, other_name)
    copy_id, copy_name = await _upload(db, blob_store, bad_images.resized_copy(original, scale=0.85))

    result = await ingest_blob(db, blob_store, POLICY, copy_name)

    assert (result.outcome, result.near_duplicate_of) == ("accepted", first)
    assert (await _row(db, copy_id))["near_duplicate_of"] == first
    events = await _uploaded_events(db)
    assert [e.near_duplicate_of for e in events] == [None, None, first]


async def test_different_photos_are_not_near_duplicates(db, blob_store):
    names = []
    for subject in ("coffee", "chelsea", "rocket", "china", "flower", "astronaut"):
        _, name = await _upload(db, blob_store, jpeg_bytes(photo(subject, megapixels=5)))
        names.append(name)
    results = [await ingest_blob(db, blob_store, POLICY, name) for name in names]
    assert [r.near_duplicate_of for r in results] == [None] * len(names)


class CountingDownloads:
    """The real store, counting downloads."""

    def __init__(self, store) -> None:
        self._store = store
        self.downloads = 0

    def __getattr__(self, name):
        return getattr(self._store, name)

    def stream(self, container, name):
        self.downloads += 1
        return self._store.stream(container, name)


async def test_bytes_the_trigger_already_holds_are_not_downloaded_again(db, blob_store):
    data = jpeg_bytes(photo("flower", megapixels=5))
    _, name = await _upload(db, blob_store, data)
    store = CountingDownloads(blob_store)

    assert (await ingest_blob(db, store, POLICY, name, data=data)).outcome == "accepted"

    assert store.downloads == 0
    [event] = await _uploaded_events(db)
    assert event.sha256 == hashlib.sha256(data).hexdigest()


async def test_bytes_that_do_not_match_the_blob_are_ignored_and_the_blob_is_read(db, blob_store):
    data = jpeg_bytes(photo("flower", megapixels=5))
    image_id, name = await _upload(db, blob_store, data)
    store = CountingDownloads(blob_store)

    assert (await ingest_blob(db, store, POLICY, name, data=data[:-10])).outcome == "accepted"

    assert store.downloads == 1
    assert (await _row(db, image_id))["sha256"] == hashlib.sha256(data).hexdigest()
