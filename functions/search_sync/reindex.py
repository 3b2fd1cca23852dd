"""Full reindex: rebuild the serving index from the read model (`search.documents`), without downtime.

    python -m functions.search_sync.reindex [--batch-size 1000]

The index adapter builds a new index aside from the public documents, in batches, and switches
queries over to it at once. Events applied while it ran went to the old index, so afterwards every
document changed since the start is applied again to the new one:

1. right after the swap, a barrier: the reindex takes the handlers' advisory lock exclusively
   (handlers hold it shared for their whole transaction), which waits until every handler
   transaction that may have written to the old index has committed; later ones write to the new
   index;
2. catch-up: every row changed since the start (less a margin) is read `for share` and written to
   the new index in the same transaction, so a handler applying a newer revision of that row waits
   for it and lands after it; an older state never overwrites a newer one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from uuid import UUID

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from functions.search_sync.documents import public_document
from functions.search_sync.handlers import INDEX_WRITERS_LOCK
from shared.audit import command_line_operator, record_admin_action
from shared.db import Database
from shared.search.generation import bump_generation, index_scope
from shared.search.port import IndexDocument, SearchIndex

_PUBLIC_ROWS = (
    "select d.*, coalesce(p.licenses, 0) as licenses from search.documents d "
    "left join search.popularity p using (image_id) "
    "where d.status = 'approved' and d.image_id > $1 order by d.image_id limit $2"
)


async def public_batches(db: Database, batch_size: int) -> AsyncIterator[list[IndexDocument]]:
    """Every public document, in image_id order (keyset paging: each batch is one index range scan)."""
    last = UUID(int=0)
    while True:
        async with db.connection() as conn:
            rows = await conn.fetch(_PUBLIC_ROWS, last, batch_size)
        if not rows:
            return
        last = rows[-1]["image_id"]
        yield [doc for row in rows if (doc := public_document(row, row["licenses"])) is not None]


async def reindex(
    db: Database,
    index: SearchIndex,
    *,
    batch_size: int = 1000,
    progress: Callable[[int], None] | None = None,
    actor: str | None = None,
) -> int:
    """Rebuild the serving index; returns how many documents it holds afterwards (before catch-up).

    An operator's action, so it goes to the audit trail (`actor`, default the command line's user): the
    switch happens in the index, outside any transaction of ours, so the entry is written just after it.
    """
    async with db.connection() as conn:
        # Margin: a handler transaction that began earlier may commit after our batches read past its row.
        started: datetime = await conn.fetchval("select now() - interval '5 minutes'")
    written = await index.rebuild(public_batches(db, batch_size), progress)
    async with db.transaction() as conn:
        # Pages cached against the old index are dropped; catch-up below bumps again for what it re-applies.
        await bump_generation(conn)
    await wait_for_index_writers(db)
    await catch_up(db, index, since=started, batch_size=batch_size)
    async with db.transaction() as conn:
        await record_admin_action(
            conn,
            service="search",
            actor=actor or command_line_operator(),
            action="search.reindex",
            target_type="search_index",
            target_id="images",
            after={"documents": written, "batch_size": batch_size},
        )
    return written


async def wait_for_index_writers(db: Database) -> None:
    """Returns once every handler transaction that began before the call has ended."""
    async with db.connection() as conn:
        await conn.execute("select pg_advisory_lock($1)", INDEX_WRITERS_LOCK)
        await conn.execute("select pg_advisory_unlock($1)", INDEX_WRITERS_LOCK)


async def catch_up(db: Database, index: SearchIndex, *, since: datetime, batch_size: int = 1000) -> None:
    """Write every read-model row changed since `since` to the index again, in image_id order."""
    last = UUID(int=0)
    while True:
        async with db.transaction() as conn:
            # `for share`: a handler holding a newer revision of a row commits first (we then read it);
            # one that comes later waits for our index write, so the index ends with the newest state.
            rows = await conn.fetch(
                "select d.*, coalesce(p.licenses, 0) as licenses from search.documents d "
                "left join search.popularity p using (image_id) where d.updated_at >= $1 and d.image_id > $2 "
                "order by d.image_id limit $3 for share of d",
                since,
                last,
                batch_size,
            )
            if not rows:
                return
            last = rows[-1]["image_id"]
            public = [doc for row in rows if (doc := public_document(row, row["licenses"])) is not None]
            public_ids = {doc.image_id for doc in public}
            await index.upsert(public, within=conn)
            await index.delete([row["image_id"] for row in rows if row["image_id"] not in public_ids], within=conn)
            await bump_generation(conn, index_scope(index))  # the new table logs its writes too


cli = typer.Typer(add_completion=False, help=__doc__)


@cli.command()
def main(
    batch_size: int = typer.Option(
        None, min=1, max=1000, help="Documents per batch (Azure: at most 1000). Default: SEARCH_REINDEX_BATCH_SIZE."
    ),
    actor: str = typer.Option(None, help="Who the audit log names (default: cli:<user>@<host>)."),
):
    """Rebuild the serving search index from the read model."""
    asyncio.run(_run(batch_size, actor))


async def _run(batch_size: int | None, actor: str | None) -> None:
    # Only the database is needed (not the bus or blob storage), so no full runtime.
    from shared.config import get_settings
    from shared.db import connect_database
    from shared.db.embedded import EmbeddedPostgres
    from shared.db.entra import database_password
    from shared.db.migrate import migrate
    from shared.search.factory import build_search_index

    settings = get_settings()
    embedded, dsn = None, settings.DATABASE_URL
    if dsn is None:
        embedded = EmbeddedPostgres(
            settings.VAR_DIR / "pg" / "data", shared_buffers_mb=settings.EMBEDDED_POSTGRES_SHARED_BUFFERS_MB
        )
        dsn = await asyncio.to_thread(embedded.start)
    try:
        password = database_password(settings)  # an Entra token source in Azure
        await migrate(dsn, password=password)
        db = await connect_database(dsn, min_size=1, max_size=2, password=password)
        try:
            index = build_search_index(settings, db)
            async with db.connection() as conn:
                total = await conn.fetchval("select count(*) from search.documents where status = 'approved'")
            columns = (
                TextColumn("reindex"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
            )
            with Progress(*columns) as bar:
                task = bar.add_task("documents", total=total)
                written = await reindex(
                    db,
                    index,
                    batch_size=batch_size or settings.SEARCH_REINDEX_BATCH_SIZE,
                    progress=lambda n: bar.advance(task, n),
                    actor=actor,
                )
            typer.echo(f"reindexed {written} documents")
            await index.close()
        finally:
            await db.close()
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


if __name__ == "__main__":
    cli()
