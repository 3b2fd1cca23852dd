"""Numbered plain-SQL migrations under infra/sql, applied once, under an advisory lock.

Files are named NNNN_description.sql and applied in order, each in its own
transaction together with its row in platform.schema_migrations. A checksum
guards against an applied file being edited afterwards.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from shared.config import PROJECT_ROOT

MIGRATIONS_DIR = PROJECT_ROOT / "infra" / "sql"
_LOCK_KEY = 0x5_7_0_C_C  # any constant shared by every process that migrates
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files must be named NNNN_lower_snake.sql")
        found.append(Migration(int(match.group(1)), path.name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a number in {directory}")
    return found


async def apply_migrations(conn: asyncpg.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration; return the names applied. Safe to call from many processes at once."""
    migrations = discover(directory)
    await conn.execute("select pg_advisory_lock($1)", _LOCK_KEY)
    try:
        await conn.execute(
            """
            create schema if not exists platform;
            create table if not exists platform.schema_migrations (
                version int primary key,
                name text not null,
                checksum text not null,
                applied_at timestamptz not null default now()
            )
            """
        )
        applied = {r["version"]: r for r in await conn.fetch("select * from platform.schema_migrations")}
        done: list[str] = []
        for m in migrations:
            row = applied.get(m.version)
            if row is not None:
                if row["checksum"] != m.checksum:
                    raise MigrationError(
                        f"{m.name} was changed after it was applied; add a new migration instead of editing it"
                    )
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "insert into platform.schema_migrations (version, name, checksum) values ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            done.append(m.name)
        return done
    finally:
        await conn.execute("select pg_advisory_unlock($1)", _LOCK_KEY)


async def migrate(dsn: str, directory: Path = MIGRATIONS_DIR, *, password: object = None) -> list[str]:
    """`password`: as for `connect_database` (an Entra token source in Azure); None: the DSN's own."""
    conn = await asyncpg.connect(dsn, password=password)
    try:
        return await apply_migrations(conn, directory)
    finally:
        await conn.close()
