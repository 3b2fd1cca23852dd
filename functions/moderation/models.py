"""What the moderation API accepts and answers. Bad input is refused here, before anything changes."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)

from shared.bus.events import Price
from shared.http import IsoDateTime

RejectReason = Literal[
    "poor_quality",
    "duplicate",
    "trademark_or_logo",
    "person_without_release",
    "nudity",
    "violence",
    "not_a_photo",
    "other",
]
REJECT_REASONS: tuple[str, ...] = RejectReason.__args__  # type: ignore[attr-defined]
MAX_BULK_IDS = 500
MAX_KEYWORDS = 50  # what the upload sidecar allows

# `pattern` says "not only spaces" in the OpenAPI schema too (the value is trimmed before its length is checked).
# Some visible character, and no NUL anywhere (PostgreSQL text cannot hold it; the edge refuses it).
_TEXT = r"^[^\x00]*[^\s\x00][^\x00]*$"
Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=_TEXT)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000, pattern=_TEXT)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=_TEXT)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000, pattern=r"^[^\x00]*$")]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", min_length=1, max_length=64)]
CategoryName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=_TEXT)]


# Rules across fields, stated in the OpenAPI schema as well as checked (JSON Schema if/then).
_OTHER_NEEDS_NOTE = {
    "if": {"properties": {"reason_code": {"const": "other"}}, "required": ["reason_code"]},
    "then": {"required": ["note"]},
}


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


# --- queue and image view ---------------------------------------------------------------


class QueueQuery(_Input):
    reason: str | None = Field(None, max_length=64, description="Only images flagged with this reason.")
    contributor: str | None = Field(None, max_length=200, description="Only this contributor's images.")
    min_age_minutes: int | None = Field(None, ge=0, le=525_600, description="Only images queued at least this long.")
    page: int = Field(1, ge=1, le=10_000)
    per_page: int = Field(50, ge=1, le=100)


class ModerationImage(BaseModel):
    image_id: UUID
    contributor_id: str
    state: Literal["pending", "approved", "rejected", "removed"]
    revision: int
    reasons: list[str]
    queued_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None
    reject_reason_code: str | None = None
    reject_note: str | None = None
    removed_reason: str | None = None
    file_name: str = ""
    near_duplicate_of: UUID | None = None
    title: str
    description: str = ""
    keywords: list[str]
    category: str | None
    width: int
    height: int
    safety_score: float
    thumbnail_url: str
    preview_url: str


class QueuePage(BaseModel):
    items: list[ModerationImage]
    total: int
    page: int
    per_page: int


# --- decisions ---------------------------------------------------------------------------


def _note_required_for_other(reason_code: str | None, note: str | None) -> None:
    if reason_code == "other" and not note:
        raise ValueError("reason_code 'other' needs a note saying why")


class RejectIn(_Input):
    model_config = ConfigDict(json_schema_extra={"allOf": [_OTHER_NEEDS_NOTE]})

    reason_code: RejectReason
    note: Note = None  # optional, but not null

    @model_validator(mode="after")
    def _other_has_text(self) -> RejectIn:
        _note_required_for_other(self.reason_code, self.note)
        return self


class BulkModerateIn(_Input):
    action: Literal["approve", "reject"]
    # Plain strings so that one malformed id fails alone instead of refusing the whole list.
    image_ids: list[Annotated[str, StringConstraints(max_length=64)]] = Field(
        min_length=1, max_length=MAX_BULK_IDS, json_schema_extra={"uniqueItems": True}
    )
    reason_code: RejectReason = None  # optional, but not null
    note: Note = None

    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"action": {"const": "reject"}}},
                    "then": {"required": ["reason_code"]},
                    "else": {"not": {"anyOf": [{"required": ["reason_code"]}, {"required": ["note"]}]}},
                },
                _OTHER_NEEDS_NOTE,
            ],
        }
    )

    @field_validator("image_ids")
    @classmethod
    def _no_duplicates(cls, ids: list[str]) -> list[str]:
        counts = Counter(_same_id(i) for i in ids)
        repeated = sorted(i for i, n in counts.items() if n > 1)
        if repeated:
            raise ValueError(f"ids must be unique; repeated: {', '.join(repeated[:5])}")
        return ids

    @model_validator(mode="after")
    def _reject_has_reason(self) -> BulkModerateIn:
        if self.action == "reject" and self.reason_code is None:
            raise ValueError("action 'reject' needs a reason_code")
        if self.action == "approve" and (self.reason_code is not None or self.note is not None):
            raise ValueError("action 'approve' takes no reason_code or note")
        _note_required_for_other(self.reason_code, self.note)
        return self


def _same_id(raw: str) -> str:
    """Ids that name the same image compare equal (UUID case); anything else compares as written."""
    try:
        return str(UUID(raw))
    except ValueError:
        return raw


class BulkResult(BaseModel):
    image_id: str
    status: int  # the HTTP status this id would have had on its own
    state: str | None = None
    error: str | None = None  # problem type slug
    detail: str | None = None


class BulkModerateOut(BaseModel):
    results: list[BulkResult]
    succeeded: int
    failed: int


# --- edits and takedowns -------------------------------------------------------------------


class ImagePatch(_Input):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    # Optional, but not null: an image always has a title and a keyword list.
    title: Title = None
    description: Description = Field(None, description="May be empty: an image needs no description.")
    keywords: list[Keyword] = Field(None, max_length=MAX_KEYWORDS, json_schema_extra={"uniqueItems": True})
    category: Slug | None = Field(None, description="A category slug; null removes the category.")

    @field_validator("keywords")
    @classmethod
    def _unique_keywords(cls, keywords: list[str]) -> list[str]:
        folded = [k.casefold() for k in keywords]
        repeated = sorted({k for k in keywords if folded.count(k.casefold()) > 1})
        if repeated:
            raise ValueError(f"keywords must be unique; repeated: {', '.join(repeated[:5])}")
        return keywords

    @model_validator(mode="after")
    def _something(self) -> ImagePatch:
        if not self.model_fields_set:
            raise ValueError("send at least one of title, description, keywords, category")
        return self


class TakedownIn(_Input):
    reason: Note


# --- categories ------------------------------------------------------------------------------


class CategoryIn(_Input):
    slug: Slug
    name: CategoryName


class CategoryPatch(_Input):
    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    name: CategoryName = None  # optional, but not null
    retired: StrictBool = Field(None, description="true retires the category, false brings it back.")

    @model_validator(mode="after")
    def _something(self) -> CategoryPatch:
        if self.name is None and self.retired is None:
            raise ValueError("send name or retired")
        return self


class Category(BaseModel):
    slug: str
    name: str
    retired: bool
    retired_at: datetime | None = None
    created_at: datetime


class CategoryList(BaseModel):
    items: list[Category]


class CategoriesQuery(_Input):
    include_retired: bool = True


# --- pricing ---------------------------------------------------------------------------------


class PriceIn(Price):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Over a million in major units is a typo, not a price.
    amount_minor: int = Field(ge=1, le=100_000_000)


class PricesIn(_Input):
    standard: PriceIn
    enhanced: PriceIn


class PricingIn(_Input):
    prices: PricesIn


class PricingOut(BaseModel):
    revision: int
    prices: dict[str, Price]
    updated_at: datetime
    updated_by: str | None = None


# --- audit log ---------------------------------------------------------------------------------


class AuditQuery(_Input):
    service: str | None = Field(
        None, min_length=1, max_length=40, description="Only this service's entries (moderation, checkout, ...)."
    )
    actor: str | None = Field(None, max_length=200)
    action: str | None = Field(None, max_length=64)
    target: str | None = Field(None, max_length=200, description="The id or slug the action was on.")
    since: IsoDateTime | None = Field(None, description="Entries at or after this instant (ISO 8601).")
    until: IsoDateTime | None = Field(None, description="Entries before this instant (ISO 8601).")
    page: int = Field(1, ge=1, le=10_000)
    per_page: int = Field(50, ge=1, le=100)


class AuditEntry(BaseModel):
    id: int
    at: datetime
    service: str
    actor: str
    action: str
    target_type: str
    target_id: str
    before: Any = None
    after: Any = None
    correlation_id: str | None = None


class AuditPage(BaseModel):
    items: list[AuditEntry]
    total: int
    page: int
    per_page: int
