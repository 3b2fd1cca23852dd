"""The local bus: Azure Service Bus topic/subscription semantics on Postgres tables (infra/sql/0002_bus.sql).

- publish fans a message out to every subscription whose subject filter matches
  (shared.bus.topology), drops a message_id already seen on the topic within the
  duplicate-detection window, and holds scheduled messages until their time;
- receive is peek-lock: each delivery gets a new lock token, the delivery count
  goes up at lock time, and a lock that expires makes the message receivable again;
- a message that has used up its deliveries is dead-lettered (MaxDeliveryCountExceeded)
  instead of being delivered again.

Every time comes from the database clock, so any number of processes agree on locks.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from shared.bus.port import (
    MessageLockLost,
    OutgoingMessage,
    ReceivedMessage,
    clip_dead_letter_text,
    error_text,
)
from shared.bus.topology import TOPICS, Subscription, Topic
from shared.db import Database

log = structlog.get_logger()

NOTIFY_CHANNEL = "bus_messages"
MAX_DELIVERY_COUNT_EXCEEDED = "MaxDeliveryCountExceeded"


@dataclass(frozen=True)
class DeadLetteredMessage:
    message_id: str
    topic: str
    subscription: str
    subject: str
    body: dict[str, Any]
    correlation_id: str | None
    application_properties: dict[str, Any]
    delivery_count: int
    enqueued_time: datetime
    dead_lettered_time: datetime
    reason: str
    description: str | None
    last_error: str | None


def dead_letter_fields(row: asyncpg.Record) -> dict[str, Any]:
    """The fields of a dead-lettered `bus.messages` row that every view of it shares (JSON columns decoded)."""
    return {
        "message_id": row["message_id"],
        "topic": row["topic"],
        "subscription": row["subscription"],
        "subject": row["subject"],
        "body": json.loads(row["body"]),
        "correlation_id": row["correlation_id"],
        "application_properties": json.loads(row["application_properties"]),
        "delivery_count": row["delivery_count"],
        "enqueued_time": row["enqueued_at"],
        "dead_lettered_time": row["dead_lettered_at"],
        "reason": row["dead_letter_reason"],
        "description": row["dead_letter_description"],
    }


@dataclass(frozen=True)
class MessageCounts:
    active: int  # receivable now or locked by a receiver
    scheduled: int  # waiting for their scheduled enqueue time
    deadlettered: int


_PUBLISH = """
with fresh as (
    insert into bus.duplicates as d (topic, message_id, first_seen, expires_at)
    select m.topic, m.message_id, now(), now() + make_interval(secs => m.window_secs)
    from unnest($1::text[], $2::text[], $3::float8[]) as m(topic, message_id, window_secs)
    on conflict (topic, message_id) do update
        set first_seen = excluded.first_seen, expires_at = excluded.expires_at
        where d.expires_at <= now()
    returning d.topic, d.message_id
),
routed as (
    insert into bus.messages
        (topic, subscription, message_id, subject, body, correlation_id, application_properties, visible_at)
    select r.topic, r.subscription, r.message_id, r.subject, r.body::jsonb, r.correlation_id,
           r.properties::jsonb, coalesce(r.scheduled_at, now())
    from unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                $11::timestamptz[]) with ordinality
        as r(topic, subscription, message_id, subject, body, correlation_id, properties, scheduled_at, ord)
    join fresh using (topic, message_id)
    order by r.ord
    returning 1
)
select (select count(*) from fresh) as fresh, (select count(*) from routed) as routed
"""

# Lock the head of the subscription; rows that already used up their deliveries (their
# locks expired, e.g. the consumer died) are dead-lettered in the same statement instead.
_RECEIVE = """
with head as (
    select seq from bus.messages
    where topic = $1 and subscription = $2 and state = 'active' and available_at <= now()
    order by available_at, seq
    limit $3
    for update skip locked
),
dead as (
    update bus.messages m
    set state = 'deadlettered', lock_token = null, locked_until = null, dead_lettered_at = now(),
        dead_letter_reason = $6,
        dead_letter_description = coalesce(
            m.last_error, format('Message could not be consumed after %s delivery attempts.', m.delivery_count))
    from head
    where m.seq = head.seq and m.delivery_count >= $4
    returning m.seq, m.message_id
),
locked as (
    update bus.messages m
    set delivery_count = m.delivery_count + 1, lock_token = gen_random_uuid(),
        locked_until = now() + make_interval(secs => $5)
    from head
    where m.seq = head.seq and m.delivery_count < $4
    returning m.*
)
select seq, message_id, subject, body::text as body, correlation_id,
       application_properties::text as application_properties, delivery_count, enqueued_at,
       lock_token, locked_until, false as dead, null::float8 as next_in
from locked
union all
select seq, message_id, null, null, null, null, null, null, null, null, true, null from dead
union all
-- Nothing receivable: one more row (no seq) says in how many seconds the next scheduled message or
-- expiring lock makes one receivable (null: none), so a waiting receiver needs no second query.
select null, null, null, null, null, null, null, null, null, null, false,
       (select extract(epoch from min(m.available_at) - now())::float8 from bus.messages m
         where m.topic = $1 and m.subscription = $2 and m.state = 'active')
where not exists (select 1 from head)
order by seq
"""

_COMPLETE = """
delete from bus.messages
where lock_token = $1 and state = 'active' and locked_until > now()
returning seq
"""

_RENEW = """
update bus.messages set locked_until = now() + make_interval(secs => $2)
where lock_token = $1 and state = 'active' and locked_until > now()
returning locked_until
"""

# At the last allowed delivery an abandon dead-letters, like Service Bus; otherwise the
# message is receivable again at once (and waiting receivers are woken).
_ABANDON = """
with settled as (
    update bus.messages
    set lock_token = null, locked_until = null, last_error = coalesce($2, last_error),
        state = case when delivery_count >= $3 then 'deadlettered' else 'active' end,
        dead_letter_reason = case when delivery_count >= $3 then $4 end,
        dead_letter_description = case when delivery_count >= $3 then coalesce($2, last_error) end,
        dead_lettered_at = case when delivery_count >= $3 then now() end
    where lock_token = $1 and state = 'active' and locked_until > now()
    returning topic, subscription, state
)
select state, pg_notify($5, topic || '/' || subscription) from settled
"""

_DEAD_LETTER = """
update bus.messages
set lock_token = null, locked_until = null, state = 'deadlettered', dead_lettered_at = now(),
    dead_letter_reason = $2, dead_letter_description = $3
where lock_token = $1 and state = 'active' and locked_until > now()
returning seq
"""

_DEAD_LETTERS = """
select message_id, topic, subscription, subject, body::text as body, correlation_id,
       application_properties::text as application_properties, delivery_count, enqueued_at,
       dead_lettered_at, dead_letter_reason, dead_letter_description, last_error
from bus.messages
where topic = $1 and subscription = $2 and state = 'deadlettered'
order by dead_lettered_at, seq
"""

_COUNTS = """
select count(*) filter (where state = 'active' and visible_at <= now()) as active,
       count(*) filter (where state = 'active' and visible_at > now()) as scheduled,
       count(*) filter (where state = 'deadlettered') as deadlettered
from bus.messages
where topic = $1 and subscription = $2
"""

# Service Bus refuses longer dead-letter reasons and descriptions.

_PURGE_DUPLICATES = "delete from bus.duplicates where expires_at <= now()"
_PURGE_EVERY_SECONDS = 60.0
# A message can look available yet be skipped (row locked by a receive in flight): don't spin.
_MIN_PAUSE_SECONDS = 0.01


class PostgresTransport:
    """BusTransport on the database behind `db`. Several instances (processes) may share one database."""

    def __init__(
        self,
        db: Database,
        *,
        topology: dict[str, Topic] = TOPICS,
        lock_duration_seconds: float | None = None,
        max_delivery_count: int | None = None,
        duplicate_detection_minutes: float | None = None,
        poll_interval_seconds: float = 1.0,
    ) -> None:
        """None for a limit means the value declared for the subscription/topic in `topology`.

        `poll_interval_seconds` bounds a waiting receive between checks when no
        notification arrives (NOTIFY wakes it at once on new or abandoned messages).
        """
        self._db = db
        self._topology = topology
        self._lock_duration = lock_duration_seconds
        self._max_delivery_count = max_delivery_count
        self._duplicate_window_minutes = duplicate_detection_minutes
        self._poll_interval = poll_interval_seconds
        self._listener: asyncpg.Connection | None = None
        self._listener_lock = asyncio.Lock()
        self._wakers: dict[str, asyncio.Event] = {}
        self._next_purge = 0.0

    # --- topology -----------------------------------------------------------------

    def _topic(self, name: str) -> Topic:
        try:
            return self._topology[name]
        except KeyError:
            raise KeyError(f"unknown topic {name!r}; declare it in shared/bus/topology.py") from None

    def _subscription(self, topic: str, subscription: str) -> Subscription:
        return self._topic(topic).subscription(subscription)

    def lock_duration(self, topic: str, subscription: str) -> float:
        if self._lock_duration is not None:
            return self._lock_duration
        return self._subscription(topic, subscription).lock_duration_seconds

    def max_delivery_count(self, topic: str, subscription: str) -> int:
        if self._max_delivery_count is not None:
            return self._max_delivery_count
        return self._subscription(topic, subscription).max_delivery_count

    def _routes(self, topic: str, subject: str) -> list[str]:
        """The subscriptions whose subject filter matches (Service Bus: sys.label IN (...))."""
        return [sub.name for sub in self._topic(topic).subscriptions if subject in sub.subjects]

    def _duplicate_window_seconds(self, topic: str) -> float:
        minutes = self._duplicate_window_minutes
        if minutes is None:
            minutes = self._topic(topic).duplicate_detection_minutes
        return minutes * 60.0

    # --- publish ------------------------------------------------------------------

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        unique = _first_of_each_id(messages)
        if not unique:
            return
        fresh = [(m.topic, m.message_id, self._duplicate_window_seconds(m.topic)) for m in unique]
        routed: list[tuple[Any, ...]] = []
        for m in unique:
            body, properties = json.dumps(m.body), json.dumps(m.application_properties)
            routed += [
                (m.topic, sub, m.message_id, m.subject, body, m.correlation_id, properties, m.scheduled_enqueue_time)
                for sub in self._routes(m.topic, m.subject)
            ]
        async with self._db.connection() as conn:
            row = await conn.fetchrow(_PUBLISH, *_columns(fresh, 3), *_columns(routed, 8))
            if time.monotonic() >= self._next_purge:
                self._next_purge = time.monotonic() + _PURGE_EVERY_SECONDS
                await conn.execute(_PURGE_DUPLICATES)
        if row["fresh"] < len(unique):
            log.debug("bus.duplicates_dropped", dropped=len(unique) - row["fresh"])

    # --- receive ------------------------------------------------------------------

    async def receive(
        self, topic: str, subscription: str, *, max_messages: int = 1, max_wait_seconds: float = 0.0
    ) -> list[ReceivedMessage]:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        lock_seconds = self.lock_duration(topic, subscription)
        max_deliveries = self.max_delivery_count(topic, subscription)
        key = f"{topic}/{subscription}"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max_wait_seconds
        while True:
            # Taken before looking, so a notification that lands while we look is not missed.
            waker = await self._waker(key) if max_wait_seconds > 0 else None
            received, next_in = await self._lock_head(topic, subscription, max_messages, max_deliveries, lock_seconds)
            remaining = deadline - loop.time()
            if received or waker is None or remaining <= 0:
                return received
            pause = min(remaining, self._poll_interval, self._poll_interval if next_in is None else next_in)
            try:
                await asyncio.wait_for(waker.wait(), timeout=max(pause, _MIN_PAUSE_SECONDS))
            except TimeoutError:
                if pause >= remaining:
                    # Waited out the whole receive with nothing notified or due: the caller's next receive
                    # looks again at once, so looking here too would only double an idle subscription's queries.
                    return []

    async def _lock_head(
        self, topic: str, subscription: str, max_messages: int, max_deliveries: int, lock_seconds: float
    ) -> tuple[list[ReceivedMessage], float | None]:
        """The messages locked, and when none: seconds until one becomes receivable (None: none waiting)."""
        while True:
            async with self._db.connection() as conn:
                rows = await conn.fetch(
                    _RECEIVE,
                    topic,
                    subscription,
                    max_messages,
                    max_deliveries,
                    float(lock_seconds),
                    MAX_DELIVERY_COUNT_EXCEEDED,
                )
            received = [_received(topic, subscription, r) for r in rows if r["seq"] is not None and not r["dead"]]
            dead = [r["message_id"] for r in rows if r["dead"]]
            next_in = next((r["next_in"] for r in rows if r["seq"] is None), None)
            for message_id in dead:
                log.warning(
                    "bus.dead_lettered",
                    topic=topic,
                    subscription=subscription,
                    message_id=message_id,
                    reason=MAX_DELIVERY_COUNT_EXCEEDED,
                    delivery_count=max_deliveries,
                )
            # Dead-lettered rows used up the batch: look again rather than report an empty queue.
            if received or not dead:
                return received, next_in

    async def _waker(self, key: str) -> asyncio.Event:
        await self._ensure_listener()
        return self._wakers.setdefault(key, asyncio.Event())

    async def _ensure_listener(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        async with self._listener_lock:
            if self._listener is not None and not self._listener.is_closed():
                return
            try:
                conn = await self._db.connect_unpooled()
                await conn.add_listener(NOTIFY_CHANNEL, self._on_notify)
            except (OSError, asyncpg.PostgresError) as exc:
                # Receivers still work without it, by polling.
                log.warning("bus.listen_failed", error=error_text(exc))
                return
            self._listener = conn

    def _on_notify(self, _conn: object, _pid: int, _channel: str, key: str) -> None:
        waker = self._wakers.pop(key, None)
        if waker is not None:
            waker.set()

    # --- settle -------------------------------------------------------------------

    async def complete(self, message: ReceivedMessage) -> None:
        async with self._db.connection() as conn:
            done = await conn.fetchval(_COMPLETE, _uuid(message.lock_token))
        if done is None:
            raise _lock_lost(message)

    async def abandon(self, message: ReceivedMessage, error: str | None = None) -> None:
        max_deliveries = self.max_delivery_count(message.topic, message.subscription)
        async with self._db.connection() as conn:
            row = await conn.fetchrow(
                _ABANDON,
                _uuid(message.lock_token),
                None if error is None else clip_dead_letter_text(error),
                max_deliveries,
                MAX_DELIVERY_COUNT_EXCEEDED,
                NOTIFY_CHANNEL,
            )
        if row is None:
            raise _lock_lost(message)
        if row["state"] == "deadlettered":
            log.warning(
                "bus.dead_lettered",
                topic=message.topic,
                subscription=message.subscription,
                message_id=message.message_id,
                reason=MAX_DELIVERY_COUNT_EXCEEDED,
                delivery_count=message.delivery_count,
                error=error,
            )

    async def dead_letter(self, message: ReceivedMessage, reason: str, description: str = "") -> None:
        async with self._db.connection() as conn:
            done = await conn.fetchval(
                _DEAD_LETTER,
                _uuid(message.lock_token),
                clip_dead_letter_text(reason),
                clip_dead_letter_text(description),
            )
        if done is None:
            raise _lock_lost(message)

    async def renew_lock(self, message: ReceivedMessage) -> datetime:
        lock_seconds = float(self.lock_duration(message.topic, message.subscription))
        async with self._db.connection() as conn:
            locked_until = await conn.fetchval(_RENEW, _uuid(message.lock_token), lock_seconds)
        if locked_until is None:
            raise _lock_lost(message)
        message.locked_until = locked_until
        return locked_until

    # --- inspection (tests, health, admin) -------------------------------------------

    async def dead_letters(self, topic: str, subscription: str) -> list[DeadLetteredMessage]:
        self._subscription(topic, subscription)
        async with self._db.connection() as conn:
            rows = await conn.fetch(_DEAD_LETTERS, topic, subscription)
        return [DeadLetteredMessage(**dead_letter_fields(r), last_error=r["last_error"]) for r in rows]

    async def counts(self, topic: str, subscription: str) -> MessageCounts:
        self._subscription(topic, subscription)
        async with self._db.connection() as conn:
            row = await conn.fetchrow(_COUNTS, topic, subscription)
        return MessageCounts(active=row["active"], scheduled=row["scheduled"], deadlettered=row["deadlettered"])

    async def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None and not listener.is_closed():
            await listener.close()
        for waker in self._wakers.values():
            waker.set()
        self._wakers.clear()


def _first_of_each_id(messages: Sequence[OutgoingMessage]) -> list[OutgoingMessage]:
    # A repeat inside one batch is a duplicate too (and one statement may not upsert a key twice).
    seen: set[tuple[str, str]] = set()
    unique = []
    for m in messages:
        if (m.topic, m.message_id) not in seen:
            seen.add((m.topic, m.message_id))
            unique.append(m)
    return unique


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows to column arrays, the shape unnest() takes."""
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def _received(topic: str, subscription: str, row: asyncpg.Record) -> ReceivedMessage:
    return ReceivedMessage(
        message_id=row["message_id"],
        topic=topic,
        subscription=subscription,
        subject=row["subject"],
        body=json.loads(row["body"]),
        correlation_id=row["correlation_id"],
        delivery_count=row["delivery_count"],
        enqueued_time=row["enqueued_at"],
        locked_until=row["locked_until"],
        lock_token=str(row["lock_token"]),
        application_properties=json.loads(row["application_properties"]),
        raw=row["seq"],  # the sequence number, for logs
    )


def _uuid(lock_token: str) -> uuid.UUID | None:
    """The token as a UUID; a malformed one matches no lock (None never equals a token)."""
    try:
        return uuid.UUID(lock_token)
    except (TypeError, ValueError):
        return None


def _lock_lost(message: ReceivedMessage) -> MessageLockLost:
    return MessageLockLost(
        f"lock on message {message.message_id} ({message.topic}/{message.subscription}) "
        "expired or was taken by another receiver"
    )
