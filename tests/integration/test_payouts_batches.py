"""Payout batches on a real database with an in-memory Stripe Connect: who is paid, who is left out and
why, approval fan-out, exactly-once transfers across crashes, and failed transfers returning the money."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from functions.payouts import batches
from functions.payouts.accounts import apply_connect_event, start_onboarding
from functions.payouts.earnings import handle_orders_message
from functions.payouts.ledger import balances
from functions.payouts.tax import TaxInfoIn, save_tax_info
from functions.payouts.transfers import send_payout
from shared.crypto import EnvelopeCipher, LocalKeyFileWrapper
from shared.http import Problem
from shared.payments.gateway import PaymentProviderUnavailable
from shared.payments.webhooks import StripeEvent
from tests.fixtures.moderation import outbox
from tests.fixtures.payouts import HOLD, orders_message, refund, sale

NOW = datetime.now(UTC)
PAST_HOLD = NOW - HOLD - timedelta(days=1)
THRESHOLD = 3500


def _w9(country="US") -> TaxInfoIn:
    return TaxInfoIn.model_validate(
        {
            "form_type": "W-9",
            "legal_name": "A Person",
            "address": {"line1": "1 Main St", "city": "Springfield", "country": "US"},
            "country": country,
            "tin": "287-65-4321",
        }
    )


def _w8(treaty: bool) -> TaxInfoIn:
    return TaxInfoIn.model_validate(
        {
            "form_type": "W-8BEN",
            "legal_name": "Ana Silva",
            "address": {"line1": "Rua Augusta 10", "city": "Lisboa", "country": "PT"},
            "country": "PT",
            "tin": "PT-987654321",
            "treaty_claim": treaty,
        }
    )


class Books:
    """Contributors set up the way the real flow does: sales through the handler, a tax form, onboarding."""

    def __init__(self, db, connect, tmp_path) -> None:
        self.db, self.connect = db, connect
        self.cipher = EnvelopeCipher(LocalKeyFileWrapper(tmp_path / "kek"))
        self._event = 0

    async def earn(self, contributor, amount_minor, *, currency="USD", at=PAST_HOLD):
        """Sales at 15% (the first level) worth `amount_minor` of earnings."""
        order = sale(contributor, amount_minor=-(-amount_minor * 100 // 15), currency=currency, at=at)
        await handle_orders_message(self.db, orders_message(order), HOLD)
        return order

    async def refund(self, order):
        await handle_orders_message(self.db, orders_message(refund(order)), HOLD)

    async def tax(self, contributor, form=None):
        await save_tax_info(self.db, self.cipher, contributor, form or _w9())

    async def onboard(self, contributor, *, enabled=True):
        account = await start_onboarding(self.db, self.connect, contributor, "US", None, "http://localhost/return")
        self._event += 1
        event = StripeEvent.model_validate(
            {
                "id": f"evt_{contributor}_{self._event}",
                "type": "account.updated",
                "created": int(NOW.timestamp()) + self._event,
                "data": {
                    "object": {"id": account["account_id"], "payouts_enabled": enabled, "details_submitted": enabled}
                },
            }
        )
        await apply_connect_event(self.db, event)
        return account["account_id"]

    async def ready(self, contributor, amount_minor, **kwargs):
        order = await self.earn(contributor, amount_minor, **kwargs)
        await self.tax(contributor)
        await self.onboard(contributor)
        return order

    async def batch(self, period="2026-11", now=None):
        found, _ = await batches.create_batch(
            self.db, period=period, actor="admin-1", now=now or datetime.now(UTC), default_threshold_minor=THRESHOLD
        )
        return found

    async def payable(self, contributor, currency="USD"):
        async with self.db.connection() as conn:
            found = {b.currency: b for b in await balances(conn, contributor, datetime.now(UTC))}
        return found[currency].payable_minor if currency in found else 0

    async def entries(self, contributor, *kinds):
        rows = await self.db.pool.fetch(
            "select kind, amount_minor from payouts.ledger where contributor_id = $1 and kind = any($2) order by id",
            contributor,
            list(kinds),
        )
        return [(r["kind"], r["amount_minor"]) for r in rows]


@pytest.fixture
def books(db, fake_connect, tmp_path) -> Books:
    return Books(db, fake_connect, tmp_path)


async def test_a_batch_pays_everyone_payable_and_lists_everyone_left_out_with_the_reason(books, db):
    await books.ready("paid-1", 6000)
    await books.ready("paid-2", 4000, currency="EUR")
    await books.earn("small", 1000)
    await books.tax("small")
    await books.onboard("small")
    await books.earn("no-tax", 5000)
    await books.onboard("no-tax")
    await books.earn("not-onboarded", 5000)
    await books.tax("not-onboarded")
    await books.onboard("not-onboarded", enabled=False)
    order = await books.ready("negative", 5000)
    await books.earn("negative", 1500)
    await db.pool.execute(  # paid out earlier, then refunded: the balance is below zero
        "insert into payouts.ledger (source_key, contributor_id, currency, kind, amount_minor, occurred_at, "
        "available_at) values ('payout:old', 'negative', 'USD', 'payout', -6500, now(), now())"
    )
    await books.refund(order)
    await books.earn("held", 9000, at=NOW)  # still in its hold period: not payable, not listed

    batch = await books.batch()

    assert batch["status"] == "draft" and batch["period"] == "2026-11"
    assert {(p["contributor_id"], p["currency"], p["amount_minor"]) for p in batch["payouts"]} == {
        ("paid-1", "USD", 6000),
        ("paid-2", "EUR", 4000),
    }
    assert {(e["contributor_id"], e["reason"]) for e in batch["exclusions"]} == {
        ("small", "below_threshold"),
        ("no-tax", "no_tax_profile"),
        ("not-onboarded", "onboarding_incomplete"),
        ("negative", "negative_balance"),
    }
    assert [(t["currency"], t["payouts"], t["amount_minor"]) for t in batch["totals"]] == [
        ("EUR", 1, 4000),
        ("USD", 1, 6000),
    ]
    by_reason = {r["reason"]: r for r in batch["exclusions_by_reason"]}
    assert by_reason["below_threshold"]["payable_minor"] == 1000
    assert by_reason["negative_balance"]["payable_minor"] == -5000
    (created,) = await outbox(db, "payout.batch.created")
    assert created["batch_id"] == str(batch["id"])
    (audit,) = await outbox(db, "audit.recorded")
    assert (audit["action"], audit["target_id"]) == ("payout_batch.create", str(batch["id"]))
    assert audit["after"]["items"] == 2


async def test_a_large_batch_is_read_a_page_at_a_time_each_line_exactly_once(books, db):
    for n in range(7):
        await books.ready(f"paid-{n}", 5000 + n)
        await books.earn(f"small-{n}", 100 + n)
    batch = await books.batch()

    async def every(kind):
        seen, cursor = [], None
        while True:
            page = await batches.batch_lines(db, batch["id"], kind, cursor=cursor, per_page=3)
            seen += page["items"]
            if (cursor := page["next_cursor"]) is None:
                return seen

    payouts = await every("payouts")
    assert [p["contributor_id"] for p in payouts] == [f"paid-{n}" for n in range(7)]
    assert payouts == batch["payouts"] and batch["payouts_next_cursor"] is None  # small: all in the detail view
    assert [e["contributor_id"] for e in await every("exclusions")] == [f"small-{n}" for n in range(7)]
    with pytest.raises(ValueError):
        await batches.batch_lines(db, batch["id"], "payouts", cursor="bm90LWEta2V5")
    with pytest.raises(Problem) as unknown:
        await batches.batch_lines(db, uuid.uuid4(), "payouts")
    assert unknown.value.status == 404


async def test_a_contributor_may_raise_the_threshold(books, db):
    from functions.payouts.reports import set_payout_threshold

    await books.ready("careful", 6000)
    await set_payout_threshold(db, "careful", 10_000, THRESHOLD)
    batch = await books.batch()
    assert [(e["contributor_id"], e["reason"]) for e in batch["exclusions"]] == [("careful", "below_threshold")]
    with pytest.raises(Problem) as refused:
        await set_payout_threshold(db, "careful", 100, THRESHOLD)
    assert refused.value.status == 422


async def test_two_concurrent_creations_for_one_period_make_one_batch(books, db):
    await books.ready("paid-1", 6000)
    results = await asyncio.gather(
        *(
            batches.create_batch(db, period="2026-11", actor=f"admin-{i}", now=NOW, default_threshold_minor=THRESHOLD)
            for i in range(2)
        )
    )
    assert sorted(created for _, created in results) == [False, True]
    assert results[0][0]["id"] == results[1][0]["id"]
    assert await db.pool.fetchval("select count(*) from payouts.batches") == 1
    assert await db.pool.fetchval("select count(*) from payouts.payouts") == 1


async def test_a_cancelled_draft_frees_its_period_and_its_money(books, db):
    await books.ready("paid-1", 6000)
    first = await books.batch()
    cancelled = await batches.cancel_batch(db, first["id"], "admin-1")
    assert cancelled["status"] == "cancelled" and cancelled["payout_statuses"] == {"cancelled": 1}
    second = await books.batch()
    assert second["id"] != first["id"] and [p["amount_minor"] for p in second["payouts"]] == [6000]
    with pytest.raises(Problem) as refused:
        await batches.approve_batch(db, first["id"], "admin-1")
    assert refused.value.status == 409


async def test_money_in_a_live_batch_is_not_offered_again_by_another(books, db):
    await books.ready("paid-1", 6000)
    await books.batch("2026-10")
    later = await books.batch("2026-11")
    assert later["payouts"] == [] and later["exclusions"] == []


async def test_approval_fans_out_one_transfer_per_payout_which_pays_once_net_of_withholding(books, db, fake_connect):
    await books.earn("treaty", 6000)
    await books.tax("treaty", _w8(treaty=True))  # Portugal: 10% on royalties
    await books.onboard("treaty")
    await books.ready("us", 4000)
    batch = await books.batch()

    approved = await batches.approve_batch(db, batch["id"], "admin-1")
    assert approved["status"] == "approved" and approved["payout_statuses"] == {"approved": 2}
    requests = await outbox(db, "payout.transfer.requested")
    assert sorted(r["contributor_id"] for r in requests) == ["treaty", "us"]
    assert [a["action"] for a in await outbox(db, "audit.recorded")] == ["payout_batch.create", "payout_batch.approve"]

    for request in requests:
        assert await send_payout(db, fake_connect, request["payout_id"], datetime.now(UTC)) == "paid"
        assert await send_payout(db, fake_connect, request["payout_id"], datetime.now(UTC)) == "already-paid"

    assert {k: t.amount_minor for k, t in fake_connect.transfers.items()} == {
        f"payout-{batch['id']}-treaty": 5400,
        f"payout-{batch['id']}-us": 4000,
    }
    assert await books.entries("treaty", "withholding", "payout") == [("withholding", -600), ("payout", -5400)]
    assert await books.entries("us", "withholding", "payout") == [("payout", -4000)]
    assert await books.payable("treaty") == 0 and await books.payable("us") == 0
    paid = {p["contributor_id"]: p for p in await outbox(db, "payout.paid")}
    assert (paid["treaty"]["amount_minor"], paid["treaty"]["currency"]) == (5400, "USD")
    assert paid["treaty"]["transfer_id"].startswith("tr_")


async def test_no_treaty_claim_withholds_30_percent(books, db, fake_connect):
    await books.earn("w8", 6001)
    await books.tax("w8", _w8(treaty=False))
    await books.onboard("w8")
    batch = await books.batch()
    await batches.approve_batch(db, batch["id"], "admin-1")
    (item,) = (await batches.get_batch(db, batch["id"]))["payouts"]
    await send_payout(db, fake_connect, item["id"], datetime.now(UTC))
    # 30% of 60.01 is 18.003: rounded up to 18.01, the contributor gets 41.99 + 18.01 = 60.01
    assert await books.entries("w8", "withholding", "payout") == [("withholding", -1801), ("payout", -4200)]


async def test_a_transfer_retried_after_a_crash_between_stripe_and_the_settle_transfers_once(books, db, fake_connect):
    await books.ready("paid-1", 6000)
    batch = await books.batch()
    await batches.approve_batch(db, batch["id"], "admin-1")
    (item,) = (await batches.get_batch(db, batch["id"]))["payouts"]

    fake_connect.unavailable, fake_connect.late = 1, True  # Stripe transfers, then the reply is lost
    with pytest.raises(PaymentProviderUnavailable):
        await send_payout(db, fake_connect, item["id"], datetime.now(UTC))
    assert (await batches.get_batch(db, batch["id"]))["payouts"][0]["status"] == "sending"
    assert await send_payout(db, fake_connect, item["id"], datetime.now(UTC)) == "paid"

    assert len(fake_connect.calls) == 2 and len(set(fake_connect.calls)) == 1
    assert len(fake_connect.transfers) == 1 and fake_connect.moved == 6000
    assert await books.entries("paid-1", "payout") == [("payout", -6000)]  # debited once
    assert len(await outbox(db, "payout.paid")) == 1


async def test_a_refused_transfer_returns_the_money_and_says_why(books, db, fake_connect):
    account = await books.onboard("paid-1")
    await books.earn("paid-1", 6000)
    await books.tax("paid-1", _w8(treaty=True))
    batch = await books.batch()
    await batches.approve_batch(db, batch["id"], "admin-1")
    (item,) = (await batches.get_batch(db, batch["id"]))["payouts"]
    fake_connect.refuse.add(account)

    assert await send_payout(db, fake_connect, item["id"], datetime.now(UTC)) == "failed"

    assert fake_connect.transfers == {}
    assert await books.entries("paid-1", "withholding", "payout", "payout_returned") == [
        ("withholding", -600),
        ("payout", -5400),
        ("payout_returned", 6000),
    ]
    assert await books.payable("paid-1") == 6000
    (failed,) = await outbox(db, "payout.failed")
    assert failed["contributor_id"] == "paid-1" and "cannot receive" in failed["reason"]
    view = (await batches.get_batch(db, batch["id"]))["payouts"][0]
    assert view["status"] == "failed" and "cannot receive" in view["failure_reason"]


async def test_a_payout_is_never_above_the_payable_balance_when_it_is_sent(books, db, fake_connect):
    order = await books.ready("paid-1", 6000)
    await books.earn("paid-1", 3000)
    batch = await books.batch()
    await batches.approve_batch(db, batch["id"], "admin-1")
    await books.refund(order)  # after the batch was made: 60.00 of the 90.00 is gone
    (item,) = (await batches.get_batch(db, batch["id"]))["payouts"]
    assert item["amount_minor"] == 9000

    await send_payout(db, fake_connect, item["id"], datetime.now(UTC))
    assert fake_connect.moved == 3000
    assert await books.payable("paid-1") == 0


async def test_a_refund_after_a_payout_leaves_a_negative_balance_that_the_next_payout_nets(books, db, fake_connect):
    order = await books.ready("paid-1", 6000)
    batch = await books.batch("2026-10")
    await batches.approve_batch(db, batch["id"], "admin-1")
    (item,) = (await batches.get_batch(db, batch["id"]))["payouts"]
    await send_payout(db, fake_connect, item["id"], datetime.now(UTC))
    await books.refund(order)
    assert await books.payable("paid-1") == -6000
    assert (await books.batch("2026-11"))["exclusions"][0]["reason"] == "negative_balance"

    await books.earn("paid-1", 10_000)
    third = await books.batch("2026-12")
    assert [p["amount_minor"] for p in third["payouts"]] == [4000]
