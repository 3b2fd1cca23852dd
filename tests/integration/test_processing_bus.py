"""Processing driven the way the host drives it: an image.uploaded committed to the outbox, relayed onto
the real Postgres bus, received by the processing subscription and handled with the real packaged ONNX
models; image.processed comes out of the outbox. A crash of the first attempt is retried by the bus."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from functions.processing.batching import BatchingAnalyzer
from functions.processing.handlers import SUBSCRIPTION, process_uploaded_image
from functions.processing.work import ProcessingOptions
from shared.bus.consumer import SubscriptionConsumer
from shared.bus.events import ImageProcessed, ImageUploaded
from shared.bus.outbox import add_to_outbox
from shared.bus.postgres_transport import PostgresTransport
from shared.bus.relay import OutboxRelay
from shared.ml import get_image_analyzer
from shared.storage.port import ORIGINALS
from tests.fixtures.photos import jpeg_bytes, photo


@pytest.fixture(scope="module")
def packaged_models():
    return get_image_analyzer()


class CrashesOnce:
    """Wraps the real analyzer; its first run fails as a lost ONNX session would."""

    def __init__(self, real) -> None:
        self.real = real
        self.runs = 0

    def analyze(self, images):
        self.runs += 1
        if self.runs == 1:
            raise RuntimeError("inference session lost")
        return self.real.analyze(images)


async def wait_for_subject(db, subject: str, within_s: float = 60) -> dict:
    deadline = asyncio.get_running_loop().time() + within_s
    while asyncio.get_running_loop().time() < deadline:
        body = await db.pool.fetchval("select body from bus.outbox where subject = $1", subject)
        if body is not None:
            return body
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no {subject} in the outbox after {within_s} s")


async def test_an_uploaded_photo_crosses_the_bus_and_is_tagged_by_the_real_models(db, blob_store, packaged_models):
    bus = PostgresTransport(db, lock_duration_seconds=30)
    analyzer = CrashesOnce(packaged_models)
    batcher = BatchingAnalyzer(analyzer)

    async def handler(message):
        await process_uploaded_image(
            message,
            db=db,
            storage=blob_store,
            analyzer=batcher,
            options=ProcessingOptions(),
            max_deliveries=10,
        )

    image_id = uuid.uuid4()
    await blob_store.put(ORIGINALS, f"c-9/{image_id}", jpeg_bytes(photo("coffee", megapixels=4)))
    uploaded = ImageUploaded(
        image_id=image_id,
        contributor_id="c-9",
        original_blob=f"c-9/{image_id}",
        content_type="image/jpeg",
        size_bytes=1,
        sha256="00" * 32,
        uploaded_at=datetime.now(UTC),
    )
    async with db.transaction() as conn:  # as ingestion commits it
        await add_to_outbox(conn, uploaded, correlation_id="upload-1")

    stop = asyncio.Event()
    relay = asyncio.create_task(OutboxRelay(db, bus).run(stop, interval=0.1))
    consumer = SubscriptionConsumer(bus, "images", SUBSCRIPTION, handler, receive_wait_seconds=0.2)
    consuming = asyncio.create_task(consumer.run(stop))
    try:
        body = await wait_for_subject(db, "image.processed")
    finally:
        stop.set()
        await asyncio.gather(relay, consuming)
        await bus.close()

    processed = ImageProcessed.model_validate(body)
    assert processed.image_id == image_id
    labels = [t.label for t in processed.listing.tags]
    assert {"coffee", "cup", "espresso"} & set(labels[:5]), labels
    assert len(processed.listing.embedding) == 384
    assert 0 <= processed.listing.safety_score < 0.5
    assert analyzer.runs == 2  # the crash was retried by redelivery, not swallowed
    row = await db.pool.fetchrow("select deliveries, status from processing.results where image_id = $1", image_id)
    assert (row["status"], row["deliveries"]) == ("processed", 2)
    correlation = await db.pool.fetchval("select correlation_id from bus.outbox where subject = 'image.processed'")
    assert correlation == "upload-1"
