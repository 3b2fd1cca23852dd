"""What the benchmarks share: a throwaway embedded Postgres, fresh migrated databases, free ports."""

from __future__ import annotations

import asyncio
import socket
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from shared.db import Database, connect_database
from shared.db.embedded import EmbeddedPostgres
from shared.db.migrate import migrate

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def fresh_database(admin_dsn: str, name: str, *, min_size: int, max_size: int) -> Database:
    """A new, fully migrated database `name` on the server (dropped first if a run left it)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'drop database if exists "{name}" with (force)')
        await conn.execute(f'create database "{name}"')
    finally:
        await conn.close()
    dsn = urlunsplit(urlsplit(admin_dsn)._replace(path="/" + name))
    await migrate(dsn)
    return await connect_database(dsn, min_size=min_size, max_size=max_size)


def on_embedded_postgres(prefix: str, run: Callable[[str], Awaitable[T]]) -> T:
    """Start an embedded Postgres in a temporary folder, run `run(admin_dsn)`, stop it whatever happens."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pg")
        admin_dsn = server.start()
        try:
            return asyncio.run(run(admin_dsn))
        finally:
            server.stop()
