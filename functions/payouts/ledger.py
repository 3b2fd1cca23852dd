"""The append-only ledger: posting entries and reading balances. Nothing here updates or deletes.

Every entry names what it records in `source_key` (unique), so a redelivered event or a retried step
posts nothing the second time. Balance = sum of entries per (contributor, currency); the payable part
is the sum of entries whose `available_at` has passed (earnings wait out the hold period; a reversal
becomes effective when the earning it reverses does, so a refund inside the hold nets to nothing).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

EntryKind = str  # 'earning' | 'reversal' | 'payout' | 'payout_returned' | 'withholding' | 'adjustment'

_COLUMNS = (
    "source_key",
    "contributor_id",
    "currency",
    "kind",
    "amount_minor",
    "occurred_at",
    "available_at",
    "order_id",
    "license_id",
    "image_id",
    "license_type",
    "sale_amount_minor",
    "platform_minor",
    "royalty_rate_bp",
    "royalty_table_version",
    "download_number",
    "plan_amount_minor",
    "plan_downloads",
    "reverses_entry_id",
    "batch_id",
    "payout_id",
    "withholding_rate_bp",
    "reason",
    "actor",
)


async def post_entry(conn: asyncpg.Connection, **entry: Any) -> asyncpg.Record | None:
    """Append one entry; None if an entry with its source_key exists (a repeat of the same fact)."""
    unknown = entry.keys() - set(_COLUMNS)
    if unknown:
        raise TypeError(f"unknown ledger columns {sorted(unknown)}")
    names = [c for c in _COLUMNS if c in entry]
    placeholders = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    return await conn.fetchrow(
        f"insert into payouts.ledger ({', '.join(names)}) values ({placeholders}) "
        "on conflict (source_key) do nothing returning *",
        *(entry[c] for c in names),
    )


async def lock_contributor(conn: asyncpg.Connection, contributor_id: str) -> None:
    """Serialise the steps that read a balance and then debit it (payouts), per contributor."""
    await conn.execute("select pg_advisory_xact_lock(hashtext('payouts.contributor:' || $1))", contributor_id)


@dataclass(frozen=True)
class Balance:
    currency: str
    balance_minor: int  # every entry
    payable_minor: int  # entries whose available_at has passed
    held_minor: int  # balance - payable: earnings still in their hold period


_BALANCES = """
select currency,
       coalesce(sum(amount_minor), 0)::bigint as balance,
       coalesce(sum(amount_minor) filter (where available_at <= $2), 0)::bigint as payable
from payouts.ledger where contributor_id = $1
group by currency order by currency
"""


async def balances(conn: asyncpg.Connection, contributor_id: str, now: datetime) -> list[Balance]:
    rows = await conn.fetch(_BALANCES, contributor_id, now)
    return [Balance(r["currency"], r["balance"], r["payable"], r["balance"] - r["payable"]) for r in rows]


async def payable(conn: asyncpg.Connection, contributor_id: str, currency: str, now: datetime) -> int:
    return await conn.fetchval(
        "select coalesce(sum(amount_minor), 0)::bigint from payouts.ledger "
        "where contributor_id = $1 and currency = $2 and available_at <= $3",
        contributor_id,
        currency,
        now,
    )
