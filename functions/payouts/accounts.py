"""Stripe Connect Express accounts: onboarding links for contributors, `account.updated` from the Connect webhook."""

from __future__ import annotations

from typing import Any

import structlog

from shared.db import Database
from shared.payments.connect import PayoutGateway
from shared.payments.webhooks import StripeEvent

log = structlog.get_logger(__name__)


async def account_status(db: Database, contributor_id: str) -> dict[str, Any] | None:
    async with db.connection() as conn:
        row = await conn.fetchrow("select * from payouts.connect_accounts where contributor_id = $1", contributor_id)
    return None if row is None else _status(row)


def _status(row: Any, onboarding_url: str | None = None) -> dict[str, Any]:
    return {
        "account_id": row["account_id"],
        "country": row["country"],
        "payouts_enabled": row["payouts_enabled"],
        "details_submitted": row["details_submitted"],
        "onboarding_url": onboarding_url,
    }


async def start_onboarding(
    db: Database, gateway: PayoutGateway, contributor_id: str, country: str, email: str | None, return_url: str
) -> dict[str, Any]:
    """The contributor's Express account (created once; Stripe's idempotency key makes a concurrent
    second request get the same account) and a fresh one-time onboarding link."""
    async with db.connection() as conn:
        row = await conn.fetchrow("select * from payouts.connect_accounts where contributor_id = $1", contributor_id)
    if row is None:
        account_id = await gateway.create_connected_account(contributor_id=contributor_id, country=country, email=email)
        async with db.transaction() as conn:
            await conn.execute(
                "insert into payouts.connect_accounts (contributor_id, account_id, country) values ($1, $2, $3) "
                "on conflict (contributor_id) do nothing",
                contributor_id,
                account_id,
                country,
            )
            row = await conn.fetchrow(
                "select * from payouts.connect_accounts where contributor_id = $1", contributor_id
            )
    url = await gateway.create_onboarding_link(
        account_id=row["account_id"], refresh_url=return_url, return_url=return_url
    )
    return _status(row, url)


async def apply_connect_event(db: Database, event: StripeEvent) -> str:
    """Record `payouts_enabled` from account.updated, each event once, never older over newer."""
    async with db.transaction() as conn:
        first = await conn.fetchval(
            "insert into payouts.stripe_events (event_id, type) values ($1, $2) on conflict do nothing returning true",
            event.id,
            event.type,
        )
        if not first:
            return "duplicate"
        if event.type != "account.updated":
            return "ignored"
        account = event.payload
        updated = await conn.fetchval(
            "update payouts.connect_accounts set payouts_enabled = $2, details_submitted = $3, "
            "last_event_created = $4, updated_at = now() where account_id = $1 and last_event_created <= $4 "
            "returning contributor_id",
            str(account.get("id", "")),
            bool(account.get("payouts_enabled")),
            bool(account.get("details_submitted")),
            event.created,
        )
    if updated is None:
        return "unknown-or-stale-account"
    log.info("payouts.account_updated", payouts_enabled=bool(account.get("payouts_enabled")))
    return "payouts-enabled" if account.get("payouts_enabled") else "payouts-disabled"
