"""The dead-letter store on Azure Service Bus: each subscription's `$DeadLetterQueue` sub-queue.

List peeks (no lock, nothing changes); replay and discard receive from the sub-queue in peek-lock
until they hold the message with the wanted sequence number (every other one is abandoned at once,
so it stays where it was). Replay sends a copy to the topic carrying `replay_to` = the subscription,
which every subscription's SQL filter honours (infra/servicebus.bicep), so only that subscription
gets it again, then completes the dead-lettered original. The copy has a new message id (the
topic's duplicate detection would drop the old one inside its window); `replay_of` names the old.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage, ServiceBusReceiveMode, ServiceBusSubQueue
from azure.servicebus.aio import ServiceBusReceiver

from shared.bus.dead_letters import (
    REPLAY_OF_PROPERTY,
    REPLAY_TO_PROPERTY,
    DeadLetter,
    DeadLetterId,
    DeadLetterQuery,
    subscriptions_matching,
)
from shared.bus.servicebus_transport import ServiceBusTransport, decode_body, text

_PEEK_BATCH = 100
_RECEIVE_BATCH = 50
_RECEIVE_WAIT_SECONDS = 2.0
# A queue is searched this deep for the message to settle; an operator acts on old letters first.
_MAX_SEARCHED = 5000


class ServiceBusDeadLetters:
    def __init__(self, transport: ServiceBusTransport) -> None:
        self._transport = transport

    def _receiver(self, topic: str, subscription: str) -> ServiceBusReceiver:
        return self._transport.client.get_subscription_receiver(
            topic,
            subscription,
            sub_queue=ServiceBusSubQueue.DEAD_LETTER,
            receive_mode=ServiceBusReceiveMode.PEEK_LOCK,
        )

    async def list(self, query: DeadLetterQuery) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        for topic, subscription in subscriptions_matching(query):
            async with self._receiver(topic, subscription) as receiver:
                next_sequence = 0
                while len(found) < query.limit:
                    batch = await receiver.peek_messages(_PEEK_BATCH, sequence_number=next_sequence)
                    if not batch:
                        break
                    for message in batch:
                        next_sequence = message.sequence_number + 1
                        letter = _letter(message, topic, subscription)
                        if _matches(letter, query):
                            found.append(letter)
        found.sort(key=lambda letter: letter.enqueued_time)
        return found[: query.limit]

    async def replay(self, letter_id: DeadLetterId, *, within: asyncpg.Connection) -> DeadLetter | None:
        async with self._receiver(letter_id.topic, letter_id.subscription) as receiver:
            message = await _take(receiver, letter_id.sequence)
            if message is None:
                return None
            letter = _letter(message, letter_id.topic, letter_id.subscription)
            copy = ServiceBusMessage(
                b"".join(message.body) if not isinstance(message.body, bytes) else message.body,
                message_id=str(uuid.uuid4()),
                subject=letter.subject,
                correlation_id=letter.correlation_id,
                content_type=message.content_type,
                application_properties={
                    **letter.application_properties,
                    REPLAY_TO_PROPERTY: letter_id.subscription,
                    REPLAY_OF_PROPERTY: letter.message_id,
                },
            )
            async with self._transport.client.get_topic_sender(letter_id.topic) as sender:
                await sender.send_messages(copy)
            await receiver.complete_message(message)
            return letter

    async def discard(self, letter_id: DeadLetterId, *, within: asyncpg.Connection) -> DeadLetter | None:
        async with self._receiver(letter_id.topic, letter_id.subscription) as receiver:
            message = await _take(receiver, letter_id.sequence)
            if message is None:
                return None
            await receiver.complete_message(message)
            return _letter(message, letter_id.topic, letter_id.subscription)


async def _take(receiver: ServiceBusReceiver, sequence: int) -> ServiceBusReceivedMessage | None:
    """Lock the dead letter with this sequence number; release every other one received on the way."""
    passed: list[ServiceBusReceivedMessage] = []
    try:
        while len(passed) < _MAX_SEARCHED:
            batch = await receiver.receive_messages(_RECEIVE_BATCH, max_wait_time=_RECEIVE_WAIT_SECONDS)
            if not batch:
                return None
            for message in batch:
                if message.sequence_number == sequence:
                    passed.extend(m for m in batch if m is not message)
                    return message
            passed.extend(batch)
        return None
    finally:
        for other in passed:
            await receiver.abandon_message(other)


def _letter(message: ServiceBusReceivedMessage, topic: str, subscription: str) -> DeadLetter:
    try:
        body: dict[str, Any] = decode_body(message)
    except ValueError as exc:  # dead-lettered because it could not be read: show what can be said
        body = {"undecodable": str(exc)}
    return DeadLetter(
        id=str(DeadLetterId(topic, subscription, message.sequence_number or 0)),
        topic=topic,
        subscription=subscription,
        message_id=text(message.message_id),
        subject=text(message.subject) if message.subject is not None else "",
        body=body,
        correlation_id=text(message.correlation_id) if message.correlation_id is not None else None,
        application_properties={
            text(k): text(v) if isinstance(v, bytes) else v for k, v in (message.application_properties or {}).items()
        },
        delivery_count=message.delivery_count or 0,
        enqueued_time=message.enqueued_time_utc,
        dead_lettered_time=None,  # Service Bus does not stamp the moment of dead-lettering
        reason=message.dead_letter_reason,
        description=message.dead_letter_error_description,
    )


def _matches(letter: DeadLetter, query: DeadLetterQuery) -> bool:
    return query.subject in (None, letter.subject) and query.reason in (None, letter.reason)
