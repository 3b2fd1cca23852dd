"""Outbox relay: publishes committed outbox rows to the bus, at least once.

Rows are claimed with FOR UPDATE SKIP LOCKED, so relays in several processes never
send the same row at the same time. A row is marked published only after the
broker accepted it; if the relay dies in between, the row is sent again and the
broker's duplicate detection on message_id drops the repeat.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import asyncpg
import structlog

from shared.bus.port import BusTransport, OutgoingMessage
from shared.config import get_settings
from shared.db import Database

log = structlog.get_logger()

NOTIFY_CHANNEL = "bus_outbox"

_CLAIM = """
select id, topic, subject, correlation_id, body::text as body,
       application_properties::text as application_properties, scheduled_at
from bus.outbox
where published_at is null
order by seq
limit $1
for update skip locked
"""

_MARK_PUBLISHED = "update bus.outbox set published_at = now() where id = any($1::text[])"

_PURGE = "delete from bus.outbox where published_at < now() - $1::interval"
_PURGE_EVERY_SECONDS = 3600.0
_MAX_BACKOFF_SECONDS = 30.0


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        transport: BusTransport,
        *,
        batch_size: int = 100,
        keep_published: timedelta = timedelta(days=7),
    ) -> None:
        self._db = db
        self._transport = transport
        self._batch_size = batch_size
        self._keep_published = keep_published

    async def publish_pending(self) -> int:
        """Publish every unpublished row not claimed by another relay; return how many were sent.

        A failed publish raises; its rows stay unpublished for the next attempt.
        """
        total = 0
        while True:
            sent = await self._publish_batch()
            total += sent
            if sent < self._batch_size:
                return total

    async def _publish_batch(self) -> int:
        async with self._db.transaction() as conn:
            rows = await conn.fetch(_CLAIM, self._batch_size)
            if not rows:
                return 0
            await self._transport.publish([_outgoing(r) for r in rows])
            await conn.execute(_MARK_PUBLISHED, [r["id"] for r in rows])
        log.debug("outbox.published", count=len(rows))
        return len(rows)

    async def purge_published(self) -> int:
        """Delete rows published longer ago than `keep_published`; return how many."""
        async with self._db.connection() as conn:
            status = await conn.execute(_PURGE, self._keep_published)
        return int(status.split()[-1])

    async def run(self, stop: asyncio.Event, interval: float | None = None) -> None:
        """Publish until `stop` is set: at once on each outbox insert (NOTIFY), else every `interval` seconds."""
        if interval is None:
            interval = get_settings().OUTBOX_RELAY_INTERVAL_MS / 1000
        wake = asyncio.Event()
        listener = await self._listen(wake)
        next_purge = 0.0
        failures = 0
        try:
            while not stop.is_set():
                wake.clear()
                try:
                    await self.publish_pending()
                    if time.monotonic() >= next_purge:
                        next_purge = time.monotonic() + _PURGE_EVERY_SECONDS
                        await self.purge_published()
                    failures = 0
                except Exception as exc:  # the relay outlives any broker or database outage
                    failures += 1
                    log.warning(
                        "outbox.publish_failed", error=f"{type(exc).__name__}: {exc}", attempt=failures, exc_info=True
                    )
                if failures:
                    # Back off, deaf to NOTIFY: new rows must not turn an outage into a hot loop.
                    await _first_of(stop, within=min(interval * 2**failures, _MAX_BACKOFF_SECONDS))
                else:
                    await _first_of(stop, wake, within=interval)
        finally:
            if listener is not None:
                await listener.close()

    async def _listen(self, wake: asyncio.Event) -> asyncpg.Connection | None:
        try:
            conn = await asyncpg.connect(self._db.dsn)
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_: wake.set())
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("outbox.listen_failed", error=f"{type(exc).__name__}: {exc}")
            return None
        return conn


async def _first_of(*events: asyncio.Event, within: float) -> None:
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()


def _outgoing(row: asyncpg.Record) -> OutgoingMessage:
    return OutgoingMessage(
        message_id=row["id"],
        topic=row["topic"],
        subject=row["subject"],
        body=json.loads(row["body"]),
        correlation_id=row["correlation_id"],
        scheduled_enqueue_time=row["scheduled_at"],
        application_properties=json.loads(row["application_properties"]),
    )
