"""A rejected or taken-down image loses its public renditions.

Thumbnails and the watermarked preview live in public-read containers, written before moderation
decides: once an image is rejected or taken down they must stop being reachable by URL. The
original stays in its private container (buyers who licensed it keep their downloads).
"""

from __future__ import annotations

import asyncio

import structlog

from functions.processing.work import RENDITION_CONTAINERS
from shared.bus.events import ImageRejected, ImageRemoved, parse_event
from shared.bus.inbox import claim_message
from shared.bus.port import ReceivedMessage
from shared.db import Database
from shared.storage import BlobStore

WITHDRAWING_SUBJECTS = frozenset({ImageRejected.subject, ImageRemoved.subject})
log = structlog.get_logger()


def rendition_blob(image_id: object, rendition: str) -> str:
    return f"{image_id}/{rendition}.jpg"


async def withdraw_renditions(message: ReceivedMessage, *, db: Database, storage: BlobStore, subscription: str) -> bool:
    """Delete the image's public renditions; False for a redelivery. Deleting is idempotent, so it
    runs before the inbox claim: a crash between the two only repeats harmless deletes."""
    event = parse_event(message.subject, message.body)
    if not isinstance(event, ImageRejected | ImageRemoved):
        raise ValueError(f"{message.subject} does not withdraw renditions")
    deleted = await asyncio.gather(
        *(
            storage.delete(container, rendition_blob(event.image_id, name))
            for name, container in RENDITION_CONTAINERS.items()
        )
    )
    async with db.transaction() as conn:
        if not await claim_message(conn, "processing", subscription, message.message_id):
            return False
        await conn.execute("update processing.results set renditions = '{}' where image_id = $1", event.image_id)
    log.info("processing.renditions_withdrawn", image_id=str(event.image_id), deleted=sum(deleted))
    return True
