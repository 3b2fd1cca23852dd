"""Migrations: applied once, idempotent, safe under concurrency, guarded against edits."""

import asyncio
import sys

import asyncpg
import pytest

from shared.config import PROJECT_ROOT
from shared.db.migrate import MIGRATIONS_DIR, MigrationError, apply_migrations, discover, migrate


async def _schema_snapshot(dsn: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema not in ('pg_catalog','information_schema') order by 1, 2"
        )
        return [(r[0], r[1]) for r in rows]
    finally:
        await conn.close()


async def test_applying_twice_changes_nothing(empty_database_dsn):
    first = await migrate(empty_database_dsn)
    assert first == [m.name for m in discover()]
    before = await _schema_snapshot(empty_database_dsn)
    second = await migrate(empty_database_dsn)
    assert second == []
    assert await _schema_snapshot(empty_database_dsn) == before


async def test_two_processes_migrating_at_once_do_not_collide(empty_database_dsn):
    script = "import asyncio, sys; from shared.db.migrate import migrate; print(len(asyncio.run(migrate(sys.argv[1]))))"
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, empty_database_dsn, cwd=PROJECT_ROOT, stdout=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    outputs = [await p.communicate() for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0]
    applied = sorted(int(out.decode()) for out, _ in outputs)
    assert applied == [0, 0, len(discover())]  # one process applied everything, the others found it done
    conn = await asyncpg.connect(empty_database_dsn)
    try:
        assert await conn.fetchval("select count(*) from platform.schema_migrations") == len(discover())
        assert await conn.fetchval("select extversion from pg_extension where extname = 'vector'")
    finally:
        await conn.close()


async def test_an_edited_applied_migration_is_refused(empty_database_dsn, tmp_path):
    for m in discover():
        (tmp_path / m.name).write_text(m.sql)
    await migrate(empty_database_dsn, tmp_path)
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    conn = await asyncpg.connect(empty_database_dsn)
    try:
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await apply_migrations(conn, tmp_path)
    finally:
        await conn.close()


def test_migration_files_are_numbered_and_unique():
    names = [p.name for p in sorted(MIGRATIONS_DIR.glob("*.sql"))]
    assert names and names == [m.name for m in discover()]
