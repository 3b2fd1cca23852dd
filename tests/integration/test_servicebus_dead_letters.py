"""The Service Bus dead-letter store against the real azure-servicebus SDK, checked on the AMQP wire.

The peer is the scripted broker of test_servicebus_transport.py, taught two more things Service Bus
does: a subscription's `$DeadLetterQueue` sub-queue (its messages carry DeadLetterReason and
DeadLetterErrorDescription application properties and their own sequence numbers), and the
`com.microsoft:peek-message` management operation (messages from a sequence number on, unlocked).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.servicebus._pyamqp._encode import encode_payload
from azure.servicebus._pyamqp.message import Header, Message, Properties

from shared.bus.dead_letters import DeadLetterId, DeadLetterQuery
from shared.bus.servicebus_dead_letters import ServiceBusDeadLetters
from shared.bus.servicebus_transport import ServiceBusTransport
from tests.integration.test_servicebus_transport import FakeServiceBus, _Connection, _Session, _text

DLQ = "$DeadLetterQueue"


class _DeadLetterConnection(_Connection):
    def management(self, session: _Session, address: str, request: Message) -> None:
        if request.application_properties[b"operation"] != b"com.microsoft:peek-message":
            return super().management(session, address, request)
        self.bus.mgmt_requests.append((address, dict(request.application_properties), request.value))
        entity = address.removesuffix("/$management")
        start = request.value[b"from-sequence-number"]
        count = request.value[b"message-count"]
        found = [m for m in self.bus._queue_for(entity) if _sequence(m) >= start][:count]
        if not found:
            self.reply(session, address, request, {b"statusCode": 204, b"statusDescription": "No messages"})
            return
        encoded = []
        for message in found:
            payload = bytearray()
            encode_payload(payload, message)
            encoded.append({b"message": bytes(payload)})
        self.reply(
            session, address, request, {b"statusCode": 200, b"statusDescription": "OK"}, value={b"messages": encoded}
        )


class DeadLetteringServiceBus(FakeServiceBus):
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _DeadLetterConnection(self, reader, writer)
        try:
            await conn.run()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except Exception as exc:
            self.errors.append(exc)
        writer.close()

    def dead_letter(
        self, topic: str, subscription: str, sequence: int, *, subject: str, body: Any, reason: str, description: str
    ) -> str:
        message_id = f"m-{sequence}"
        now = datetime.now(UTC).replace(microsecond=0)
        message = Message(
            header=Header(delivery_count=10),
            delivery_annotations={b"x-opt-lock-token": uuid.uuid4()},
            message_annotations={
                b"x-opt-enqueued-time": now - timedelta(minutes=sequence),
                b"x-opt-locked-until": now + timedelta(seconds=60),
                b"x-opt-sequence-number": sequence,
            },
            properties=Properties(
                message_id=message_id, subject=subject, correlation_id="corr-1", content_type=b"application/json"
            ),
            application_properties={
                b"DeadLetterReason": reason.encode(),
                b"DeadLetterErrorDescription": description.encode(),
                b"traceparent": b"00-abc-def-01",
            },
            data=[json.dumps(body).encode()],
        )
        self._queues.setdefault(f"{topic}/Subscriptions/{subscription}/{DLQ}", []).append(message)
        return message_id

    def dead_letter_queue(self, topic: str, subscription: str) -> list[Message]:
        return self._queues.get(f"{topic}/Subscriptions/{subscription}/{DLQ}", [])


def _sequence(message: Message) -> int:
    return message.message_annotations[b"x-opt-sequence-number"]


@pytest.fixture
async def bus():
    fake = DeadLetteringServiceBus()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
    assert not fake.errors, f"the fake broker failed: {fake.errors!r}"


@pytest.fixture
async def store(bus: DeadLetteringServiceBus):
    transport = ServiceBusTransport(connection_string=bus.connection_string(), min_receive_wait_seconds=0.3)
    try:
        yield ServiceBusDeadLetters(transport)
    finally:
        await asyncio.wait_for(transport.close(), 10)


def _poison(bus: DeadLetteringServiceBus) -> None:
    bus.dead_letter(
        "images",
        "processing",
        7,
        subject="image.uploaded",
        body={"poison": True},
        reason="MaxDeliveryCountExceeded",
        description="ValidationError: image_id missing",
    )
    bus.dead_letter(
        "images", "processing", 9, subject="image.rejected", body={"id": 1}, reason="InvalidBody", description="?"
    )
    bus.dead_letter(
        "orders",
        "search-sync",
        3,
        subject="order.completed",
        body={"order_id": "o"},
        reason="MaxDeliveryCountExceeded",
        description="boom",
    )


async def test_dead_letters_are_peeked_from_each_subscriptions_sub_queue_with_their_reason(bus, store):
    _poison(bus)

    letters = await store.list(DeadLetterQuery())

    assert [(d.id, d.message_id, d.reason) for d in letters] == [
        ("images:processing:9", "m-9", "InvalidBody"),
        ("images:processing:7", "m-7", "MaxDeliveryCountExceeded"),
        ("orders:search-sync:3", "m-3", "MaxDeliveryCountExceeded"),
    ]  # oldest enqueued first
    seven = letters[1]
    assert (seven.subject, seven.body, seven.description, seven.correlation_id) == (
        "image.uploaded",
        {"poison": True},
        "ValidationError: image_id missing",
        "corr-1",
    )
    assert seven.application_properties["traceparent"] == "00-abc-def-01"
    # Peeking locks nothing and takes nothing away.
    assert len(bus.dead_letter_queue("images", "processing")) == 2
    assert any(a.endswith(f"images/Subscriptions/processing/{DLQ}/$management") for a, _, _ in bus.mgmt_requests)

    only = await store.list(DeadLetterQuery(topic="images", reason="InvalidBody"))
    assert [d.id for d in only] == ["images:processing:9"]
    assert [d.id for d in await store.list(DeadLetterQuery(subject="order.completed"))] == ["orders:search-sync:3"]


async def test_a_replay_sends_a_copy_only_its_subscription_accepts_then_completes_the_dead_letter(bus, store):
    _poison(bus)

    letter = await store.replay(DeadLetterId("images", "processing", 7), within=None)

    assert letter is not None and letter.message_id == "m-7"
    (sent,) = bus.sent
    assert sent.address == "images"
    (copy,) = sent.messages
    assert json.loads(b"".join(copy.data)) == {"poison": True}
    assert _text(copy.properties.subject) == "image.uploaded"
    assert _text(copy.properties.message_id) != "m-7"  # else the topic's duplicate detection would drop it
    assert copy.application_properties[b"replay_to"] == b"processing"
    assert copy.application_properties[b"replay_of"] == b"m-7"
    settled = [d for d in bus.dispositions if d["address"].endswith(DLQ)]
    assert [next(iter(d["state"])) for d in settled if "accepted" in d["state"]] == ["accepted"]  # completed
    # The one it passed on the way (sequence 9, received first or not) was handed back, not settled.
    assert all(next(iter(d["state"])) in ("accepted", "modified", "released") for d in settled)


async def test_a_discard_completes_only_the_named_dead_letter_and_an_unknown_one_is_none(bus, store):
    _poison(bus)

    assert await store.discard(DeadLetterId("images", "processing", 8), within=None) is None
    letter = await store.discard(DeadLetterId("orders", "search-sync", 3), within=None)

    assert letter is not None and letter.reason == "MaxDeliveryCountExceeded"
    accepted = [d for d in bus.dispositions if "accepted" in d["state"]]
    assert [d["address"] for d in accepted] == [f"orders/Subscriptions/search-sync/{DLQ}"]
    assert bus.sent == []
