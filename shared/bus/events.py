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


@event("image.uploaded", "images")
class ImageUploaded(Event):
    image_id: UUID
    contributor_id: str
    original_blob: str
    content_type: str
    size_bytes: int = Field(ge=0)
    sha256: str


@event("image.processed", "images")
class ImageProcessed(Event):
    image_id: UUID
    contributor_id: str
    width: int
    height: int
    tags: list[str] = Field(default_factory=list)
    safety_score: float = Field(ge=0, le=1)


@event("image.approved", "images")
class ImageApproved(Event):
    image_id: UUID
    contributor_id: str
    approved_at: datetime


@event("image.rejected", "images")
class ImageRejected(Event):
    image_id: UUID
    contributor_id: str
    reason_code: str
    note: str | None = None


@event("image.updated", "images")
class ImageUpdated(Event):
    image_id: UUID
    revision: int


@event("image.removed", "images")
class ImageRemoved(Event):
    image_id: UUID
    reason: str


# --- orders topic ---------------------------------------------------------------


@event("order.completed", "orders")
class OrderCompleted(Event):
    order_id: UUID
    buyer_id: str
    amount_minor: int
    currency: str = Field(min_length=3, max_length=3)


@event("order.refunded", "orders")
class OrderRefunded(Event):
    order_id: UUID
    amount_minor: int
    currency: str = Field(min_length=3, max_length=3)


@event("license.issued", "orders")
class LicenseIssued(Event):
    license_id: UUID
    order_id: UUID | None
    image_id: UUID
    buyer_id: str
    license_type: Literal["standard", "enhanced"]


# --- payouts topic --------------------------------------------------------------


@event("payout.batch.created", "payouts")
class PayoutBatchCreated(Event):
    batch_id: UUID


@event("payout.paid", "payouts")
class PayoutPaid(Event):
    payout_id: UUID
    contributor_id: str
    amount_minor: int
    currency: str


@event("payout.failed", "payouts")
class PayoutFailed(Event):
    payout_id: UUID
    contributor_id: str
    reason: str


# --- platform (health probes, tests) ----------------------------------------------


@event("platform.ping", "platform")
class PlatformPing(Event):
    """Published by /api/health?deep=1 and tests to prove a message crosses the bus."""

    nonce: str
