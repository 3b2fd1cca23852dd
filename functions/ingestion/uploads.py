"""Upload tickets: register an upload in the catalogue and hand out a write-only SAS URL for exactly its blob.

The portal (POST /api/contributor/uploads) and the migration CLI both come through `register_upload`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

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
    if request.size_bytes > policy.max_upload_bytes:
        raise UploadRefused(
            "size_bytes", f"The file is larger than the {policy.max_upload_bytes} bytes an upload may have."
        )
    if not await storage.ping():
        # A ticket now would be a URL nothing can be PUT to: say so, and register nothing.
        raise StorageUnavailable("blob storage cannot be reached")
    image_id = image_id or uuid.uuid4()
    now = datetime.now(UTC)
    expires_at = (now + policy.upload_ttl).replace(microsecond=0)
    async with db.transaction() as conn:
        registered = await conn.fetchrow(
            """
            insert into ingestion.images (image_id, contributor_id, state, source, file_name, declared_size,
                                          declared_content_type, sidecar, upload_expires_at, correlation_id)
            values ($1, $2, 'awaiting_upload', $3, $4, $5, $6, $7, $8, $9)
            on conflict (image_id) do update
               set file_name = excluded.file_name, declared_size = excluded.declared_size,
                   declared_content_type = excluded.declared_content_type, sidecar = excluded.sidecar,
                   upload_expires_at = excluded.upload_expires_at, updated_at = now()
             where images.contributor_id = excluded.contributor_id and images.state = 'awaiting_upload'
            returning (xmax = 0) as created
            """,
            image_id,
            contributor_id,
            source,
            request.file_name,
            request.size_bytes,
            request.content_type,
            request.sidecar.model_dump(mode="json"),
            expires_at,
            correlation_id,
        )
        # A renewed ticket (same image, still waiting) was counted when first handed out. The migration CLI
        # brings an existing library over on an operator's say-so and is not a contributor's daily upload.
        if registered is not None and registered["created"] and source == "api" and policy.quota is not None:
            await charge_upload(conn, policy.quota, contributor_id, request.size_bytes, now=now)
    if registered is None:
        raise TicketAlreadyUsed(f"image {image_id} already has its file")
    upload_url = await storage.sas_url(
        INCOMING,
        incoming_blob_name(contributor_id, image_id),
        permissions=UPLOAD_SAS_PERMISSIONS,
        expires_in=policy.upload_ttl,
    )
    return UploadTicket(image_id=image_id, upload_url=upload_url, expires_at=expires_at)


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
