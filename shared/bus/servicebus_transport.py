"""BusTransport on Azure Service Bus topics (azure-servicebus, async, pure-python AMQP stack).

The broker does what the local Postgres transport emulates: duplicate detection
on message_id (`requiresDuplicateDetection` on each topic), subject routing
(a SQL filter per subscription), peek-lock, delivery counting and
dead-lettering at `maxDeliveryCount`. So this adapter only maps our port's
types onto the SDK's and keeps one AMQP link per topic / subscription alive:
opening a link costs a CBS token exchange and an attach round trip, far more
than a send.

Entities are created by `infra/servicebus.bicep` from `shared.bus.topology`,
never by this code: the app's identity only holds Data Sender/Receiver roles.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage, ServiceBusReceiveMode
from azure.servicebus.aio import ServiceBusClient, ServiceBusReceiver, ServiceBusSender
from azure.servicebus.exceptions import (
    MessageLockLostError,
    MessageSizeExceededError,
    ServiceBusError,
    SessionLockLostError,
)

from shared.bus.port import (
    MessageLockLost,
    OutgoingMessage,
    ReceivedMessage,
    clip_dead_letter_text,
)

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

    from shared.config import Settings

_LOG = logging.getLogger(__name__)

# The SDK refuses max_wait_time <= 0, and a receive is a network round trip
# anyway: "don't wait" (max_wait_seconds=0) becomes this short poll.
DEFAULT_MIN_RECEIVE_WAIT_SECONDS = 0.5

# Error conditions the broker uses for a lost or expired lock (mgmt-link replies
# and rejected dispositions carry them even where the SDK's mapping does not).
_LOCK_LOST_CONDITIONS = frozenset({"com.microsoft:message-lock-lost", "com.microsoft:session-lock-lost"})

_JSON = "application/json"


class ServiceBusTransport:
    """BusTransport implemented with `azure.servicebus.aio`.

    Build it with a connection string (`Endpoint=sb://...`; the Service Bus
    emulator's `UseDevelopmentEmulator=true` strings work too) or with a fully
    qualified namespace and an async token credential (managed identity in
    Azure; `DefaultAzureCredential` when none is given).
    """

    def __init__(
        self,
        *,
        connection_string: str | None = None,
        fully_qualified_namespace: str | None = None,
        credential: AsyncTokenCredential | None = None,
        min_receive_wait_seconds: float = DEFAULT_MIN_RECEIVE_WAIT_SECONDS,
        **client_kwargs: Any,
    ) -> None:
        if min_receive_wait_seconds <= 0:
            raise ValueError("min_receive_wait_seconds must be > 0 (the SDK refuses a zero wait)")
        self._owned_credential: Any = None
        if connection_string:
            self._client = ServiceBusClient.from_connection_string(connection_string, **client_kwargs)
        elif fully_qualified_namespace:
            if credential is None:
                # Imported here so the connection-string path (local emulator, tests)
                # does not pay for azure.identity's import.
                from azure.identity.aio import DefaultAzureCredential

                credential = self._owned_credential = DefaultAzureCredential()
            self._client = ServiceBusClient(fully_qualified_namespace, credential, **client_kwargs)
        else:
            raise ValueError("ServiceBusTransport needs connection_string or fully_qualified_namespace")
        self._min_wait = min_receive_wait_seconds
        self._senders: dict[str, ServiceBusSender] = {}
        self._receivers: dict[tuple[str, str], ServiceBusReceiver] = {}
        # One lock per link: the SDK's async sender/receiver are not safe for
        # concurrent use (azure-sdk-for-python#35618: racing opens), and a receiver's
        # receive and settle calls share one AMQP connection loop. So calls on one
        # link are serialised (a settle waits for an in-flight receive, at most its
        # max wait); different links run concurrently.
        self._locks: dict[tuple[str, ...], asyncio.Lock] = {}
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> ServiceBusTransport:
        """SERVICEBUS_CONNECTION wins; otherwise managed identity on SERVICEBUS_NAMESPACE."""
        if settings.SERVICEBUS_CONNECTION:
            return cls(connection_string=settings.SERVICEBUS_CONNECTION, **kwargs)
        if settings.SERVICEBUS_NAMESPACE:
            return cls(fully_qualified_namespace=settings.SERVICEBUS_NAMESPACE, **kwargs)
        raise ValueError("set SERVICEBUS_CONNECTION or ServiceBusConnection__fullyQualifiedNamespace")

    @property
    def client(self) -> ServiceBusClient:
        """The SDK client, for the dead-letter store (shared.bus.servicebus_dead_letters)."""
        return self._client

    # --- links ----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("ServiceBusTransport is closed")

    def _lock(self, *key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def _sender(self, topic: str) -> ServiceBusSender:
        sender = self._senders.get(topic)
        if sender is None:
            sender = self._client.get_topic_sender(topic)
            # Open now, with the SDK's own retry: create_message_batch needs the
            # link's negotiated max message/batch size.
            await sender.__aenter__()
            self._senders[topic] = sender
        return sender

    async def _receiver(self, topic: str, subscription: str) -> ServiceBusReceiver:
        key = (topic, subscription)
        receiver = self._receivers.get(key)
        if receiver is None:
            receiver = self._client.get_subscription_receiver(
                topic, subscription, receive_mode=ServiceBusReceiveMode.PEEK_LOCK
            )
            # Open up front: receive_messages bounds link opening by its (short)
            # wait, so a first receive with a small wait could time out mid-attach.
            await receiver.__aenter__()
            self._receivers[key] = receiver
        return receiver

    @asynccontextmanager
    async def _settling(
        self, message: ReceivedMessage
    ) -> AsyncIterator[tuple[ServiceBusReceiver, ServiceBusReceivedMessage]]:
        """The receiver that took `message`, under its link lock; SDK lock-lost errors -> MessageLockLost."""
        async with self._lock("receive", message.topic, message.subscription):
            # Settlement must go through the link that received the message: the lock
            # token is only valid there (and on that entity's management link).
            receiver = self._receivers.get((message.topic, message.subscription))
            if receiver is None or not isinstance(message.raw, ServiceBusReceivedMessage):
                raise MessageLockLost(
                    f"message {message.message_id} was not received by this transport's "
                    f"{message.topic}/{message.subscription} receiver (closed or foreign); its lock is unusable"
                )
            try:
                yield receiver, message.raw
            except ServiceBusError as exc:
                if not _is_lock_lost(exc):
                    raise
                m = message
                raise MessageLockLost(f"lock on {m.message_id} ({m.topic}/{m.subscription}) was lost: {exc}") from exc

    # --- BusTransport -----------------------------------------------------------------

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        self._check_open()
        by_topic: dict[str, list[OutgoingMessage]] = {}
        for message in messages:
            by_topic.setdefault(message.topic, []).append(message)
        # One batch per transfer, split when full. If a later batch fails after an
        # earlier one went out, the caller (the outbox relay) re-publishes them all
        # and the topic's duplicate detection drops the repeats by message_id.
        for topic, group in by_topic.items():
            async with self._lock("send", topic):
                sender = await self._sender(topic)
                batch = await sender.create_message_batch()
                for message in group:
                    sb_message = _to_servicebus_message(message)
                    try:
                        batch.add_message(sb_message)
                    except MessageSizeExceededError:
                        if len(batch) == 0:
                            raise  # one message alone exceeds the entity's limit: nothing to split
                        await sender.send_messages(batch)
                        batch = await sender.create_message_batch()
                        batch.add_message(sb_message)
                if len(batch):
                    await sender.send_messages(batch)

    async def receive(
        self, topic: str, subscription: str, *, max_messages: int = 1, max_wait_seconds: float = 0.0
    ) -> list[ReceivedMessage]:
        self._check_open()
        out: list[ReceivedMessage] = []
        async with self._lock("receive", topic, subscription):
            receiver = await self._receiver(topic, subscription)
            received = await receiver.receive_messages(
                max_message_count=max_messages, max_wait_time=max(max_wait_seconds, self._min_wait)
            )
            for sb_message in received:
                try:
                    body = decode_body(sb_message)
                except ValueError as exc:
                    # A body no handler can parse would be redelivered until maxDeliveryCount
                    # for nothing; park it in the dead-letter queue now, with the reason.
                    _LOG.warning(
                        "dead-lettering undecodable message %s on %s/%s: %s",
                        sb_message.message_id,
                        topic,
                        subscription,
                        exc,
                    )
                    await receiver.dead_letter_message(
                        sb_message, reason="InvalidBody", error_description=clip_dead_letter_text(str(exc))
                    )
                    continue
                out.append(_to_received_message(sb_message, topic, subscription, body))
        return out

    async def complete(self, message: ReceivedMessage) -> None:
        async with self._settling(message) as (receiver, raw):
            await receiver.complete_message(raw)

    async def abandon(self, message: ReceivedMessage, error: str | None = None) -> None:
        # Service Bus keeps no reason on abandon (only properties_to_modify, which we
        # do not use); the error is logged so the redelivery has a visible cause.
        if error:
            _LOG.info("abandoning %s on %s/%s: %s", message.message_id, message.topic, message.subscription, error)
        async with self._settling(message) as (receiver, raw):
            await receiver.abandon_message(raw)

    async def dead_letter(self, message: ReceivedMessage, reason: str, description: str = "") -> None:
        async with self._settling(message) as (receiver, raw):
            await receiver.dead_letter_message(
                raw, reason=clip_dead_letter_text(reason), error_description=clip_dead_letter_text(description)
            )

    async def renew_lock(self, message: ReceivedMessage) -> datetime:
        async with self._settling(message) as (receiver, raw):
            locked_until = await receiver.renew_message_lock(raw)
        message.locked_until = locked_until
        return locked_until

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Closing a link waits for its drain and keep-alive task (up to ~1 s each),
        # so links close concurrently. Best effort: one broken link must not keep
        # the others, or the client, open.
        links: list[Any] = [*self._receivers.values(), *self._senders.values()]
        self._receivers.clear()
        self._senders.clear()
        results = await asyncio.gather(*(link.close() for link in links), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                _LOG.warning("closing a Service Bus link failed: %r", result)
        await self._client.close()
        if self._owned_credential is not None:
            await self._owned_credential.close()


# --- mapping ------------------------------------------------------------------------------


def _to_servicebus_message(message: OutgoingMessage) -> ServiceBusMessage:
    scheduled = message.scheduled_enqueue_time
    if scheduled is not None and scheduled.tzinfo is None:
        # The SDK would read a naive datetime as local time; the app's clock is UTC.
        scheduled = scheduled.replace(tzinfo=UTC)
    return ServiceBusMessage(
        json.dumps(message.body, separators=(",", ":"), ensure_ascii=False).encode("utf-8"),
        message_id=message.message_id,
        subject=message.subject,
        correlation_id=message.correlation_id,
        content_type=_JSON,
        application_properties=dict(message.application_properties) or None,
        scheduled_enqueue_time_utc=scheduled,
    )


def decode_body(sb_message: ServiceBusReceivedMessage) -> dict[str, Any]:
    body: Any = sb_message.body
    if isinstance(body, dict):  # an AMQP value body (another producer); already structured
        decoded: Any = {text(k): v for k, v in body.items()}
    else:
        raw = body if isinstance(body, bytes | str) else b"".join(body)  # data sections
        try:
            decoded = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"body is not JSON: {exc}") from exc
    if not isinstance(decoded, dict):
        raise ValueError(f"body is JSON {type(decoded).__name__}, expected an object")
    return decoded


def _to_received_message(
    sb_message: ServiceBusReceivedMessage, topic: str, subscription: str, body: dict[str, Any]
) -> ReceivedMessage:
    now = datetime.now(UTC)
    return ReceivedMessage(
        message_id=text(sb_message.message_id),
        topic=topic,
        subscription=subscription,
        subject=text(sb_message.subject) if sb_message.subject is not None else "",
        body=body,
        correlation_id=text(sb_message.correlation_id) if sb_message.correlation_id is not None else None,
        # The broker puts "prior deliveries" in the AMQP header (0 on the first one);
        # the port counts deliveries including this one, as Service Bus's own
        # DeliveryCount and the .NET/Java SDKs do.
        delivery_count=(sb_message.delivery_count or 0) + 1,
        enqueued_time=sb_message.enqueued_time_utc or now,
        locked_until=sb_message.locked_until_utc or now,
        lock_token=str(sb_message.lock_token),
        application_properties={
            text(k): text(v) if isinstance(v, bytes) else v
            for k, v in (sb_message.application_properties or {}).items()
        },
        raw=sb_message,
    )


def text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _is_lock_lost(exc: BaseException) -> bool:
    if isinstance(exc, MessageLockLostError | SessionLockLostError):
        return True
    if isinstance(exc, ServiceBusError):
        condition = getattr(exc, "_condition", None)
        return str(condition) in _LOCK_LOST_CONDITIONS
    return False
