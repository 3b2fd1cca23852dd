"""Payouts: ledger posting rate, batch creation at scale, and a big contributor's earnings query.

Three figures, each next to a baseline measured on the same embedded Postgres in the same run:
- posting: `order.completed` messages through `handle_orders_message` (inbox claim, order lock,
  download count, royalty table, one ledger entry per line), `--concurrency` at a time; baseline:
  a bare one-row INSERT per transaction into a table of the ledger's width, same concurrency;
- batch: `create_batch` over `--contributors` contributors and `--entries` ledger entries (90% with
  a tax profile, 85% onboarded); baseline: the bare `sum() group by` over the same ledger;
- earnings: `reports.earnings` grouped by month and by day for one contributor with `--big`
  entries over a year, p50/p95 over `--queries` runs; baseline: `select sum(amount_minor)` over
  the same contributor's entries.

    .venv/bin/python -m bench.payouts [--events 2000] [--contributors 100000] [--entries 1000000] [--big 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import structlog

from bench._support import fresh_database, on_embedded_postgres
from functions.payouts import reports
from functions.payouts.batches import create_batch
from functions.payouts.earnings import handle_orders_message
from shared.bus.events import OrderCompleted, OrderLine
from shared.bus.port import ReceivedMessage
from shared.db import Database

HOLD = timedelta(days=30)


def _message(event: OrderCompleted) -> ReceivedMessage:
    now = datetime.now(UTC)
    return ReceivedMessage(
        message_id=str(uuid.uuid4()),
        topic="orders",
        subscription="payouts",
        subject=event.subject,
        body=event.model_dump(mode="json"),
        correlation_id=None,
        delivery_count=1,
        enqueued_time=now,
        locked_until=now,
        lock_token="",
    )


def _order(contributor: str, lines: int) -> OrderCompleted:
    order_lines = [
        OrderLine(
            image_id=uuid.uuid4(),
            contributor_id=contributor,
            license_type="standard",
            amount_minor=1500,
            currency="USD",
        )
        for _ in range(lines)
    ]
    return OrderCompleted(
        order_id=uuid.uuid4(),
        buyer_id="buyer",
        amount_minor=1500 * lines,
        currency="USD",
        image_ids=[line.image_id for line in order_lines],
        lines=order_lines,
        paid_at=datetime.now(UTC),
    )


async def _pace(n: int, concurrency: int, one) -> float:
    """Seconds to run `one(i)` for i < n, `concurrency` at a time."""
    queue = iter(range(n))

    async def worker():
        for i in queue:
            await one(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started


async def posting(db: Database, events: int, concurrency: int, lines: int) -> dict:
    await db.pool.execute(
        "create table bench_bare (id bigint generated always as identity primary key, contributor_id text, "
        "currency text, kind text, amount_minor bigint, occurred_at timestamptz, available_at timestamptz, "
        "order_id uuid, image_id uuid, license_type text, sale_amount_minor bigint)"
    )

    async def bare(i: int) -> None:
        async with db.transaction() as conn:
            await conn.execute(
                "insert into bench_bare (contributor_id, currency, kind, amount_minor, occurred_at, available_at, "
                "order_id, image_id, license_type, sale_amount_minor) "
                "values ($1, 'USD', 'earning', 225, now(), now(), $2, $3, 'standard', 1500)",
                f"c{i % 500}",
                uuid.uuid4(),
                uuid.uuid4(),
            )

    orders = [_order(f"c{i % 500}", lines) for i in range(events)]

    async def post(i: int) -> None:
        await handle_orders_message(db, _message(orders[i]), HOLD)

    bare_s = await _pace(events, concurrency, bare)
    post_s = await _pace(events, concurrency, post)
    entries = await db.pool.fetchval("select count(*) from payouts.ledger")
    assert entries == events * lines, entries
    return {
        "bare_insert_per_s": round(events / bare_s),
        "order_completed_per_s": round(events / post_s),
        "ledger_entries_per_s": round(events * lines / post_s),
        "lines_per_order": lines,
        "vs_bare": round(bare_s / post_s, 2),
    }


_SEED = """
insert into payouts.ledger (source_key, contributor_id, currency, kind, amount_minor, occurred_at, available_at,
                            image_id, license_type, sale_amount_minor, platform_minor, royalty_rate_bp,
                            royalty_table_version, download_number)
select 'seed:' || g, 'c' || (g % $1), 'USD', 'earning', 100 + (g % 2000), ts, ts + interval '30 days',
       gen_random_uuid(), 'standard', 1500, 1400 - (g % 2000), 1500, 1, 1
from generate_series($2::int, $3::int) g,
     lateral (select now() - interval '400 days' + (g % 360) * interval '1 day' as ts) t
"""


async def batch(db: Database, contributors: int, entries: int) -> dict:
    started = time.perf_counter()
    for first in range(1, entries + 1, 100_000):  # in slices: one statement stays under the pool's timeout
        await db.pool.execute(_SEED, contributors, first, min(first + 99_999, entries))
    await db.pool.execute(
        "insert into payouts.tax_profiles (contributor_id, form_type, legal_name, address, country, tin_ciphertext, "
        "tin_nonce, tin_wrapped_key, tin_kek_id, tin_last4, withholding_rate_bp) "
        "select 'c' || g, 'W-9', 'x', '{}'::jsonb, 'US', '\\x00', '\\x00', '\\x00', 'bench', '0000', 0 "
        "from generate_series(0, $1 - 1) g where g % 10 <> 0",
        contributors,
    )
    await db.pool.execute(
        "insert into payouts.connect_accounts (contributor_id, account_id, country, payouts_enabled) "
        "select 'c' || g, 'acct_' || g, 'US', g % 20 not in (1, 2, 3) from generate_series(0, $1 - 1) g",
        contributors,
    )
    await db.pool.execute("analyze")
    seed_s = time.perf_counter() - started

    started = time.perf_counter()
    groups = await db.pool.fetchval(
        "select count(*) from (select contributor_id, currency, sum(amount_minor) from payouts.ledger "
        "where available_at <= now() group by 1, 2) s"
    )
    bare_s = time.perf_counter() - started
    started = time.perf_counter()
    found, created = await create_batch(
        db, period="2026-11", actor="bench", now=datetime.now(UTC), default_threshold_minor=3500
    )
    batch_s = time.perf_counter() - started
    assert created
    paid = sum(t["payouts"] for t in found["totals"])
    excluded = sum(r["contributors"] for r in found["exclusions_by_reason"])
    assert paid + excluded == groups, (paid, excluded, groups)
    return {
        "contributors": contributors,
        "ledger_entries": entries,
        "seed_s": round(seed_s, 1),
        "bare_group_by_s": round(bare_s, 2),
        "create_batch_s": round(batch_s, 2),
        "payouts": paid,
        "excluded": {r["reason"]: r["contributors"] for r in found["exclusions_by_reason"]},
    }


async def earnings(db: Database, big: int, queries: int) -> dict:
    await db.pool.execute(
        "insert into payouts.ledger (source_key, contributor_id, currency, kind, amount_minor, occurred_at, "
        "available_at, image_id, license_type, sale_amount_minor, platform_minor, royalty_rate_bp, "
        "royalty_table_version, download_number) "
        "select 'big:' || g, 'big', 'USD', 'earning', 300, ts, ts + interval '30 days', gen_random_uuid(), "
        "case when g % 5 = 0 then 'enhanced' else 'standard' end, 1500, 1200, 2000, 1, g "
        "from generate_series(1, $1) g, "
        "lateral (select date_trunc('year', now()) + (g % 330) * interval '1 day' + (g % 86400) * interval '1 second' "
        "as ts) t",
        big,
    )
    await db.pool.execute("analyze payouts.ledger")
    now = datetime.now(UTC)
    start, end = datetime(now.year, 1, 1, tzinfo=UTC), now + timedelta(days=1)

    async def timed(run) -> list[float]:
        await run()  # warm
        times = []
        for _ in range(queries):
            t = time.perf_counter()
            await run()
            times.append((time.perf_counter() - t) * 1000)
        return times

    def pct(times: list[float]) -> dict:
        ordered = sorted(times)
        return {
            "p50_ms": round(statistics.median(ordered), 1),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 1),
        }

    bare = await timed(
        lambda: db.pool.fetchval("select sum(amount_minor) from payouts.ledger where contributor_id = 'big'")
    )
    result = {"entries": big, "bare_sum": pct(bare)}
    for group_by in ("month", "day"):
        times = await timed(
            lambda g=group_by: reports.earnings(db, "big", start=start, end=end, group_by=g, image_id=None, now=now)
        )
        result[f"earnings_by_{group_by}"] = pct(times)
    return result


async def run(args: argparse.Namespace, admin_dsn: str) -> dict:
    results = {}
    db = await fresh_database(admin_dsn, "bench_posting", min_size=args.concurrency, max_size=args.concurrency)
    try:
        results["posting"] = await posting(db, args.events, args.concurrency, args.lines)
    finally:
        await db.close()
    db = await fresh_database(admin_dsn, "bench_batch", min_size=1, max_size=2)
    try:
        results["batch"] = await batch(db, args.contributors, args.entries)
    finally:
        await db.close()
    db = await fresh_database(admin_dsn, "bench_earnings", min_size=1, max_size=2)
    try:
        results["earnings"] = await earnings(db, args.big, args.queries)
    finally:
        await db.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--lines", type=int, default=1, help="lines per order.completed")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--contributors", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--big", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()
    logging.getLogger().setLevel(logging.WARNING)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(json.dumps(on_embedded_postgres("payouts-bench-", lambda dsn: run(args, dsn)), indent=2))


if __name__ == "__main__":
    main()
