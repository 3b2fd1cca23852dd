"""Earnings on a real database: sales credit contributors at their level's rate, refunds reverse exactly,
the ledger is append-only, and royalty levels count the downloads of the calendar year."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from functions.payouts.admin_ledger import adjust_balance, publish_royalty_table
from functions.payouts.earnings import handle_orders_message
from functions.payouts.ledger import balances
from functions.payouts.royalties import LevelTable
from shared.bus.events import LicenseIssued
from tests.fixtures.moderation import outbox
from tests.fixtures.payouts import HOLD, download, orders_message, refund, sale

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


async def _apply(db, event, **kwargs) -> str:
    return await handle_orders_message(db, orders_message(event, **kwargs), HOLD)


async def _entries(db, contributor="contributor-1") -> list[dict]:
    rows = await db.pool.fetch("select * from payouts.ledger where contributor_id = $1 order by id", contributor)
    return [dict(r) for r in rows]


async def _balance(db, at: datetime, contributor="contributor-1"):
    async with db.connection() as conn:
        (found,) = await balances(conn, contributor, at)
    return found


async def test_a_sale_credits_the_contributor_at_the_rate_of_their_level_held_for_the_hold_period(db):
    order = sale(amount_minor=999, at=NOW)
    assert await _apply(db, order) == "credited-1"

    (entry,) = await _entries(db)
    assert entry["kind"] == "earning"
    assert (entry["amount_minor"], entry["platform_minor"], entry["sale_amount_minor"]) == (149, 850, 999)
    assert (entry["royalty_rate_bp"], entry["royalty_table_version"], entry["download_number"]) == (1500, 1, 1)
    assert entry["order_id"] == order.order_id and entry["license_type"] == "standard"
    assert entry["available_at"] == NOW + HOLD
    held = await _balance(db, NOW + HOLD - timedelta(seconds=1))
    assert (held.balance_minor, held.payable_minor, held.held_minor) == (149, 0, 149)
    payable = await _balance(db, NOW + HOLD)
    assert (payable.balance_minor, payable.payable_minor) == (149, 149)


async def test_a_redelivered_sale_credits_nothing_more(db):
    message = orders_message(sale(at=NOW))
    assert await handle_orders_message(db, message, HOLD) == "credited-1"
    assert await handle_orders_message(db, message, HOLD) == "duplicate"
    assert len(await _entries(db)) == 1
    assert await db.pool.fetchval("select downloads from payouts.download_counts") == 1


async def test_the_101st_download_of_the_year_earns_20_percent(db):
    await _apply(db, sale(amount_minor=1000, lines=100, at=NOW))
    await _apply(db, sale(amount_minor=1000, lines=2, at=NOW + timedelta(minutes=1)))

    entries = await _entries(db)
    assert [e["download_number"] for e in entries] == list(range(1, 103))
    assert {e["amount_minor"] for e in entries[:100]} == {150}
    assert [(e["royalty_rate_bp"], e["amount_minor"]) for e in entries[100:]] == [(2000, 200), (2000, 200)]


async def test_the_download_count_resets_on_the_first_of_january_utc(db):
    new_year = datetime(2027, 1, 1, tzinfo=UTC)
    await _apply(db, sale(amount_minor=1000, lines=101, at=new_year - timedelta(seconds=1)))
    await _apply(db, sale(amount_minor=1000, at=new_year))

    entries = await _entries(db)
    assert (entries[100]["download_number"], entries[100]["royalty_rate_bp"]) == (101, 2000)
    assert (entries[101]["download_number"], entries[101]["royalty_rate_bp"]) == (1, 1500)


async def test_a_new_royalty_table_applies_only_to_sales_after_its_effective_time(db):
    now = datetime.now(UTC)
    effective = now + timedelta(hours=1)
    doubled = LevelTable(levels=[{"from_download": 1, "rate_bp": 3000}])
    published = await publish_royalty_table(db, doubled, effective, "admin-1", now)
    assert published["version"] == 2

    await _apply(db, sale(amount_minor=1000, at=effective - timedelta(seconds=1)))
    await _apply(db, sale(amount_minor=1000, at=effective))
    before, after = await _entries(db)
    assert (before["royalty_table_version"], before["amount_minor"]) == (1, 150)
    assert (after["royalty_table_version"], after["amount_minor"]) == (2, 300)
    (audit,) = await outbox(db, "audit.recorded")
    assert (audit["service"], audit["action"], audit["actor"], audit["target_id"]) == (
        "payouts",
        "royalty_table.publish",
        "admin-1",
        "2",
    )


async def test_a_royalty_table_cannot_take_effect_in_the_past(db):
    from shared.http import Problem

    now = datetime.now(UTC)
    with pytest.raises(Problem) as refused:
        await publish_royalty_table(
            db, LevelTable(levels=[{"from_download": 1, "rate_bp": 1}]), now - timedelta(1), "a", now
        )
    assert refused.value.status == 422
    assert await db.pool.fetchval("select count(*) from payouts.royalty_tables") == 1
    assert await outbox(db) == []


async def test_a_refund_reverses_exactly_what_was_credited_and_inside_the_hold_nets_to_nothing(db):
    order = sale(amount_minor=1999, lines=2, at=NOW)
    await _apply(db, order)
    assert await _apply(db, refund(order)) == "reversed-2"
    assert await _apply(db, refund(order)) == "already-reversed"  # the same refund sent again

    earnings, reversals = (
        [e for e in await _entries(db) if e["kind"] == "earning"],
        [e for e in await _entries(db) if e["kind"] == "reversal"],
    )
    assert sorted(r["amount_minor"] for r in reversals) == sorted(-e["amount_minor"] for e in earnings)
    assert {r["reverses_entry_id"] for r in reversals} == {e["id"] for e in earnings}
    for at in (NOW, NOW + HOLD):
        found = await _balance(db, at)
        assert (found.balance_minor, found.payable_minor) == (0, 0)


async def test_a_refund_after_the_hold_lowers_the_payable_balance_at_once(db):
    paid = sale(amount_minor=10_000, at=NOW - HOLD - timedelta(days=1))
    await _apply(db, paid)
    await _apply(db, sale(amount_minor=1000, at=NOW))
    await _apply(db, refund(paid))
    found = await _balance(db, NOW)
    assert (found.balance_minor, found.payable_minor, found.held_minor) == (150, 0, 150)


async def test_a_refund_that_overtakes_its_completion_leaves_nothing_credited(db):
    order = sale(at=NOW)
    assert await _apply(db, refund(order)) == "refund-before-credit"
    assert await _apply(db, order) == "refunded-before-credit"
    assert await _entries(db) == []


async def test_a_subscription_download_earns_the_rate_of_the_plans_per_download_value_with_a_floor(db):
    assert await _apply(db, download(plan_amount_minor=4900, plan_downloads=10, at=NOW)) == "credited-1"
    assert await _apply(db, download(plan_amount_minor=19900, plan_downloads=750, at=NOW)) == "credited-1"
    first, second = await _entries(db)
    assert (first["amount_minor"], first["plan_amount_minor"], first["plan_downloads"]) == (73, 4900, 10)
    assert second["amount_minor"] == 10  # 15% of 0.265 is below the floor of 0.10
    assert [first["download_number"], second["download_number"]] == [1, 2]
    assert first["amount_minor"] + first["platform_minor"] == first["sale_amount_minor"] == 0


async def test_a_license_of_an_order_is_credited_through_the_orders_lines_not_twice(db):
    order = sale(at=NOW)
    line = order.lines[0]
    issued = LicenseIssued(
        license_id=order.order_id,
        order_id=order.order_id,
        image_id=line.image_id,
        buyer_id="buyer-1",
        license_type="standard",
        contributor_id=line.contributor_id,
    )
    assert await _apply(db, issued) == "paid-through-order"
    await _apply(db, order)
    assert len(await _entries(db)) == 1


async def test_every_currency_has_its_own_balance(db):
    await _apply(db, sale(amount_minor=1000, currency="USD", at=NOW))
    await _apply(db, sale(amount_minor=2000, currency="EUR", at=NOW))
    async with db.connection() as conn:
        found = await balances(conn, "contributor-1", NOW)
    assert [(b.currency, b.balance_minor) for b in found] == [("EUR", 300), ("USD", 150)]


async def test_an_admin_adjustment_is_payable_at_once_with_its_reason_and_audited(db):
    entry = await adjust_balance(
        db,
        contributor_id="contributor-1",
        amount_minor=-500,
        currency="USD",
        reason="chargeback fee",
        actor="admin-1",
        now=NOW,
    )
    assert (entry["kind"], entry["amount_minor"], entry["reason"], entry["actor"]) == (
        "adjustment",
        -500,
        "chargeback fee",
        "admin-1",
    )
    assert (await _balance(db, NOW)).payable_minor == -500
    (audit,) = await outbox(db, "audit.recorded")
    assert audit["action"] == "ledger.adjust" and audit["after"]["reason"] == "chargeback fee"


@pytest.mark.parametrize(
    "statement",
    [
        "update payouts.ledger set amount_minor = amount_minor + 1",
        "delete from payouts.ledger",
        "truncate payouts.ledger",
        "update payouts.royalty_tables set levels = '[]'",
        "delete from payouts.royalty_tables",
    ],
)
async def test_the_ledger_and_the_royalty_tables_refuse_every_change_and_removal(db, statement):
    await _apply(db, sale(at=NOW))
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await db.pool.execute(statement)
    assert len(await _entries(db)) == 1
