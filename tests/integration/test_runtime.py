"""The runtime container: built from settings, and a failed start leaks nothing."""

from __future__ import annotations

import asyncpg
import pytest

from shared.bus.servicebus_transport import ServiceBusTransport
from shared.config import ConfigError, load_settings
from shared.runtime import build_runtime


async def _connections_to(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(
            "select count(*) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()


async def test_a_runtime_on_service_bus_and_azure_storage_is_built_from_settings(database_dsn, azurite):
    settings = load_settings(
        DATABASE_URL=database_dsn,
        BUS_TRANSPORT="servicebus",
        SERVICEBUS_CONNECTION="Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=v",
        STORAGE_CONNECTION_STRING=azurite.connection_string,
    )
    runtime = await build_runtime(settings)
    try:
        assert isinstance(runtime.bus, ServiceBusTransport)
        assert await runtime.db.ping()
        assert await runtime.storage.ping()
    finally:
        await runtime.close()
    assert await _connections_to(database_dsn) == 0


async def test_a_runtime_that_cannot_start_closes_what_it_opened(database_dsn):
    settings = load_settings(DATABASE_URL=database_dsn, STORAGE_CONNECTION_STRING=None, STORAGE_ACCOUNT_URL=None)
    with pytest.raises(ConfigError, match="Blob storage is not configured"):
        await build_runtime(settings)
    assert await _connections_to(database_dsn) == 0
