"""A file landed in `incoming`: validate it, then accept it into `originals` or quarantine it with a reason.

Order of work for one blob (`ingest_blob`):
1. The blob must belong to a registered upload that is still waiting for its file; anything else
   (someone wrote to `incoming` directly, or a second file for a used ticket) is quarantined.
2. Validation before anything decodes the file (shared/imaging/inspect.py): size from the blob's
   properties first (the handler never downloads an oversize file), then type, header, full decode.
3. Exact duplicate (SHA-256; hashed chunk by chunk when downloaded) of an accepted image: quarantined
   with a pointer to it. Near duplicate (perceptual hash): accepted, `near_duplicate_of` set for moderation.
4. Accepted: the validated bytes are written to `originals`, then ONE transaction (row -> processing, outbox
   image.uploaded), then the incoming blob is deleted. Refused: copy to `quarantine` with the reason in
   its metadata, row -> quarantined with reason code and message, incoming blob deleted.

Redelivery is harmless at every step: the row is only moved out of awaiting_upload once (a conditional
update), the blob version decided on (its etag) is recorded, and a later delivery of that same version
only finishes the clean-up.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
import structlog

from functions.ingestion.policy import IngestionPolicy
from functions.ingestion.uploads import incoming_blob_name, parse_incoming_blob_name
from shared.bus.events import ImageUploaded, Sidecar
from shared.bus.outbox import add_to_outbox
from shared.db import Database
from shared.imaging import phash as ph
from shared.imaging.inspect import ImageFacts, Rejected, check_size, inspect_image
from shared.storage.port import INCOMING, ORIGINALS, QUARANTINE, BlobInfo, BlobStore, StorageError

log = structlog.get_logger()

Outcome = Literal["accepted", "quarantined", "unregistered", "already-decided", "gone"]

# States whose images count for duplicate detection: accepted at ingestion and not given up on.
_COUNTED = "state not in ('awaiting_upload', 'quarantined', 'failed')"


@dataclass(frozen=True)
class IngestResult:
    outcome: Outcome
    image_id: uuid.UUID | None = None
    reason_code: str | None = None
    duplicate_of: uuid.UUID | None = None
    near_duplicate_of: uuid.UUID | None = None


async def ingest_blob(
    db: Database,
    storage: BlobStore,
    policy: IngestionPolicy,
    blob_name: str,
    *,
    data: bytes | None = None,
    held: BlobInfo | None = None,
) -> IngestResult:
    """Decide on the blob `incoming/{blob_name}`; safe to call any number of times for the same blob.

    `data`: the blob's bytes if the trigger binding already holds them (used when their length matches
    the blob's; otherwise the blob is downloaded here, after the size check). `held`: the properties of
    exactly those bytes (etag, size), when the binding has them too: then the blob is not asked again.
    """
    if held is not None and data is not None and len(data) == held.size:
        info: BlobInfo | None = held
    else:
        info = await storage.properties(INCOMING, blob_name)
    if info is None:
        return IngestResult("gone")  # already moved on by an earlier delivery
    parsed = parse_incoming_blob_name(blob_name)
    row = await _ticket(db, *parsed) if parsed else None
    if row is None:
        await _quarantine_stray(storage, info, "unregistered", "No upload was registered for this file.")
        return IngestResult("unregistered")
    image_id = row["image_id"]
    if row["state"] != "awaiting_upload":
        if row["incoming_etag"] == info.etag:  # this very file was decided on; finish the clean-up
            await storage.delete(INCOMING, blob_name, if_etag=info.etag)
            return IngestResult("already-decided", image_id)
        await _quarantine_stray(
            storage, info, "upload-already-used", f"Image {image_id} already received its file; ask for a new upload."
        )
        return IngestResult("unregistered", image_id)

    structlog.contextvars.bind_contextvars(image_id=str(image_id), correlation_id=row["correlation_id"])
    content: bytes | None = None
    sha256: str | None = None
    try:
        check_size(info.size, policy.limits)  # before downloading anything
        check_declared_size(info.size, row["declared_size"])
        content, sha256 = await _content(storage, info, data)
        check_declared_size(len(content), row["declared_size"])  # what was read is what was declared
        facts = await asyncio.to_thread(inspect_image, content, policy.limits)
    except Rejected as rejected:
        await _quarantine(db, storage, info, row, rejected, data=content, sha256=sha256)
        return IngestResult("quarantined", image_id, rejected.code)

    duplicate_of, near = await _duplicates(db, sha256, facts.phash, policy.near_duplicate_distance, image_id)
    if duplicate_of is not None:
        await _quarantine_duplicate(db, storage, info, row, duplicate_of, content, sha256, facts)
        return IngestResult("quarantined", image_id, "duplicate", duplicate_of=duplicate_of)

    await _keep_original(storage, info, content, facts, same_version=info is held)
    try:
        accepted = await _accept(db, info, row, facts, sha256, near)
    except asyncpg.UniqueViolationError:  # an identical file was accepted since we looked
        duplicate_of = await _exact_duplicate(db, sha256, image_id)
        await storage.delete(ORIGINALS, blob_name)
        await _quarantine_duplicate(db, storage, info, row, duplicate_of, content, sha256, facts)
        return IngestResult("quarantined", image_id, "duplicate", duplicate_of=duplicate_of)
    if accepted:
        await _clear_incoming(storage, info)
        log.info("ingestion.accepted", sha256=sha256, near_duplicate_of=str(near) if near else None)
    return IngestResult("accepted" if accepted else "already-decided", image_id, near_duplicate_of=near)


def check_declared_size(size: int, declared: int) -> None:
    """The file must be the size its ticket declared: a SAS cannot bound the size, and quotas count declared bytes."""
    if size != declared:
        raise Rejected(
            "size-mismatch",
            f"The file is {size:,} bytes but the upload was declared as {declared:,} bytes; "
            "ask for a new upload with the file's real size.",
        )


async def _keep_original(
    storage: BlobStore, info: BlobInfo, content: bytes, facts: ImageFacts, *, same_version: bool
) -> None:
    """Write the validated file to `originals`. The upload SAS stays writable until it expires, so the blob in
    `incoming` may have been replaced since it was read and must not skip validation: a server-side copy (no
    second upload of the bytes) only of the very version that was read (its etag, known when the trigger
    delivered it with the bytes), else the validated bytes themselves."""
    if same_version:
        try:
            await storage.copy(INCOMING, info.name, ORIGINALS, info.name, source=info, content_type=facts.content_type)
            return
        except StorageError as exc:  # replaced since it was read (or the copy failed): the bytes we validated
            log.info("ingestion.copy_fell_back_to_upload", error=str(exc))
    await storage.put(ORIGINALS, info.name, content, content_type=facts.content_type)


async def near_duplicate(db: Database, value: int, max_distance: int, *, exclude: uuid.UUID) -> uuid.UUID | None:
    """The closest accepted image whose perceptual hash is within `max_distance` bits, if any."""
    async with db.connection() as conn:
        return await _near_duplicate(conn, value, max_distance, exclude)


async def _duplicates(
    db: Database, sha256: str, phash: int, max_distance: int, image_id: uuid.UUID
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """(exact duplicate, near duplicate) of an incoming file, on one pooled connection; no near one is
    looked for when there is an exact one."""
    async with db.connection() as conn:
        exact = await conn.fetchval(_EXACT_DUPLICATE, sha256, image_id)
        if exact is not None:
            return exact, None
        return None, await _near_duplicate(conn, phash, max_distance, image_id)


async def _near_duplicate(
    conn: asyncpg.Connection, value: int, max_distance: int, exclude: uuid.UUID
) -> uuid.UUID | None:
    """Multi-index hashing: each of the four 16-bit bands is probed with every value within
    max_distance // 4 bits of ours (pigeonhole: a match within max_distance is that close in some
    band), each probe an index lookup; the exact distance is then checked on those candidates only.
    """
    radius = max_distance // ph.BANDS
    probes = [ph.band_probes(band, radius) for band in ph.bands(value)]
    return await conn.fetchval(
        f"""
        select image_id from ingestion.images
         where phash is not null and {_COUNTED} and image_id <> $6
           and (((phash >> 48) & 65535) = any($1::bigint[]) or ((phash >> 32) & 65535) = any($2::bigint[])
                or ((phash >> 16) & 65535) = any($3::bigint[]) or (phash & 65535) = any($4::bigint[]))
           and bit_count((phash # $5)::bit(64)) <= $7
         order by bit_count((phash # $5)::bit(64)), created_at
         limit 1
        """,
        *probes,
        ph.to_signed(value),
        exclude,
        max_distance,
    )


def held_blob_info(
    name: str, properties: Mapping[str, Any] | None, *, metadata: Mapping[str, str] | None = None
) -> BlobInfo | None:
    """The properties the blob trigger delivered with the bytes (the host's `Properties`: ETag, ContentLength
    or Length, ContentType, LastModified), or None when they lack the etag or size ingestion decides on."""
    if not properties:
        return None
    etag = properties.get("ETag")
    size = properties.get("ContentLength", properties.get("Length"))
    if not etag or size is None:
        return None
    try:
        modified = datetime.fromisoformat(str(properties.get("LastModified")).replace("Z", "+00:00"))
    except ValueError:
        modified = datetime.now(UTC)
    return BlobInfo(
        name=name,
        size=int(size),
        content_type=properties.get("ContentType"),
        etag=str(etag),
        last_modified=modified,
        metadata=dict(metadata or {}),
    )


# --- steps ------------------------------------------------------------------------------------


async def _ticket(db: Database, contributor_id: str, image_id: uuid.UUID) -> asyncpg.Record | None:
    async with db.connection() as conn:
        return await conn.fetchrow(
            "select image_id, contributor_id, state, incoming_etag, file_name, sidecar, correlation_id, declared_size "
            "from ingestion.images where image_id = $1 and contributor_id = $2",
            image_id,
            contributor_id,
        )


async def _content(storage: BlobStore, info: BlobInfo, held: bytes | None) -> tuple[bytes, str]:
    """The blob's bytes and SHA-256: those the binding holds when they are the blob's, else downloaded."""
    if held is not None and len(held) == info.size:
        return held, hashlib.sha256(held).hexdigest()
    return await _download(storage, info.name)


async def _download(storage: BlobStore, blob_name: str) -> tuple[bytes, str]:
    """The blob's bytes and their SHA-256, hashed chunk by chunk as they arrive."""
    digest = hashlib.sha256()
    chunks = []
    async for chunk in storage.stream(INCOMING, blob_name):
        digest.update(chunk)
        chunks.append(chunk)
    return b"".join(chunks), digest.hexdigest()


_EXACT_DUPLICATE = f"select image_id from ingestion.images where sha256 = $1 and {_COUNTED} and image_id <> $2 limit 1"


async def _exact_duplicate(db: Database, sha256: str, image_id: uuid.UUID) -> uuid.UUID | None:
    async with db.connection() as conn:
        return await conn.fetchval(_EXACT_DUPLICATE, sha256, image_id)


async def _quarantine_duplicate(
    db: Database,
    storage: BlobStore,
    info: BlobInfo,
    row: asyncpg.Record,
    existing: uuid.UUID | None,
    data: bytes,
    sha256: str,
    facts: ImageFacts,
) -> None:
    owner = await db.pool.fetchval("select contributor_id from ingestion.images where image_id = $1", existing)
    if owner == row["contributor_id"]:
        rejected = Rejected("duplicate", f"This file is identical to your image {existing}, already on the platform.")
    else:
        # Another contributor's image: say so, but never hand out its id (the log keeps it for operators).
        log.info("ingestion.duplicate_of_another_contributor", duplicate_of=str(existing))
        rejected = Rejected("duplicate", "This file is identical to an image another contributor already has here.")
        existing = None
    await _quarantine(db, storage, info, row, rejected, data=data, sha256=sha256, facts=facts, duplicate_of=existing)


async def _accept(
    db: Database,
    info: BlobInfo,
    row: asyncpg.Record,
    facts: ImageFacts,
    sha256: str,
    near: uuid.UUID | None,
) -> bool:
    """Row -> processing and image.uploaded, in one transaction. False if another delivery got there first."""
    now = datetime.now(UTC)
    image_id = row["image_id"]
    async with db.transaction() as conn:
        updated = await conn.fetchval(
            """
            update ingestion.images
               set state = 'processing', incoming_etag = $2, ingested_at = $3, size_bytes = $4, content_type = $5,
                   width = $6, height = $7, sha256 = $8, phash = $9, original_blob = $10, near_duplicate_of = $11,
                   reason_code = null, reason = null, updated_at = $3
             where image_id = $1 and state = 'awaiting_upload'
            returning true
            """,
            image_id,
            info.etag,
            now,
            info.size,
            facts.content_type,
            facts.width,
            facts.height,
            sha256,
            ph.to_signed(facts.phash),
            info.name,
            near,
        )
        if not updated:
            return False
        await add_to_outbox(
            conn,
            ImageUploaded(
                image_id=image_id,
                contributor_id=row["contributor_id"],
                original_blob=info.name,
                file_name=row["file_name"],
                content_type=facts.content_type,
                size_bytes=info.size,
                sha256=sha256,
                uploaded_at=now,
                sidecar=Sidecar.model_validate(row["sidecar"]),
                near_duplicate_of=near,
            ),
            correlation_id=row["correlation_id"],
        )
    return True


async def _quarantine(
    db: Database,
    storage: BlobStore,
    info: BlobInfo,
    row: asyncpg.Record,
    rejected: Rejected,
    *,
    data: bytes | None,
    sha256: str | None,
    facts: ImageFacts | None = None,
    duplicate_of: uuid.UUID | None = None,
) -> None:
    """Keep the file in `quarantine` with its reason, record the reason for the contributor, clear `incoming`."""
    await _move_to_quarantine(
        storage,
        info,
        info.name,
        data,
        {"reason_code": rejected.code, "reason": rejected.message, "image_id": str(row["image_id"])},
    )
    async with db.transaction() as conn:
        await conn.execute(
            """
            update ingestion.images
               set state = 'quarantined', reason_code = $2, reason = $3, incoming_etag = $4, ingested_at = now(),
                   size_bytes = $5, sha256 = $6, content_type = $7, width = $8, height = $9, duplicate_of = $10,
                   updated_at = now()
             where image_id = $1 and state = 'awaiting_upload'
            """,
            row["image_id"],
            rejected.code,
            rejected.message,
            info.etag,
            info.size,
            sha256,
            facts.content_type if facts else None,
            facts.width if facts else None,
            facts.height if facts else None,
            duplicate_of,
        )
    await _clear_incoming(storage, info)
    log.info("ingestion.quarantined", reason_code=rejected.code, reason=rejected.message)


async def quarantine_stuck_uploads(db: Database, storage: BlobStore, *, older_than: timedelta) -> int:
    """Files the blob trigger kept failing on (past its retries, the host stops firing for them): quarantine
    each with a reason the contributor reads, instead of letting the ticket expire and the file go unseen."""
    rows = await db.pool.fetch(
        "select * from ingestion.images where state = 'awaiting_upload' and upload_expires_at < $1",
        datetime.now(UTC) - older_than,
    )
    stuck = 0
    for row in rows:
        info = await storage.properties(INCOMING, incoming_blob_name(row["contributor_id"], row["image_id"]))
        if info is None:
            continue  # no file ever came: the ticket is simply forgotten
        failed = Rejected(
            "ingestion-failed",
            "We could not process this file after several attempts; please upload it again "
            f"(reference {row['image_id']}).",
        )
        await _quarantine(db, storage, info, row, failed, data=None, sha256=None)
        stuck += 1
    return stuck


async def _clear_incoming(storage: BlobStore, info: BlobInfo) -> None:
    """Delete the version of the file that was decided on, and only that one: a file written again with
    the still-valid upload SAS meanwhile stays, fires its own trigger and is kept aside as a reused ticket."""
    if not await storage.delete(INCOMING, info.name, if_etag=info.etag):
        log.warning("ingestion.incoming_replaced_after_reading", blob=info.name)


async def _quarantine_stray(storage: BlobStore, info: BlobInfo, code: str, message: str) -> None:
    """A file with no upload waiting for it: kept aside under quarantine/unregistered/ for an operator."""
    # One copy per version (etag), so a second stray file of the same name never overwrites the first.
    kept_as = f"unregistered/{info.name}/{info.etag.strip(chr(34))}"
    await _move_to_quarantine(storage, info, kept_as, None, {"reason_code": code, "reason": message})
    await _clear_incoming(storage, info)
    log.warning("ingestion.stray_blob_quarantined", blob=info.name, kept_as=kept_as, reason_code=code)


async def _move_to_quarantine(
    storage: BlobStore, info: BlobInfo, target: str, data: bytes | None, metadata: dict[str, str]
) -> None:
    if data is None and info.size == 0:
        data = b""
    body = data if data is not None else storage.stream(INCOMING, info.name)  # oversize files are streamed across
    await storage.put(
        QUARANTINE,
        target,
        body,
        content_type=info.content_type or "application/octet-stream",
        metadata={key: _header_safe(value) for key, value in metadata.items()},
    )


def _header_safe(value: str) -> str:
    """Blob metadata travels in HTTP headers: printable ASCII only."""
    text = value.encode("ascii", "replace").decode()
    return "".join(ch if 32 <= ord(ch) < 127 else " " for ch in text)[:1024]
