"""The local bus behaves like Azure Service Bus: peek-lock, delivery count, dead-letter, duplicates, filters."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest

from shared.bus.consumer import SubscriptionConsumer, process_one
from shared.bus.inbox import claim_message
from shared.bus.port import MessageLockLost, OutgoingMessage, ReceivedMessage
from shared.bus.postgres_transport import MessageCounts, PostgresTransport
from shared.bus.topology import Subscription, Topic

TOPIC, SUB = "platform", "health"


def ping(message_id: str, **extra) -> OutgoingMessage:
    return OutgoingMessage(
        message_id=message_id, topic=TOPIC, subject="platform.ping", body={"version": 1, "nonce": message_id}, **extra
    )


async def wait_until(condition: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(0.02)


@pytest.fixture
async def make_transport(db):
    made: list[PostgresTransport] = []

    def make(**options) -> PostgresTransport:
        made.append(PostgresTransport(db, **options))
        return made[-1]

    yield make
    for transport in made:
        await transport.close()


@pytest.fixture
async def bus(make_transport) -> PostgresTransport:
    return make_transport()


async def test_a_received_message_carries_what_was_published(bus):
    await bus.publish([ping("m-1", correlation_id="corr-1", application_properties={"source": "test"})])

    [msg] = await bus.receive(TOPIC, SUB)

    assert (msg.message_id, msg.subject, msg.body) == ("m-1", "platform.ping", {"version": 1, "nonce": "m-1"})
    assert (msg.correlation_id, msg.application_properties) == ("corr-1", {"source": "test"})
    assert (msg.topic, msg.subscription, msg.delivery_count) == (TOPIC, SUB, 1)
    assert msg.locked_until > msg.enqueued_time


async def test_a_message_whose_handler_always_fails_is_dead_lettered_after_exactly_ten_deliveries(bus):
    await bus.publish([ping("m-1")])
    deliveries: list[int] = []

    async def handler(msg: ReceivedMessage) -> None:
        deliveries.append(msg.delivery_count)
        raise ValueError("renditions store unavailable")

    stop = asyncio.Event()
    consumer = asyncio.create_task(SubscriptionConsumer(bus, TOPIC, SUB, handler, receive_wait_seconds=0.1).run(stop))
    await wait_until(lambda: _dead_lettered(bus, 1))
    await asyncio.sleep(0.2)  # a delivery after dead-lettering would show up here
    stop.set()
    await consumer

    assert deliveries == list(range(1, 11))
    [dead] = await bus.dead_letters(TOPIC, SUB)
    assert (dead.message_id, dead.delivery_count) == ("m-1", 10)
    assert dead.reason == "MaxDeliveryCountExceeded"
    assert dead.description == "ValueError: renditions store unavailable"
    assert await bus.counts(TOPIC, SUB) == MessageCounts(active=0, scheduled=0, deadlettered=1)


async def test_a_consumer_that_dies_before_completing_gets_the_message_again_and_the_inbox_prevents_a_second_effect(
    db, make_transport
):
    bus = make_transport(lock_duration_seconds=1.5)
    async with db.transaction() as conn:
        await conn.execute("create table platform.test_effects (message_id text, delivery_count int)")

    async def handler(msg: ReceivedMessage) -> None:
        async with db.transaction() as conn:
            if await claim_message(conn, "platform", SUB, msg.message_id):
                await conn.execute(
                    "insert into platform.test_effects values ($1, $2)", msg.message_id, msg.delivery_count
                )

    await bus.publish([ping("m-1")])
    [first] = await bus.receive(TOPIC, SUB)
    await handler(first)  # the effect commits, then the process dies: the message is never settled
    assert await bus.receive(TOPIC, SUB) == []  # still locked by the dead consumer

    [second] = await bus.receive(TOPIC, SUB, max_wait_seconds=5)
    assert (second.message_id, second.delivery_count) == ("m-1", 2)
    assert second.lock_token != first.lock_token
    assert await process_one(bus, second, handler) is True

    effects = await db.pool.fetch("select message_id, delivery_count from platform.test_effects")
    assert [tuple(r) for r in effects] == [("m-1", 1)]
    assert await bus.counts(TOPIC, SUB) == MessageCounts(active=0, scheduled=0, deadlettered=0)


async def test_many_concurrent_receivers_never_hold_the_same_message_at_once(bus):
    ids = [f"m-{i}" for i in range(200)]
    await bus.publish([ping(i) for i in ids])
    held: set[str] = set()
    overlaps: list[str] = []
    handled: list[str] = []

    async def receiver(batch_size: int) -> None:
        while batch := await bus.receive(TOPIC, SUB, max_messages=batch_size):
            for msg in batch:
                if msg.message_id in held:
                    overlaps.append(msg.message_id)
                held.add(msg.message_id)
            await asyncio.sleep(0.001)  # hold the locks while the others receive
            for msg in batch:
                await bus.complete(msg)
                held.discard(msg.message_id)  # only after it is gone, so `held` never under-reports
                handled.append(msg.message_id)

    await asyncio.gather(*(receiver(batch_size=1 + n % 4) for n in range(8)))

    assert overlaps == []
    assert sorted(handled) == sorted(ids)  # each exactly once
    assert await bus.counts(TOPIC, SUB) == MessageCounts(active=0, scheduled=0, deadlettered=0)


async def test_two_consumers_on_one_subscription_handle_each_message_exactly_once(make_transport):
    # Two transports on one database: two processes, as two Function app instances would be.
    first, second = make_transport(), make_transport()
    ids = [f"m-{i}" for i in range(200)]
    await first.publish([ping(i) for i in ids])
    in_progress: set[str] = set()
    overlaps: list[str] = []
    handled: Counter[str] = Counter()

    async def handler(msg: ReceivedMessage) -> None:
        if msg.message_id in in_progress:
            overlaps.append(msg.message_id)
        in_progress.add(msg.message_id)
        await asyncio.sleep(0.001)
        in_progress.discard(msg.message_id)
        handled[msg.message_id] += 1

    stop = asyncio.Event()
    consumers = [
        SubscriptionConsumer(t, TOPIC, SUB, handler, max_concurrent=4, receive_wait_seconds=0.1)
        for t in (first, second)
    ]
    running = [asyncio.create_task(c.run(stop)) for c in consumers]
    await wait_until(lambda: _is_empty(first))
    stop.set()
    await asyncio.gather(*running)

    assert overlaps == []
    assert handled == Counter(dict.fromkeys(ids, 1))


async def test_the_same_message_id_published_twice_is_delivered_once(bus):
    await bus.publish([ping("m-1")])
    await bus.publish([ping("m-1"), ping("m-1"), ping("m-2")])

    received = await bus.receive(TOPIC, SUB, max_messages=10)
    assert [m.message_id for m in received] == ["m-1", "m-2"]
    for msg in received:
        await bus.complete(msg)

    await bus.publish([ping("m-1")])  # consumed already, but still inside the detection window
    assert await bus.receive(TOPIC, SUB) == []


async def test_a_message_id_is_accepted_again_after_the_duplicate_detection_window(make_transport):
    bus = make_transport(duplicate_detection_minutes=1 / 60)
    await bus.publish([ping("m-1")])
    await asyncio.sleep(1.1)
    await bus.publish([ping("m-1")])

    received = await bus.receive(TOPIC, SUB, max_messages=10)
    assert [m.message_id for m in received] == ["m-1", "m-1"]


async def test_a_scheduled_message_is_not_delivered_before_its_time(db, bus):
    enqueue_at = await db.pool.fetchval("select now()") + timedelta(seconds=1.5)
    await bus.publish([ping("later", scheduled_enqueue_time=enqueue_at)])

    assert await bus.receive(TOPIC, SUB) == []
    assert await bus.counts(TOPIC, SUB) == MessageCounts(active=0, scheduled=1, deadlettered=0)

    [msg] = await bus.receive(TOPIC, SUB, max_wait_seconds=5)
    locked_at = msg.locked_until - timedelta(seconds=bus.lock_duration(TOPIC, SUB))  # database clock
    assert locked_at >= enqueue_at


async def test_subject_filters_route_only_matching_subjects(make_transport):
    topology = {
        "t": Topic(
            "t",
            (
                Subscription("only-x", ("x",)),
                Subscription("x-and-y", ("x", "y")),
                Subscription("only-z", ("z",)),
            ),
        )
    }
    bus = make_transport(topology=topology)
    await bus.publish(
        [OutgoingMessage(message_id=subject, topic="t", subject=subject, body={}) for subject in ("x", "y", "w")]
    )

    routed = {
        name: [m.message_id for m in await bus.receive("t", name, max_messages=10)]
        for name in ("only-x", "x-and-y", "only-z")
    }
    assert routed == {"only-x": ["x"], "x-and-y": ["x", "y"], "only-z": []}

    with pytest.raises(KeyError, match="unknown topic"):
        await bus.publish([OutgoingMessage(message_id="m", topic="nope", subject="x", body={})])


async def test_lock_renewal_keeps_a_message_from_being_redelivered_past_the_lock_duration(make_transport):
    bus, other_receiver = make_transport(lock_duration_seconds=1), make_transport(lock_duration_seconds=1)
    await bus.publish([ping("slow")])
    [msg] = await bus.receive(TOPIC, SUB)
    stolen: list[ReceivedMessage] = []

    async def slow_handler(_msg: ReceivedMessage) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + 2.5  # two and a half lock durations
        while loop.time() < until:
            stolen.extend(await other_receiver.receive(TOPIC, SUB, max_wait_seconds=0.25))

    assert await process_one(bus, msg, slow_handler, renew_every=0.25) is True
    assert stolen == []
    assert await bus.counts(TOPIC, SUB) == MessageCounts(active=0, scheduled=0, deadlettered=0)


async def test_settling_with_a_stale_lock_raises_message_lock_lost(make_transport):
    bus = make_transport(lock_duration_seconds=1)
    await bus.publish([ping("m-1")])
    [stale] = await bus.receive(TOPIC, SUB)
    await asyncio.sleep(1.1)

    for settle in (bus.complete, bus.abandon, bus.renew_lock):
        with pytest.raises(MessageLockLost):
            await settle(stale)

    [current] = await bus.receive(TOPIC, SUB)
    assert current.delivery_count == 2
    with pytest.raises(MessageLockLost):  # the lock now belongs to another delivery
        await bus.complete(stale)
    await bus.complete(current)
    assert await bus.counts(TOPIC, SUB) == MessageCounts(active=0, scheduled=0, deadlettered=0)


async def test_an_abandoned_message_is_redelivered_at_once_with_its_delivery_counted(bus):
    await bus.publish([ping("m-1")])
    [first] = await bus.receive(TOPIC, SUB)
    await bus.abandon(first, "TimeoutError: try later")

    [again] = await bus.receive(TOPIC, SUB)
    assert (again.message_id, again.delivery_count) == ("m-1", 2)


async def test_a_message_whose_locks_keep_expiring_is_dead_lettered_instead_of_delivered(make_transport):
    bus = make_transport(lock_duration_seconds=0.3, max_delivery_count=2)
    await bus.publish([ping("m-1")])
    deliveries = [await bus.receive(TOPIC, SUB, max_wait_seconds=2) for _ in range(2)]
    assert [d.delivery_count for [d] in deliveries] == [1, 2]

    await asyncio.sleep(0.4)
    assert await bus.receive(TOPIC, SUB) == []
    [dead] = await bus.dead_letters(TOPIC, SUB)
    assert (dead.reason, dead.delivery_count) == ("MaxDeliveryCountExceeded", 2)
    assert dead.description == "Message could not be consumed after 2 delivery attempts."


async def test_dead_letter_moves_the_message_aside_with_its_reason(bus):
    await bus.publish([ping("poison")])
    [msg] = await bus.receive(TOPIC, SUB)
    await bus.dead_letter(msg, "SchemaMismatch", "version 9 is unknown")

    assert await bus.receive(TOPIC, SUB) == []
    [dead] = await bus.dead_letters(TOPIC, SUB)
    assert (dead.message_id, dead.reason, dead.description) == ("poison", "SchemaMismatch", "version 9 is unknown")
    assert dead.body == {"version": 1, "nonce": "poison"}


async def test_a_waiting_receiver_wakes_as_soon_as_a_message_is_published(make_transport):
    # Polling alone would take 5 s here: only the NOTIFY can deliver it sooner.
    bus = make_transport(poll_interval_seconds=5)
    loop = asyncio.get_running_loop()
    waiting = asyncio.create_task(bus.receive(TOPIC, SUB, max_wait_seconds=5))
    await asyncio.sleep(0.3)  # the receiver is now asleep on an empty subscription
    published_at = loop.time()
    await bus.publish([ping("m-1")])

    [msg] = await waiting
    assert msg.message_id == "m-1"
    assert loop.time() - published_at < 1.0


async def test_the_inbox_claims_a_message_once_per_subscription(db):
    async with db.transaction() as conn:
        assert await claim_message(conn, "payouts", "payouts", "m-1") is True
        assert await claim_message(conn, "payouts", "payouts", "m-1") is False
        assert await claim_message(conn, "payouts", "other", "m-1") is True
    with pytest.raises(ValueError, match="no inbox"):
        async with db.transaction() as conn:
            await claim_message(conn, "payouts; drop table x", "s", "m-1")


async def _dead_lettered(bus: PostgresTransport, n: int) -> bool:
    return (await bus.counts(TOPIC, SUB)).deadlettered == n


async def _is_empty(bus: PostgresTransport) -> bool:
    return await bus.counts(TOPIC, SUB) == MessageCounts(active=0, scheduled=0, deadlettered=0)


async def test_a_waiting_receiver_takes_a_scheduled_message_when_due_without_polling_for_it(db, make_transport):
    # Polling alone would find it only after 10 s: the empty look itself says when it becomes due.
    bus = make_transport(poll_interval_seconds=10)
    enqueue_at = await db.pool.fetchval("select now()") + timedelta(seconds=0.5)
    await bus.publish([ping("soon", scheduled_enqueue_time=enqueue_at)])
    loop = asyncio.get_running_loop()
    started = loop.time()

    [msg] = await bus.receive(TOPIC, SUB, max_wait_seconds=8)

    assert msg.message_id == "soon"
    assert loop.time() - started < 5


async def test_an_idle_subscription_costs_one_statement_per_look(db, make_transport):
    statements = []

    class Counting:
        pool = db.pool
        connect_unpooled = db.connect_unpooled

        @contextlib.asynccontextmanager
        async def connection(self):
            async with db.connection() as conn:
                statements.append(1)
                yield conn

    bus = PostgresTransport(Counting(), poll_interval_seconds=0.25)
    try:
        assert await bus.receive(TOPIC, SUB, max_wait_seconds=1.0) == []
    finally:
        await bus.close()

    # Looks at 0, 0.25, 0.5 and 0.75 s (fewer on a busy machine), each one statement; at 1 s the wait is
    # over and the caller's next receive looks again.
    assert 1 <= len(statements) <= 4
