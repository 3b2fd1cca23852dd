"""What a verified Stripe event does to orders, licenses and subscriptions: each event exactly once.

One transaction per event: the event id is recorded first (a concurrent or later
redelivery of the same event waits on that row, then finds it and does nothing),
the order row is locked (`FOR UPDATE`) so different events about one order apply
one after another, and every fact other services must learn travels through the
outbox in the same transaction. Events may arrive in any order; each handler looks
at the order's current state, never at what "should" have come before.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from uuid import UUID

import asyncpg
import structlog

from functions.checkout import subscriptions
from functions.checkout.models import StripeCharge, StripeCheckoutSession, stripe_id
from shared.bus.events import LicenseIssued, OrderCompleted, OrderRefunded
from shared.bus.outbox import add_to_outbox
from shared.config import Settings
from shared.db import Database
from shared.payments import StripeEvent

log = structlog.get_logger(__name__)

EventHandler = Callable[[asyncpg.Connection, StripeEvent, Settings], Awaitable[str]]

# Orders in these states took money or refused to; a completion event changes nothing about them.
_SETTLED = frozenset({"paid", "flagged", "refunded"})


async def apply_stripe_event(db: Database, event: StripeEvent, settings: Settings) -> str:
    """Apply `event` once and say what it did ('duplicate' when it had been applied already)."""
    async with db.transaction() as conn:
        first = await conn.fetchval(
            "insert into checkout.stripe_events (event_id, type, created, outcome) values ($1, $2, $3, '') "
            "on conflict (event_id) do nothing returning true",
            event.id,
            event.type,
            event.created,
        )
        if not first:
            return "duplicate"
        handler = HANDLERS.get(event.type)
        if handler is None:
            log.info("stripe.event_ignored", event_id=event.id, type=event.type)
            outcome = "ignored"
        else:
            outcome = await handler(conn, event, settings)
        await conn.execute("update checkout.stripe_events set outcome = $2 where event_id = $1", event.id, outcome)
    log.info("stripe.event_applied", event_id=event.id, type=event.type, outcome=outcome)
    return outcome


# --- one-off payments -----------------------------------------------------------------------


def _order_id(metadata: dict[str, str], fallback: str | None = None) -> UUID | None:
    for candidate in (metadata.get("order_id"), fallback):
        if not candidate:
            continue  # no order id in the metadata: the session's client_reference_id still names it
        try:
            return UUID(candidate)
        except ValueError:
            continue
    return None


async def _lock_order(conn: asyncpg.Connection, order_id: UUID | None) -> asyncpg.Record | None:
    if order_id is None:
        return None
    return await conn.fetchrow("select * from checkout.orders where id = $1 for update", order_id)


async def session_completed(conn: asyncpg.Connection, event: StripeEvent, settings: Settings) -> str:
    session = StripeCheckoutSession.model_validate(event.payload)
    if session.mode == "subscription":
        return await subscriptions.session_completed(conn, session, settings)
    return await _settle(conn, session)


async def async_payment_succeeded(conn: asyncpg.Connection, event: StripeEvent, settings: Settings) -> str:
    session = StripeCheckoutSession.model_validate(event.payload)
    if session.mode == "subscription":
        return await subscriptions.session_completed(conn, session, settings)
    return await _settle(conn, session)


async def _settle(conn: asyncpg.Connection, session: StripeCheckoutSession) -> str:
    payment_intent = stripe_id(session.payment_intent)
    if payment_intent is not None:
        # Always payment intent first, then the order row (as charge_refunded does): no lock cycle.
        await _lock_payment_intent(conn, payment_intent)
    order = await _lock_order(conn, _order_id(session.metadata, session.client_reference_id))
    if order is None:
        log.warning("stripe.session_for_unknown_order", session_id=session.id)
        return "unknown-order"
    await conn.execute(
        "update checkout.orders set stripe_session_id = coalesce(stripe_session_id, $2), "
        "stripe_payment_intent = coalesce($3, stripe_payment_intent), updated_at = now() where id = $1",
        order["id"],
        session.id,
        payment_intent,
    )
    if order["status"] in _SETTLED:
        return f"already-{order['status']}"
    if session.amount_total != order["amount_minor"] or (session.currency or "").upper() != order["currency"]:
        # Never license what was not paid in full: a person looks at it (and refunds it).
        reason = (
            f"paid {session.amount_total} {(session.currency or '?').upper()}, "
            f"order is {order['amount_minor']} {order['currency']}"
        )
        await _set_status(conn, order["id"], "flagged", reason)
        log.error("stripe.amount_mismatch", order_id=str(order["id"]), session_id=session.id, reason=reason)
        return "flagged"
    if session.payment_status != "paid":
        return "awaiting-payment"  # delayed methods: async_payment_succeeded or _failed follows
    early = None
    if payment_intent is not None:
        early = await conn.fetchrow(
            "delete from checkout.unmatched_refunds where payment_intent = $1 returning *", payment_intent
        )
    if early is not None and early["fully_refunded"]:
        await _refund_state(conn, order["id"], early["amount_refunded_minor"])
        return "refunded-before-completion"
    await _pay(conn, order)
    if early is not None:
        # A partial refund overtook the completion: the licenses stand, and the books keep what was refunded.
        await conn.execute(
            "update checkout.orders set amount_refunded_minor = greatest(amount_refunded_minor, $2) where id = $1",
            order["id"],
            early["amount_refunded_minor"],
        )
    return "paid"


async def _lock_payment_intent(conn: asyncpg.Connection, payment_intent: str) -> None:
    """Serialise a completion and a refund that meet only through the payment intent.

    Without it, a refund naming no order could park itself in unmatched_refunds just after the
    completion looked there, and the paid order would never learn of it.
    """
    await conn.execute("select pg_advisory_xact_lock(hashtext('checkout.payment_intent:' || $1))", payment_intent)


async def _pay(conn: asyncpg.Connection, order: asyncpg.Record) -> None:
    """Paid: one license per line, order.completed and license.issued through the outbox, cart emptied."""
    paid_at = await conn.fetchval(
        "update checkout.orders set status = 'paid', paid_at = now(), status_reason = null, updated_at = now() "
        "where id = $1 returning paid_at",
        order["id"],
    )
    lines = await conn.fetch("select * from checkout.order_lines where order_id = $1 order by image_id", order["id"])
    for line in lines:
        license_id = await conn.fetchval(
            "insert into checkout.licenses (id, buyer_id, image_id, license_type, order_id, contributor_id, "
            "original_blob, file_name, title) values ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "on conflict (order_id, image_id) where order_id is not null do nothing returning id",
            uuid.uuid4(),
            order["buyer_id"],
            line["image_id"],
            line["license_type"],
            order["id"],
            line["contributor_id"],
            line["original_blob"],
            line["file_name"],
            line["title"],
        )
        if license_id is None:
            continue
        await add_to_outbox(
            conn,
            LicenseIssued(
                license_id=license_id,
                order_id=order["id"],
                image_id=line["image_id"],
                buyer_id=order["buyer_id"],
                license_type=line["license_type"],
                # extra fields (events allow them): what payouts needs to credit the contributor
                contributor_id=line["contributor_id"],
                issued_at=paid_at,
                amount_minor=line["amount_minor"],
                currency=line["currency"],
            ),
        )
    await add_to_outbox(
        conn,
        OrderCompleted(
            order_id=order["id"],
            buyer_id=order["buyer_id"],
            amount_minor=order["amount_minor"],
            currency=order["currency"],
            image_ids=[line["image_id"] for line in lines],
            paid_at=paid_at,
            lines=[
                {
                    "image_id": str(line["image_id"]),
                    "contributor_id": line["contributor_id"],
                    "license_type": line["license_type"],
                    "amount_minor": line["amount_minor"],
                    "currency": line["currency"],
                }
                for line in lines
            ],
        ),
    )
    await conn.execute(
        "delete from checkout.cart_items where buyer_id = $1 and image_id = any($2::uuid[])",
        order["buyer_id"],
        [line["image_id"] for line in lines],
    )


async def _set_status(conn: asyncpg.Connection, order_id: UUID, status: str, reason: str | None = None) -> None:
    await conn.execute(
        "update checkout.orders set status = $2, status_reason = $3, updated_at = now() where id = $1",
        order_id,
        status,
        reason,
    )


async def async_payment_failed(conn: asyncpg.Connection, event: StripeEvent, settings: Settings) -> str:
    return await _close_unpaid(conn, StripeCheckoutSession.model_validate(event.payload), "failed", "payment failed")


async def session_expired(conn: asyncpg.Connection, event: StripeEvent, settings: Settings) -> str:
    session = StripeCheckoutSession.model_validate(event.payload)
    if session.mode == "subscription":
        return "ignored"
    return await _close_unpaid(conn, session, "expired", "checkout session expired")


async def _close_unpaid(conn: asyncpg.Connection, session: StripeCheckoutSession, status: str, reason: str) -> str:
    order = await _lock_order(conn, _order_id(session.metadata, session.client_reference_id))
    if order is None:
        return "unknown-order"
    if order["status"] != "pending":
        return f"already-{order['status']}"
    await _set_status(conn, order["id"], status, reason)
    return status


# --- refunds --------------------------------------------------------------------------------


async def charge_refunded(conn: asyncpg.Connection, event: StripeEvent, settings: Settings) -> str:
    charge = StripeCharge.model_validate(event.payload)
    payment_intent = stripe_id(charge.payment_intent)
    order_id = _order_id(charge.metadata)
    if order_id is None and payment_intent is not None:
        await _lock_payment_intent(conn, payment_intent)
        order_id = await conn.fetchval(
            "select id from checkout.orders where stripe_payment_intent = $1", payment_intent
        )
    order = await _lock_order(conn, order_id)
    if order is None:
        if payment_intent is None:
            log.warning("stripe.refund_for_unknown_charge", charge_id=charge.id)
            return "unknown-order"
        # The refund overtook the completion event and names no order: the completion will find it here.
        await conn.execute(
            "insert into checkout.unmatched_refunds (payment_intent, charge_id, amount_refunded_minor, currency, "
            "fully_refunded) values ($1, $2, $3, $4, $5) on conflict (payment_intent) do update set "
            "amount_refunded_minor = greatest(unmatched_refunds.amount_refunded_minor, excluded.amount_refunded_minor),"
            " fully_refunded = unmatched_refunds.fully_refunded or excluded.fully_refunded",
            payment_intent,
            charge.id,
            charge.amount_refunded,
            charge.currency.upper(),
            charge.refunded,
        )
        return "refund-recorded-for-later"
    if order["status"] == "refunded":
        return "already-refunded"
    if not charge.refunded:
        # A partial refund (a goodwill credit): the licenses stand; the amount is kept for the books.
        await conn.execute(
            "update checkout.orders set amount_refunded_minor = greatest(amount_refunded_minor, $2), "
            "updated_at = now() where id = $1",
            order["id"],
            charge.amount_refunded,
        )
        return "partially-refunded"
    was_paid = order["status"] == "paid"
    await _refund_state(conn, order["id"], charge.amount_refunded)
    if not was_paid:
        # Nothing was issued or announced, so there is nothing to take back; the completion event,
        # if it still comes, finds the order refunded and issues nothing.
        return "refunded-before-completion"
    revoked = await conn.fetch("select image_id from checkout.order_lines where order_id = $1", order["id"])
    await add_to_outbox(
        conn,
        OrderRefunded(
            order_id=order["id"],
            amount_minor=charge.amount_refunded,
            currency=order["currency"],
            image_ids=[row["image_id"] for row in revoked],
        ),
    )
    return "refunded"


async def _refund_state(conn: asyncpg.Connection, order_id: UUID, amount_refunded: int) -> None:
    await conn.execute(
        "update checkout.orders set status = 'refunded', refunded_at = now(), status_reason = 'refunded', "
        "amount_refunded_minor = greatest(amount_refunded_minor, $2), updated_at = now() where id = $1",
        order_id,
        amount_refunded,
    )
    await conn.execute(
        "update checkout.licenses set revoked_at = now() where order_id = $1 and revoked_at is null", order_id
    )


# Stripe retries a delivery for up to 3 days, and an event can be re-sent by hand while Stripe keeps it
# (30 days); remembering ids for longer than both keeps every redelivery a no-op.
REMEMBER_EVENTS = timedelta(days=90)


async def forget_old_events(db: Database, older_than: timedelta = REMEMBER_EVENTS) -> int:
    """Drop applied-event records no redelivery can need any more; returns how many."""
    async with db.transaction() as conn:
        status = await conn.execute(
            "delete from checkout.stripe_events where received_at < now() - $1::interval", older_than
        )
    return int(status.split()[-1])


HANDLERS: dict[str, EventHandler] = {
    "checkout.session.completed": session_completed,
    "checkout.session.async_payment_succeeded": async_payment_succeeded,
    "checkout.session.async_payment_failed": async_payment_failed,
    "checkout.session.expired": session_expired,
    "charge.refunded": charge_refunded,
    "customer.subscription.created": subscriptions.subscription_changed,
    "customer.subscription.updated": subscriptions.subscription_changed,
    "customer.subscription.deleted": subscriptions.subscription_deleted,
    "invoice.paid": subscriptions.invoice_paid,
}
