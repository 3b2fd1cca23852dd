"""Earnings from the orders topic: every sale line credits its contributor, every refund reverses it.

One transaction per message: the inbox claim, the entries and the download counts commit together,
so a redelivered message posts nothing twice. A completion and a refund of one order take the same
advisory lock, so whichever the bus delivers first, the refund reverses exactly what was credited
(or, when it comes first, the completion credits nothing).

Where the data comes from: checkout puts the per-line facts on the events (`OrderCompleted.lines`,
the plan's price and allotment on `LicenseIssued`), including the contributor of each image as sold.
Payouts keeps no copy of the catalogue: the seller of record is what checkout licensed, and a sale
never waits for an image event that travels on another subscription.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import structlog

from functions.payouts.ledger import post_entry
from functions.payouts.royalties import LevelTable, RoyaltyTable, split_sale, subscription_earning
from shared.bus.events import LicenseIssued, OrderCompleted, OrderRefunded, parse_event
from shared.bus.inbox import claim_message
from shared.bus.port import ReceivedMessage
from shared.db import Database

log = structlog.get_logger(__name__)

SUBSCRIPTION = "payouts"


async def handle_orders_message(db: Database, message: ReceivedMessage, hold: timedelta) -> str:
    """Apply one orders-topic message once; says what it did ('duplicate' for a redelivery)."""
    event = parse_event(message.subject, message.body)
    async with db.transaction() as conn:
        if not await claim_message(conn, "payouts", SUBSCRIPTION, message.message_id):
            return "duplicate"
        if isinstance(event, OrderCompleted):
            return await credit_order(conn, event, event.paid_at or message.enqueued_time, hold)
        if isinstance(event, OrderRefunded):
            return await reverse_order(conn, event)
        if isinstance(event, LicenseIssued):
            return await credit_subscription_download(conn, event, event.issued_at or message.enqueued_time, hold)
        return "ignored"


async def royalty_table_at(conn: asyncpg.Connection, at: datetime) -> RoyaltyTable:
    """The table in force at `at`: the newest whose effective time is not after it."""
    row = await conn.fetchrow(
        "select version, effective_at, levels from payouts.royalty_tables where effective_at <= $1 "
        "order by effective_at desc limit 1",
        at,
    )
    return RoyaltyTable(row["version"], row["effective_at"], LevelTable(levels=row["levels"]))


async def count_download(conn: asyncpg.Connection, contributor_id: str, at: datetime) -> int:
    """Count one more download of the contributor's calendar year (UTC) of `at`; its number (1-based)."""
    return await conn.fetchval(
        "insert into payouts.download_counts (contributor_id, year, downloads) values ($1, $2, 1) "
        "on conflict (contributor_id, year) do update set downloads = download_counts.downloads + 1 "
        "returning downloads",
        contributor_id,
        at.astimezone(UTC).year,
    )


async def _lock_order(conn: asyncpg.Connection, order_id: UUID) -> None:
    await conn.execute("select pg_advisory_xact_lock(hashtext('payouts.order:' || $1::uuid::text))", order_id)


async def credit_order(conn: asyncpg.Connection, event: OrderCompleted, at: datetime, hold: timedelta) -> str:
    await _lock_order(conn, event.order_id)
    if await conn.fetchval("select true from payouts.refunded_orders where order_id = $1", event.order_id):
        return "refunded-before-credit"
    if event.lines is None:
        log.warning("payouts.order_without_lines", order_id=str(event.order_id))
        return "no-lines"
    credited = 0
    for line in event.lines:
        if not line.contributor_id:
            log.error("payouts.line_without_contributor", order_id=str(event.order_id), image_id=str(line.image_id))
            continue
        number = await count_download(conn, line.contributor_id, at)
        table = await royalty_table_at(conn, at)
        rate = table.table.rate_for(number)
        split = split_sale(line.amount_minor, rate)
        entry = await post_entry(
            conn,
            source_key=f"earning:order:{event.order_id}:{line.image_id}:{line.license_type}",
            contributor_id=line.contributor_id,
            currency=line.currency,
            kind="earning",
            amount_minor=split.earned_minor,
            occurred_at=at,
            available_at=at + hold,
            order_id=event.order_id,
            image_id=line.image_id,
            license_type=line.license_type,
            sale_amount_minor=line.amount_minor,
            platform_minor=split.platform_minor,
            royalty_rate_bp=rate,
            royalty_table_version=table.version,
            download_number=number,
        )
        credited += entry is not None
    return f"credited-{credited}"


async def reverse_order(conn: asyncpg.Connection, event: OrderRefunded) -> str:
    """Reverse every earning of the order not reversed yet, each by exactly what it credited."""
    await _lock_order(conn, event.order_id)
    earnings = await conn.fetch(
        "select e.* from payouts.ledger e where e.order_id = $1 and e.kind = 'earning' "
        "and not exists (select 1 from payouts.ledger r where r.reverses_entry_id = e.id) order by e.id",
        event.order_id,
    )
    if not earnings:
        already = await conn.fetchval(
            "select true from payouts.ledger where order_id = $1 and kind = 'earning' limit 1", event.order_id
        )
        if already:
            return "already-reversed"
        # The refund overtook the completion: remember it, and the completion credits nothing.
        await conn.execute(
            "insert into payouts.refunded_orders (order_id) values ($1) on conflict do nothing", event.order_id
        )
        return "refund-before-credit"
    for earning in earnings:
        await post_entry(
            conn,
            source_key=f"reversal:{earning['id']}",
            contributor_id=earning["contributor_id"],
            currency=earning["currency"],
            kind="reversal",
            amount_minor=-earning["amount_minor"],
            occurred_at=datetime.now(UTC),
            # Effective when the earning is: a refund inside the hold nets it to nothing; after a
            # payout it lowers the payable balance at once (possibly below zero, netted next time).
            available_at=earning["available_at"],
            order_id=earning["order_id"],
            image_id=earning["image_id"],
            license_type=earning["license_type"],
            sale_amount_minor=-earning["sale_amount_minor"],
            platform_minor=-earning["platform_minor"],
            royalty_rate_bp=earning["royalty_rate_bp"],
            royalty_table_version=earning["royalty_table_version"],
            reverses_entry_id=earning["id"],
        )
    return f"reversed-{len(earnings)}"


async def credit_subscription_download(
    conn: asyncpg.Connection, event: LicenseIssued, at: datetime, hold: timedelta
) -> str:
    if event.order_id is not None:
        return "paid-through-order"  # order.completed's lines credit licenses of an order
    if not event.contributor_id or event.plan_amount_minor is None or not event.plan_downloads:
        log.error("payouts.download_without_plan_facts", license_id=str(event.license_id))
        return "no-plan-facts"
    currency = event.plan_currency or "USD"
    number = await count_download(conn, event.contributor_id, at)
    table = await royalty_table_at(conn, at)
    rate = table.table.rate_for(number)
    earned = subscription_earning(event.plan_amount_minor, event.plan_downloads, rate, currency)
    entry = await post_entry(
        conn,
        source_key=f"earning:license:{event.license_id}",
        contributor_id=event.contributor_id,
        currency=currency,
        kind="earning",
        amount_minor=earned,
        occurred_at=at,
        available_at=at + hold,
        license_id=event.license_id,
        image_id=event.image_id,
        license_type=event.license_type,
        sale_amount_minor=0,
        platform_minor=-earned,  # the subscription's revenue is the platform's; each download costs it this
        royalty_rate_bp=rate,
        royalty_table_version=table.version,
        download_number=number,
        plan_amount_minor=event.plan_amount_minor,
        plan_downloads=event.plan_downloads,
    )
    return "credited-1" if entry is not None else "credited-0"
