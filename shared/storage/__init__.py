"""Blob storage: the `BlobStore` port and its Azure SDK adapter (Azurite locally, Blob Storage in Azure).

The adapter (`shared.storage.azure_blob`) and the Azurite process manager
(`shared.storage.azurite`) are imported from their modules, so importing the
port stays free of the Azure SDK.
"""

from shared.storage.port import (
    CONTAINERS,
    DEFAULT_SAS_LIFETIME,
    INCOMING,
    ORIGINALS,
    PUBLIC_CONTAINERS,
    QUARANTINE,
    THUMBNAILS,
    WATERMARKED,
    BlobAlreadyExists,
    BlobData,
    BlobInfo,
    BlobNotFound,
    BlobStore,
    CopyFailed,
    StorageError,
)

__all__ = [
    "CONTAINERS",
    "DEFAULT_SAS_LIFETIME",
    "INCOMING",
    "ORIGINALS",
    "PUBLIC_CONTAINERS",
    "QUARANTINE",
    "THUMBNAILS",
    "WATERMARKED",
    "BlobAlreadyExists",
    "BlobData",
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "CopyFailed",
    "StorageError",
]
