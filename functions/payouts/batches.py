"""Payout batches: one draft per period of everyone payable, reviewed, then approved (fan-out) or cancelled.

Creation is one set-based statement over the ledger, so 100k contributors cost one aggregate, not
100k round trips. An advisory lock on the period plus a unique index on the live batch of a period
make two concurrent creations end with one batch: the second finds the first's.

Money committed to a live batch item (draft or approved, not sent yet) is not payable again: a
second batch subtracts it, so no minor unit is offered twice before the ledger records its payout.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from functions.payouts.audit import record_admin_action
from shared.bus.events import PayoutBatchCreated, PayoutTransferRequested
from shared.bus.outbox import add_to_outbox
from shared.db import Database
from shared.http import Problem
from shared.paging import decode_cursor, encode_cursor

EXCLUSION_REASONS = ("negative_balance", "below_threshold", "no_tax_profile", "onboarding_incomplete")

_FILL = """
with bal as (
    select contributor_id, currency, sum(amount_minor)::bigint as payable
    from payouts.ledger where available_at <= $2
    group by contributor_id, currency
), reserved as (
    select p.contributor_id, p.currency, sum(p.amount_minor)::bigint as amount
    from payouts.payouts p join payouts.batches b on b.id = p.batch_id
    where p.status in ('draft', 'approved') and b.status <> 'cancelled'
    group by p.contributor_id, p.currency
), cand as (
    select bal.contributor_id, bal.currency, bal.payable - coalesce(reserved.amount, 0) as payable,
           coalesce(s.threshold_minor, $3) as threshold,
           t.contributor_id is not null as has_tax,
           a.account_id, coalesce(a.payouts_enabled, false) as enabled
    from bal
    left join reserved using (contributor_id, currency)
    left join payouts.payout_settings s on s.contributor_id = bal.contributor_id
    left join payouts.tax_profiles t on t.contributor_id = bal.contributor_id
    left join payouts.connect_accounts a on a.contributor_id = bal.contributor_id
), judged as (
    select *, case
        when payable < 0 then 'negative_balance'
        when payable < threshold then 'below_threshold'
        when not has_tax then 'no_tax_profile'
        when not enabled then 'onboarding_incomplete'
    end as reason
    from cand where payable <> 0
), items as (
    insert into payouts.payouts
        (id, batch_id, contributor_id, currency, amount_minor, account_id, idempotency_key, status)
    select gen_random_uuid(), $1, contributor_id, currency, payable, account_id,
           -- Stripe's key: payout-<batch>-<contributor>, the currency appended only for a second currency
           'payout-' || $1::uuid::text || '-' || contributor_id ||
               case when count(*) over (partition by contributor_id) > 1 then '-' || currency else '' end,
           'draft'
    from judged where reason is null
    returning 1
), excluded as (
    insert into payouts.batch_exclusions (batch_id, contributor_id, currency, payable_minor, reason)
    select $1, contributor_id, currency, payable, reason from judged where reason is not null
    returning 1
)
select (select count(*) from items) as items, (select count(*) from excluded) as excluded
"""


def previous_period(now: datetime) -> str:
    """The calendar month (UTC) before `now`: the monthly batch of the 1st pays what the last month made payable."""
    now = now.astimezone(UTC)
    year, month = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return f"{year:04d}-{month:02d}"


async def create_batch(
    db: Database, *, period: str, actor: str, now: datetime, default_threshold_minor: int
) -> tuple[dict[str, Any], bool]:
    """The live batch of `period`: (batch, True) if this call created it, (existing, False) otherwise."""
    async with db.transaction() as conn:
        await conn.execute("select pg_advisory_xact_lock(hashtext('payouts.batch:' || $1))", period)
        existing = await conn.fetchval(
            "select id from payouts.batches where period = $1 and status <> 'cancelled'", period
        )
        if existing is not None:
            return await _batch_view(conn, existing), False
        batch_id = uuid.uuid4()
        await conn.execute(
            "insert into payouts.batches (id, period, status, cutoff_at, created_by) values ($1, $2, 'draft', $3, $4)",
            batch_id,
            period,
            now,
            actor,
        )
        counts = await conn.fetchrow(_FILL, batch_id, now, default_threshold_minor)
        await add_to_outbox(conn, PayoutBatchCreated(batch_id=batch_id), message_id=f"payout-batch-{batch_id}")
        await record_admin_action(
            conn,
            actor=actor,
            action="payout_batch.create",
            target_type="payout_batch",
            target_id=str(batch_id),
            after={"period": period, "items": counts["items"], "excluded": counts["excluded"]},
        )
        return await _batch_view(conn, batch_id), True


async def _batch_row(conn: asyncpg.Connection, batch_id: UUID, *, lock: bool = False) -> asyncpg.Record:
    row = await conn.fetchrow("select * from payouts.batches where id = $1" + (" for update" if lock else ""), batch_id)
    if row is None:
        raise Problem(404, "batch-not-found", "Payout batch not found")
    return row


async def _batch_view(conn: asyncpg.Connection, batch_id: UUID, *, with_lines: bool = True) -> dict[str, Any]:
    batch = await _batch_row(conn, batch_id)
    totals = await conn.fetch(
        "select currency, count(*) as payouts, sum(amount_minor)::bigint as amount_minor, "
        "coalesce(sum(net_minor), 0)::bigint as net_paid_minor, "
        "coalesce(sum(withholding_minor), 0)::bigint as withholding_minor "
        "from payouts.payouts where batch_id = $1 group by currency order by currency",
        batch_id,
    )
    statuses = await conn.fetch(
        "select status, count(*) as n from payouts.payouts where batch_id = $1 group by status", batch_id
    )
    reasons = await conn.fetch(
        "select reason, currency, count(*) as contributors, sum(payable_minor)::bigint as payable_minor "
        "from payouts.batch_exclusions where batch_id = $1 group by reason, currency order by reason, currency",
        batch_id,
    )
    view: dict[str, Any] = {
        "id": batch["id"],
        "period": batch["period"],
        "status": batch["status"],
        "cutoff_at": batch["cutoff_at"],
        "created_by": batch["created_by"],
        "created_at": batch["created_at"],
        "approved_by": batch["approved_by"],
        "approved_at": batch["approved_at"],
        "cancelled_by": batch["cancelled_by"],
        "cancelled_at": batch["cancelled_at"],
        "totals": [dict(r) for r in totals],
        "payout_statuses": {r["status"]: r["n"] for r in statuses},
        "exclusions_by_reason": [dict(r) for r in reasons],
    }
    if with_lines:
        view["payouts"], view["payouts_next_cursor"] = await _lines(conn, "payouts", batch_id, None, LINES_PAGE)
        view["exclusions"], view["exclusions_next_cursor"] = await _lines(
            conn, "exclusions", batch_id, None, LINES_PAGE
        )
    return view


LINES_PAGE = 200  # lines of each kind in the detail view; the rest are paged (a batch can pay thousands)

# The columns of a page of a batch's payouts or exclusions, and the sort key its cursor carries.
_LINES = {
    "payouts": (
        "select id, contributor_id, currency, amount_minor, status, withholding_minor, net_minor, transfer_id, "
        "failure_reason from payouts.payouts where batch_id = $1",
        ("contributor_id", "currency"),
    ),
    "exclusions": (
        "select contributor_id, currency, payable_minor, reason from payouts.batch_exclusions where batch_id = $1",
        ("reason", "contributor_id", "currency"),
    ),
}


async def _lines(
    conn: asyncpg.Connection, kind: str, batch_id: UUID, after: list[str] | None, per_page: int
) -> tuple[list[dict[str, Any]], str | None]:
    sql, key = _LINES[kind]
    args: list[Any] = [batch_id]
    if after is not None:
        args += after
        sql += f" and ({', '.join(key)}) > ({', '.join(f'${i + 2}' for i in range(len(key)))})"
    args.append(per_page + 1)
    rows = [dict(r) for r in await conn.fetch(f"{sql} order by {', '.join(key)} limit ${len(args)}", *args)]
    if len(rows) <= per_page:
        return rows, None
    return rows[:per_page], encode_cursor([str(rows[per_page - 1][k]) for k in key])


async def batch_lines(
    db: Database, batch_id: UUID, kind: str, *, cursor: str | None = None, per_page: int = LINES_PAGE
) -> dict[str, Any]:
    """One page of a batch's payouts or exclusions, in the detail view's order, and the next page's cursor."""
    async with db.connection() as conn:
        await _batch_row(conn, batch_id)  # 404 for an unknown batch
        after = None if cursor is None else decode_cursor(cursor, len(_LINES[kind][1]))
        items, next_cursor = await _lines(conn, kind, batch_id, after, per_page)
    return {"items": items, "next_cursor": next_cursor}


async def get_batch(db: Database, batch_id: UUID) -> dict[str, Any]:
    async with db.connection() as conn:
        return await _batch_view(conn, batch_id)


async def list_batches(db: Database, limit: int = 50) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        ids = await conn.fetch("select id from payouts.batches order by created_at desc limit $1", limit)
        return [await _batch_view(conn, r["id"], with_lines=False) for r in ids]


def _not_draft(batch: asyncpg.Record, verb: str) -> Problem:
    return Problem(
        409,
        "batch-not-draft",
        f"Batch cannot be {verb}",
        f"The batch is {batch['status']}; only a draft can be {verb}.",
    )


async def approve_batch(db: Database, batch_id: UUID, actor: str) -> dict[str, Any]:
    """Approve a draft: one transfer message per payout, committed with the approval (fan-out)."""
    async with db.transaction() as conn:
        batch = await _batch_row(conn, batch_id, lock=True)
        if batch["status"] != "draft":
            raise _not_draft(batch, "approved")
        await conn.execute(
            "update payouts.batches set status = 'approved', approved_by = $2, approved_at = now() where id = $1",
            batch_id,
            actor,
        )
        items = await conn.fetch(
            "update payouts.payouts set status = 'approved', updated_at = now() "
            "where batch_id = $1 and status = 'draft' returning id, contributor_id",
            batch_id,
        )
        for item in items:
            await add_to_outbox(
                conn,
                PayoutTransferRequested(batch_id=batch_id, payout_id=item["id"], contributor_id=item["contributor_id"]),
                message_id=f"payout-transfer-{item['id']}",
            )
        await record_admin_action(
            conn,
            actor=actor,
            action="payout_batch.approve",
            target_type="payout_batch",
            target_id=str(batch_id),
            before={"status": "draft"},
            after={"status": "approved", "payouts": len(items)},
        )
        return await _batch_view(conn, batch_id)


async def cancel_batch(db: Database, batch_id: UUID, actor: str) -> dict[str, Any]:
    """Cancel a draft; nothing was debited, so nothing is returned. Its period may get a new batch."""
    async with db.transaction() as conn:
        batch = await _batch_row(conn, batch_id, lock=True)
        if batch["status"] != "draft":
            raise _not_draft(batch, "cancelled")
        await conn.execute(
            "update payouts.batches set status = 'cancelled', cancelled_by = $2, cancelled_at = now() where id = $1",
            batch_id,
            actor,
        )
        cancelled = await conn.execute(
            "update payouts.payouts set status = 'cancelled', updated_at = now() "
            "where batch_id = $1 and status = 'draft'",
            batch_id,
        )
        await record_admin_action(
            conn,
            actor=actor,
            action="payout_batch.cancel",
            target_type="payout_batch",
            target_id=str(batch_id),
            before={"status": "draft"},
            after={"status": "cancelled", "payouts": int(cancelled.split()[-1])},
        )
        return await _batch_view(conn, batch_id)
