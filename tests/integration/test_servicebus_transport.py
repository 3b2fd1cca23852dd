"""ServiceBusTransport against the real azure-servicebus SDK, checked on the AMQP wire.

No Azure here, and mocking the SDK would only test our assumptions about it.
So the real ServiceBusClient/Sender/Receiver (message encoding, batching, CBS
auth, peek-lock settlement, management requests) talks over loopback TCP to
`FakeServiceBus`, a scripted AMQP 1.0 peer that answers the way Service Bus
does. The SDK's emulator mode (`UseDevelopmentEmulator=true` in the connection
string) is what makes it speak plain AMQP to 127.0.0.1:<port>, without TLS.

The peer builds and parses frames with the SDK's own `_pyamqp` codec, so it
cannot disagree with the client about AMQP encoding; what it scripts is the
broker's side of the contract: attach replies (incl. the max batch size),
CBS put-token replies (status-code 202), accepted dispositions for sends,
deliveries with Service Bus annotations (lock token as delivery tag,
x-opt-locked-until, x-opt-enqueued-time, header delivery-count = prior
deliveries), echoed settlement outcomes, `com.microsoft:message-lock-lost`
rejections, and `com.microsoft:renew-lock` management replies.
"""

from __future__ import annotations

import asyncio
import json
import struct
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import pytest
from azure.servicebus._pyamqp._decode import decode_frame, decode_payload
from azure.servicebus._pyamqp._encode import encode_frame, encode_payload
from azure.servicebus._pyamqp.endpoints import Source, Target
from azure.servicebus._pyamqp.error import AMQPError
from azure.servicebus._pyamqp.message import Header, Message, Properties
from azure.servicebus._pyamqp.outcomes import Accepted, Modified, Rejected, Released
from azure.servicebus._pyamqp.performatives import (
    AttachFrame,
    BeginFrame,
    CloseFrame,
    DetachFrame,
    DispositionFrame,
    EndFrame,
    FlowFrame,
    OpenFrame,
    SASLMechanism,
    SASLOutcome,
    TransferFrame,
)

from shared.bus.port import MAX_DEAD_LETTER_TEXT, MessageLockLost, OutgoingMessage
from shared.bus.servicebus_transport import ServiceBusTransport

SASL_HEADER = b"AMQP\x03\x01\x00\x00"
AMQP_HEADER = b"AMQP\x00\x01\x00\x00"
BATCH_FORMAT = 0x80013700  # Service Bus batch: one AMQP message whose data sections are messages
LOCK_LOST = b"com.microsoft:message-lock-lost"

# performative codes (AMQP 1.0 part 2.7)
OPEN, BEGIN, ATTACH, FLOW, TRANSFER, DISPOSITION, DETACH, END, CLOSE = range(0x10, 0x19)
ROLE_SENDER, ROLE_RECEIVER = False, True


def _frame(cls: Any, **fields: Any) -> Any:
    """A performative with every field not given left null (pyamqp's namedtuples have no defaults)."""
    return cls(**{name: fields.get(name) for name in cls._fields})


def _entity_path(address: str) -> str:
    """'amqps://host:port/images/Subscriptions/x' -> 'images/Subscriptions/x'; '$cbs' stays."""
    return urlparse(address).path.lstrip("/") if "://" in address else address


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class Sent:
    """A message the client transferred to a topic, as the broker decoded it."""

    address: str
    message_format: int
    messages: list[Message]  # the batch unpacked; one element for a plain message


@dataclass
class _Link:
    name: bytes
    handle: int  # the client's handle; the peer reuses it as its own
    role: bool  # the client's role
    address: str
    rcv_settle_mode: int
    credit: int = 0
    delivery_count: int = 0


@dataclass
class _Session:
    channel: int
    links: dict[int, _Link] = field(default_factory=dict)
    next_outgoing_id: int = 0
    # delivery id the peer sent -> (lock token, link address), to settle dispositions
    deliveries: dict[int, tuple[uuid.UUID, str]] = field(default_factory=dict)


class FakeServiceBus:
    """A scripted Service Bus on 127.0.0.1: enough AMQP 1.0 for one SDK client."""

    def __init__(self, *, max_batch_size: int = 256 * 1024) -> None:
        self.max_batch_size = max_batch_size
        self.sent: list[Sent] = []
        self.attaches: list[tuple[bool, str, int]] = []  # (client role, address, rcv-settle-mode)
        self.cbs_tokens: list[dict[bytes, Any]] = []  # put-token requests: application properties + token
        self.dispositions: list[dict[str, Any]] = []  # settlements the client sent for deliveries
        self.mgmt_requests: list[tuple[str, dict[bytes, Any], Any]] = []
        self.lock_lost: set[uuid.UUID] = set()  # settle / renew of these tokens -> lock lost
        self.renewed_until = datetime(2030, 1, 1, tzinfo=UTC)
        self.closed_links: list[str] = []
        self.sasl_mechanisms: list[bytes] = []
        self.errors: list[BaseException] = []
        self._queues: dict[str, list[Message]] = {}
        self._server: asyncio.Server | None = None
        self.port = 0

    # -- scripting ----------------------------------------------------------------

    def enqueue(
        self,
        topic: str,
        subscription: str,
        *,
        body: bytes,
        message_id: str,
        subject: str,
        prior_deliveries: int = 0,
        correlation_id: str | None = None,
        application_properties: dict[str, Any] | None = None,
    ) -> uuid.UUID:
        """Make a message available to the subscription; returns its lock token."""
        lock_token = uuid.uuid4()
        now = datetime.now(UTC).replace(microsecond=0)
        message = Message(
            header=Header(delivery_count=prior_deliveries),
            delivery_annotations={b"x-opt-lock-token": lock_token},
            message_annotations={
                b"x-opt-enqueued-time": now - timedelta(seconds=5),
                b"x-opt-locked-until": now + timedelta(seconds=60),
                b"x-opt-sequence-number": 42,
            },
            properties=Properties(
                message_id=message_id,
                subject=subject,
                correlation_id=correlation_id,
                content_type=b"application/json",
            ),
            application_properties=application_properties,
            data=[body],
        )
        self._queues.setdefault(f"{topic}/Subscriptions/{subscription}", []).append(message)
        return lock_token

    def connection_string(self) -> str:
        return (
            f"Endpoint=sb://127.0.0.1:{self.port}/;SharedAccessKeyName=RootManageSharedAccessKey;"
            "SharedAccessKey=c2VjcmV0;UseDevelopmentEmulator=true"
        )

    # -- server -------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(self, reader, writer)
        try:
            await conn.run()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the client hung up
        except Exception as exc:  # a peer bug: surface it in the test, not as a client retry loop
            self.errors.append(exc)
        writer.close()

    def _queue_for(self, address: str) -> list[Message]:
        return self._queues.get(address, [])


class _Connection:
    def __init__(self, bus: FakeServiceBus, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.bus = bus
        self.reader = reader
        self.writer = writer
        self.sessions: dict[int, _Session] = {}
        self._partial: dict[tuple[int, int], bytearray] = {}  # multi-frame transfers in progress

    def send(self, channel: int, frame: Any, frame_type: bytes = b"\x00") -> None:
        header, body = encode_frame(frame, frame_type=frame_type)
        self.writer.write(header + struct.pack(">H", channel) + (body or b""))

    async def read_frame(self) -> tuple[int, int, list[Any]] | None:
        head = await self.reader.readexactly(8)
        size, doff, _type, channel = struct.unpack(">IBBH", head)
        body = await self.reader.readexactly(size - 8)
        body = body[doff * 4 - 8 :]
        if not body:
            return None  # empty frame: heartbeat
        code, fields = decode_frame(memoryview(body))
        return channel, code, fields

    async def run(self) -> None:
        # SASL: the SDK authenticates with ANONYMOUS here and with a CBS token below.
        assert await self.reader.readexactly(8) == SASL_HEADER
        self.writer.write(SASL_HEADER)
        self.send(0, _frame(SASLMechanism, sasl_server_mechanisms=[b"MSSBCBS", b"PLAIN", b"ANONYMOUS"]), b"\x01")
        _, _, sasl_init = await self.read_frame()
        self.bus.sasl_mechanisms.append(sasl_init[0])
        self.send(0, _frame(SASLOutcome, code=0, additional_data=None), b"\x01")
        assert await self.reader.readexactly(8) == AMQP_HEADER
        self.writer.write(AMQP_HEADER)
        while True:
            frame = await self.read_frame()
            if frame is None:
                continue
            channel, code, fields = frame
            if code == CLOSE:
                self.send(0, _frame(CloseFrame, error=None))
                await self.writer.drain()
                return
            self.handle(channel, code, fields)
            await self.writer.drain()

    def handle(self, channel: int, code: int, f: list[Any]) -> None:
        if code == OPEN:
            self.send(0, _frame(OpenFrame, container_id="fake-servicebus", max_frame_size=65536, channel_max=255))
        elif code == BEGIN:
            self.sessions[channel] = _Session(channel)
            self.send(
                channel,
                _frame(
                    BeginFrame,
                    remote_channel=channel,
                    next_outgoing_id=0,
                    incoming_window=5000,
                    outgoing_window=5000,
                    handle_max=255,
                ),
            )
        elif code == END:
            self.sessions.pop(channel, None)
            self.send(channel, _frame(EndFrame, error=None))
        elif code == ATTACH:
            self.attach(self.sessions[channel], f)
        elif code == DETACH:
            link = self.sessions[channel].links.pop(f[0], None)
            if link is not None:
                self.bus.closed_links.append(link.address)
            self.send(channel, _frame(DetachFrame, handle=f[0], closed=True, error=None))
        elif code == FLOW:
            self.flow(self.sessions[channel], f)
        elif code == TRANSFER:
            self.transfer(self.sessions[channel], f)
        elif code == DISPOSITION:
            self.disposition(self.sessions[channel], f)

    def attach(self, session: _Session, f: list[Any]) -> None:
        name, handle, role, snd_mode, rcv_mode, source, target = f[:7]
        # The client's receiver reads from the source, its sender writes to the target.
        address = _entity_path(_text((source if role == ROLE_RECEIVER else target)[0]))
        link = _Link(name=name, handle=handle, role=role, address=address, rcv_settle_mode=rcv_mode)
        session.links[handle] = link
        self.bus.attaches.append((role, address, rcv_mode))
        self.send(
            session.channel,
            _frame(
                AttachFrame,
                name=name,
                handle=handle,
                role=not role,
                send_settle_mode=snd_mode,
                rcv_settle_mode=rcv_mode,
                source=Source(address=_text(source[0])),
                target=Target(address=_text(target[0])),
                initial_delivery_count=0 if role == ROLE_RECEIVER else None,
                max_message_size=1024 * 1024,
                # Service Bus announces the batch limit separately from max-message-size.
                properties={b"com.microsoft:max-message-batch-size": self.bus.max_batch_size}
                if role == ROLE_SENDER
                else None,
            ),
        )

    def flow(self, session: _Session, f: list[Any]) -> None:
        handle, delivery_count, credit, drain = f[4], f[5], f[6], f[8]
        link = session.links.get(handle) if handle is not None else None
        if link is None or link.role != ROLE_RECEIVER:
            return
        # Credit is counted from the receiver's view of delivery-count (AMQP 2.6.7).
        link.credit = (delivery_count or 0) + (credit or 0) - link.delivery_count
        queue = self.bus._queue_for(link.address)
        while link.credit > 0 and queue:
            self.deliver(session, link, queue.pop(0))
        if drain and link.credit > 0:
            # Drained: consume the remaining credit and tell the receiver so.
            link.delivery_count += link.credit
            link.credit = 0
            self.send(
                session.channel,
                _frame(
                    FlowFrame,
                    next_incoming_id=0,
                    incoming_window=5000,
                    next_outgoing_id=session.next_outgoing_id,
                    outgoing_window=5000,
                    handle=link.handle,
                    delivery_count=link.delivery_count,
                    link_credit=0,
                    drain=True,
                ),
            )

    def deliver(self, session: _Session, link: _Link, message: Message) -> None:
        delivery_id = session.next_outgoing_id
        session.next_outgoing_id += 1
        link.credit -= 1
        link.delivery_count += 1
        lock_token = message.delivery_annotations[b"x-opt-lock-token"]
        session.deliveries[delivery_id] = (lock_token, link.address)
        payload = bytearray()
        encode_payload(payload, message)
        self.send(
            session.channel,
            _frame(
                TransferFrame,
                handle=link.handle,
                delivery_id=delivery_id,
                delivery_tag=lock_token.bytes_le,  # Service Bus: the lock token, .NET GUID byte order
                message_format=0,
                settled=False,
                more=False,
                payload=bytes(payload),
            ),
        )

    def transfer(self, session: _Session, f: list[Any]) -> None:
        handle, delivery_id, more, payload = f[0], f[1], f[5], f[11]
        key = (session.channel, handle)
        buffer = self._partial.setdefault(key, bytearray())
        buffer.extend(payload)
        if more:
            return
        del self._partial[key]
        link = session.links[handle]
        message = decode_payload(memoryview(bytes(buffer)))
        message_format = f[3]
        if not f[4]:  # unsettled: the client waits for the broker's outcome
            self.send(
                session.channel,
                _frame(DispositionFrame, role=ROLE_RECEIVER, first=delivery_id, settled=True, state=Accepted()),
            )
        if link.address == "$cbs":
            self.bus.cbs_tokens.append({**message.application_properties, b"token": message.value})
            self.reply(session, "$cbs", message, {b"status-code": 202, b"status-description": "Accepted"})
        elif link.address.endswith("$management"):
            self.management(session, link.address, message)
        else:
            inner = (
                [decode_payload(memoryview(d)) for d in message.data] if message_format == BATCH_FORMAT else [message]
            )
            self.bus.sent.append(Sent(link.address, message_format, inner))

    def management(self, session: _Session, address: str, request: Message) -> None:
        operation = request.application_properties[b"operation"]
        self.bus.mgmt_requests.append((address, dict(request.application_properties), request.value))
        if operation == b"com.microsoft:renew-lock":
            tokens = request.value[b"lock-tokens"]
            if any(t in self.bus.lock_lost for t in tokens):
                status = {
                    b"statusCode": 410,
                    b"statusDescription": "The lock supplied is invalid.",
                    b"errorCondition": LOCK_LOST,
                }
                self.reply(session, address, request, status)
            else:
                self.reply(
                    session,
                    address,
                    request,
                    {b"statusCode": 200, b"statusDescription": "OK"},
                    value={b"expirations": [self.bus.renewed_until for _ in tokens]},
                )
        else:
            self.reply(session, address, request, {b"statusCode": 501, b"statusDescription": "not scripted"})

    def reply(
        self, session: _Session, address: str, request: Message, status: dict[bytes, Any], value: Any = None
    ) -> None:
        """Answer a request/response exchange on the client's receiver link for `address`."""
        link = next(lk for lk in session.links.values() if lk.role == ROLE_RECEIVER and lk.address == address)
        response = Message(
            properties=Properties(correlation_id=request.properties.message_id),
            application_properties=status,
            value=value,
        )
        payload = bytearray()
        encode_payload(payload, response)
        delivery_id = session.next_outgoing_id
        session.next_outgoing_id += 1
        link.delivery_count += 1
        self.send(
            session.channel,
            _frame(
                TransferFrame,
                handle=link.handle,
                delivery_id=delivery_id,
                delivery_tag=struct.pack(">I", delivery_id),
                message_format=0,
                settled=True,
                more=False,
                payload=bytes(payload),
            ),
        )

    def disposition(self, session: _Session, f: list[Any]) -> None:
        role, first, last, settled, state = f[:5]
        if role != ROLE_RECEIVER:
            return
        for delivery_id in range(first, (last if last is not None else first) + 1):
            lock_token, address = session.deliveries.pop(delivery_id, (None, ""))
            self.bus.dispositions.append(
                {"lock_token": lock_token, "address": address, "settled": settled, "state": state}
            )
            if settled:
                continue  # pre-settled by the client: nothing to confirm
            # Service Bus echoes the outcome it applied; a lost lock comes back as a rejection.
            if lock_token in self.bus.lock_lost:
                outcome: Any = Rejected(
                    error=AMQPError(condition=LOCK_LOST, description="The lock supplied is invalid.")
                )
                self.send(
                    session.channel,
                    _frame(DispositionFrame, role=ROLE_SENDER, first=delivery_id, settled=True, state=outcome),
                )
            else:
                self.send(
                    session.channel,
                    _frame(DispositionFrame, role=ROLE_SENDER, first=delivery_id, settled=True, state=_echo(state)),
                )


def _echo(state: dict[str, list[Any]]) -> Any:
    """The outcome the client asked for, rebuilt from its decoded form for re-encoding."""
    ((name, fields),) = state.items()
    if name == "rejected":
        # Service Bus confirms a dead-letter with a bare `rejected`; a rejected outcome
        # carrying an error is how it reports a settlement it could not apply.
        return _frame(Rejected)
    cls = {"accepted": Accepted, "modified": Modified, "released": Released}[name]
    return _frame(cls, **dict(zip(cls._fields, fields, strict=False)))


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
async def bus():
    fake = FakeServiceBus(max_batch_size=2048)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
    assert not fake.errors, f"the fake broker failed: {fake.errors!r}"


def _transport(bus: FakeServiceBus) -> ServiceBusTransport:
    return ServiceBusTransport(connection_string=bus.connection_string(), min_receive_wait_seconds=0.3)


@pytest.fixture
async def transport(bus: FakeServiceBus):
    t = _transport(bus)
    try:
        yield t
    finally:
        await asyncio.wait_for(t.close(), 10)


def _message(n: int = 1, *, topic: str = "images", **kwargs: Any) -> OutgoingMessage:
    return OutgoingMessage(
        message_id=f"00000000-0000-0000-0000-{n:012d}",
        topic=topic,
        subject=kwargs.pop("subject", "image.uploaded"),
        body=kwargs.pop("body", {"image_id": str(uuid.UUID(int=n)), "version": 1}),
        **kwargs,
    )


# --- publish ----------------------------------------------------------------------------------


async def test_publish_puts_our_fields_on_the_wire(bus: FakeServiceBus, transport: ServiceBusTransport) -> None:
    at = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
    naive = datetime(2031, 1, 1, 12, 0, 0)
    await transport.publish(
        [
            _message(
                1,
                correlation_id="corr-1",
                scheduled_enqueue_time=at,
                application_properties={"tenant": "t1", "attempt": 2},
                body={"image_id": "abc", "note": "café", "version": 1},
            ),
            _message(2, scheduled_enqueue_time=naive),
        ]
    )

    assert len(bus.sent) == 1  # both fit one batch: one transfer
    sent = bus.sent[0]
    assert sent.address == "images"
    assert sent.message_format == BATCH_FORMAT  # sent through create_message_batch
    msg, naive_msg = sent.messages
    assert _text(msg.properties.message_id) == "00000000-0000-0000-0000-000000000001"
    assert _text(msg.properties.subject) == "image.uploaded"
    assert _text(msg.properties.correlation_id) == "corr-1"
    assert _text(msg.properties.content_type) == "application/json"
    assert json.loads(b"".join(msg.data)) == {"image_id": "abc", "note": "café", "version": 1}
    assert msg.message_annotations[b"x-opt-scheduled-enqueue-time"] == int(at.timestamp() * 1000)
    assert msg.application_properties == {b"tenant": b"t1", b"attempt": 2}
    assert naive_msg.properties.correlation_id is None and not naive_msg.application_properties
    # A naive schedule time is read as UTC (the SDK alone would take it as local time).
    assert naive_msg.message_annotations[b"x-opt-scheduled-enqueue-time"] == int(
        naive.replace(tzinfo=UTC).timestamp() * 1000
    )
    # The SDK authenticated the link with a SAS token over CBS, scoped to the topic.
    assert set(bus.sasl_mechanisms) == {b"ANONYMOUS"}
    assert any(_text(t[b"name"]).endswith("/images") for t in bus.cbs_tokens)
    assert all(_text(t[b"token"]).startswith("SharedAccessSignature sr=") for t in bus.cbs_tokens)
    assert all("skn=RootManageSharedAccessKey" in _text(t[b"token"]) for t in bus.cbs_tokens)


async def test_full_batch_is_split_and_each_topic_has_one_cached_sender(
    bus: FakeServiceBus, transport: ServiceBusTransport
) -> None:
    padding = "x" * 500  # ~600 bytes a message against the 2048-byte batch limit the peer announced
    images = [_message(n, body={"n": n, "pad": padding}) for n in range(1, 8)]
    orders = [_message(n, topic="orders", subject="order.completed") for n in range(100, 102)]
    await transport.publish([*images[:4], *orders, *images[4:]])
    await transport.publish([_message(9)])

    image_sends = [s for s in bus.sent if s.address == "images"]
    assert len(image_sends) >= 4  # 7 padded messages cannot fit in fewer 2 KiB batches, plus the second publish
    assert all(len(s.messages) <= 3 for s in image_sends)
    ids = [_text(m.properties.message_id) for s in image_sends for m in s.messages]
    assert ids == [m.message_id for m in images] + [_message(9).message_id]  # none lost, order kept
    assert [_text(m.properties.message_id) for s in bus.sent if s.address == "orders" for m in s.messages] == [
        m.message_id for m in orders
    ]
    sender_attaches = [a for a in bus.attaches if a[0] == ROLE_SENDER and a[1] in ("images", "orders")]
    assert sorted(a[1] for a in sender_attaches) == ["images", "orders"]


# --- receive and settle -----------------------------------------------------------------------


async def test_receive_maps_the_delivery(bus: FakeServiceBus, transport: ServiceBusTransport) -> None:
    token = bus.enqueue(
        "images",
        "processing",
        body=b'{"image_id":"abc","version":1}',
        message_id="m-1",
        subject="image.uploaded",
        correlation_id="corr-9",
        prior_deliveries=2,
        application_properties={"tenant": "t1"},
    )

    received = await transport.receive("images", "processing", max_messages=5, max_wait_seconds=2)

    assert len(received) == 1
    got = received[0]
    assert (got.message_id, got.topic, got.subscription, got.subject) == (
        "m-1",
        "images",
        "processing",
        "image.uploaded",
    )
    assert got.body == {"image_id": "abc", "version": 1}
    assert got.correlation_id == "corr-9"
    assert got.delivery_count == 3  # header says 2 prior deliveries; the port counts this one too
    assert got.lock_token == str(token)
    assert got.application_properties == {"tenant": "t1"}
    assert got.enqueued_time.tzinfo is not None and got.locked_until > got.enqueued_time
    assert got.locked_until > datetime.now(UTC)
    assert got.raw is not None
    # A peek-lock receiver: rcv-settle-mode second (1), on the subscription's address.
    (receiver_attach,) = [a for a in bus.attaches if a[0] == ROLE_RECEIVER and "Subscriptions" in a[1]]
    assert receiver_attach[1].endswith("images/Subscriptions/processing")
    assert receiver_attach[2] == 1


async def test_receive_with_nothing_there_returns_empty(transport: ServiceBusTransport) -> None:
    assert await transport.receive("images", "moderation", max_messages=3) == []


async def test_complete_abandon_dead_letter_send_the_service_bus_dispositions(
    bus: FakeServiceBus, transport: ServiceBusTransport
) -> None:
    tokens = [
        bus.enqueue("orders", "payouts", body=b'{"n":%d}' % n, message_id=f"m-{n}", subject="order.completed")
        for n in range(3)
    ]
    received = await transport.receive("orders", "payouts", max_messages=3, max_wait_seconds=2)
    assert [m.lock_token for m in received] == [str(t) for t in tokens]

    await transport.complete(received[0])
    await transport.abandon(received[1], error="handler failed")
    await transport.dead_letter(received[2], reason="BadEvent", description="d" * (MAX_DEAD_LETTER_TEXT + 500))

    by_token = {d["lock_token"]: d for d in bus.dispositions}
    assert all(d["settled"] is False for d in by_token.values())  # rcv-settle-mode second: wait for the echo
    assert "accepted" in by_token[tokens[0]]["state"]
    (modified,) = by_token[tokens[1]]["state"].values()
    assert modified[:2] == [True, False]  # delivery-failed (counts a delivery), not undeliverable-here
    ((condition, description, info),) = by_token[tokens[2]]["state"]["rejected"]
    assert condition == b"com.microsoft:dead-letter"
    assert info[b"DeadLetterReason"] == b"BadEvent"
    assert len(info[b"DeadLetterErrorDescription"].decode()) == MAX_DEAD_LETTER_TEXT
    assert len(description.decode()) == MAX_DEAD_LETTER_TEXT


async def test_lost_lock_on_settle_and_renew_maps_to_message_lock_lost(
    bus: FakeServiceBus, transport: ServiceBusTransport
) -> None:
    lost = bus.enqueue("images", "search-sync", body=b"{}", message_id="m-lost", subject="image.approved")
    kept = bus.enqueue("images", "search-sync", body=b"{}", message_id="m-kept", subject="image.approved")
    bus.lock_lost.add(lost)
    first, second = await transport.receive("images", "search-sync", max_messages=2, max_wait_seconds=2)

    with pytest.raises(MessageLockLost):
        await transport.complete(first)
    with pytest.raises(MessageLockLost):
        await transport.renew_lock(first)

    new_until = await transport.renew_lock(second)
    assert new_until == bus.renewed_until == second.locked_until
    address, props, body = bus.mgmt_requests[-1]
    assert address.endswith("images/Subscriptions/search-sync/$management")
    assert props[b"operation"] == b"com.microsoft:renew-lock"
    assert body[b"lock-tokens"] == [kept]
    await transport.complete(second)
    assert "accepted" in bus.dispositions[-1]["state"]


async def test_undecodable_body_is_dead_lettered_not_returned(
    bus: FakeServiceBus, transport: ServiceBusTransport
) -> None:
    bad = bus.enqueue("images", "checkout", body=b"not json", message_id="m-bad", subject="image.approved")
    assert await transport.receive("images", "checkout", max_messages=1, max_wait_seconds=2) == []
    ((condition, _desc, info),) = next(d for d in bus.dispositions if d["lock_token"] == bad)["state"]["rejected"]
    assert condition == b"com.microsoft:dead-letter"
    assert info[b"DeadLetterReason"] == b"InvalidBody"


async def test_close_detaches_every_link_and_refuses_further_use(bus: FakeServiceBus) -> None:
    transport = _transport(bus)
    await transport.publish([_message(1)])
    await transport.receive("images", "processing")
    await asyncio.wait_for(transport.close(), 10)

    assert "images" in bus.closed_links
    assert any(a.endswith("images/Subscriptions/processing") for a in bus.closed_links)
    with pytest.raises(RuntimeError, match="closed"):
        await transport.publish([_message(2)])
    await transport.close()  # idempotent
