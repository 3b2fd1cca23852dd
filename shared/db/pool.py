"""The asyncpg pool every handler receives. Plain SQL, no ORM."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

PasswordSource = str | Callable[[], str] | Callable[[], Awaitable[str]]


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb in and out as Python objects, so handlers never json.dumps by hand.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")
    await conn.set_type_codec("json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


# Statements that leave state on the session past their transaction (settings, listeners, cursors,
# prepared statements, temporary tables, session advisory locks).
_SESSION_STATE = re.compile(
    r"(?:^|;)\s*(?:set\s+(?!local\b)|reset\b|listen\b|declare\b|prepare\b|create\s+temp|"
    r"select\s+pg_advisory_lock|select\s+set_config)",
    re.IGNORECASE,
)


class PooledConnection(asyncpg.Connection):
    """Notes whether it was given session state, so that releasing it costs no round trip when not.

    asyncpg's default release runs `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` on every
    connection: one round trip per acquire, a fifth of the database time of a worker in bench/pipeline.py.
    """

    session_state = False
    kept_settings: str | None = None  # the last keep_settings statement, in force on this session

    async def execute(self, query: str, *args: Any, **kwargs: Any) -> str:
        if _SESSION_STATE.search(query):
            self.session_state = True
            self.kept_settings = None  # a SET or RESET may have changed what keep_settings applied
        return await super().execute(query, *args, **kwargs)

    async def keep_settings(self, statement: str) -> None:
        """Run `SET`s that may outlive this use of the connection, and only when the session does not have
        them already: for settings that every statement relying on them sets first (pgvector's hnsw.*, which
        only HNSW scans read). A search then costs neither a SET nor the release's RESET round trip."""
        if statement == self.kept_settings:
            return
        if self.is_in_transaction():  # a rollback would undo them: ordinary session state
            await self.execute(statement)
            return
        await super().execute(statement)
        self.kept_settings = statement

    async def add_listener(self, channel: str, callback: Any) -> None:
        self.session_state = True
        await super().add_listener(channel, callback)


async def _reset(conn: asyncpg.Connection) -> None:
    """What asyncpg's release does (roll back, clear session state), only when there is something to clear."""
    if conn.is_in_transaction() or getattr(conn, "session_state", True):
        await conn.reset()
        conn.session_state = False
        conn.kept_settings = None  # RESET ALL cleared them


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
        connection_class=PooledConnection,
        reset=_reset,
        # Statement cache is per connection; pgbouncer-style poolers in Azure need it off, but
        # Flexible Server's built-in pgbouncer runs in session mode by default, so keep it on.
        command_timeout=60,
    )
    return Database(pool, dsn, password)
