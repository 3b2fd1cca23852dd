"""Admin routes over the bus's dead letters: list with filters, replay or discard one (audited)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from functions.platform.blueprint import bp
from functions.platform.dead_letters import NoSuchDeadLetter, list_dead_letters, settle_dead_letter
from shared.bus.dead_letters import DeadLetter, DeadLetterQuery
from shared.http import ApiRequest, Problem, api
from shared.runtime import get_runtime

ADMIN = {"admin"}
TAGS = ["platform"]
_NAME = r"^[a-z0-9-]{1,50}$"


class DeadLettersQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topic: str | None = Field(None, pattern=_NAME)
    subscription: str | None = Field(None, pattern=_NAME)
    subject: str | None = Field(None, max_length=100)
    reason: str | None = Field(None, max_length=200, description="e.g. MaxDeliveryCountExceeded, InvalidBody")
    limit: int = Field(100, ge=1, le=500)


class DeadLetterOut(BaseModel):
    id: str = Field(description="topic:subscription:sequence; what replay and discard take")
    topic: str
    subscription: str
    message_id: str
    subject: str
    reason: str | None
    description: str | None
    delivery_count: int
    enqueued_time: datetime
    dead_lettered_time: datetime | None
    correlation_id: str | None
    body: dict[str, Any]


class DeadLettersOut(BaseModel):
    items: list[DeadLetterOut]


class SettledOut(BaseModel):
    id: str
    action: str
    message_id: str


def _out(letter: DeadLetter) -> DeadLetterOut:
    return DeadLetterOut(
        id=letter.id,
        topic=letter.topic,
        subscription=letter.subscription,
        message_id=letter.message_id,
        subject=letter.subject,
        reason=letter.reason,
        description=letter.description,
        delivery_count=letter.delivery_count,
        enqueued_time=letter.enqueued_time,
        dead_lettered_time=letter.dead_lettered_time,
        correlation_id=letter.correlation_id,
        body=letter.body,
    )


@api(
    bp,
    "GET",
    "admin/dead-letters",
    roles=ADMIN,
    summary="Messages the bus gave up on, with their reason, oldest first",
    query_model=DeadLettersQuery,
    response_model=DeadLettersOut,
    tags=TAGS,
)
async def dead_letters(request: ApiRequest) -> DeadLettersOut:
    runtime = await get_runtime()
    q: DeadLettersQuery = request.query
    query = DeadLetterQuery(
        topic=q.topic, subscription=q.subscription, subject=q.subject, reason=q.reason, limit=q.limit
    )
    return DeadLettersOut(items=[_out(letter) for letter in await list_dead_letters(runtime.dead_letters, query)])


async def _settle(request: ApiRequest, action: str) -> SettledOut:
    runtime = await get_runtime()
    letter_id = request.path_params.get("id", "")
    try:
        letter = await settle_dead_letter(
            runtime.db, runtime.dead_letters, letter_id, action, request.require_principal().sub
        )
    except NoSuchDeadLetter:
        raise Problem(404, "dead-letter-not-found", "Dead letter not found", "No dead letter has this id.") from None
    return SettledOut(id=letter.id, action=action, message_id=letter.message_id)


@api(
    bp,
    "POST",
    "admin/dead-letters/{id}/replay",
    roles=ADMIN,
    summary="Deliver a dead letter again to its own subscription, delivery count reset (audited)",
    response_model=SettledOut,
    tags=TAGS,
)
async def replay_dead_letter(request: ApiRequest) -> SettledOut:
    return await _settle(request, "replay")


@api(
    bp,
    "POST",
    "admin/dead-letters/{id}/discard",
    roles=ADMIN,
    summary="Delete a dead letter for good (audited)",
    response_model=SettledOut,
    tags=TAGS,
)
async def discard_dead_letter(request: ApiRequest) -> SettledOut:
    return await _settle(request, "discard")
