"""What crosses the ingestion service's HTTP edge."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared import paging
from shared.bus.events import ColorShare, Orientation, Renditions, Sidecar, Tag, Usage

ImageState = Literal[
    "awaiting_upload", "quarantined", "processing", "failed", "processed", "flagged", "approved", "rejected", "removed"
]
UploadContentType = Literal["image/jpeg", "image/png", "image/webp", "image/tiff"]  # = inspect.ACCEPTED_CONTENT_TYPES


class UploadRequest(BaseModel):
    """An upload ticket request: what the contributor is about to send, and what they say about it."""

    model_config = ConfigDict(extra="forbid")

    file_name: str = Field(min_length=1, max_length=255, description="The file's name on the contributor's disk.")
    size_bytes: int = Field(gt=0, description="Size of the file that will be PUT, in bytes.")
    content_type: UploadContentType = Field(description="The file's type; checked again from its bytes on arrival.")
    sidecar: Sidecar = Field(default_factory=Sidecar, description="Title, description, keywords, category, usage.")

    @field_validator("file_name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        value = value.strip()
        if not value or any(ch in value for ch in "/\\\x00") or any(ord(ch) < 32 for ch in value):
            raise ValueError("must be a plain file name without path separators or control characters")
        return value


class UploadTicket(BaseModel):
    image_id: UUID
    upload_url: str = Field(description="Write-only SAS URL for exactly this upload; PUT the file's bytes to it.")
    expires_at: datetime
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str] = Field(
        default_factory=lambda: {"x-ms-blob-type": "BlockBlob"}, description="Headers the PUT must carry."
    )


class ListingOut(BaseModel):
    """The public listing as the contributor sees it (the embedding stays internal)."""

    title: str = ""
    description: str = ""
    keywords: list[str] = Field(default_factory=list)
    category: str | None = None
    usage: Usage = "commercial"
    width: int
    height: int
    orientation: Orientation
    colors: list[ColorShare] = Field(default_factory=list)
    tags: list[Tag] = Field(default_factory=list)
    safety_score: float
    renditions: Renditions
    blurhash: str = ""
    camera: str | None = None
    lens: str | None = None
    captured_at: datetime | None = None


class ContributorImage(BaseModel):
    image_id: UUID
    state: ImageState
    file_name: str
    created_at: datetime
    ingested_at: datetime | None = None
    size_bytes: int | None = None
    content_type: str | None = None
    width: int | None = None
    height: int | None = None
    sidecar: Sidecar
    reason_code: str | None = Field(None, description="Why the image was quarantined, failed, rejected or removed.")
    reason: str | None = Field(None, description="The same, in words for the contributor.")
    duplicate_of: UUID | None = Field(None, description="The image this upload exactly duplicates.")
    near_duplicate_of: UUID | None = None
    moderation_reasons: list[str] = Field(default_factory=list)
    listing: ListingOut | None = None


MAX_IDS = 100


def image_ids(value: str) -> list[UUID]:
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts:
        raise ValueError("give at least one image id")
    if len(parts) > MAX_IDS:
        raise ValueError(f"at most {MAX_IDS} ids at once")
    try:
        return list(dict.fromkeys(UUID(p) for p in parts))
    except ValueError:
        raise ValueError("each id must be an image id (a UUID)") from None


class ImagesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: ImageState | None = Field(None, description="Only images in this state.")
    per_page: int = Field(50, ge=1, le=100)
    cursor: str | None = Field(None, max_length=200, description="`next_cursor` of the previous page.")
    ids: str | None = Field(
        None,
        max_length=MAX_IDS * 37,
        description=f"Only these images: comma-separated ids, at most {MAX_IDS} (say, to name the photos of an "
        "earnings report). Ids that are not the caller's are left out, as unknown ones are.",
    )

    @field_validator("ids")
    @classmethod
    def _ids(cls, value: str | None) -> str | None:
        if value is not None:
            image_ids(value)  # a bad list is a 400 naming the parameter
        return value

    def image_ids(self) -> list[UUID] | None:
        return None if self.ids is None else image_ids(self.ids)

    @field_validator("cursor")
    @classmethod
    def _cursor(cls, value: str | None) -> str | None:
        if value is not None:
            decode_cursor(value)  # a bad cursor is a 400 naming the parameter
        return value


class ImagesPage(BaseModel):
    items: list[ContributorImage]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next (older) page; null at the end.")


def encode_cursor(created_at: datetime, image_id: UUID) -> str:
    return paging.encode_cursor([created_at.isoformat(), str(image_id)])


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    created, image_id = paging.decode_cursor(cursor, 2)
    try:
        return datetime.fromisoformat(created), UUID(image_id)
    except ValueError as exc:
        raise ValueError("is not a cursor this API returned") from exc
