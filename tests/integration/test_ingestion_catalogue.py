"""The catalogue kept current from the images topic, and the contributor's view of it (real Postgres)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from functions.ingestion.catalogue import apply_image_event, get_image, list_images
from functions.ingestion.models import ImagesQuery, UploadRequest
from functions.ingestion.policy import IngestionPolicy
from functions.ingestion.uploads import register_upload
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
    Renditions,
    Tag,
)
from shared.bus.port import ReceivedMessage


class _SasOnlyStore:
    """register_upload needs only a reachable store and a SAS URL from storage here."""

    async def ping(self) -> bool:
        return True

    async def sas_url(self, container, name, *, permissions="r", expires_in=None, content_disposition=None):
        return f"https://storage.test/{container}/{name}?sp={permissions}"


async def _image(db, contributor="carol", state="processing", file_name="a.jpg") -> uuid.UUID:
    request = UploadRequest(file_name=file_name, size_bytes=10, content_type="image/jpeg")
    ticket = await register_upload(db, _SasOnlyStore(), IngestionPolicy(), contributor, request)
    await db.pool.execute("update ingestion.images set state = $2 where image_id = $1", ticket.image_id, state)
    return ticket.image_id


def _listing(title: str = "Cat", safety: float = 0.02) -> ImageListing:
    return ImageListing(
        title=title,
        width=3000,
        height=2000,
        orientation="landscape",
        tags=[Tag(label="cat", confidence=0.9)],
        embedding=[0.1] * 384,
        safety_score=safety,
        renditions=Renditions(
            thumbnail_small_url="http://t/s.jpg", thumbnail_url="http://t/m.jpg", preview_url="http://w/p.jpg"
        ),
        uploaded_at=datetime.now(UTC),
    )


def _message(event: Event, message_id: str | None = None) -> ReceivedMessage:
    now = datetime.now(UTC)
    return ReceivedMessage(
        message_id or str(uuid.uuid4()),
        "images",
        "ingestion",
        event.subject,
        event.model_dump(mode="json"),
        "corr-1",
        1,
        now,
        now,
        "lock",
    )


async def test_processed_then_approved_shows_renditions_tags_and_safety_score(db):
    image_id = await _image(db)
    assert await apply_image_event(
        db, _message(ImageProcessed(image_id=image_id, contributor_id="carol", listing=_listing()))
    )
    image = await get_image(db, "carol", image_id)
    assert image.state == "processed"
    assert image.listing.renditions.thumbnail_url == "http://t/m.jpg"
    assert image.listing.tags[0].label == "cat" and image.listing.safety_score == 0.02
    assert "embedding" not in image.listing.model_dump()

    approved = ImageApproved(
        image_id=image_id,
        contributor_id="carol",
        revision=2,
        approved_at=datetime.now(UTC),
        original_blob="carol/x",
        listing=_listing("Tabby cat"),
    )
    assert await apply_image_event(db, _message(approved))
    image = await get_image(db, "carol", image_id)
    assert (image.state, image.listing.title) == ("approved", "Tabby cat")


async def test_an_older_revision_arriving_late_changes_nothing(db):
    image_id = await _image(db)
    rejected = ImageRejected(
        image_id=image_id, contributor_id="carol", revision=2, reason_code="low-quality", note="Blurry"
    )
    assert await apply_image_event(db, _message(rejected))
    # image.processed (revision 1) overtaken by moderation's decision
    assert not await apply_image_event(
        db, _message(ImageProcessed(image_id=image_id, contributor_id="carol", listing=_listing()))
    )
    image = await get_image(db, "carol", image_id)
    assert (image.state, image.reason_code, image.reason) == ("rejected", "low-quality", "Blurry")
    assert image.listing is None


async def test_a_redelivered_event_is_applied_once(db):
    image_id = await _image(db)
    flagged = _message(ImageFlagged(image_id=image_id, contributor_id="carol", revision=2, reasons=["near-duplicate"]))
    assert await apply_image_event(db, flagged)
    await db.pool.execute("update ingestion.images set revision = 0 where image_id = $1", image_id)  # would re-apply
    assert not await apply_image_event(db, flagged)
    assert await db.pool.fetchval("select count(*) from ingestion.inbox where message_id = $1", flagged.message_id) == 1


async def test_every_later_event_moves_the_record(db):
    image_id = await _image(db)
    events = [
        ImageProcessed(image_id=image_id, contributor_id="carol", listing=_listing()),
        ImageFlagged(image_id=image_id, contributor_id="carol", revision=2, reasons=["safety score 0.7"]),
        ImageApproved(
            image_id=image_id,
            contributor_id="carol",
            revision=3,
            approved_at=datetime.now(UTC),
            original_blob="o",
            listing=_listing(),
        ),
        ImageUpdated(image_id=image_id, contributor_id="carol", revision=4, listing=_listing("Renamed")),
        ImageRemoved(image_id=image_id, contributor_id="carol", revision=5, reason="DMCA notice"),
    ]
    states = []
    for event in events:
        assert await apply_image_event(db, _message(event))
        image = await get_image(db, "carol", image_id)
        states.append(image.state)
    assert states == ["processed", "flagged", "approved", "approved", "removed"]
    assert image.listing.title == "Renamed"
    assert (image.reason_code, image.reason) == ("removed", "DMCA notice")
    assert image.moderation_reasons == ["safety score 0.7"]


async def test_an_edit_while_in_review_shows_the_new_listing_with_its_new_reasons(db):
    image_id = await _image(db)
    assert await apply_image_event(
        db, _message(ImageProcessed(image_id=image_id, contributor_id="carol", listing=_listing()))
    )
    first = ImageFlagged(image_id=image_id, contributor_id="carol", revision=2, reasons=["missing_keywords"])
    assert await apply_image_event(db, _message(first))
    edited = ImageFlagged(
        image_id=image_id, contributor_id="carol", revision=3, reasons=[], listing=_listing("Tabby on a sofa")
    )
    assert await apply_image_event(db, _message(edited))
    image = await get_image(db, "carol", image_id)
    assert (image.state, image.moderation_reasons, image.listing.title) == ("flagged", [], "Tabby on a sofa")


async def test_a_processing_failure_is_shown_with_its_reason_unless_processing_already_succeeded(db):
    failed_id = await _image(db)
    assert await apply_image_event(
        db, _message(ImageProcessingFailed(image_id=failed_id, contributor_id="carol", reason="model rejected input"))
    )
    image = await get_image(db, "carol", failed_id)
    assert (image.state, image.reason_code, image.reason) == ("failed", "processing-failed", "model rejected input")

    done_id = await _image(db)
    await apply_image_event(db, _message(ImageProcessed(image_id=done_id, contributor_id="carol", listing=_listing())))
    assert not await apply_image_event(
        db, _message(ImageProcessingFailed(image_id=done_id, contributor_id="carol", reason="late failure"))
    )
    assert (await get_image(db, "carol", done_id)).state == "processed"


async def test_an_event_for_an_image_not_in_the_catalogue_is_recorded_and_skipped(db):
    stray = _message(ImageProcessed(image_id=uuid.uuid4(), contributor_id="x", listing=_listing()))
    assert not await apply_image_event(db, stray)
    assert not await apply_image_event(db, stray)


async def test_contributors_see_only_their_own_images_newest_first_in_pages(db):
    mine = [await _image(db, file_name=f"{n}.jpg") for n in range(5)]
    theirs = await _image(db, contributor="dave")

    first, cursor = await list_images(db, "carol", per_page=2)
    second, cursor2 = await list_images(db, "carol", per_page=2, cursor=cursor)
    third, end = await list_images(db, "carol", per_page=2, cursor=cursor2)

    assert [i.image_id for i in first + second + third] == list(reversed(mine))
    assert end is None
    assert await get_image(db, "carol", theirs) is None
    assert await get_image(db, "dave", theirs) is not None


async def test_contributors_can_ask_for_named_images_and_get_only_their_own(db):
    mine = [await _image(db, file_name=f"{n}.jpg") for n in range(3)]
    theirs = await _image(db, contributor="dave")

    named, end = await list_images(db, "carol", ids=[mine[0], mine[2], theirs, uuid.uuid4()])

    assert [i.image_id for i in named] == [mine[2], mine[0]]
    assert end is None


def test_a_list_of_image_ids_is_checked_at_the_edge():
    good = ImagesQuery(ids=f" {uuid.UUID(int=1)},{uuid.UUID(int=2)},{uuid.UUID(int=1)} ")
    assert good.image_ids() == [uuid.UUID(int=1), uuid.UUID(int=2)]
    for bad in ["", "not-a-uuid", ",".join(str(uuid.uuid4()) for _ in range(101))]:
        with pytest.raises(ValidationError):
            ImagesQuery(ids=bad)


async def test_contributors_can_filter_by_state_and_see_quarantine_reasons(db):
    ok = await _image(db, state="processing")
    bad = await _image(db, state="awaiting_upload")
    await db.pool.execute(
        "update ingestion.images set state = 'quarantined', reason_code = 'too-small', "
        "reason = 'The image is 1 MP; the minimum is 4 MP.' where image_id = $1",
        bad,
    )
    quarantined, _ = await list_images(db, "carol", state="quarantined")
    assert [(i.image_id, i.reason_code) for i in quarantined] == [(bad, "too-small")]
    assert "minimum" in quarantined[0].reason
    processing, _ = await list_images(db, "carol", state="processing")
    assert [i.image_id for i in processing] == [ok]
