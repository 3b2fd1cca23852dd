"""The consumer settles like the Functions host with autoCompleteMessages: complete on return, abandon on raise."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from shared.bus.consumer import SubscriptionConsumer, process_one
from shared.bus.inbox import claim_message
from shared.bus.port import MessageLockLost, OutgoingMessage, ReceivedMessage


class FakeTransport:
    """An in-memory broker that records settlements; `lock_lost` makes every settlement fail."""

    def __init__(self, messages: Sequence[ReceivedMessage] = (), *, lock_lost: bool = False) -> None:
        self.queue = list(messages)
        self.lock_lost = lock_lost
        self.calls: list[tuple[str, str, str | None]] = []

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        raise NotImplementedError

    async def receive(self, topic, subscription, *, max_messages=1, max_wait_seconds=0.0):
        batch, self.queue = self.queue[:max_messages], self.queue[max_messages:]
        if not batch:
            await asyncio.sleep(min(max_wait_seconds, 0.01))
        return batch

    async def complete(self, message: ReceivedMessage) -> None:
        self._settle("complete", message)

    async def abandon(self, message: ReceivedMessage, error: str | None = None) -> None:
        self._settle("abandon", message, error)

    async def dead_letter(self, message: ReceivedMessage, reason: str, description: str = "") -> None:
        self._settle("dead_letter", message, reason)

    async def renew_lock(self, message: ReceivedMessage) -> datetime:
        self._settle("renew_lock", message)
        return datetime.now(UTC) + timedelta(seconds=0.2)

    async def close(self) -> None:
        pass

    def _settle(self, what: str, message: ReceivedMessage, detail: str | None = None) -> None:
        self.calls.append((what, message.message_id, detail))
        if self.lock_lost:
            raise MessageLockLost(message.message_id)


def message(message_id: str = "m-1", lock_seconds: float = 0.2) -> ReceivedMessage:
    now = datetime.now(UTC)
    return ReceivedMessage(
        message_id=message_id,
        topic="platform",
        subscription="health",
        subject="platform.ping",
        body={"version": 1, "nonce": message_id},
        correlation_id="corr-1",
        delivery_count=1,
        enqueued_time=now,
        locked_until=now + timedelta(seconds=lock_seconds),
        lock_token="00000000-0000-0000-0000-000000000001",
    )


async def test_a_handler_that_returns_completes_the_message():
    transport = FakeTransport()

    async def handler(msg):
        pass

    assert await process_one(transport, message(), handler) is True
    assert transport.calls == [("complete", "m-1", None)]


async def test_a_handler_that_raises_abandons_the_message_with_the_error_type_and_text():
    transport = FakeTransport()

    async def handler(msg):
        raise KeyError("image 42")

    assert await process_one(transport, message(), handler) is False
    assert transport.calls == [("abandon", "m-1", "KeyError: 'image 42'")]


async def test_a_lost_lock_at_settlement_is_logged_not_raised():
    transport = FakeTransport(lock_lost=True)

    async def handler(msg):
        pass

    assert await process_one(transport, message(), handler) is False


async def test_the_lock_is_renewed_while_the_handler_runs_and_not_after():
    transport = FakeTransport()

    async def handler(msg):
        await asyncio.sleep(0.35)  # the 0.2 s lock is renewed at half its remaining time

    await process_one(transport, message(lock_seconds=0.2), handler)
    renewals = [c for c in transport.calls if c[0] == "renew_lock"]
    assert len(renewals) >= 2
    assert transport.calls[-1] == ("complete", "m-1", None)


async def test_the_consumer_stops_on_request_after_finishing_the_handlers_in_flight():
    transport = FakeTransport([message(f"m-{n}") for n in range(5)])
    started: list[str] = []
    stop = asyncio.Event()

    async def handler(msg):
        started.append(msg.message_id)
        if len(started) == 5:
            stop.set()
        await asyncio.sleep(0.05)

    consumer = SubscriptionConsumer(
        transport, "platform", "health", handler, max_concurrent=2, receive_wait_seconds=0.01
    )
    await asyncio.wait_for(consumer.run(stop), timeout=5)
    assert sorted(c[1] for c in transport.calls if c[0] == "complete") == [f"m-{n}" for n in range(5)]


async def test_the_inbox_accepts_only_known_schemas_because_the_name_is_interpolated():
    with pytest.raises(ValueError, match="no inbox in schema"):
        await claim_message(None, "public; drop table users", "s", "m-1")  # type: ignore[arg-type]
