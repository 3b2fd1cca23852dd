"""One approved payout through Stripe Connect, exactly once, whatever crashes in between.

Three steps, each safe to repeat:
1. debit (one transaction): withholding and payout entries for at most the payable balance *now*,
   and the payout marked `sending`. A payout is never above what the contributor may be paid.
2. transfer: Stripe with idempotency key `payout-<batch>-<contributor>`, outside any transaction.
3. settle (one transaction): `paid` + payout.paid, or for a refusal `failed` + a `payout_returned`
   entry that puts the whole debit back + payout.failed.
A crash (or a lost reply) after step 2 leaves the payout `sending`; the redelivered message skips
step 1 and calls Stripe again with the same key, which returns the first transfer instead of making
a second one. An outage (PaymentProviderUnavailable) propagates, so the bus retries later.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg
import structlog

from functions.payouts.ledger import lock_contributor, payable, post_entry
from functions.payouts.royalties import BASIS_POINTS
from shared.bus.events import PayoutFailed, PayoutPaid
from shared.bus.outbox import add_to_outbox
from shared.db import Database
from shared.payments.connect import PayoutGateway, TransferRefused

log = structlog.get_logger(__name__)

SUBSCRIPTION = "payouts-transfers"


def withholding_minor(gross_minor: int, rate_bp: int) -> int:
    """Tax withheld, rounded *up* to the minor unit: never less than the rate (the remainder is the
    contributor's net, so gross = withholding + net exactly)."""
    return -(-gross_minor * rate_bp // BASIS_POINTS)


async def send_payout(db: Database, gateway: PayoutGateway, payout_id: UUID, now: datetime) -> str:
    outcome = await _debit(db, payout_id, now)
    if outcome != "sending":
        return outcome
    async with db.connection() as conn:
        item = await conn.fetchrow("select * from payouts.payouts where id = $1", payout_id)
    try:
        transfer = await gateway.transfer(
            amount_minor=item["net_minor"],
            currency=item["currency"],
            destination=item["account_id"],
            idempotency_key=item["idempotency_key"],
            metadata={
                "batch_id": str(item["batch_id"]),
                "payout_id": str(payout_id),
                "contributor_id": item["contributor_id"],
            },
        )
    except TransferRefused as exc:
        return await _settle_failed(db, payout_id, str(exc) or "Stripe refused the transfer", now)
    return await _settle_paid(db, payout_id, transfer.transfer_id)


async def _fail(conn: asyncpg.Connection, item: asyncpg.Record, reason: str) -> None:
    await conn.execute(
        "update payouts.payouts set status = 'failed', failure_reason = $2, updated_at = now() where id = $1",
        item["id"],
        reason,
    )
    await add_to_outbox(
        conn,
        PayoutFailed(
            payout_id=item["id"], contributor_id=item["contributor_id"], reason=reason, batch_id=item["batch_id"]
        ),
        message_id=f"payout-failed-{item['id']}",
    )


async def _debit(db: Database, payout_id: UUID, now: datetime) -> str:
    async with db.transaction() as conn:
        item = await conn.fetchrow("select * from payouts.payouts where id = $1 for update", payout_id)
        if item is None:
            return "unknown-payout"
        if item["status"] != "approved":
            # sending: a retry after a crash, go straight to Stripe with the same key
            return "sending" if item["status"] == "sending" else f"already-{item['status']}"
        await lock_contributor(conn, item["contributor_id"])
        available = await payable(conn, item["contributor_id"], item["currency"], now)
        gross = min(item["amount_minor"], available)
        if gross <= 0:
            # Refunds since the batch took the money back: nothing is owed now.
            await _fail(conn, item, "the balance is no longer payable (refunds since the batch)")
            return "failed"
        rate = await conn.fetchval(
            "select withholding_rate_bp from payouts.tax_profiles where contributor_id = $1", item["contributor_id"]
        )
        if rate is None:
            await _fail(conn, item, "no valid tax profile")
            return "failed"
        withheld = withholding_minor(gross, rate)
        net = gross - withheld
        common = {
            "contributor_id": item["contributor_id"],
            "currency": item["currency"],
            "occurred_at": now,
            "available_at": now,
            "batch_id": item["batch_id"],
            "payout_id": payout_id,
            "withholding_rate_bp": rate,
        }
        if withheld:
            await post_entry(
                conn, source_key=f"withholding:{payout_id}", kind="withholding", amount_minor=-withheld, **common
            )
        await post_entry(conn, source_key=f"payout:{payout_id}", kind="payout", amount_minor=-net, **common)
        await conn.execute(
            "update payouts.payouts set status = 'sending', gross_minor = $2, withholding_minor = $3, net_minor = $4, "
            "withholding_rate_bp = $5, updated_at = now() where id = $1",
            payout_id,
            gross,
            withheld,
            net,
            rate,
        )
    return "sending"


async def _settle_paid(db: Database, payout_id: UUID, transfer_id: str) -> str:
    async with db.transaction() as conn:
        item = await conn.fetchrow("select * from payouts.payouts where id = $1 for update", payout_id)
        if item["status"] != "sending":
            return f"already-{item['status']}"
        await conn.execute(
            "update payouts.payouts set status = 'paid', transfer_id = $2, updated_at = now() where id = $1",
            payout_id,
            transfer_id,
        )
        await add_to_outbox(
            conn,
            PayoutPaid(
                payout_id=payout_id,
                contributor_id=item["contributor_id"],
                amount_minor=item["net_minor"],
                currency=item["currency"],
                batch_id=item["batch_id"],
                transfer_id=transfer_id,
            ),
            message_id=f"payout-paid-{payout_id}",
        )
    log.info("payouts.paid", payout_id=str(payout_id), transfer_id=transfer_id)
    return "paid"


async def _settle_failed(db: Database, payout_id: UUID, reason: str, now: datetime) -> str:
    async with db.transaction() as conn:
        item = await conn.fetchrow("select * from payouts.payouts where id = $1 for update", payout_id)
        if item["status"] != "sending":
            return f"already-{item['status']}"
        await post_entry(
            conn,
            source_key=f"payout_returned:{payout_id}",
            contributor_id=item["contributor_id"],
            currency=item["currency"],
            kind="payout_returned",
            amount_minor=item["gross_minor"],  # the payout and its withholding: nothing left the platform
            occurred_at=now,
            available_at=now,
            batch_id=item["batch_id"],
            payout_id=payout_id,
            reason=reason[:500],
        )
        await _fail(conn, item, reason[:500])
    log.warning("payouts.transfer_refused", payout_id=str(payout_id), reason=reason[:500])
    return "failed"
