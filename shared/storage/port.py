"""The blob storage port: what ingestion, processing, checkout and devhost need from object storage.

Semantics are Azure Blob Storage's (block blobs, server-side copy, SAS URLs), so
the Azure adapter runs unchanged against Azurite locally and a storage account
in Azure. Handlers take a `BlobStore`; tests may pass any object with these
methods.

Containers (created by `ensure_containers`, and by infra/ in Azure):

| container    | access      | holds                                                    |
|--------------|-------------|----------------------------------------------------------|
| incoming     | private     | uploads as they land (SAS upload, migration CLI)         |
| originals    | private     | validated originals; served only through short-lived SAS |
| thumbnails   | public blob | small renditions, linked directly by the portals         |
| watermarked  | public blob | watermarked previews                                     |
| quarantine   | private     | rejected files, kept with a reason for the contributor   |
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Protocol, runtime_checkable

INCOMING = "incoming"
ORIGINALS = "originals"
THUMBNAILS = "thumbnails"
WATERMARKED = "watermarked"
QUARANTINE = "quarantine"

# container -> anonymous read access to its blobs ("public blob" access level)
CONTAINERS: Mapping[str, bool] = {
    INCOMING: False,
    ORIGINALS: False,
    THUMBNAILS: True,
    WATERMARKED: True,
    QUARANTINE: False,
}
PUBLIC_CONTAINERS = frozenset(name for name, public in CONTAINERS.items() if public)

# Data accepted by `put`: bytes in memory, a binary file object (read from its current
# position), or an async iterable of byte chunks of any size (uploaded in blocks).
BlobData = bytes | bytearray | memoryview | IO[bytes] | AsyncIterable[bytes]

DEFAULT_SAS_LIFETIME = timedelta(minutes=15)


@dataclass(frozen=True)
class BlobInfo:
    name: str
    size: int
    content_type: str | None
    etag: str
    last_modified: datetime
    metadata: Mapping[str, str] = field(default_factory=dict)


class StorageError(RuntimeError):
    """A storage operation failed for a reason other than those below (auth, network, service)."""


class BlobNotFound(StorageError, LookupError):
    """The blob (or its container) does not exist."""

    def __init__(self, container: str, name: str) -> None:
        super().__init__(f"blob not found: {container}/{name}")
        self.container = container
        self.name = name


class BlobAlreadyExists(StorageError):
    """`put(..., overwrite=False)` found a blob already there."""

    def __init__(self, container: str, name: str) -> None:
        super().__init__(f"blob already exists: {container}/{name}")
        self.container = container
        self.name = name


class CopyFailed(StorageError):
    """A server-side copy ended in status failed/aborted, or did not finish in time."""


@runtime_checkable
class BlobStore(Protocol):
    async def ensure_containers(self) -> None:
        """Create the containers in CONTAINERS with their access level; fix the level of existing ones."""

    async def allow_browser_uploads(self, origins: list[str]) -> None:
        """Let pages served from `origins` PUT files to upload SAS URLs (CORS on the blob service)."""

    async def put(
        self,
        container: str,
        name: str,
        data: BlobData,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        overwrite: bool = True,
    ) -> BlobInfo:
        """Upload a block blob. Streams are sent in blocks and committed at the end (all or nothing).

        Metadata keys must be valid C# identifiers and values ASCII (Azure's rule).
        Raises BlobAlreadyExists when overwrite=False and the blob exists.
        """

    async def get(self, container: str, name: str) -> bytes:
        """The whole blob. Raises BlobNotFound."""

    async def get_with_info(self, container: str, name: str) -> tuple[bytes, BlobInfo]:
        """The whole blob and the properties of exactly that version (one request). Raises BlobNotFound."""

    async def get_range(self, container: str, name: str, offset: int, length: int | None = None) -> bytes:
        """Bytes [offset, offset+length) (to the end when length is None); b"" past the end. Raises BlobNotFound."""

    def stream(self, container: str, name: str) -> AsyncIterator[bytes]:
        """The blob in chunks (a few MiB each), for big files. Raises BlobNotFound on first iteration."""

    async def properties(self, container: str, name: str) -> BlobInfo | None:
        """Size, content type, etag, metadata; None when the blob does not exist."""

    async def exists(self, container: str, name: str) -> bool: ...

    async def delete(self, container: str, name: str, *, if_etag: str | None = None) -> bool:
        """Delete the blob (and its snapshots). Idempotent: False when it was not there.

        `if_etag`: delete only that version; False (blob kept) when it was replaced since."""

    async def copy(
        self,
        src_container: str,
        src_name: str,
        dst_container: str,
        dst_name: str,
        *,
        source: BlobInfo | None = None,
        content_type: str | None = None,
    ) -> BlobInfo:
        """Server-side copy within the account (content type and metadata included), waiting until it
        succeeds; overwrites the destination. Raises BlobNotFound for a missing source, CopyFailed.

        `source`: the properties of the version the caller read; only that version is copied, and a source
        replaced since raises CopyFailed. `content_type`: the destination's, when it must differ from the source's.
        """

    def list(self, container: str, prefix: str = "") -> AsyncIterator[BlobInfo]:
        """Blobs whose name starts with prefix, in name order, with metadata. BlobNotFound: no such container."""

    async def sas_url(
        self,
        container: str,
        name: str,
        *,
        permissions: str = "r",
        expires_in: timedelta = DEFAULT_SAS_LIFETIME,
        content_disposition: str | None = None,
    ) -> str:
        """A URL to the blob carrying a SAS token with these permissions ("r" download, "cw" upload, ...).

        The token starts a few minutes in the past (clock skew) and expires no later than now+expires_in.
        content_disposition is returned as the Content-Disposition header of downloads through the URL.
        """

    def public_url(self, container: str, name: str) -> str:
        """Anonymous URL of a blob in a public container (ValueError for a private one)."""

    async def ping(self) -> bool:
        """True when storage answers (for health checks); never raises."""

    async def close(self) -> None: ...
