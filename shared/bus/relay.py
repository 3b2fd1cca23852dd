"""Outbox relay: publishes committed outbox rows to the bus, at least once.

Rows are leased (claimed_until) by one statement with FOR UPDATE SKIP LOCKED,
so relays in several processes never send the same row at the same time, and no
connection or row lock is held while the broker is called. A row is marked published
only after the broker accepted it; if the relay dies in between, the lease runs out,
the row is sent again and the broker's duplicate detection on message_id drops the
repeat. A row the broker refuses while its neighbours go through is poison: it backs
off on its own and is parked (failed_at, last_error) after MAX_ATTEMPTS, so it never
holds up the events behind it.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import asyncpg
import structlog
from opentelemetry import trace

from shared.bus.port import BusTransport, OutgoingMessage, error_text
from shared.config import get_settings
from shared.db import Database
from shared.telemetry import context_from, trace_headers, tracer, without_trace_headers
from shared.waiting import wait_for_any

log = structlog.get_logger()

NOTIFY_CHANNEL = "bus_outbox"

_CLAIM = """
update bus.outbox o set claimed_until = now() + make_interval(secs => $2)
where o.id in (
    select id from bus.outbox
    where published_at is null and failed_at is null and (claimed_until is null or claimed_until < now())
    order by seq
    limit $1
    for update skip locked
)
returning o.seq, o.id, o.topic, o.subject, o.correlation_id, o.body::text as body,
          o.application_properties::text as application_properties, o.scheduled_at
"""

_MARK_PUBLISHED = "update bus.outbox set published_at = now(), claimed_until = null where id = any($1::text[])"
_RELEASE = "update bus.outbox set claimed_until = null where id = any($1::text[])"
_REFUSED = """
update bus.outbox
set attempts = attempts + 1,
    last_error = $2,
    claimed_until = now() + make_interval(secs => least(300, 2 ^ (attempts + 1))),
    failed_at = case when attempts + 1 >= $3 then now() end
where id = $1
returning failed_at
"""

MAX_ATTEMPTS = 20
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
        lease_seconds: float = 60.0,
    ) -> None:
        self._db = db
        self._transport = transport
        self._batch_size = batch_size
        self._keep_published = keep_published
        self._lease_seconds = lease_seconds

    async def publish_pending(self) -> int:
        """Publish every unpublished row not leased by another relay; return how many were sent.

        When the broker refuses everything (an outage) the rows are released and the error raised,
        so the caller backs off; rows refused one by one back off and are parked on their own.
        """
        total = 0
        while True:
            claimed, sent = await self._publish_batch()
            total += sent
            if claimed < self._batch_size:
                return total

    async def _publish_batch(self) -> tuple[int, int]:
        # One statement is its own transaction: no BEGIN and COMMIT round trips around it.
        rows = sorted(await self._db.pool.fetch(_CLAIM, self._batch_size, self._lease_seconds), key=lambda r: r["seq"])
        if not rows:
            return 0, 0
        spans = [_publish_span(r) for r in rows]
        try:
            try:
                await self._transport.publish([_outgoing(r, span) for r, span in zip(rows, spans, strict=True)])
            except Exception as batch_error:
                return len(rows), await self._publish_one_by_one(rows, spans, batch_error)
        finally:
            for span in spans:
                span.end()
        await self._db.pool.execute(_MARK_PUBLISHED, [r["id"] for r in rows])
        log.debug("outbox.published", count=len(rows))
        return len(rows), len(rows)

    async def _publish_one_by_one(
        self, rows: list[asyncpg.Record], spans: list[trace.Span], batch_error: Exception
    ) -> int:
        sent: list[str] = []
        refused: list[tuple[asyncpg.Record, Exception]] = []
        for row, span in zip(rows, spans, strict=True):
            try:
                await self._transport.publish([_outgoing(row, span)])
                sent.append(row["id"])
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR)
                refused.append((row, exc))
        if sent:
            await self._db.pool.execute(_MARK_PUBLISHED, sent)
        if not sent:  # nothing goes through: the broker is down, not the rows
            await self._db.pool.execute(_RELEASE, [r["id"] for r in rows])
            raise batch_error
        for row, exc in refused:
            error = error_text(exc)
            parked = await self._db.pool.fetchval(_REFUSED, row["id"], error, MAX_ATTEMPTS)
            log.warning(
                "outbox.row_refused", message_id=row["id"], subject=row["subject"], error=error, parked=bool(parked)
            )
        return len(sent)

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
        listener: asyncpg.Connection | None = None
        next_purge = 0.0
        failures = 0
        try:
            while not stop.is_set():
                wake.clear()
                if listener is None or listener.is_closed():
                    # The database restarted (or was down at start): listen again, or commits would only
                    # be noticed by polling, up to `interval` late, for the rest of this process's life.
                    listener = await self._listen(wake)
                try:
                    await self.publish_pending()
                    if time.monotonic() >= next_purge:
                        next_purge = time.monotonic() + _PURGE_EVERY_SECONDS
                        await self.purge_published()
                    failures = 0
                except Exception as exc:  # the relay outlives any broker or database outage
                    failures += 1
                    log.warning("outbox.publish_failed", error=error_text(exc), attempt=failures, exc_info=True)
                if failures:
                    # Back off, deaf to NOTIFY: new rows must not turn an outage into a hot loop.
                    await wait_for_any(stop, timeout=min(interval * 2**failures, _MAX_BACKOFF_SECONDS))
                else:
                    await wait_for_any(stop, wake, timeout=interval)
        finally:
            if listener is not None:
                await listener.close()

    async def _listen(self, wake: asyncio.Event) -> asyncpg.Connection | None:
        try:
            conn = await self._db.connect_unpooled()
            await conn.add_listener(NOTIFY_CHANNEL, lambda *_: wake.set())
            # Losing it wakes the loop too, which listens again straight away.
            conn.add_termination_listener(lambda *_: wake.set())
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("outbox.listen_failed", error=error_text(exc))
            return None
        return conn


def _publish_span(row: asyncpg.Record) -> trace.Span:
    """The PRODUCER span of one message, a child of the span that wrote the outbox row (if it was traced)."""
    return tracer.start_span(
        f"{row['topic']} publish",
        context=context_from(json.loads(row["application_properties"])),
        kind=trace.SpanKind.PRODUCER,
        attributes={
            "messaging.system": "servicebus",
            "messaging.operation.type": "publish",
            "messaging.destination.name": row["topic"],
            "messaging.message.id": row["id"],
            "messaging.message.conversation_id": row["correlation_id"] or "",
        },
    )


def _outgoing(row: asyncpg.Record, span: trace.Span) -> OutgoingMessage:
    properties = json.loads(row["application_properties"])
    if span.get_span_context().is_valid:
        # Consumers continue from the publish span (traceparent and Service Bus's Diagnostic-Id).
        properties = {**without_trace_headers(properties), **trace_headers(trace.set_span_in_context(span))}
    return OutgoingMessage(
        message_id=row["id"],
        topic=row["topic"],
        subject=row["subject"],
        body=json.loads(row["body"]),
        correlation_id=row["correlation_id"],
        scheduled_enqueue_time=row["scheduled_at"],
        application_properties=properties,
    )
