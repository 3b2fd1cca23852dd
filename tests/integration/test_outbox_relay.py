"""Outbox + relay: an event is published if and only if its transaction committed, at least once, never twice."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

import pytest
import structlog

from shared.bus.consumer import SubscriptionConsumer
from shared.bus.events import PlatformPing
from shared.bus.inbox import claim_message
from shared.bus.outbox import add_to_outbox
from shared.bus.port import OutgoingMessage, ReceivedMessage
from shared.bus.postgres_transport import MessageCounts, PostgresTransport
from shared.bus.relay import MAX_ATTEMPTS, OutboxRelay
from shared.db import connect_database

TOPIC, SUB = "platform", "health"


class Crash(RuntimeError):
    pass


class CrashAfterPublish:
    """The broker accepts the batch, then the relay process dies before it can mark the rows."""

    def __init__(self, transport: PostgresTransport) -> None:
        self.transport = transport

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        await self.transport.publish(messages)
        raise Crash("relay died after publishing")


class BrokerDown:
    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        raise ConnectionError("broker unreachable")


class Recording:
    def __init__(self, transport: PostgresTransport) -> None:
        self.transport = transport
        self.sent: list[str] = []

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        await asyncio.sleep(0.005)  # a real broker round trip, so the relays overlap
        await self.transport.publish(messages)
        self.sent.extend(m.message_id for m in messages)


@pytest.fixture
async def bus(db):
    transport = PostgresTransport(db)
    yield transport
    await transport.close()


async def unpublished(db) -> int:
    return await db.pool.fetchval("select count(*) from bus.outbox where published_at is null")


async def test_an_outbox_row_exists_only_if_the_callers_transaction_commits(db):
    with pytest.raises(Crash):
        async with db.transaction() as conn:
            await add_to_outbox(conn, PlatformPing(nonce="rolled-back"))
            raise Crash("the state change failed")
    async with db.transaction() as conn:
        message_id = await add_to_outbox(conn, PlatformPing(nonce="kept"), correlation_id="corr-1")

    rows = await db.pool.fetch("select id, topic, subject, correlation_id, body from bus.outbox")
    assert [tuple(r) for r in rows] == [
        (message_id, "platform", "platform.ping", "corr-1", {"version": 1, "nonce": "kept"})
    ]


async def test_a_committed_row_is_published_by_a_new_relay_after_the_producer_died(database_dsn):
    producer = await connect_database(database_dsn)
    async with producer.transaction() as conn:
        message_id = await add_to_outbox(conn, PlatformPing(nonce="n-1"), correlation_id="corr-1")
    await producer.close()  # the process dies right after the commit

    db = await connect_database(database_dsn)
    bus = PostgresTransport(db)
    try:
        assert await OutboxRelay(db, bus).publish_pending() == 1
        [msg] = await bus.receive(TOPIC, SUB)
        assert (msg.message_id, msg.subject, msg.correlation_id) == (message_id, "platform.ping", "corr-1")
        assert msg.body == {"version": 1, "nonce": "n-1"}
        assert await unpublished(db) == 0
        assert await OutboxRelay(db, bus).publish_pending() == 0
    finally:
        await bus.close()
        await db.close()


async def test_a_relay_that_crashed_between_publish_and_mark_republishes_and_the_duplicate_is_dropped(db, bus):
    async with db.transaction() as conn:
        message_id = await add_to_outbox(conn, PlatformPing(nonce="n-1"))

    with pytest.raises(Crash):
        await OutboxRelay(db, CrashAfterPublish(bus)).publish_pending()
    assert await unpublished(db) == 1  # not marked: the next relay sends it again

    assert await OutboxRelay(db, bus).publish_pending() == 1
    assert await unpublished(db) == 0
    received = await bus.receive(TOPIC, SUB, max_messages=10)
    assert [m.message_id for m in received] == [message_id]


async def test_a_failed_publish_leaves_the_rows_for_the_next_attempt(db, bus):
    async with db.transaction() as conn:
        for n in range(3):
            await add_to_outbox(conn, PlatformPing(nonce=f"n-{n}"))

    with pytest.raises(ConnectionError):
        await OutboxRelay(db, BrokerDown()).publish_pending()
    assert await unpublished(db) == 3
    assert await bus.counts(TOPIC, SUB) == MessageCounts(active=0, scheduled=0, deadlettered=0)

    assert await OutboxRelay(db, bus, batch_size=2).publish_pending() == 3
    received = await bus.receive(TOPIC, SUB, max_messages=10)
    assert [m.body["nonce"] for m in received] == ["n-0", "n-1", "n-2"]  # in outbox order


async def test_two_relays_running_at_once_never_send_the_same_row(db, bus):
    async with db.transaction() as conn:
        ids = [await add_to_outbox(conn, PlatformPing(nonce=f"n-{n}")) for n in range(300)]
    first, second = Recording(bus), Recording(bus)

    counts = await asyncio.gather(
        OutboxRelay(db, first, batch_size=20).publish_pending(),
        OutboxRelay(db, second, batch_size=20).publish_pending(),
    )

    sent = Counter(first.sent + second.sent)
    assert sent == Counter(dict.fromkeys(ids, 1))
    assert sum(counts) == 300
    assert first.sent and second.sent  # they shared the work instead of queueing behind one lock


async def test_a_scheduled_event_is_published_at_once_and_held_by_the_broker(db, bus):
    async with db.transaction() as conn:
        later = await conn.fetchval("select now()") + timedelta(minutes=5)
        await add_to_outbox(conn, PlatformPing(nonce="later"), scheduled_at=later)

    assert await OutboxRelay(db, bus).publish_pending() == 1
    assert await bus.counts(TOPIC, SUB) == MessageCounts(active=0, scheduled=1, deadlettered=0)


async def test_the_correlation_id_of_the_work_in_progress_is_carried_on(db):
    async with db.transaction() as conn:
        with structlog.contextvars.bound_contextvars(correlation_id="from-request"):
            message_id = await add_to_outbox(conn, PlatformPing(nonce="n-1"))

    stored = await db.pool.fetchval("select correlation_id from bus.outbox where id = $1", message_id)
    assert stored == "from-request"


async def test_the_relay_loop_publishes_on_commit_without_waiting_for_its_poll_interval(db, bus):
    stop = asyncio.Event()
    relay = asyncio.create_task(OutboxRelay(db, bus).run(stop, interval=30))
    await asyncio.sleep(0.3)  # past the loop's first (empty) pass: it now sleeps for 30 s
    loop = asyncio.get_running_loop()
    committed_at = loop.time()
    async with db.transaction() as conn:
        message_id = await add_to_outbox(conn, PlatformPing(nonce="n-1"))

    [msg] = await bus.receive(TOPIC, SUB, max_wait_seconds=5)
    assert msg.message_id == message_id
    assert loop.time() - committed_at < 2
    stop.set()
    await asyncio.wait_for(relay, timeout=5)


async def test_a_relay_whose_listening_connection_was_cut_listens_again_and_still_publishes_on_commit(db, bus):
    stop = asyncio.Event()
    relay = asyncio.create_task(OutboxRelay(db, bus).run(stop, interval=30))
    await asyncio.sleep(0.3)
    # What a database restart does to the relay's LISTEN connection.
    cut = await db.pool.fetchval(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity "
        "where datname = current_database() and query like 'LISTEN%' and pid <> pg_backend_pid()"
    )
    assert cut == 1
    await asyncio.sleep(0.5)
    loop = asyncio.get_running_loop()
    committed_at = loop.time()
    async with db.transaction() as conn:
        message_id = await add_to_outbox(conn, PlatformPing(nonce="n-after-cut"))

    [msg] = await bus.receive(TOPIC, SUB, max_wait_seconds=5)
    assert msg.message_id == message_id
    assert loop.time() - committed_at < 2  # woken by the commit, not by its 30 s poll
    stop.set()
    await asyncio.wait_for(relay, timeout=5)


async def test_events_flow_from_outbox_to_handler_exactly_once(db, bus):
    handled: Counter[str] = Counter()

    async def handler(msg: ReceivedMessage) -> None:
        async with db.transaction() as conn:
            if await claim_message(conn, "platform", SUB, msg.message_id):
                handled[msg.body["nonce"]] += 1

    stop = asyncio.Event()
    workers = [
        asyncio.create_task(OutboxRelay(db, bus, batch_size=7).run(stop, interval=0.05)),
        asyncio.create_task(SubscriptionConsumer(bus, TOPIC, SUB, handler, receive_wait_seconds=0.1).run(stop)),
    ]
    nonces = [f"n-{n}" for n in range(50)]
    for nonce in nonces:
        async with db.transaction() as conn:
            await add_to_outbox(conn, PlatformPing(nonce=nonce))

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while sum(handled.values()) < len(nonces) and loop.time() < deadline:
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.gather(*workers)

    assert handled == Counter(dict.fromkeys(nonces, 1))
    assert await unpublished(db) == 0


class RefusesSubject:
    """A broker that accepts everything but one kind of message (e.g. one over its size limit)."""

    def __init__(self, transport: PostgresTransport, nonce: str) -> None:
        self.transport = transport
        self.nonce = nonce

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        if any(m.body.get("nonce") == self.nonce for m in messages):
            raise ValueError("message too large")
        await self.transport.publish(messages)


async def test_a_row_the_broker_refuses_does_not_hold_up_the_events_behind_it(db, bus):
    async with db.transaction() as conn:
        for nonce in ("n-0", "poison", "n-2"):
            await add_to_outbox(conn, PlatformPing(nonce=nonce))
    relay = OutboxRelay(db, RefusesSubject(bus, "poison"))

    assert await relay.publish_pending() == 2
    received = await bus.receive(TOPIC, SUB, max_messages=10)
    assert [m.body["nonce"] for m in received] == ["n-0", "n-2"]
    row = await db.pool.fetchrow(
        "select attempts, last_error, claimed_until > now() as backing_off, failed_at "
        "from bus.outbox where published_at is null"
    )
    assert (row["attempts"], row["last_error"], row["backing_off"], row["failed_at"]) == (
        1,
        "ValueError: message too large",
        True,
        None,
    )


async def test_a_row_refused_again_and_again_is_parked_with_its_error(db, bus):
    async with db.transaction() as conn:
        await add_to_outbox(conn, PlatformPing(nonce="poison"))
    relay = OutboxRelay(db, RefusesSubject(bus, "poison"))
    for attempt in range(MAX_ATTEMPTS):
        async with db.transaction() as conn:  # let the backoff run out, and give it company that goes through
            await conn.execute("update bus.outbox set claimed_until = null")
            await add_to_outbox(conn, PlatformPing(nonce=f"ok-{attempt}"))
        await relay.publish_pending()

    parked = await db.pool.fetchrow("select attempts, failed_at from bus.outbox where published_at is null")
    assert parked["attempts"] == MAX_ATTEMPTS and parked["failed_at"] is not None
    await db.pool.execute("update bus.outbox set claimed_until = null")
    assert await OutboxRelay(db, bus).publish_pending() == 0  # parked rows wait for an operator


async def test_an_event_too_large_for_the_bus_is_refused_in_the_producers_transaction(db):
    async with db.transaction() as conn:
        with pytest.raises(ValueError, match="events must stay under"):
            await add_to_outbox(conn, PlatformPing(nonce="x" * 300_000))
