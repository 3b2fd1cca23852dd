"""The bus port: what handlers, the outbox relay and devhost need from a message broker.

Semantics are Azure Service Bus's (topics, subscriptions, peek-lock), so the
local Postgres transport and the Service Bus transport are interchangeable.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class OutgoingMessage:
    message_id: str  # = outbox row id; the broker drops a repeat within the duplicate-detection window
    topic: str
    subject: str
    body: dict[str, Any]
    correlation_id: str | None = None
    scheduled_enqueue_time: datetime | None = None  # not delivered before this instant
    application_properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class ReceivedMessage:
    message_id: str
    topic: str
    subscription: str
    subject: str
    body: dict[str, Any]
    correlation_id: str | None
    delivery_count: int  # 1 on first delivery
    enqueued_time: datetime
    locked_until: datetime
    lock_token: str
    application_properties: dict[str, Any] = field(default_factory=dict)
    raw: Any = None  # the transport's own message object (Service Bus), for settlement


# Service Bus rejects a longer dead-letter reason or description (the .NET and JS SDKs enforce the
# same limit client side); both transports clip to it.
MAX_DEAD_LETTER_TEXT = 4096


def clip_dead_letter_text(text: str) -> str:
    return text if len(text) <= MAX_DEAD_LETTER_TEXT else text[: MAX_DEAD_LETTER_TEXT - 1] + "…"


def error_text(exc: BaseException) -> str:
    """How an exception is recorded on a message, an outbox row or a log line."""
    return f"{type(exc).__name__}: {exc}"


class MessageLockLost(RuntimeError):
    """The lock expired or was taken by another receiver: the message will be (or was) redelivered."""


class BusTransport(Protocol):
    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        """Send messages to their topics. Idempotent on message_id within the duplicate-detection window."""

    async def receive(
        self, topic: str, subscription: str, *, max_messages: int = 1, max_wait_seconds: float = 0.0
    ) -> list[ReceivedMessage]:
        """Peek-lock up to max_messages; waits up to max_wait_seconds for the first one."""

    async def complete(self, message: ReceivedMessage) -> None:
        """Settle: the message is done and removed. Raises MessageLockLost if the lock is gone."""

    async def abandon(self, message: ReceivedMessage, error: str | None = None) -> None:
        """Release the lock now; the message is redelivered, or dead-lettered at max delivery count."""

    async def dead_letter(self, message: ReceivedMessage, reason: str, description: str = "") -> None:
        """Move the message to the subscription's dead-letter queue with a reason."""

    async def renew_lock(self, message: ReceivedMessage) -> datetime:
        """Extend the lock; returns the new locked_until. Raises MessageLockLost if it is gone."""

    async def close(self) -> None: ...
