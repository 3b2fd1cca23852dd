"""The embedded server takes its shared_buffers from the settings when it starts (a local search index wants its
HNSW graph and table in Postgres' own buffers), and a process joining a running server changes nothing."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from shared.db.embedded import EmbeddedPostgres

pytestmark = pytest.mark.slow


async def _shared_buffers(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("show shared_buffers")
    finally:
        await conn.close()


async def test_shared_buffers_apply_from_the_next_start_and_a_joining_process_leaves_them(tmp_path: Path) -> None:
    data = tmp_path / "pg" / "data"
    first = EmbeddedPostgres(data, shared_buffers_mb=48)
    dsn = first.start()  # initialises the data dir: Postgres' default until the next start
    assert await _shared_buffers(dsn) == "128MB"
    first.stop()

    second = EmbeddedPostgres(data, shared_buffers_mb=48)
    dsn = second.start()
    try:
        assert await _shared_buffers(dsn) == "48MB"
        joining = EmbeddedPostgres(data, shared_buffers_mb=0)
        joining.start()  # joins the running server: its own setting waits for a start of its own
        assert (data / "embedded.conf").read_text() == "shared_buffers = '48MB'\n"
        joining.stop()
    finally:
        second.stop()

    third = EmbeddedPostgres(data)  # 0: back to Postgres' default
    dsn = third.start()
    try:
        assert await _shared_buffers(dsn) == "128MB"
        assert (data / "postgresql.conf").read_text().count("include_if_exists = 'embedded.conf'") == 1
    finally:
        third.stop()
