"""Throughput of the local bus: outbox -> relay -> PostgresTransport -> consumer handler, on one subscription.

Compared, on the same fresh embedded Postgres in the same run, with
- raw rows: insert the same bodies in batches, then read and delete them in batches
  (the floor any table-backed queue pays on this machine),
- handler work alone: the handlers' own transactions, as concurrent, with no bus at all, and
- direct publish: PostgresTransport.publish straight to the consumer, no outbox.

Every handler claims the message in the subscription's inbox in its own transaction,
as real handlers do. Prints one JSON line per case, then a table.

    .venv/bin/python -m bench.bus_throughput [--messages 5000] [--batch-size 100] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
from collections.abc import Awaitable, Callable

import structlog

from bench._support import fresh_database, on_embedded_postgres
from shared.bus.consumer import SubscriptionConsumer
from shared.bus.events import PlatformPing
from shared.bus.inbox import claim_message
from shared.bus.outbox import add_to_outbox
from shared.bus.port import OutgoingMessage, ReceivedMessage
from shared.bus.postgres_transport import PostgresTransport
from shared.bus.relay import OutboxRelay
from shared.db import Database

TOPIC, SUB = "platform", "health"
PRODUCERS = 8  # concurrent request handlers writing one outbox row per transaction


class Delivered:
    """Counts handled messages and their latency from the producer's commit to the handler."""

    def __init__(self, expected: int, db: Database) -> None:
        self.expected = expected
        self.db = db
        self.latencies: list[float] = []
        self.all_done = asyncio.Event()

    async def handler(self, msg: ReceivedMessage) -> None:
        async with self.db.transaction() as conn:
            if not await claim_message(conn, "platform", SUB, msg.message_id):
                return
        self.latencies.append(time.perf_counter() - float(msg.body["nonce"].split(":")[1]))
        if len(self.latencies) == self.expected:
            self.all_done.set()


def ping(n: int) -> PlatformPing:
    # The nonce carries the send time, so the handler can measure end-to-end latency.
    return PlatformPing(nonce=f"{n}:{time.perf_counter()!r}")


async def case_raw_rows(db: Database, n: int, batch: int) -> dict:
    async with db.connection() as conn:
        await conn.execute("create table platform.bench_raw (seq bigserial primary key, id text, body jsonb)")
    started = time.perf_counter()
    for first in range(0, n, batch):
        rows = [(str(i), json.dumps(ping(i).model_dump(mode="json"))) for i in range(first, min(first + batch, n))]
        async with db.connection() as conn:
            await conn.execute(
                "insert into platform.bench_raw (id, body) select * from unnest($1::text[], $2::text[]::jsonb[])",
                [r[0] for r in rows],
                [r[1] for r in rows],
            )
    read = 0
    while read < n:
        async with db.connection() as conn:
            got = await conn.fetch(
                "delete from platform.bench_raw where seq in "
                "(select seq from platform.bench_raw order by seq limit $1 for update skip locked) returning body",
                batch,
            )
        read += len(got)
    return {"seconds": time.perf_counter() - started}


async def case_handler_work(db: Database, n: int, concurrency: int) -> dict:
    delivered = Delivered(n, db)
    messages = [
        ReceivedMessage(f"m-{i}", TOPIC, SUB, "platform.ping", ping(i).model_dump(mode="json"), None, 1, None, None, "")
        for i in range(n)
    ]
    started = time.perf_counter()

    async def worker(share: list[ReceivedMessage]) -> None:
        for msg in share:
            await delivered.handler(msg)

    await asyncio.gather(*(worker(messages[k::concurrency]) for k in range(concurrency)))
    return {"seconds": time.perf_counter() - started}


async def consume_until(db: Database, bus: PostgresTransport, delivered: Delivered, concurrency: int, produce) -> dict:
    stop = asyncio.Event()
    consumer = SubscriptionConsumer(
        bus, TOPIC, SUB, delivered.handler, max_concurrent=concurrency, receive_wait_seconds=0.2
    )
    consuming = asyncio.create_task(consumer.run(stop))
    started = time.perf_counter()
    await produce()
    produced = time.perf_counter() - started
    await asyncio.wait_for(delivered.all_done.wait(), timeout=600)
    seconds = time.perf_counter() - started
    stop.set()
    await consuming
    return {"seconds": seconds, "producers_done_s": produced, **latency_ms(delivered.latencies)}


async def case_direct_publish(db: Database, n: int, batch: int, concurrency: int) -> dict:
    bus = PostgresTransport(db)
    delivered = Delivered(n, db)

    async def produce() -> None:
        for first in range(0, n, batch):
            await bus.publish(
                [
                    OutgoingMessage(f"direct-{i}", TOPIC, ping(i).subject, ping(i).model_dump(mode="json"))
                    for i in range(first, min(first + batch, n))
                ]
            )

    try:
        return await consume_until(db, bus, delivered, concurrency, produce)
    finally:
        await bus.close()


async def case_outbox_relay(db: Database, n: int, batch: int, concurrency: int) -> dict:
    bus = PostgresTransport(db)
    delivered = Delivered(n, db)
    stop_relay = asyncio.Event()
    relay = asyncio.create_task(OutboxRelay(db, bus, batch_size=batch).run(stop_relay, interval=0.2))

    async def producer(numbers: range) -> None:
        for i in numbers:
            async with db.transaction() as conn:
                await add_to_outbox(conn, ping(i))

    async def produce() -> None:
        await asyncio.gather(*(producer(range(k, n, PRODUCERS)) for k in range(PRODUCERS)))

    try:
        return await consume_until(db, bus, delivered, concurrency, produce)
    finally:
        stop_relay.set()
        await relay
        await bus.close()


def latency_ms(latencies: list[float]) -> dict:
    cuts = statistics.quantiles(latencies, n=100)
    return {"latency_p50_ms": round(cuts[49] * 1000, 1), "latency_p99_ms": round(cuts[98] * 1000, 1)}


async def run(args: argparse.Namespace, admin_dsn: str) -> list[dict]:
    cases: list[tuple[str, Callable[[Database], Awaitable[dict]]]] = [
        ("baseline: raw insert + select/delete", lambda db: case_raw_rows(db, args.messages, args.batch_size)),
        (
            "baseline: handler work alone, no bus",
            lambda db: case_handler_work(db, args.messages, args.concurrency),
        ),
        (
            "baseline: publish direct -> consumer",
            lambda db: case_direct_publish(db, args.messages, args.batch_size, args.concurrency),
        ),
        (
            "outbox -> relay -> transport -> consumer",
            lambda db: case_outbox_relay(db, args.messages, args.batch_size, args.concurrency),
        ),
    ]
    results = []
    for number, (name, case) in enumerate(cases):
        db = await fresh_database(admin_dsn, f"bench_bus_{number}", min_size=2, max_size=24)
        try:
            figures = await case(db)
        finally:
            await db.close()
        result = {
            "bench": "bus_throughput",
            "case": name,
            "messages": args.messages,
            "batch_size": args.batch_size,
            "concurrency": args.concurrency,
            **{k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()},
            "messages_per_s": round(args.messages / figures["seconds"], 1),
        }
        print(json.dumps(result), flush=True)
        results.append(result)
    return results


def print_table(results: list[dict]) -> None:
    floor = results[0]["messages_per_s"]
    print(f"\n{'case':44} {'msg/s':>9} {'vs raw':>7} {'p50 ms':>8} {'p99 ms':>8}")
    for r in results:
        p50, p99 = r.get("latency_p50_ms", "-"), r.get("latency_p99_ms", "-")
        print(f"{r['case']:44} {r['messages_per_s']:>9.0f} {r['messages_per_s'] / floor:>6.0%} {p50:>8} {p99:>8}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--batch-size", type=int, default=100, help="relay batch, publish batch, raw batch")
    parser.add_argument("--concurrency", type=int, default=16, help="handlers in flight in the consumer")
    args = parser.parse_args()
    # Per-message info logs would measure the terminal, not the bus.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    print_table(on_embedded_postgres("bus-bench-", lambda admin_dsn: run(args, admin_dsn)))


if __name__ == "__main__":
    sys.exit(main())
