"""The migration's manifest (ingestion.migration_files) and its writes, grouped across the CLI's workers.

Each file's state must be durable at two points: `pending` with its image id before its bytes are sent
(so a crash resumes with the same image, never a second one), and `uploaded` or `failed` after. Every
worker still waits for its own write, but writes asked for while the previous one ran go to the
database together, with the upload tickets of the same files, in one transaction (group commit): one
round trip for a handful of files instead of five per file.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, Literal, TypeVar

import asyncpg

from functions.ingestion.models import UploadRequest
from functions.ingestion.policy import IngestionPolicy
from functions.ingestion.uploads import record_tickets
from shared.db import Database

T = TypeVar("T")
R = TypeVar("R")

_MAX_GROUP = 256  # rows in one statement at most


class GroupCommit(Generic[T, R]):
    """`submit(item)` returns once `write` has stored it; items submitted while a write runs go in the next
    one, together. A failed write fails every caller of its group."""

    def __init__(self, write: Callable[[list[T]], Awaitable[list[R]]]) -> None:
        self._write = write
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._runner: asyncio.Task[None] | None = None
        self.groups = 0  # writes made, for the tests and the bench

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self._runner is None or self._runner.done():
            self._runner = loop.create_task(self._drain(), name="manifest-writes")
        return await future

    async def close(self) -> None:
        """Stop writing: a write under way is cancelled (its transaction rolls back) and nothing waits any more.
        The run that owned these writes has ended; a later run must not race a write of this one."""
        for _, future in self._pending:
            future.cancel()
        self._pending = []
        if self._runner is not None and not self._runner.done():
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner

    async def _drain(self) -> None:
        while self._pending:
            group, self._pending = self._pending[:_MAX_GROUP], self._pending[_MAX_GROUP:]
            self.groups += 1
            try:
                results = await self._write([item for item, _ in group])
            except asyncio.CancelledError:  # closed: its waiters are not left hanging
                for _, future in group:
                    future.cancel()
                raise
            except Exception as exc:
                for _, future in group:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(group, results, strict=True):
                if not future.done():
                    future.set_result(result)


@dataclass(frozen=True)
class Start:
    """A file about to be sent: its manifest row goes `pending` and its upload ticket is registered."""

    rel_path: str
    size: int
    mtime_ns: int
    image_id: uuid.UUID
    request: UploadRequest


@dataclass(frozen=True)
class Outcome:
    """A file's result: `uploaded` (with its checksum) or `failed` (with why). `attempt`: 1 when no Start was
    written for this try (it failed before), so the attempt is counted all the same."""

    rel_path: str
    size: int
    mtime_ns: int
    image_id: uuid.UUID
    state: Literal["uploaded", "failed"]
    sha256: str | None = None
    error: str | None = None
    attempt: int = 0


class Manifest:
    def __init__(self, db: Database, policy: IngestionPolicy, contributor_id: str, source_root: str) -> None:
        self.db = db
        self.policy = policy
        self.contributor_id = contributor_id
        self.source_root = source_root
        self._starts: GroupCommit[Start, bool] = GroupCommit(self._write_starts)
        self._outcomes: GroupCommit[Outcome, None] = GroupCommit(self._write_outcomes)

    async def close(self) -> None:
        await self._starts.close()
        await self._outcomes.close()

    @property
    def outcome_writes(self) -> int:
        return self._outcomes.groups

    async def rows(self, rel_paths: list[str]) -> dict[str, asyncpg.Record]:
        """The manifest rows of these files (those it has)."""
        async with self.db.connection() as conn:
            rows = await conn.fetch(
                "select rel_path, size_bytes, mtime_ns, image_id, state from ingestion.migration_files "
                "where contributor_id = $1 and source_root = $2 and rel_path = any($3::text[])",
                self.contributor_id,
                self.source_root,
                rel_paths,
            )
        return {row["rel_path"]: row for row in rows}

    async def start(self, start: Start) -> bool:
        """Durably `pending` with a live ticket; False when the ticket's file already arrived (a run that
        stopped before noting it uploaded sent it: ingestion has it)."""
        return await self._starts.submit(start)

    async def finish(self, outcome: Outcome) -> None:
        await self._outcomes.submit(outcome)

    async def _write_starts(self, starts: list[Start]) -> list[bool]:
        expires_at = (datetime.now(UTC) + self.policy.upload_ttl).replace(microsecond=0)
        async with self.db.transaction() as conn:
            await self._upsert(conn, starts, "pending", attempts=[1] * len(starts))
            live = await record_tickets(
                conn,
                self.contributor_id,
                [(s.image_id, s.request) for s in starts],
                source="migration",
                expires_at=expires_at,
            )
        return [s.image_id in live for s in starts]

    async def _write_outcomes(self, outcomes: list[Outcome]) -> list[None]:
        async with self.db.connection() as conn:
            await self._upsert(
                conn,
                outcomes,
                [o.state for o in outcomes],
                attempts=[o.attempt for o in outcomes],
                sha256=[o.sha256 for o in outcomes],
                error=[o.error for o in outcomes],
            )
        return [None] * len(outcomes)

    async def _upsert(
        self,
        conn: asyncpg.Connection,
        files: Sequence[Start | Outcome],
        state: str | list[str],
        *,
        attempts: list[int],
        sha256: list[str | None] | None = None,
        error: list[str | None] | None = None,
    ) -> None:
        n = len(files)
        await conn.execute(
            """
            insert into ingestion.migration_files
                (contributor_id, source_root, rel_path, size_bytes, mtime_ns, sha256, image_id, state, error, attempts)
            select $1, $2, f.rel_path, f.size, f.mtime, f.sha256, f.image_id, f.state, f.error, f.attempts
              from unnest($3::text[], $4::bigint[], $5::bigint[], $6::text[], $7::uuid[], $8::text[], $9::text[],
                          $10::int[]) as f(rel_path, size, mtime, sha256, image_id, state, error, attempts)
            on conflict (contributor_id, source_root, rel_path) do update
               set size_bytes = excluded.size_bytes, mtime_ns = excluded.mtime_ns,
                   sha256 = coalesce(excluded.sha256, migration_files.sha256), image_id = excluded.image_id,
                   state = excluded.state, error = excluded.error,
                   attempts = migration_files.attempts + excluded.attempts, updated_at = now()
            """,
            self.contributor_id,
            self.source_root,
            [f.rel_path for f in files],
            [f.size for f in files],
            [f.mtime_ns for f in files],
            sha256 or [None] * n,
            [f.image_id for f in files],
            [state] * n if isinstance(state, str) else state,
            error or [None] * n,
            attempts,
        )


async def failures(db: Database, contributor_id: str, source_root: str, limit: int = 50) -> list[asyncpg.Record]:
    """Files of this source tree (`Migration.source_root`) whose last attempt failed, with the reason."""
    async with db.connection() as conn:
        return await conn.fetch(
            "select rel_path, error, attempts from ingestion.migration_files "
            "where contributor_id = $1 and source_root = $2 and state = 'failed' order by rel_path limit $3",
            contributor_id,
            source_root,
            limit,
        )
