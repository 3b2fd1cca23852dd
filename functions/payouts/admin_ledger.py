"""Admin actions on the books: publishing a royalty table and adjusting a contributor's balance.

Each writes its change and its `audit.recorded` event in one transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from functions.payouts.audit import record_admin_action
from functions.payouts.ledger import post_entry
from functions.payouts.royalties import LevelTable
from shared.db import Database
from shared.http import Problem


def _table_out(row: Any) -> dict[str, Any]:
    return {
        "version": row["version"],
        "effective_at": row["effective_at"],
        "levels": row["levels"],
        "published_by": row["published_by"],
        "published_at": row["published_at"],
    }


async def publish_royalty_table(
    db: Database, table: LevelTable, effective_at: datetime, actor: str, now: datetime
) -> dict[str, Any]:
    """A new version, in force for sales at or after `effective_at` (never earlier than now: what was
    sold before is never re-rated)."""
    if effective_at < now:
        raise Problem(
            422,
            "effective-time-in-the-past",
            "Effective time in the past",
            "A royalty table applies to later sales only; give an effective time from now on.",
            errors=[{"name": "effective_at", "in": "body", "reason": "must not be in the past"}],
        )
    levels = [level.model_dump() for level in table.levels]
    async with db.transaction() as conn:
        await conn.execute("lock table payouts.royalty_tables in share row exclusive mode")
        latest = await conn.fetchrow(
            "select version, effective_at from payouts.royalty_tables order by version desc limit 1"
        )
        if effective_at <= latest["effective_at"]:
            raise Problem(
                409,
                "effective-time-not-after-latest",
                "A later table is already published",
                f"Version {latest['version']} takes effect at {latest['effective_at'].isoformat()}; "
                "a new table must take effect after it.",
            )
        row = await conn.fetchrow(
            "insert into payouts.royalty_tables (version, effective_at, levels, published_by) "
            "values ($1, $2, $3, $4) returning *",
            latest["version"] + 1,
            effective_at,
            levels,
            actor,
        )
        out = _table_out(row)
        await record_admin_action(
            conn,
            actor=actor,
            action="royalty_table.publish",
            target_type="royalty_table",
            target_id=str(row["version"]),
            after={"effective_at": effective_at.isoformat(), "levels": levels},
        )
    return out


async def list_royalty_tables(db: Database) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        rows = await conn.fetch("select * from payouts.royalty_tables order by version desc")
    return [_table_out(r) for r in rows]


async def adjust_balance(
    db: Database, *, contributor_id: str, amount_minor: int, currency: str, reason: str, actor: str, now: datetime
) -> dict[str, Any]:
    """An admin credit (> 0) or debit (< 0), payable at once, with the reason on the entry."""
    adjustment_id = uuid.uuid4()
    async with db.transaction() as conn:
        entry = await post_entry(
            conn,
            source_key=f"adjustment:{adjustment_id}",
            contributor_id=contributor_id,
            currency=currency,
            kind="adjustment",
            amount_minor=amount_minor,
            occurred_at=now,
            available_at=now,
            reason=reason,
            actor=actor,
        )
        await record_admin_action(
            conn,
            actor=actor,
            action="ledger.adjust",
            target_type="contributor",
            target_id=contributor_id,
            after={"entry_id": entry["id"], "amount_minor": amount_minor, "currency": currency, "reason": reason},
        )
    return dict(entry)
