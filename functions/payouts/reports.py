"""What a contributor reads: earnings grouped by day, month or image per licence type, the CSV of
entries, payouts, level with progress, and the payout threshold. Every query is the caller's own."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from functions.payouts.earnings import royalty_table_at
from functions.payouts.ledger import balances
from shared.db import Database
from shared.http import Problem

GroupBy = Literal["day", "month", "image"]

_KEYS = {
    "day": "to_char(occurred_at at time zone 'UTC', 'YYYY-MM-DD')",
    "month": "to_char(occurred_at at time zone 'UTC', 'YYYY-MM')",
    "image": "image_id::text",
}
_DAY_KEYS = {"day": "to_char(day, 'YYYY-MM-DD')", "month": "to_char(day, 'YYYY-MM')"}

_FROM_LEDGER = """
select {key} as key, license_type, currency,
       count(*) filter (where kind = 'earning')::int as downloads,
       count(*) filter (where kind = 'reversal')::int as refunds,
       sum(amount_minor)::bigint as earned_minor
from payouts.ledger
where contributor_id = $1 and kind in ('earning', 'reversal') and occurred_at >= $2 and occurred_at < $3
  and ($4::uuid is null or image_id = $4)
group by 1, 2, 3
"""

_FROM_DAYS = """
select {key} as key, license_type, currency, sum(downloads)::int as downloads, sum(refunds)::int as refunds,
       sum(earned_minor)::bigint as earned_minor
from payouts.earnings_days
where contributor_id = $1 and day >= $2 and day < $3
group by 1, 2, 3
"""


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def _earning_rows(conn, contributor_id: str, start: datetime, end: datetime, group_by: GroupBy, image_id):
    """Whole UTC days from the daily rollup, the partial days at either end (and any image question)
    from the ledger itself: the same sums as the ledger alone, in a few hundred rows."""
    if group_by == "image" or image_id is not None:
        return await conn.fetch(_FROM_LEDGER.format(key=_KEYS[group_by]), contributor_id, start, end, image_id)
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    first_whole = start.date() if start == _midnight(start.date()) else start.date() + timedelta(days=1)
    after_whole = end.date()  # days before the end's date end before it
    if first_whole >= after_whole:
        return await conn.fetch(_FROM_LEDGER.format(key=_KEYS[group_by]), contributor_id, start, end, None)
    rows = list(await conn.fetch(_FROM_DAYS.format(key=_DAY_KEYS[group_by]), contributor_id, first_whole, after_whole))
    for lo, hi in ((start, _midnight(first_whole)), (_midnight(after_whole), end)):
        if lo < hi:
            rows += await conn.fetch(_FROM_LEDGER.format(key=_KEYS[group_by]), contributor_id, lo, hi, None)
    return rows


async def earnings(
    db: Database,
    contributor_id: str,
    *,
    start: datetime,
    end: datetime,
    group_by: GroupBy,
    image_id: UUID | None,
    now: datetime,
) -> dict[str, Any]:
    # One snapshot for every statement: read committed let a sale committing between them show in the
    # balances but not in the groups (seen in CI: balances held, groups empty).
    async with db.connection() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        if image_id is not None and not await conn.fetchval(
            "select true from payouts.ledger where contributor_id = $1 and image_id = $2 limit 1",
            contributor_id,
            image_id,
        ):
            # Not one of the caller's sold images: indistinguishable from an image that does not exist.
            raise Problem(404, "image-not-found", "Image not found", "None of your sales is of this image.")
        rows = await _earning_rows(conn, contributor_id, start, end, group_by, image_id)
        found = await balances(conn, contributor_id, now)
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rows:
        line = merged.setdefault(
            (r["key"], r["license_type"], r["currency"]),
            {
                "license_type": r["license_type"],
                "currency": r["currency"],
                "downloads": 0,
                "refunds": 0,
                "earned_minor": 0,
            },
        )
        for k in ("downloads", "refunds", "earned_minor"):
            line[k] += r[k]
    groups: dict[str, dict[str, Any]] = {}
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    for (key, license_type, currency), line in sorted(merged.items()):
        groups.setdefault(key, {"key": key, "lines": []})["lines"].append(line)
        total = totals.setdefault(
            (license_type, currency),
            {"license_type": license_type, "currency": currency, "downloads": 0, "refunds": 0, "earned_minor": 0},
        )
        for k in ("downloads", "refunds", "earned_minor"):
            total[k] += line[k]
    return {
        "from": start,
        "to": end,
        "group_by": group_by,
        "groups": list(groups.values()),
        "totals": [totals[k] for k in sorted(totals)],
        "balances": [
            {
                "currency": b.currency,
                "balance_minor": b.balance_minor,
                "payable_minor": b.payable_minor,
                "held_minor": b.held_minor,
            }
            for b in found
        ],
    }


CSV_COLUMNS = (
    "occurred_at",
    "kind",
    "image_id",
    "license_type",
    "order_id",
    "sale_amount_minor",
    "royalty_rate_bp",
    "amount_minor",
    "currency",
    "available_at",
    "payout_id",
    "reason",
)


async def earnings_csv(db: Database, contributor_id: str, *, start: datetime, end: datetime) -> str:
    """Every ledger entry of the period, one per line (the contributor's statement)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    async with db.connection() as conn:
        rows = await conn.fetch(
            f"select {', '.join(CSV_COLUMNS)} from payouts.ledger where contributor_id = $1 "
            "and occurred_at >= $2 and occurred_at < $3 order by occurred_at, id",
            contributor_id,
            start,
            end,
        )
    for r in rows:
        writer.writerow(
            [
                v.astimezone(UTC).isoformat().replace("+00:00", "Z")
                if isinstance(v, datetime)
                else _safe_cell("" if v is None else str(v))
                for v in r.values()
            ]
        )
    return out.getvalue()


def _safe_cell(text: str) -> str:
    # A spreadsheet runs a cell that starts with = + - @ as a formula; an admin's reason could start so.
    if text[:1] in ("=", "+", "@", "\t", "\r") or (text[:1] == "-" and not text.lstrip("-").isdigit()):
        return "'" + text
    return text


_PAYOUT_COLUMNS = (
    "p.id, p.batch_id, b.period, p.currency, p.amount_minor, p.gross_minor, p.withholding_minor, "
    "p.withholding_rate_bp, p.net_minor, p.status, p.transfer_id, p.failure_reason, p.created_at, p.updated_at"
)


async def list_payouts(db: Database, contributor_id: str) -> list[dict[str, Any]]:
    """Payouts of approved batches (a draft is the admin's proposal, not yet the contributor's)."""
    async with db.connection() as conn:
        rows = await conn.fetch(
            f"select {_PAYOUT_COLUMNS} from payouts.payouts p join payouts.batches b on b.id = p.batch_id "
            "where p.contributor_id = $1 and b.status = 'approved' order by p.created_at desc limit 500",
            contributor_id,
        )
    return [dict(r) for r in rows]


async def get_payout(db: Database, contributor_id: str, payout_id: UUID) -> dict[str, Any]:
    async with db.connection() as conn:
        row = await conn.fetchrow(
            f"select {_PAYOUT_COLUMNS} from payouts.payouts p join payouts.batches b on b.id = p.batch_id "
            "where p.id = $1 and p.contributor_id = $2 and b.status = 'approved'",
            payout_id,
            contributor_id,
        )
    if row is None:
        raise Problem(404, "payout-not-found", "Payout not found")
    return dict(row)


async def level(db: Database, contributor_id: str, now: datetime) -> dict[str, Any]:
    year = now.astimezone(UTC).year
    async with db.connection() as conn:
        downloads = await conn.fetchval(
            "select downloads from payouts.download_counts where contributor_id = $1 and year = $2",
            contributor_id,
            year,
        )
        table = await royalty_table_at(conn, now)
    downloads = downloads or 0
    levels = table.table.levels
    index = table.table.level_index(downloads + 1)  # the rate the next download earns
    following = levels[index + 1] if index + 1 < len(levels) else None
    return {
        "year": year,
        "downloads_this_year": downloads,
        "level": index + 1,
        "levels": len(levels),
        "rate_bp": levels[index].rate_bp,
        "next_level_rate_bp": following.rate_bp if following else None,
        "next_level_from_download": following.from_download if following else None,
        "downloads_to_next_level": following.from_download - 1 - downloads if following else None,
        "royalty_table_version": table.version,
        "resets_at": datetime(year + 1, 1, 1, tzinfo=UTC),
    }


async def payout_settings(db: Database, contributor_id: str, default_threshold_minor: int) -> dict[str, Any]:
    async with db.connection() as conn:
        threshold = await conn.fetchval(
            "select threshold_minor from payouts.payout_settings where contributor_id = $1", contributor_id
        )
    return {
        "threshold_minor": threshold or default_threshold_minor,
        "default_threshold_minor": default_threshold_minor,
    }


async def set_payout_threshold(
    db: Database, contributor_id: str, threshold_minor: int, default_threshold_minor: int
) -> dict[str, Any]:
    if threshold_minor < default_threshold_minor:
        raise Problem(
            422,
            "threshold-below-minimum",
            "Threshold below the minimum",
            f"The payout threshold can be raised, not lowered below {default_threshold_minor} minor units.",
            errors=[{"name": "threshold_minor", "in": "body", "reason": f"must be at least {default_threshold_minor}"}],
        )
    async with db.transaction() as conn:
        await conn.execute(
            "insert into payouts.payout_settings (contributor_id, threshold_minor) values ($1, $2) "
            "on conflict (contributor_id) do update set threshold_minor = excluded.threshold_minor, updated_at = now()",
            contributor_id,
            threshold_minor,
        )
    return {"threshold_minor": threshold_minor, "default_threshold_minor": default_threshold_minor}
