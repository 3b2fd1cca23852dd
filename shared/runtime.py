"""The per-process container of adapters that handlers receive (db, bus, storage).

Built once per worker process on first use (the Azure Python worker runs every
async function on one event loop); devhost builds it before serving. Trigger
functions call `await get_runtime()` and hand the ports to plain handlers, so
handlers never construct adapters or read settings themselves.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import structlog

from shared.bus.dead_letters import DeadLetterStore, PostgresDeadLetters
from shared.bus.port import BusTransport
from shared.bus.relay import OutboxRelay
from shared.config import Settings, get_settings
from shared.db import Database, connect_database
from shared.db.embedded import EmbeddedPostgres
from shared.db.entra import database_password
from shared.db.migrate import migrate
from shared.storage.azure_blob import AzureBlobStore
from shared.storage.port import BlobStore
from shared.telemetry import configure_telemetry

log = structlog.get_logger()


@dataclass
class Runtime:
    settings: Settings
    db: Database
    bus: BusTransport
    storage: BlobStore
    _embedded: EmbeddedPostgres | None = field(default=None, repr=False)
    _relay_stop: asyncio.Event = field(default_factory=asyncio.Event, repr=False)
    _relay_task: asyncio.Task | None = field(default=None, repr=False)

    @property
    def dead_letters(self) -> DeadLetterStore:
        """Where the bus keeps the messages its subscriptions gave up on."""
        if self.settings.BUS_TRANSPORT == "servicebus":
            from shared.bus.servicebus_dead_letters import ServiceBusDeadLetters

            return ServiceBusDeadLetters(self.bus)  # type: ignore[arg-type]
        return PostgresDeadLetters(self.db.pool)

    def start_outbox_relay(self) -> None:
        """Publish each outbox row moments after its transaction commits (NOTIFY wakes the relay).

        Runs while this worker process is warm; the outbox_relay timer function is the safety net
        for rows committed by a process that died before relaying them.
        """
        if self._relay_task is None:
            relay = OutboxRelay(self.db, self.bus)
            self._relay_task = asyncio.create_task(relay.run(self._relay_stop), name="outbox-relay")

    async def close(self) -> None:
        """Release everything, each step on its own: one failing close must not leak the rest."""
        if self._relay_task is not None:
            self._relay_stop.set()
            await asyncio.gather(self._relay_task, return_exceptions=True)
        for step in (self.bus.close, self.storage.close, self.db.close):
            try:
                await step()
            except Exception:
                log.exception("runtime.close_failed", step=step.__qualname__)
        if self._embedded is not None:
            await asyncio.to_thread(self._embedded.stop)


async def build_runtime(settings: Settings) -> Runtime:
    """Start or connect every adapter; on any failure, undo what was already started."""
    async with AsyncExitStack() as undo:
        embedded = None
        dsn = settings.DATABASE_URL
        if dsn is None:
            embedded = EmbeddedPostgres(
                settings.VAR_DIR / "pg" / "data", shared_buffers_mb=settings.EMBEDDED_POSTGRES_SHARED_BUFFERS_MB
            )
            dsn = await asyncio.to_thread(embedded.start)
            undo.callback(embedded.stop)
            log.info("embedded postgres started", data_dir=str(embedded.data_dir))
        password = database_password(settings)  # Entra tokens in Azure; None: the DSN's own password
        if password is not None:
            undo.push_async_callback(password.close)
        applied = await migrate(dsn, password=password)
        if applied:
            log.info("migrations applied", migrations=applied)
        db = await connect_database(
            dsn, min_size=settings.DATABASE_POOL_MIN, max_size=settings.DATABASE_POOL_MAX, password=password
        )
        undo.push_async_callback(db.close)
        bus = _build_bus(settings, db)
        undo.push_async_callback(bus.close)
        storage = AzureBlobStore.from_settings(settings)
        undo.push_async_callback(storage.close)
        runtime = Runtime(settings, db, bus, storage, embedded)
        undo.pop_all()  # success: the runtime owns them now
        return runtime
    raise AssertionError("unreachable")  # pragma: no cover


def _build_bus(settings: Settings, db: Database) -> BusTransport:
    if settings.BUS_TRANSPORT == "servicebus":
        from shared.bus.servicebus_transport import ServiceBusTransport

        return ServiceBusTransport.from_settings(settings)
    from shared.bus.postgres_transport import PostgresTransport

    return PostgresTransport(
        db,
        lock_duration_seconds=settings.BUS_LOCK_DURATION_SECONDS,
        max_delivery_count=settings.BUS_MAX_DELIVERY_COUNT,
        duplicate_detection_minutes=settings.BUS_DUPLICATE_DETECTION_MINUTES,
    )


_runtime: Runtime | None = None
_lock: asyncio.Lock | None = None


_RETRY_BUILD_AFTER_SECONDS = 5.0
_last_failure: tuple[float, BaseException] | None = None


async def get_runtime() -> Runtime:
    """The process's runtime, built on first use. After a failed build, callers fail fast for a few
    seconds instead of each retrying migrations and connections against a sick dependency."""
    global _runtime, _lock, _last_failure
    if _runtime is not None:
        return _runtime
    if _lock is None:
        _lock = asyncio.Lock()
    async with _lock:
        if _runtime is None:
            if _last_failure is not None and time.monotonic() - _last_failure[0] < _RETRY_BUILD_AFTER_SECONDS:
                raise RuntimeError("the runtime could not start moments ago; retrying shortly") from _last_failure[1]
            settings = get_settings()
            configure_telemetry(settings)
            try:
                _runtime = await build_runtime(settings)
            except Exception as exc:
                _last_failure = (time.monotonic(), exc)
                raise
            _last_failure = None
            _runtime.start_outbox_relay()
    return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """For hosts and tests that build the runtime themselves."""
    global _runtime
    _runtime = runtime


async def shutdown_runtime() -> None:
    global _runtime
    if _runtime is not None:
        runtime, _runtime = _runtime, None
        await runtime.close()
