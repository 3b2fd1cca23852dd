"""Upload tickets: register an upload in the catalogue and hand out a write-only SAS URL for exactly its blob.

The portal (POST /api/contributor/uploads) and the migration CLI both come through `register_upload`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

import asyncpg

from functions.ingestion.models import UploadRequest, UploadTicket
from functions.ingestion.policy import IngestionPolicy
from functions.ingestion.quotas import charge_upload
from shared.db import Database
from shared.storage.port import INCOMING, BlobStore

# Create only: the holder can put this one blob once, and cannot overwrite it after ingestion has read it,
# nor read, list or delete anything. (Storage cannot bound the size in a SAS: ingestion holds the file to
# the declared size on arrival.)
UPLOAD_SAS_PERMISSIONS = "c"


class UploadRefused(ValueError):
    """The declared upload breaks a rule; `field` names the request field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class TicketAlreadyUsed(RuntimeError):
    """A registration asked to reuse an image id whose file has already been received."""


class StorageUnavailable(RuntimeError):
    """Blob storage does not answer, so no upload can be taken now."""


def incoming_blob_name(contributor_id: str, image_id: uuid.UUID) -> str:
    return f"{contributor_id}/{image_id}"


def parse_incoming_blob_name(name: str) -> tuple[str, uuid.UUID] | None:
    """(contributor, image id) of an `incoming` blob name, or None if it is not one we hand out."""
    contributor_id, sep, last = name.rpartition("/")
    if not sep or not contributor_id:
        return None
    try:
        image_id = uuid.UUID(last)
    except ValueError:
        return None
    return (contributor_id, image_id) if str(image_id) == last else None


def check_upload_size(policy: IngestionPolicy, request: UploadRequest) -> None:
    if request.size_bytes > policy.max_upload_bytes:
        raise UploadRefused(
            "size_bytes", f"The file is larger than the {policy.max_upload_bytes} bytes an upload may have."
        )


async def register_upload(
    db: Database,
    storage: BlobStore,
    policy: IngestionPolicy,
    contributor_id: str,
    request: UploadRequest,
    *,
    image_id: uuid.UUID | None = None,
    source: Literal["api", "migration"] = "api",
    correlation_id: str | None = None,
) -> UploadTicket:
    """Record the upload (state awaiting_upload) and return where and how to PUT the file.

    Passing the `image_id` of a ticket that is still awaiting its file renews that ticket instead of
    creating another image (the migration CLI resumes this way without duplicates).
    """
    check_upload_size(policy, request)
    if not await storage.ping():
        # A ticket now would be a URL nothing can be PUT to: say so, and register nothing.
        raise StorageUnavailable("blob storage cannot be reached")
    image_id = image_id or uuid.uuid4()
    now = datetime.now(UTC)
    expires_at = (now + policy.upload_ttl).replace(microsecond=0)
    async with db.transaction() as conn:
        registered = await record_tickets(
            conn,
            contributor_id,
            [(image_id, request)],
            source=source,
            expires_at=expires_at,
            correlation_id=correlation_id,
        )
        # A renewed ticket (same image, still waiting) was counted when first handed out. The migration CLI
        # brings an existing library over on an operator's say-so and is not a contributor's daily upload.
        if registered.get(image_id) and source == "api" and policy.quota is not None:
            await charge_upload(conn, policy.quota, contributor_id, request.size_bytes, now=now)
    if image_id not in registered:
        raise TicketAlreadyUsed(f"image {image_id} already has its file")
    upload_url = await storage.sas_url(
        INCOMING,
        incoming_blob_name(contributor_id, image_id),
        permissions=UPLOAD_SAS_PERMISSIONS,
        expires_in=policy.upload_ttl,
    )
    return UploadTicket(image_id=image_id, upload_url=upload_url, expires_at=expires_at)


async def record_tickets(
    conn: asyncpg.Connection,
    contributor_id: str,
    tickets: Sequence[tuple[uuid.UUID, UploadRequest]],
    *,
    source: Literal["api", "migration"],
    expires_at: datetime,
    correlation_id: str | None = None,
) -> dict[uuid.UUID, bool]:
    """Record upload tickets (state awaiting_upload) in one statement, or renew those still waiting for their file.

    Returns image id -> True if created now, False if renewed; an id missing from it already has its file
    (or belongs to someone else). The migration CLI registers the files its workers have in flight together.
    """
    rows = await conn.fetch(
        """
        insert into ingestion.images (image_id, contributor_id, state, source, file_name, declared_size,
                                      declared_content_type, sidecar, upload_expires_at, correlation_id)
        select t.image_id, $1, 'awaiting_upload', $2, t.file_name, t.size, t.content_type, t.sidecar::jsonb, $3, $4
          from unnest($5::uuid[], $6::text[], $7::bigint[], $8::text[], $9::text[])
               as t(image_id, file_name, size, content_type, sidecar)
        on conflict (image_id) do update
           set file_name = excluded.file_name, declared_size = excluded.declared_size,
               declared_content_type = excluded.declared_content_type, sidecar = excluded.sidecar,
               upload_expires_at = excluded.upload_expires_at, updated_at = now()
         where images.contributor_id = excluded.contributor_id and images.state = 'awaiting_upload'
        returning image_id, (xmax = 0) as created
        """,
        contributor_id,
        source,
        expires_at,
        correlation_id,
        [image_id for image_id, _ in tickets],
        [request.file_name for _, request in tickets],
        [request.size_bytes for _, request in tickets],
        [request.content_type for _, request in tickets],
        [json.dumps(request.sidecar.model_dump(mode="json")) for _, request in tickets],
    )
    return {row["image_id"]: row["created"] for row in rows}


# Storage refuses an expired SAS, so no file can arrive for these; the grace covers clock skew (the SAS
# starts 5 minutes early) and a block upload still committing at the deadline.
STALE_TICKET_GRACE = timedelta(hours=1)


async def forget_stale_tickets(db: Database, *, grace: timedelta = STALE_TICKET_GRACE) -> int:
    """Delete tickets whose upload window closed without a file, so portfolios don't fill with them."""
    async with db.transaction() as conn:
        status = await conn.execute(
            "delete from ingestion.images where state = 'awaiting_upload' and upload_expires_at < $1",
            datetime.now(UTC) - grace,
        )
    return int(status.split()[-1])
