"""The asyncpg pool every handler receives. Plain SQL, no ORM."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg

PasswordSource = str | Callable[[], str] | Callable[[], Awaitable[str]]


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python objects, so handlers never json.dumps by hand.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


class Database:
    """A pool plus the one helper handlers need: a transaction."""

    def __init__(self, pool: asyncpg.Pool, dsn: str, password: PasswordSource | None = None) -> None:
        self.pool = pool
        self.dsn = dsn
        self.password = password  # for connections outside the pool (LISTEN): an Entra token source in Azure

    async def connect_unpooled(self) -> asyncpg.Connection:
        """A connection of its own (e.g. to LISTEN), signed in like the pool's."""
        return await asyncpg.connect(self.dsn, password=self.password)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire() as conn:
            yield conn

    async def ping(self) -> bool:
        async with self.pool.acquire() as conn:
            return await conn.fetchval("select 1") == 1

    async def close(self) -> None:
        await self.pool.close()


async def connect_database(
    dsn: str, *, min_size: int = 1, max_size: int = 10, password: PasswordSource | None = None
) -> Database:
    """`password`: a string or (async) callable asyncpg calls per new connection (Entra tokens); None: the DSN's."""
    pool = await asyncpg.create_pool(
        dsn,
        password=password,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        # Statement cache is per connection; pgbouncer-style poolers in Azure need it off, but
        # Flexible Server's built-in pgbouncer runs in session mode by default, so keep it on.
        command_timeout=60,
    )
    return Database(pool, dsn, password)
