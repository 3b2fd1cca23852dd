"""The pool hands out connections as fresh as new ones, and pays for a reset only when one was needed."""

from __future__ import annotations

import asyncpg
import pytest

from shared.db import connect_database
from shared.db.pool import PooledConnection


@pytest.fixture
async def one_connection_pool(database_dsn: str):
    db = await connect_database(database_dsn, min_size=1, max_size=1)  # every acquire gets the same connection
    yield db
    await db.close()


async def test_a_session_setting_does_not_outlive_its_acquisition(one_connection_pool) -> None:
    db = one_connection_pool
    async with db.connection() as conn:
        default = await conn.fetchval("show work_mem")
        await conn.execute("set work_mem = '7MB'")
        assert await conn.fetchval("show work_mem") == "7MB"
    async with db.connection() as conn:
        assert await conn.fetchval("show work_mem") == default


@pytest.mark.filterwarnings("ignore:.*active notification listener")
async def test_listeners_session_locks_and_open_transactions_are_cleared(one_connection_pool) -> None:
    db = one_connection_pool
    async with db.connection() as conn:
        await conn.add_listener("pool_test", lambda *_: None)
        await conn.execute("select pg_advisory_lock(4242)")
    async with db.connection() as conn:
        assert await conn.fetchval("select count(*) from pg_listening_channels()") == 0
        # This session's locks: pg_locks lists the whole server's, other tests' included.
        held = "select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()"
        assert await conn.fetchval(held) == 0
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("create table pool_test_left_open (x int)")
    async with db.connection() as conn:  # released inside its transaction: rolled back
        assert not conn.is_in_transaction()
        assert await conn.fetchval("select to_regclass('pool_test_left_open')") is None


async def test_plain_statements_and_transactions_release_without_a_reset(one_connection_pool, monkeypatch) -> None:
    db = one_connection_pool
    resets = 0
    reset = PooledConnection.reset

    async def counting_reset(self, **kwargs):
        nonlocal resets
        resets += 1
        await reset(self, **kwargs)

    monkeypatch.setattr(PooledConnection, "reset", counting_reset)
    async with db.connection() as conn:
        await conn.execute("create table pool_test_rows (x int)")
    async with db.transaction() as conn:
        await conn.execute("insert into pool_test_rows values (1)")
        await conn.execute("update pool_test_rows set x = 2")
        await conn.execute("select pg_advisory_xact_lock(4242)")
    async with db.connection() as conn:
        assert await conn.fetchval("select x from pool_test_rows") == 2
        await conn.execute("set work_mem = '7MB'")
    assert resets == 1  # only after the session setting


async def test_kept_settings_outlive_their_acquisition_and_are_sent_once(one_connection_pool, monkeypatch) -> None:
    db = one_connection_pool
    sent: list[str] = []  # every statement that reaches the server through execute (RESET ALL does)
    execute = asyncpg.Connection.execute

    async def recording_execute(self, query, *args, **kwargs):
        sent.append(query)
        return await execute(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.Connection, "execute", recording_execute)
    for _ in range(2):
        async with db.connection() as conn:
            await conn.keep_settings("set work_mem = '7MB'")
    async with db.connection() as conn:
        assert await conn.fetchval("show work_mem") == "7MB"
    assert sent == ["set work_mem = '7MB'"]  # no second SET, and no RESET ALL at release


async def test_a_reset_forgets_kept_settings(one_connection_pool) -> None:
    db = one_connection_pool
    async with db.connection() as conn:
        default = await conn.fetchval("show work_mem")
        await conn.keep_settings("set work_mem = '7MB'")
        await conn.execute("set statement_timeout = '5s'")  # session state: RESET ALL at release
    async with db.connection() as conn:
        assert await conn.fetchval("show work_mem") == default
        await conn.keep_settings("set work_mem = '7MB'")  # sent again, not skipped
        assert await conn.fetchval("show work_mem") == "7MB"
