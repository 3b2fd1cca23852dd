"""Random interleavings of sales, subscription downloads, refunds, the clock, new years, payout batches,
refused transfers and crashes between Stripe and the settle, checked after every step:

- the balance is the sum of the entries, and the payable part the sum of those past their hold;
- no payout debits more than the payable balance at the moment it is sent, and none is sent twice;
- every minor unit of every sale is the contributor's or the platform's, refunds reverse exactly;
- each download earns the rate of its number in the contributor's calendar year;
- what left through Stripe is exactly what the ledger says was paid.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from functions.payouts import batches
from functions.payouts.earnings import handle_orders_message
from functions.payouts.ledger import balances
from functions.payouts.royalties import DEFAULT_LEVELS
from functions.payouts.tax import TaxInfoIn, save_tax_info
from functions.payouts.transfers import send_payout
from shared.crypto import EnvelopeCipher, LocalKeyFileWrapper
from shared.db import connect_database
from shared.payments.gateway import PaymentProviderUnavailable
from tests.fixtures.payouts import HOLD, FakeConnect, download, orders_message, refund, sale
from tests.fixtures.postgres import with_database

FORMS = [
    {"form_type": "W-9", "country": "US", "tin": "287-65-4321", "address_country": "US"},
    {"form_type": "W-8BEN", "country": "PT", "tin": "PT-1234", "address_country": "PT", "treaty_claim": True},
    {"form_type": "W-8BEN", "country": "BR", "tin": "BR-1234", "address_country": "BR"},
]


PERIODS = itertools.count()
SEEN = Counter()  # what the examples exercised, so a run that never paid anyone cannot pass quietly


class Payouts(RuleBasedStateMachine):
    loop: asyncio.AbstractEventLoop
    admin_dsn: str
    template: str
    key_dir = None

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    async def _admin(self, sql):
        conn = await asyncpg.connect(self.admin_dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    @initialize()
    def contributors(self):
        # A database of its own per example: batches see every contributor, so examples must not meet.
        self.name = f"h_{uuid.uuid4().hex[:16]}"
        self.run(self._admin(f'create database "{self.name}" template "{self.template}"'))
        self.db = self.run(connect_database(with_database(self.admin_dsn, self.name), min_size=1, max_size=2))
        tag = uuid.uuid4().hex[:8]
        self.people = [f"c{tag}-{i}" for i in range(len(FORMS))]
        self.clock = datetime(2026, 3, 1, tzinfo=UTC)
        self.connect = FakeConnect()
        self.orders = []  # [order, refunded?]
        self.sends = []  # (payable before, debited)
        cipher = EnvelopeCipher(LocalKeyFileWrapper(self.key_dir / "kek"))
        for person, form in zip(self.people, FORMS, strict=True):
            info = TaxInfoIn.model_validate(
                {
                    "form_type": form["form_type"],
                    "legal_name": "Someone",
                    "address": {"line1": "1 Street", "city": "Town", "country": form["address_country"]},
                    "country": form["country"],
                    "tin": form["tin"],
                    "treaty_claim": form.get("treaty_claim", False),
                }
            )
            self.run(save_tax_info(self.db, cipher, person, info))
            self.run(
                self.db.pool.execute(
                    "insert into payouts.connect_accounts (contributor_id, account_id, country, payouts_enabled) "
                    "values ($1, $2, 'US', true)",
                    person,
                    f"acct_{person}",
                )
            )
            # A sale past its hold, so that every example has money to pay out from its first batch on.
            opening = sale(person, amount_minor=50_000, at=self.clock - HOLD - timedelta(days=1))
            self.run(handle_orders_message(self.db, orders_message(opening), HOLD))
            self.orders.append([opening, False])
        # The opening batch is paid: the first contributor's transfer reply is lost (Stripe moved the money,
        # the function died before it recorded that) and Stripe refuses the second one's transfer. Every
        # example starts from that retried payout and that returned one, so both paths are covered
        # whatever the random rules draw afterwards (drawn alone, a refusal was rare enough to miss a run).
        self.a_payout_batch(approve=True)
        self.the_transfer_function_runs(refuse={1}, crash={0})

    def teardown(self):
        if hasattr(self, "db"):
            self.run(self.db.close())
            self.run(self._admin(f'drop database if exists "{self.name}" with (force)'))

    # --- what happens -------------------------------------------------------------------------

    @rule(
        who=st.integers(0, 2),
        price=st.integers(0, 60_000) | st.sampled_from([999, 10_000, 49_900]),
        lines=st.integers(1, 3),
        currency=st.sampled_from(["USD", "EUR"]),
    )
    def a_sale(self, who, price, lines, currency):
        order = sale(self.people[who], amount_minor=price, lines=lines, currency=currency, at=self.clock)
        self.run(handle_orders_message(self.db, orders_message(order), HOLD))
        self.orders.append([order, False])

    @rule(who=st.integers(0, 2), plan=st.sampled_from([(4900, 10), (19900, 750), (1000, 3)]))
    def a_subscription_download(self, who, plan):
        event = download(self.people[who], plan_amount_minor=plan[0], plan_downloads=plan[1], at=self.clock)
        self.run(handle_orders_message(self.db, orders_message(event), HOLD))

    @precondition(lambda self: self.orders)
    @rule(pick=st.integers(0, 10**6), redeliver=st.booleans())
    def a_refund(self, pick, redeliver):
        entry = self.orders[pick % len(self.orders)]
        message = orders_message(refund(entry[0]))
        self.run(handle_orders_message(self.db, message, HOLD))
        if redeliver:
            assert self.run(handle_orders_message(self.db, message, HOLD)) == "duplicate"
        entry[1] = True
        SEEN["refund"] += 1

    @rule(days=st.sampled_from([31, 1, 12, 45]))
    def time_passes(self, days):
        self.clock += timedelta(days=days)

    @rule()
    def a_new_year(self):
        self.clock = datetime(self.clock.year + 1, 1, 1, tzinfo=UTC)

    @rule(approve=st.booleans())
    def a_payout_batch(self, approve):
        n = next(PERIODS)
        period = f"{2000 + n // 12:04d}-{n % 12 + 1:02d}"
        batch, created = self.run(
            batches.create_batch(self.db, period=period, actor="admin", now=self.clock, default_threshold_minor=100)
        )
        assert created
        if approve:
            self.run(batches.approve_batch(self.db, batch["id"], "admin"))  # the transfers run later
        else:
            self.run(batches.cancel_batch(self.db, batch["id"], "admin"))

    @rule(refuse=st.sets(st.integers(0, 2)), crash=st.sets(st.integers(0, 2)))
    def the_transfer_function_runs(self, refuse, crash):
        """Every approved payout not settled yet, as the bus delivers them (a refund may have come first)."""
        self.connect.refuse = {f"acct_{self.people[i]}" for i in refuse}
        waiting = self.run(
            self.db.pool.fetch(
                "select id, contributor_id, currency from payouts.payouts where status in ('approved', 'sending') "
                "order by created_at, id"
            )
        )
        for item in waiting:
            person = item["contributor_id"]
            before = self.run(self._payable(person, item["currency"]))
            if self.people.index(person) in crash:
                self.connect.unavailable, self.connect.late = 1, True  # transferred, reply lost
                try:
                    # A refused transfer never reaches the outage: that first call is the one that settles it.
                    SEEN[self.run(send_payout(self.db, self.connect, item["id"], self.clock))] += 1
                except PaymentProviderUnavailable:
                    SEEN["crash"] += 1
                # The lost reply belongs to that one call: a refused transfer never reaches it, and it must
                # not leak into the next payout's call.
                self.connect.unavailable, self.connect.late = 0, False
            SEEN[self.run(send_payout(self.db, self.connect, item["id"], self.clock))] += 1
            debited = self.run(
                self.db.pool.fetchval(
                    "select coalesce(-sum(amount_minor), 0) from payouts.ledger "
                    "where payout_id = $1 and kind in ('payout', 'withholding')",
                    item["id"],
                )
            )
            self.sends.append((before, debited))
        self.connect.unavailable, self.connect.late = 0, False

    async def _payable(self, person, currency):
        async with self.db.connection() as conn:
            found = {b.currency: b.payable_minor for b in await balances(conn, person, self.clock)}
        return found.get(currency, 0)

    # --- what must always hold ----------------------------------------------------------------

    def _entries(self):
        return self.run(
            self.db.pool.fetch("select * from payouts.ledger where contributor_id = any($1) order by id", self.people)
        )

    @invariant()
    def the_books_are_exact(self):
        if not hasattr(self, "people"):
            return
        entries = self._entries()
        self.balances_are_the_sums_of_the_entries(entries)
        self.no_payout_above_the_payable_balance_and_none_twice(entries)
        self.every_minor_unit_of_every_sale_is_accounted_for(entries)
        self.downloads_are_numbered_per_calendar_year(entries)

    def balances_are_the_sums_of_the_entries(self, entries):
        for person in self.people:
            expected = {}
            for e in entries:
                if e["contributor_id"] == person:
                    total, payable = expected.get(e["currency"], (0, 0))
                    payable += e["amount_minor"] if e["available_at"] <= self.clock else 0
                    expected[e["currency"]] = (total + e["amount_minor"], payable)

            async def read(person=person):
                async with self.db.connection() as conn:
                    return await balances(conn, person, self.clock)

            assert {b.currency: (b.balance_minor, b.payable_minor) for b in self.run(read())} == expected

    def no_payout_above_the_payable_balance_and_none_twice(self, entries):
        for before, debited in self.sends:
            assert 0 <= debited <= max(before, 0)
        assert len(self.connect.transfers) == len(set(self.connect.transfers))
        paid = self.run(
            self.db.pool.fetch(
                "select idempotency_key, net_minor from payouts.payouts "
                "where status = 'paid' and contributor_id = any($1)",
                self.people,
            )
        )
        assert {r["idempotency_key"]: r["net_minor"] for r in paid} == {
            key: t.amount_minor for key, t in self.connect.transfers.items()
        }
        failed = self.run(
            self.db.pool.fetch(
                "select id, gross_minor from payouts.payouts where status = 'failed' and gross_minor is not null "
                "and contributor_id = any($1)",
                self.people,
            )
        )
        returned = {e["payout_id"]: e["amount_minor"] for e in entries if e["kind"] == "payout_returned"}
        assert returned == {r["id"]: r["gross_minor"] for r in failed}

    def every_minor_unit_of_every_sale_is_accounted_for(self, entries):
        earnings = {e["id"]: e for e in entries if e["kind"] == "earning"}
        for e in earnings.values():
            assert e["amount_minor"] + e["platform_minor"] == e["sale_amount_minor"]
            assert e["royalty_rate_bp"] == DEFAULT_LEVELS.rate_for(e["download_number"])
        for e in entries:
            if e["kind"] == "reversal":
                assert e["amount_minor"] == -earnings[e["reverses_entry_id"]]["amount_minor"]
        credited = Counter()
        for e in earnings.values():
            if e["order_id"] is not None:
                credited[e["order_id"]] += e["amount_minor"] + e["platform_minor"]
        for order, refunded in self.orders:
            assert credited[order.order_id] == order.amount_minor
            reversed_ = sum(
                -e["amount_minor"] for e in entries if e["kind"] == "reversal" and e["order_id"] == order.order_id
            )
            earned = sum(e["amount_minor"] for e in earnings.values() if e["order_id"] == order.order_id)
            assert reversed_ == (earned if refunded else 0)

    def downloads_are_numbered_per_calendar_year(self, entries):
        numbers = {}
        for e in entries:
            if e["kind"] == "earning":
                numbers.setdefault((e["contributor_id"], e["occurred_at"].astimezone(UTC).year), []).append(
                    e["download_number"]
                )
        for found in numbers.values():
            assert found == list(range(1, len(found) + 1))


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_random_interleavings_keep_the_books_exact(pg_admin_dsn, pg_template, tmp_path):
    loop = asyncio.new_event_loop()
    Payouts.loop, Payouts.admin_dsn, Payouts.template, Payouts.key_dir = loop, pg_admin_dsn, pg_template, tmp_path
    try:
        run_state_machine_as_test(
            Payouts,
            settings=settings(
                max_examples=40,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
    finally:
        loop.close()
    assert SEEN["paid"] and SEEN["failed"] and SEEN["crash"] and SEEN["refund"], SEEN
