"""Rejected or taken-down images stop being publicly reachable: their renditions are deleted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from functions.processing.withdrawal import withdraw_renditions
from shared.bus.events import ImageRejected, ImageRemoved
from shared.bus.port import ReceivedMessage
from shared.storage.port import ORIGINALS
from tests.fixtures.photos import jpeg_bytes, photo
from tests.integration.test_processing_handler import delivery, process, processed_event, upload_original


def _message(event, message_id: str = "w-1") -> ReceivedMessage:
    now = datetime.now(UTC)
    body = event.model_dump(mode="json")
    return ReceivedMessage(message_id, "images", "processing", event.subject, body, "corr", 1, now, now, "lock")


@pytest.mark.parametrize(
    "decision",
    [
        lambda image_id: ImageRejected(image_id=image_id, contributor_id="c-1", revision=2, reason_code="nudity"),
        lambda image_id: ImageRemoved(image_id=image_id, contributor_id="c-1", revision=3, reason="DMCA notice"),
    ],
    ids=["rejected", "taken-down"],
)
async def test_public_renditions_go_and_the_private_original_stays(db, blob_store, decision):
    uploaded = await upload_original(blob_store, jpeg_bytes(photo("coffee", megapixels=4)))
    await process(db, blob_store, delivery(uploaded))
    renditions = (await processed_event(db)).listing.renditions
    urls = [renditions.thumbnail_small_url, renditions.thumbnail_url, renditions.preview_url]
    async with httpx.AsyncClient() as client:
        assert [(await client.get(url)).status_code for url in urls] == [200, 200, 200]

        message = _message(decision(uploaded.image_id))
        assert await withdraw_renditions(message, db=db, storage=blob_store, subscription="processing") is True

        assert [(await client.get(url)).status_code for url in urls] == [404, 404, 404]
    assert await blob_store.exists(ORIGINALS, uploaded.original_blob)  # licensees still download it
    # A redelivery changes nothing.
    assert await withdraw_renditions(message, db=db, storage=blob_store, subscription="processing") is False


async def test_an_image_that_never_had_renditions_is_withdrawn_without_error(db, blob_store):
    event = ImageRejected(image_id=uuid.uuid4(), contributor_id="c-1", revision=2, reason_code="poor_quality")
    assert await withdraw_renditions(_message(event), db=db, storage=blob_store, subscription="processing") is True
