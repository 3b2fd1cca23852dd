"""Turns the Functions Service Bus binding into our ReceivedMessage, inside a traced, correlated scope."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import azure.functions as func
import structlog
from opentelemetry import trace

from shared.bus.port import ReceivedMessage
from shared.telemetry import context_from, tracer


def received_message(msg: func.ServiceBusMessage, topic: str, subscription: str) -> ReceivedMessage:
    now = datetime.now(UTC)
    return ReceivedMessage(
        message_id=msg.message_id,
        topic=topic,
        subscription=subscription,
        subject=msg.subject or msg.label or "",
        body=json.loads(msg.get_body() or b"{}"),
        correlation_id=msg.correlation_id,
        delivery_count=msg.delivery_count or 1,
        enqueued_time=msg.enqueued_time_utc or now,
        locked_until=msg.locked_until or now,
        lock_token=msg.lock_token or "",
        application_properties=dict(msg.application_properties or {}),
    )


@contextmanager
def message_scope(message: ReceivedMessage) -> Iterator[trace.Span]:
    """Bind the correlation id to every log line and continue the producer's trace."""
    with structlog.contextvars.bound_contextvars(
        correlation_id=message.correlation_id,
        message_id=message.message_id,
        subject=message.subject,
        delivery_count=message.delivery_count,
    ):
        with tracer.start_as_current_span(
            f"{message.topic}/{message.subscription} {message.subject}",
            context=context_from(message.application_properties),
            kind=trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "servicebus",
                "messaging.destination.name": message.topic,
                "messaging.message.id": message.message_id,
            },
        ) as span:
            yield span
