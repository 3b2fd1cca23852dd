"""Daily upload quotas per contributor: files and declared bytes per UTC day, counted durably.

A ticket counts when it is handed out, in the same transaction that records it, so concurrent requests
cannot both squeeze under the limit and a refused ticket counts nothing. The bytes counted are the
declared ones, which ingestion holds the file to on arrival.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import asyncpg

from shared.db import Database

# Days of usage kept after they end: enough for support to answer "why was I refused yesterday".
KEEP_DAYS = 30


@dataclass(frozen=True)
class UploadQuota:
    files_per_day: int
    bytes_per_day: int


class QuotaExceeded(RuntimeError):
    """The contributor has used today's upload budget; `retry_after` seconds until the next UTC day."""

    def __init__(self, what: str, used: int, limit: int, retry_after: int) -> None:
        super().__init__(f"daily upload {what} quota used: {used} of {limit}")
        self.what = what
        self.used = used
        self.limit = limit
        self.retry_after = retry_after


def seconds_to_next_day(now: datetime) -> int:
    tomorrow = datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=UTC)
    return max(1, math.ceil((tomorrow - now).total_seconds()))


async def charge_upload(
    conn: asyncpg.Connection, quota: UploadQuota, contributor_id: str, size_bytes: int, *, now: datetime
) -> None:
    """Count one upload of `size_bytes` against today's budget, or raise QuotaExceeded and count nothing."""
    day = now.astimezone(UTC).date()
    row = await conn.fetchrow(
        """
        insert into ingestion.upload_quota_usage as u (contributor_id, day, files, bytes)
        select $1::text, $2::date, 1, $3::bigint where $3::bigint <= $5::bigint
        on conflict (contributor_id, day) do update
           set files = u.files + 1, bytes = u.bytes + excluded.bytes
         where u.files + 1 <= $4::int and u.bytes + excluded.bytes <= $5::bigint
        returning files, bytes
        """,
        contributor_id,
        day,
        size_bytes,
        quota.files_per_day,
        quota.bytes_per_day,
    )
    if row is not None:
        return
    used = await usage(conn, contributor_id, day)
    retry_after = seconds_to_next_day(now)
    if used[0] + 1 > quota.files_per_day:
        raise QuotaExceeded("files", used[0], quota.files_per_day, retry_after)
    raise QuotaExceeded("bytes", used[1], quota.bytes_per_day, retry_after)


async def usage(conn: asyncpg.Connection, contributor_id: str, day: date) -> tuple[int, int]:
    row = await conn.fetchrow(
        "select files, bytes from ingestion.upload_quota_usage where contributor_id = $1 and day = $2",
        contributor_id,
        day,
    )
    return (row["files"], row["bytes"]) if row else (0, 0)


async def forget_old_usage(db: Database, *, now: datetime, keep_days: int = KEEP_DAYS) -> int:
    async with db.transaction() as conn:
        status = await conn.execute(
            "delete from ingestion.upload_quota_usage where day < $1", now.date() - timedelta(days=keep_days)
        )
    return int(status.split()[-1])
