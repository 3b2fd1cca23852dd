"""Platform handlers: health never leaks internals, the ping trigger's effect happens once."""

from __future__ import annotations

from datetime import UTC, datetime

from functions.platform.handlers import check_health, record_bus_ping
from shared.bus.port import ReceivedMessage


class BrokenStorage:
    async def ping(self) -> bool:
        raise ConnectionError("auth failed for account devstoreaccount1 at 10.0.0.7")


def _ping(message_id: str, nonce: str = "n-1") -> ReceivedMessage:
    now = datetime.now(UTC)
    return ReceivedMessage(message_id, "platform", "health", "platform.ping", {"nonce": nonce}, "c-1", 1, now, now, "t")


async def test_health_is_ok_when_every_dependency_answers(db, blob_store):
    report = await check_health(db, blob_store, "postgres")
    assert report["status"] == "ok"
    assert report["checks"]["bus"] | {"latency_ms": 0} == {
        "ok": True,
        "latency_ms": 0,
        "transport": "postgres",
        "outbox_backlog": 0,
        "outbox_parked": 0,
    }


async def test_a_failing_dependency_degrades_health_without_revealing_why(db):
    report = await check_health(db, BrokenStorage(), "postgres")
    assert report["status"] == "degraded"
    assert report["checks"]["blob_storage"]["ok"] is False
    assert report["checks"]["blob_storage"]["error"] == "unavailable"
    assert "10.0.0.7" not in str(report)


async def test_a_redelivered_ping_has_no_second_effect(db):
    assert await record_bus_ping(db, _ping("m-1")) is True
    assert await record_bus_ping(db, _ping("m-1")) is False
    assert await record_bus_ping(db, _ping("m-2")) is False  # another message, same probe: still one row
    assert await db.pool.fetchval("select count(*) from platform.bus_pings") == 1
    assert await db.pool.fetchval("select count(*) from platform.inbox") == 2
