"""Stripe webhook handling under a duplicate storm: events/s and latency percentiles.

Each storm fires `--duplicates` concurrent deliveries of one signed
checkout.session.completed event for a fresh 3-line order (Stripe's retries plus
a replaying proxy, at their worst). Compared, on the same embedded Postgres in
the same run, with
- idempotency floor: verify the signature and `insert ... on conflict do nothing` the
  event id in a transaction, nothing else (the least any exactly-once receiver pays),
- handler storm: `verify_webhook` + `apply_stripe_event`, no HTTP edge,
- HTTP storm: the function entry point as the worker calls it (correlation id, problem
  mapping, logging) around the same handler; this is what Stripe meets,
- HTTP distinct: as many deliveries, each a different order's event, all doing real work
  (order paid, 3 licenses, 4 outbox rows).

    .venv/bin/python -m bench.webhooks [--duplicates 100] [--storms 10] [--pool 10]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable

import azure.functions as func
import structlog

from bench._support import fresh_database, on_embedded_postgres
from shared import http
from shared.auth import InMemoryRateLimiter
from shared.bus.postgres_transport import PostgresTransport
from shared.config import load_settings
from shared.db import Database
from shared.payments import verify_webhook
from shared.runtime import Runtime, set_runtime

SECRET = "whsec_bench"  # noqa: S105  (a local signing secret, not a credential)
LINES = 3
PRICE = 1500


def signed(event: dict) -> tuple[bytes, str]:
    payload = json.dumps(event).encode()
    t = int(time.time())
    digest = hmac.new(SECRET.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={t},v1={digest}"


async def new_order(db: Database) -> uuid.UUID:
    order_id = uuid.uuid4()
    async with db.transaction() as conn:
        await conn.execute(
            "insert into checkout.orders (id, buyer_id, status, amount_minor, currency) "
            "values ($1, 'bench-buyer', 'pending', $2, 'USD')",
            order_id,
            PRICE * LINES,
        )
        await conn.executemany(
            "insert into checkout.order_lines (order_id, image_id, license_type, amount_minor, currency, "
            "contributor_id, original_blob) values ($1, $2, 'standard', $3, 'USD', 'carol', $4)",
            [(order_id, image_id, PRICE, f"carol/{image_id}.jpg") for image_id in (uuid.uuid4() for _ in range(LINES))],
        )
    return order_id


def completed_event(order_id: uuid.UUID) -> dict:
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "livemode": False,
        "data": {
            "object": {
                "id": f"cs_{uuid.uuid4().hex[:24]}",
                "object": "checkout.session",
                "mode": "payment",
                "payment_status": "paid",
                "amount_total": PRICE * LINES,
                "currency": "usd",
                "metadata": {"order_id": str(order_id)},
                "payment_intent": f"pi_{uuid.uuid4().hex[:24]}",
            }
        },
    }


Delivery = Callable[[bytes, str], Awaitable[None]]


async def timed(deliver: Delivery, payload: bytes, header: str, latencies: list[float]) -> None:
    started = time.perf_counter()
    await deliver(payload, header)
    latencies.append(time.perf_counter() - started)


async def run_storms(db: Database, deliver: Delivery, storms: int, duplicates: int, distinct: bool) -> dict:
    latencies: list[float] = []
    busy = 0.0
    for _ in range(storms):
        orders = [await new_order(db) for _ in range(duplicates if distinct else 1)]
        deliveries = [signed(completed_event(o)) for o in orders] if distinct else [signed(completed_event(orders[0]))]
        batch = deliveries if distinct else deliveries * duplicates
        started = time.perf_counter()
        await asyncio.gather(*(timed(deliver, payload, header, latencies) for payload, header in batch))
        busy += time.perf_counter() - started
    paid = await db.pool.fetchval("select count(*) from checkout.orders where status = 'paid'")
    completed = await db.pool.fetchval("select count(*) from bus.outbox where subject = 'order.completed'")
    ordered = sorted(latencies)
    return {
        "deliveries": len(latencies),
        "seconds": round(busy, 3),
        "events_per_s": round(len(latencies) / busy, 1),
        "latency_p50_ms": round(statistics.median(ordered) * 1000, 1),
        "latency_p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 1),
        "latency_max_ms": round(ordered[-1] * 1000, 1),
        "orders_paid": paid,
        "order_completed_events": completed,
    }


def floor_delivery(db: Database) -> Delivery:
    async def deliver(payload: bytes, header: str) -> None:
        event = verify_webhook(payload, header, SECRET)
        async with db.transaction() as conn:
            await conn.execute(
                "insert into checkout.stripe_events (event_id, type, created, outcome) values ($1, $2, $3, 'floor') "
                "on conflict (event_id) do nothing",
                event.id,
                event.type,
                event.created,
            )

    return deliver


def handler_delivery(db: Database, settings) -> Delivery:
    from functions.checkout.stripe_events import apply_stripe_event

    async def deliver(payload: bytes, header: str) -> None:
        await apply_stripe_event(db, verify_webhook(payload, header, SECRET), settings)

    return deliver


def http_delivery() -> Delivery:
    import functions.checkout

    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
    app.register_functions(functions.checkout.bp)
    entry = next(f for f in app.get_functions() if f.get_function_name() == "stripe_webhook").get_user_function()

    async def deliver(payload: bytes, header: str) -> None:
        req = func.HttpRequest(
            "POST",
            "http://localhost:7071/api/webhooks/stripe",
            headers={"Content-Type": "application/json", "Stripe-Signature": header, "x-client-ip": "127.0.0.1"},
            body=payload,
        )
        response = await entry(req)
        if response.status_code != 200:
            raise RuntimeError(f"webhook answered {response.status_code}: {response.get_body()[:200]!r}")

    return deliver


async def run(args: argparse.Namespace, admin_dsn: str) -> list[dict]:
    settings = load_settings(STRIPE_WEBHOOK_SECRET=SECRET, DATABASE_POOL_MAX=args.pool)
    http.configure_http(settings=settings, limiter=InMemoryRateLimiter())
    cases = [
        ("baseline: idempotency floor (verify + insert event id)", "floor", False),
        ("handler storm (verify + apply_stripe_event)", "handler", False),
        ("HTTP storm (function entry point)", "http", False),
        ("HTTP distinct events (real work each)", "http", True),
    ]
    results = []
    for number, (name, kind, distinct) in enumerate(cases):
        db = await fresh_database(admin_dsn, f"bench_webhooks_{number}", min_size=args.pool, max_size=args.pool)
        set_runtime(Runtime(settings, db, PostgresTransport(db), storage=None))  # type: ignore[arg-type]
        deliver = {"floor": floor_delivery(db), "handler": handler_delivery(db, settings), "http": http_delivery()}
        try:
            figures = await run_storms(db, deliver[kind], args.storms, args.duplicates, distinct)
        finally:
            set_runtime(None)
            await db.close()
        result = {
            "bench": "webhooks",
            "case": name,
            "duplicates": args.duplicates,
            "storms": args.storms,
            "pool": args.pool,
            **figures,
        }
        print(json.dumps(result), flush=True)
        results.append(result)
    return results


def print_table(results: list[dict]) -> None:
    floor = results[0]["events_per_s"]
    print(f"\n{'case':56} {'events/s':>9} {'vs floor':>9} {'p50 ms':>8} {'p95 ms':>8} {'paid':>5} {'completed':>9}")
    for r in results:
        print(
            f"{r['case']:56} {r['events_per_s']:>9.0f} {r['events_per_s'] / floor:>8.0%} "
            f"{r['latency_p50_ms']:>8} {r['latency_p95_ms']:>8} {r['orders_paid']:>5} {r['order_completed_events']:>9}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duplicates", type=int, default=100, help="concurrent deliveries per storm")
    parser.add_argument("--storms", type=int, default=10)
    parser.add_argument("--pool", type=int, default=10, help="database pool size (the app's default is 10)")
    args = parser.parse_args()
    # Per-request info logs would measure the terminal, not the webhook.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    print_table(on_embedded_postgres("webhook-bench-", lambda admin_dsn: run(args, admin_dsn)))


if __name__ == "__main__":
    sys.exit(main())
