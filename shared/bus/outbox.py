"""Transactional outbox: an event is written in the same transaction as the state change it announces.

The relay (shared.bus.relay) publishes committed rows later, so there is never a
dual write: either the change and its event both commit, or neither does.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from shared.bus.events import Event
from shared.bus.topology import topic as declared_topic
from shared.telemetry import current_trace_headers

_INSERT = """
insert into bus.outbox (id, topic, subject, correlation_id, body, application_properties, scheduled_at)
values ($1, $2, $3, $4, $5::text::jsonb, $6::text::jsonb, $7)
"""


MAX_BODY_BYTES = 192 * 1024  # leaves room for headers and properties within Service Bus's 256 KB


async def add_to_outbox(
    conn: asyncpg.Connection,
    event: Event,
    *,
    correlation_id: str | None = None,
    scheduled_at: datetime | None = None,
    message_id: str | None = None,
    application_properties: dict[str, Any] | None = None,
) -> str:
    """Queue `event` for publication in the caller's transaction; return its message_id.

    Without an explicit correlation_id, the one bound in structlog's context (set by the
    consumer or the HTTP layer for the work in progress) is carried on, and so is the
    active trace (`traceparent` in the application properties).
    """
    # Fail in the producer's transaction, not later in the relay where the row would be stuck.
    declared_topic(event.topic)
    # pydantic's own JSON encoder: the same document as json.dumps(model_dump()) at a seventh of the CPU
    # (an image.processed with its 384-float embedding: 25 instead of 170 microseconds).
    body = event.model_dump_json()
    if len(body) > MAX_BODY_BYTES:
        # Service Bus Standard takes 256 KB per message: carry a reference to a blob, not the data.
        raise ValueError(f"{event.subject} body is {len(body)} bytes; events must stay under {MAX_BODY_BYTES}")
    message_id = message_id or str(uuid.uuid4())
    if correlation_id is None:
        correlation_id = structlog.contextvars.get_contextvars().get("correlation_id")
    await conn.execute(
        _INSERT,
        message_id,
        event.topic,
        event.subject,
        correlation_id,
        body,
        json.dumps({**current_trace_headers(), **(application_properties or {})}),
        scheduled_at,
    )
    return message_id
