"""Plain async handlers of the platform service: health checks and the bus round-trip probe."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import structlog

from shared.bus.events import PlatformPing
from shared.bus.inbox import claim_message
from shared.bus.outbox import add_to_outbox
from shared.bus.port import ReceivedMessage, error_text
from shared.db import Database
from shared.storage.port import BlobStore

SUBSCRIPTION = "health"
log = structlog.get_logger()


async def _timed(check) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check(), timeout=3)
        ok = True
    except Exception as exc:  # a health check reports failures, it does not raise them
        # Details (host names, user names) go to the log only: this route is public.
        log.warning("health.check_failed", check=check.__name__, error=error_text(exc)[:500])
        detail, ok = {"error": "unavailable"}, False
    result = {"ok": ok, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}
    result.update(detail or {})
    return result


async def check_health(db: Database, storage: BlobStore, transport_name: str) -> dict[str, Any]:
    async def database() -> dict[str, Any]:
        async with db.connection() as conn:
            version = await conn.fetchval("select extversion from pg_extension where extname = 'vector'")
        return {"pgvector": version}

    async def blob_storage() -> dict[str, Any]:
        if not await storage.ping():
            raise RuntimeError("storage did not answer")
        return {}

    async def message_bus() -> dict[str, Any]:
        async with db.connection() as conn:
            row = await conn.fetchrow(
                "select count(*) filter (where failed_at is null) as backlog, count(failed_at) as parked "
                "from bus.outbox where published_at is null"
            )
        return {"transport": transport_name, "outbox_backlog": row["backlog"], "outbox_parked": row["parked"]}

    checks = dict(
        zip(
            ("database", "blob_storage", "bus"),
            await asyncio.gather(_timed(database), _timed(blob_storage), _timed(message_bus)),
            strict=True,
        )
    )
    status = "ok" if all(c["ok"] for c in checks.values()) else "degraded"
    return {"status": status, "checks": checks}


async def send_bus_ping(db: Database, correlation_id: str | None, timeout_seconds: float = 10.0) -> dict[str, Any]:
    """Publish a ping through the outbox and wait until the ping trigger has handled it."""
    nonce = uuid.uuid4().hex
    started = time.perf_counter()
    async with db.transaction() as conn:
        message_id = await add_to_outbox(conn, PlatformPing(nonce=nonce), correlation_id=correlation_id)
    deadline = started + timeout_seconds
    while time.perf_counter() < deadline:
        async with db.connection() as conn:
            row = await conn.fetchrow("select * from platform.bus_pings where nonce = $1", nonce)
        if row is not None:
            return {
                "nonce": nonce,
                "message_id": message_id,
                "correlation_id": row["correlation_id"],
                "delivery_count": row["delivery_count"],
                "round_trip_ms": round((time.perf_counter() - started) * 1000, 1),
            }
        await asyncio.sleep(0.05)
    raise TimeoutError(f"ping {nonce} was not handled within {timeout_seconds:.0f}s")


async def record_bus_ping(db: Database, message: ReceivedMessage) -> bool:
    """The ping trigger's effect, exactly once per message_id. Returns False for a redelivery."""
    ping = PlatformPing.model_validate(message.body)
    async with db.transaction() as conn:
        if not await claim_message(conn, "platform", SUBSCRIPTION, message.message_id):
            return False
        status = await conn.execute(
            "insert into platform.bus_pings (nonce, message_id, correlation_id, delivery_count) "
            "values ($1, $2, $3, $4) on conflict (nonce) do nothing",
            ping.nonce,
            message.message_id,
            message.correlation_id,
            message.delivery_count,
        )
    return status.endswith(" 1")
