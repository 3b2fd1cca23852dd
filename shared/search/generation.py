"""The search index generation (`search.generation`): a counter that every change visible to public search
moves in the same transaction as the change, so a reader that sees a generation sees every change it counts.

search_sync bumps it (serving-index upserts and deletes, a price change, a reindex swap and its catch-up);
search_api keys its result cache and its price book by it. It lives in Postgres so that every Function
instance agrees on it. Sales (popularity) do not bump it: see functions/search_api/cache.py.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final, Literal

import asyncpg

from shared.db import Database

# search.bump_generation (migration 0021) also stamps the transaction's logged serving-index rows with the
# new value, or logs the step as 'all'; it sets changed_at = clock_timestamp() (the write's own time).
_BUMP: Final = "select search.bump_generation($1)"
_READ: Final = "select value, extract(epoch from clock_timestamp() - changed_at)::float8 as age from search.generation"


async def bump_generation(conn: asyncpg.Connection, scope: Literal["all", "images"] = "all") -> int:
    """Count a change to what public search shows. Call it inside the change's transaction, as late as
    possible: the row lock it takes serialises concurrent writers until they commit.

    scope="images": the change is exactly this transaction's writes to an index that logs them (the local
    index: shared/search/changes.py; `logs_changes(index)`), so cached pages those images cannot touch
    survive it. "all" (a price, a reindex swap, an index that logs nothing): every cached page goes."""
    return await conn.fetchval(_BUMP, scope)


def logs_changes(index: object) -> bool:
    """Whether the index logs its writes in the generation's transaction (PostgresSearchIndex does; an index
    that does not say so, Azure AI Search or a test's stand-in, gets whole-cache steps)."""
    return getattr(index, "logs_changes", False) is True


def index_scope(index: object) -> Literal["all", "images"]:
    return "images" if logs_changes(index) else "all"


@dataclass(frozen=True)
class Generation:
    value: int
    age_seconds: float  # since the newest change was written (Postgres's clock: no skew between instances)


async def read_generation(conn: asyncpg.Connection) -> Generation:
    row = await conn.fetchrow(_READ)
    return Generation(row["value"], max(0.0, row["age"]))


class GenerationReader:
    """The current generation, read at most once at a time per process and shared by concurrent callers.

    A caller only shares a read that *starts after it arrived*, so it always sees every change committed
    before it asked: callers that arrive while a read is in flight wait for the next one, which starts
    when the current one ends and serves all of them. Under load that is one tiny query in flight per
    instance instead of one per request; alone, a caller waits for one round trip as before.
    """

    def __init__(self, db: Database) -> None:
        self.db = db
        self._next: asyncio.Future[Generation] | None = None  # a read not started yet, open to newcomers
        self._running = False
        self.reads = 0  # queries run (the bench compares it with requests)

    async def current(self) -> Generation:
        future = self._next
        if future is None:
            future = self._next = asyncio.get_running_loop().create_future()
            if not self._running:
                self._start()
        # shield: one caller giving up (a closed connection) does not cancel the read the others wait for
        return await asyncio.shield(future)

    def _start(self) -> None:
        future, self._next = self._next, None
        assert future is not None
        self._running = True
        self._task = asyncio.get_running_loop().create_task(self._read(future))  # held: tasks are weakly kept

    async def _read(self, future: asyncio.Future[Generation]) -> None:
        try:
            self.reads += 1
            async with self.db.connection() as conn:
                future.set_result(await read_generation(conn))
        except asyncio.CancelledError:
            future.cancel()
            raise
        except Exception as exc:  # every waiter gets the failure; the next caller reads again
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
        finally:
            self._running = False
            if self._next is not None:
                self._start()
