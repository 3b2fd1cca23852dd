"""Reconciliation: apply any Stripe event the webhook never delivered.

Stripe retries a webhook for up to 3 days, then gives up; an outage longer than that, a
misconfigured endpoint or a lost secret would otherwise lose payments. This pass lists the events
Stripe recorded over the look-back window and applies each one exactly as the webhook would: the
event id makes it a no-op for every event already handled, so it can run as often as we like.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import structlog
from pydantic import ValidationError

from functions.checkout.stripe_events import HANDLERS, apply_stripe_event
from shared.config import Settings
from shared.db import Database
from shared.payments import PaymentGateway, StripeEvent

log = structlog.get_logger()

# Longer than Stripe's own retry schedule (3 days), so nothing falls between the two.
LOOK_BACK_SECONDS = 4 * 24 * 3600


@dataclass(frozen=True)
class Reconciled:
    listed: int
    applied: int  # events the webhook had not delivered


async def reconcile_stripe_events(
    db: Database, gateway: PaymentGateway, settings: Settings, *, look_back_seconds: int = LOOK_BACK_SECONDS
) -> Reconciled:
    listed = applied = 0
    async for raw in gateway.events_since(int(time.time()) - look_back_seconds):
        if raw.get("type") not in HANDLERS:
            continue
        listed += 1
        try:
            event = StripeEvent.model_validate(raw)
        except ValidationError as exc:
            log.error("stripe.reconcile_unreadable_event", event_id=raw.get("id"), error=str(exc))
            continue
        if await apply_stripe_event(db, event, settings) != "duplicate":
            applied += 1
            log.warning("stripe.reconciled_missed_event", event_id=event.id, type=event.type)
    return Reconciled(listed, applied)
