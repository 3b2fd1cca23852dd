"""Versioned event contracts. Every message body on the bus is one of these models.

A model's `subject` is the Service Bus message subject (the filter key) and
its `topic` the topic it travels on. `version` lets a consumer accept old and
new shapes during a rolling deploy: add optional fields freely; a breaking
change gets a new version and both are accepted until producers move over.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class Event(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    subject: ClassVar[str]
    topic: ClassVar[str]
    version: int = 1


EVENT_TYPES: dict[str, type[Event]] = {}


def event(subject: str, topic: str):
    """Class decorator: register an event model under its subject."""

    def register(cls: type[Event]) -> type[Event]:
        if subject in EVENT_TYPES:
            raise ValueError(f"event subject {subject!r} registered twice")
        cls.subject = subject
        cls.topic = topic
        EVENT_TYPES[subject] = cls
        return cls

    return register


class UnknownEvent(ValueError):
    pass


def parse_event(subject: str, body: dict[str, Any]) -> Event:
    """Validate a message body against the model registered for its subject."""
    try:
        model = EVENT_TYPES[subject]
    except KeyError:
        raise UnknownEvent(f"no event model for subject {subject!r}") from None
    return model.model_validate(body)


# --- images topic ---------------------------------------------------------------
#
# Events about one image carry `revision`: processing emits revision 1, and the
# moderation service (which owns every later change) increments it. Consumers
# keep the highest revision they applied and ignore older ones, so redelivered
# or out-of-order events never overwrite newer state.
#
# Events that make an image visible or change what buyers see carry the whole
# `ImageListing` (event-carried state transfer): search_sync and checkout build
# their read models from events alone, never from another service's tables.

Usage = Literal["commercial", "editorial"]
Orientation = Literal["landscape", "portrait", "square"]
LicenseType = Literal["standard", "enhanced"]


class Sidecar(BaseModel):
    """What the contributor says about an image at upload (portal form or migration sidecar file)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field("", max_length=200)
    description: str = Field("", max_length=2000)
    keywords: list[str] = Field(default_factory=list, max_length=50)
    category: str | None = Field(None, max_length=64)
    usage: Usage = "commercial"


class Tag(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    confidence: float = Field(ge=0, le=1)


class ColorShare(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str  # named facet, e.g. "blue"
    hex: str  # representative sRGB colour, "#1f4e79"
    share: float = Field(ge=0, le=1)


class Renditions(BaseModel):
    model_config = ConfigDict(frozen=True)

    thumbnail_small_url: str  # ~260 px long side, public container `thumbnails`
    thumbnail_url: str  # ~450 px long side
    preview_url: str  # ~1000 px watermarked, public container `watermarked`


class ImageListing(BaseModel):
    """Everything a buyer sees and search indexes about one image."""

    model_config = ConfigDict(extra="allow", frozen=True)

    title: str = ""
    description: str = ""
    keywords: list[str] = Field(default_factory=list)
    category: str | None = None
    usage: Usage = "commercial"
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    orientation: Orientation
    colors: list[ColorShare] = Field(default_factory=list)
    tags: list[Tag] = Field(default_factory=list)
    embedding: list[float] = Field(default_factory=list)  # 384-d, L2-normalised, same space as text queries
    safety_score: float = Field(ge=0, le=1)
    renditions: Renditions
    blurhash: str = ""
    phash: str = ""  # 64-bit perceptual hash, 16 hex digits
    camera: str | None = None
    lens: str | None = None
    captured_at: datetime | None = None
    uploaded_at: datetime


@event("image.uploaded", "images")
class ImageUploaded(Event):
    image_id: UUID
    contributor_id: str
    original_blob: str  # path inside the private `originals` container
    file_name: str = ""
    content_type: str
    size_bytes: int = Field(ge=0)
    sha256: str
    uploaded_at: datetime | None = None
    sidecar: Sidecar = Field(default_factory=Sidecar)
    near_duplicate_of: UUID | None = None  # perceptual-hash match found at ingestion


@event("image.processed", "images")
class ImageProcessed(Event):
    image_id: UUID
    contributor_id: str
    revision: int = 1
    original_blob: str = ""
    file_name: str = ""
    size_bytes: int = Field(0, ge=0)
    sha256: str = ""
    near_duplicate_of: UUID | None = None
    listing: ImageListing


@event("image.reanalyzed", "images")
class ImageReanalyzed(Event):
    """Processing's re-embed job ran the current image model over the original again (after a model switch).

    Moderation owns the listing and its revision: it merges these into the listing and announces the result
    the usual way (image.updated for a live image), so search, checkout and the catalogue follow.
    """

    image_id: UUID
    contributor_id: str
    model_version: str  # shared.ml's analyzer `version` that produced tags and embedding
    tags: list[Tag] = Field(default_factory=list)
    embedding: list[float] = Field(default_factory=list)


@event("image.processing_failed", "images")
class ImageProcessingFailed(Event):
    """Processing gave up for good (e.g. the model rejects the input); the contributor sees `reason`."""

    image_id: UUID
    contributor_id: str
    reason: str


@event("image.flagged", "images")
class ImageFlagged(Event):
    """Moderation queued the image for a human, with the reasons its policy found."""

    image_id: UUID
    contributor_id: str
    revision: int
    reasons: list[str]
    # Set when an edit while in review changed the listing (the contributor's catalogue shows it).
    listing: ImageListing | None = None


@event("image.approved", "images")
class ImageApproved(Event):
    image_id: UUID
    contributor_id: str
    revision: int
    approved_at: datetime
    original_blob: str
    file_name: str = ""
    listing: ImageListing


@event("image.rejected", "images")
class ImageRejected(Event):
    image_id: UUID
    contributor_id: str
    revision: int
    reason_code: str
    note: str | None = None


@event("image.updated", "images")
class ImageUpdated(Event):
    """An admin edited title, keywords or category of an approved image; `listing` is the new state."""

    image_id: UUID
    contributor_id: str
    revision: int
    listing: ImageListing


@event("image.removed", "images")
class ImageRemoved(Event):
    """Taken down: out of search and carts; licenses already sold stay valid and downloadable."""

    image_id: UUID
    contributor_id: str
    revision: int
    reason: str


class Price(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount_minor: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3, pattern="^[A-Z]{3}$")


@event("pricing.updated", "images")
class PricingUpdated(Event):
    """The admin pricing table, whole; `revision` orders updates."""

    revision: int
    prices: dict[LicenseType, Price]


# --- orders topic ---------------------------------------------------------------


class OrderLine(BaseModel):
    """One licensed image of an order at the price the buyer paid, and whose image it was when sold."""

    model_config = ConfigDict(extra="allow", frozen=True)

    image_id: UUID
    contributor_id: str = ""  # "" if checkout never learnt it; payouts then credits nobody and says so
    license_type: LicenseType
    amount_minor: int = Field(ge=0)
    currency: str = Field(min_length=3, max_length=3, pattern="^[A-Z]{3}$")


@event("order.completed", "orders")
class OrderCompleted(Event):
    order_id: UUID
    buyer_id: str
    amount_minor: int
    currency: str = Field(min_length=3, max_length=3)
    # One entry per licensed image (repeated when bought twice): search ranks "popular" by it.
    image_ids: list[UUID] = Field(default_factory=list)
    # Optional (older producers omit them): what payouts credits each contributor from. Checkout
    # knows the seller of record at the time of sale, so payouts needs no copy of the catalogue.
    lines: list[OrderLine] | None = None
    paid_at: datetime | None = None


@event("order.refunded", "orders")
class OrderRefunded(Event):
    order_id: UUID
    amount_minor: int
    currency: str = Field(min_length=3, max_length=3)
    image_ids: list[UUID] = Field(default_factory=list)  # one entry per license revoked


@event("license.issued", "orders")
class LicenseIssued(Event):
    license_id: UUID
    order_id: UUID | None
    image_id: UUID
    buyer_id: str
    license_type: LicenseType
    # Optional facts payouts credits the contributor from. A license of an order (order_id set) is
    # paid through order.completed's lines; one from a subscription allotment (order_id None) earns
    # the rate x the plan's per-download value, plan_amount_minor / plan_downloads.
    contributor_id: str | None = None
    issued_at: datetime | None = None
    subscription_id: str | None = None
    plan: str | None = None
    plan_amount_minor: int | None = Field(None, ge=0)
    plan_currency: str | None = Field(None, min_length=3, max_length=3, pattern="^[A-Z]{3}$")
    plan_downloads: int | None = Field(None, gt=0)


# --- payouts topic --------------------------------------------------------------


@event("payout.batch.created", "payouts")
class PayoutBatchCreated(Event):
    batch_id: UUID


@event("payout.transfer.requested", "payouts")
class PayoutTransferRequested(Event):
    """An approved batch item: the payouts transfer function moves its money through Stripe Connect."""

    batch_id: UUID
    payout_id: UUID
    contributor_id: str


@event("payout.paid", "payouts")
class PayoutPaid(Event):
    payout_id: UUID
    contributor_id: str
    amount_minor: int
    currency: str
    batch_id: UUID | None = None
    transfer_id: str | None = None


@event("payout.failed", "payouts")
class PayoutFailed(Event):
    payout_id: UUID
    contributor_id: str
    reason: str
    batch_id: UUID | None = None


# --- audit topic ----------------------------------------------------------------
#
# One audit trail across services: a service that records an admin action writes this event to
# its outbox in the same transaction as the change, and the audit log's owner (moderation, which
# serves GET /api/admin/audit-log) appends it to its append-only table. `audit_id` is the
# producer's own id for the entry, so a redelivery appends nothing.


@event("audit.recorded", "audit")
class AuditRecorded(Event):
    audit_id: UUID
    service: str = Field(min_length=1, max_length=40)
    at: datetime
    actor: str = Field(min_length=1)
    action: str = Field(min_length=1, max_length=80)
    target_type: str = Field(min_length=1, max_length=40)
    target_id: str = Field(min_length=1)
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


# --- platform (health probes, tests) ----------------------------------------------


@event("platform.ping", "platform")
class PlatformPing(Event):
    """Published by /api/health?deep=1 and tests to prove a message crosses the bus."""

    nonce: str
