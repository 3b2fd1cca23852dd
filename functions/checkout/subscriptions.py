"""Subscriptions: monthly plans with a download allotment, bought through Stripe Checkout.

Stripe owns the subscription; we keep a copy keyed by its id, built from the
events in whatever order they come (customer.subscription.* carry the status,
invoice.paid refills the allotment, checkout.session.completed ties it to the
buyer). Each license taken from an allotment is one UPDATE ... WHERE remaining > 0,
so concurrent requests can never take more than the period allows.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import structlog
from pydantic import BaseModel

from functions.checkout.catalogue import SELLABLE
from functions.checkout.licenses import license_out
from functions.checkout.models import (
    LicenseOut,
    Money,
    PlanOut,
    PlansOut,
    StripeCheckoutSession,
    StripeInvoice,
    StripeSubscription,
    SubscriptionCheckoutOut,
    SubscriptionOut,
    stripe_id,
)
from shared.bus.events import LicenseIssued, LicenseType
from shared.bus.outbox import add_to_outbox
from shared.config import Settings
from shared.db import Database
from shared.http import Problem
from shared.payments import PaymentGateway, PaymentProviderError, PaymentProviderUnavailable, StripeEvent

log = structlog.get_logger(__name__)

# Stripe statuses in which the buyer may use the allotment.
USABLE = ("active", "trialing")


class Plan(BaseModel):
    name: str
    downloads: int
    amount_minor: int
    currency: str


def plans(settings: Settings) -> dict[str, Plan]:
    """The plans of SUBSCRIPTION_PLANS (JSON, validated when settings load)."""
    return {name: Plan(name=name, **spec) for name, spec in json.loads(settings.SUBSCRIPTION_PLANS).items()}


def list_plans(settings: Settings) -> PlansOut:
    return PlansOut(
        plans=[
            PlanOut(
                name=p.name,
                downloads_per_month=p.downloads,
                price=Money(amount_minor=p.amount_minor, currency=p.currency),
            )
            for p in plans(settings).values()
        ]
    )


# --- buying -----------------------------------------------------------------------------------


async def start_subscription_checkout(
    db: Database, gateway: PaymentGateway, settings: Settings, buyer_id: str, plan_name: str
) -> SubscriptionCheckoutOut:
    plan = plans(settings).get(plan_name)
    if plan is None:
        raise Problem(
            422,
            "invalid-body",
            "Invalid request body",
            "Check: plan.",
            errors=[{"name": "plan", "in": "body", "reason": f"unknown plan; choose one of {sorted(plans(settings))}"}],
        )
    checkout_id = uuid.uuid4()
    async with db.transaction() as conn:
        # A second plan on top of a live one would bill the buyer twice; changing plans is Stripe's
        # subscription update, not a second checkout.
        live = await conn.fetchval(
            "select plan from checkout.subscriptions where buyer_id = $1 "
            "and status in ('active', 'trialing', 'past_due', 'incomplete') limit 1",
            buyer_id,
        )
        if live is not None:
            raise Problem(
                409,
                "already-subscribed",
                "Already subscribed",
                f"You already have the {live} plan; cancel it before subscribing to another.",
            )
        await conn.execute(
            "insert into checkout.subscription_checkouts (id, buyer_id, plan) values ($1, $2, $3)",
            checkout_id,
            buyer_id,
            plan.name,
        )
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    try:
        hosted = await gateway.start_subscription(
            reference=str(checkout_id),
            plan_name=plan.name,
            amount_minor=plan.amount_minor,
            currency=plan.currency,
            metadata={"buyer_id": buyer_id, "plan": plan.name, "subscription_checkout_id": str(checkout_id)},
            success_url=f"{base}/account/?subscription=success&session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{base}/account/?subscription=cancelled",
        )
    except PaymentProviderUnavailable:
        raise Problem(
            503,
            "payments-unavailable",
            "Payments are unavailable",
            "The payment provider could not be reached; try again in a minute.",
            headers={"Retry-After": "30"},
        ) from None
    except PaymentProviderError:
        raise Problem(
            502, "payment-provider-error", "Payment provider error", "The payment page could not be opened."
        ) from None
    async with db.transaction() as conn:
        await conn.execute(
            "update checkout.subscription_checkouts set stripe_session_id = $2 where id = $1",
            checkout_id,
            hosted.session_id,
        )
    return SubscriptionCheckoutOut(plan=plan.name, checkout_url=hosted.url)


async def current_subscription(db: Database, buyer_id: str) -> SubscriptionOut | None:
    """The buyer's usable subscription if any, else the most recent one."""
    async with db.connection() as conn:
        row = await conn.fetchrow(
            "select * from checkout.subscriptions where buyer_id = $1 "
            "order by status = any($2::text[]) desc, updated_at desc limit 1",
            buyer_id,
            list(USABLE),
        )
    if row is None:
        return None
    return SubscriptionOut(
        id=row["stripe_subscription_id"],
        plan=row["plan"],
        status=row["status"],
        allotment=row["allotment"],
        remaining=row["remaining"],
        current_period_end=row["current_period_end"],
    )


# --- licensing from the allotment --------------------------------------------------------------

# The row lock taken by the UPDATE serialises concurrent requests; each re-checks `remaining > 0`
# after the one before it commits, so exactly `remaining` of them succeed.
_TAKE_ONE = f"""
update checkout.subscriptions set remaining = remaining - 1, updated_at = now()
where stripe_subscription_id = (
    select stripe_subscription_id from checkout.subscriptions
    where buyer_id = $1 and status in {USABLE!r} and remaining > 0
    order by current_period_end nulls last, stripe_subscription_id
    limit 1
    for update
)
and remaining > 0
returning stripe_subscription_id, remaining, plan, allotment
"""

_EXISTING = """
select * from checkout.licenses
where buyer_id = $1 and image_id = $2 and license_type = $3 and subscription_id is not null and revoked_at is null
"""


async def license_from_allotment(
    db: Database, buyer_id: str, image_id: UUID, license_type: LicenseType, settings: Settings | None = None
) -> tuple[LicenseOut, bool]:
    """License an image with one download of the buyer's allotment; (license, True when newly issued).

    Licensing an image the subscriber already licensed this way returns that license and takes nothing.
    """
    try:
        return await _take_license(db, buyer_id, image_id, license_type, settings)
    except asyncpg.UniqueViolationError:
        # A concurrent request of the same buyer licensed this image first; its license stands and our
        # transaction, decrement included, was rolled back.
        async with db.connection() as conn:
            row = await conn.fetchrow(_EXISTING, buyer_id, image_id, license_type)
        if row is None:
            raise
        return license_out(row), False


def _plan_facts(settings: Settings | None, taken: asyncpg.Record) -> dict[str, Any]:
    """The plan's price and allotment on license.issued: payouts credits rate x price / allotment."""
    plan = plans(settings).get(taken["plan"]) if settings is not None else None
    if plan is None:
        return {"plan": taken["plan"]}
    return {
        "plan": plan.name,
        "plan_amount_minor": plan.amount_minor,
        "plan_currency": plan.currency,
        "plan_downloads": taken["allotment"] or plan.downloads,
    }


async def _take_license(
    db: Database, buyer_id: str, image_id: UUID, license_type: LicenseType, settings: Settings | None = None
) -> tuple[LicenseOut, bool]:
    async with db.transaction() as conn:
        image = await conn.fetchrow(f"select * from checkout.catalogue where image_id = $1 and {SELLABLE}", image_id)
        if image is None:
            raise Problem(404, "image-not-available", "Image not available", f"Image {image_id} is not for sale.")
        existing = await conn.fetchrow(_EXISTING, buyer_id, image_id, license_type)
        if existing is not None:
            return license_out(existing), False
        taken = await conn.fetchrow(_TAKE_ONE, buyer_id)
        if taken is None:
            has_plan = await conn.fetchval(
                f"select true from checkout.subscriptions where buyer_id = $1 and status in {USABLE!r} limit 1",
                buyer_id,
            )
            if has_plan:
                raise Problem(
                    402,
                    "allotment-used-up",
                    "No downloads left",
                    "This period's downloads are used up; they renew with the next paid invoice.",
                )
            raise Problem(402, "no-subscription", "No active subscription", "Subscribe to a plan to license images.")
        row = await conn.fetchrow(
            "insert into checkout.licenses (id, buyer_id, image_id, license_type, subscription_id, contributor_id, "
            "original_blob, file_name, title) values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning *",
            uuid.uuid4(),
            buyer_id,
            image_id,
            license_type,
            taken["stripe_subscription_id"],
            image["contributor_id"],
            image["original_blob"],
            image["file_name"],
            image["title"],
        )
        await add_to_outbox(
            conn,
            LicenseIssued(
                license_id=row["id"],
                order_id=None,
                image_id=image_id,
                buyer_id=buyer_id,
                license_type=license_type,
                contributor_id=image["contributor_id"],
                subscription_id=taken["stripe_subscription_id"],
                issued_at=row["issued_at"],
                **_plan_facts(settings, taken),
            ),
        )
    log.info("checkout.allotment_license", image_id=str(image_id), remaining=taken["remaining"])
    return license_out(row), True


# --- Stripe events -----------------------------------------------------------------------------


def _ts(seconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if seconds else None


async def _owner(conn: asyncpg.Connection, subscription_id: str, metadata: dict[str, str]) -> tuple[str, str] | None:
    """(buyer, plan) of a subscription: from its metadata, else from the checkout that created it."""
    if metadata.get("buyer_id") and metadata.get("plan"):
        return metadata["buyer_id"], metadata["plan"]
    row = await conn.fetchrow(
        "select buyer_id, plan from checkout.subscriptions where stripe_subscription_id = $1 "
        "union all select buyer_id, plan from checkout.subscription_checkouts where stripe_subscription_id = $1 "
        "limit 1",
        subscription_id,
    )
    return (row["buyer_id"], row["plan"]) if row else None


def _downloads(settings: Settings, plan: str) -> int | None:
    found = plans(settings).get(plan)
    return found.downloads if found else None


async def _ensure(
    conn: asyncpg.Connection,
    settings: Settings,
    subscription_id: str,
    owner: tuple[str, str],
    status: str,
    customer: str | None,
) -> None:
    """Create the subscription row if this is the first event about it (allotment empty until paid)."""
    settings_plan = _downloads(settings, owner[1])
    await conn.execute(
        "insert into checkout.subscriptions (stripe_subscription_id, buyer_id, plan, status, allotment, remaining, "
        "stripe_customer_id) values ($1, $2, $3, $4, $5, 0, $6) on conflict (stripe_subscription_id) do nothing",
        subscription_id,
        owner[0],
        owner[1],
        status,
        settings_plan if settings_plan is not None else 0,
        customer,
    )


async def session_completed(conn: asyncpg.Connection, session: StripeCheckoutSession, settings: Settings) -> str:
    subscription_id = stripe_id(session.subscription)
    if subscription_id is None:
        return "no-subscription-yet"
    await conn.execute(
        "update checkout.subscription_checkouts set stripe_subscription_id = $2 where stripe_session_id = $1",
        session.id,
        subscription_id,
    )
    owner = await _owner(conn, subscription_id, session.metadata)
    if owner is None:
        log.warning("stripe.subscription_without_owner", subscription_id=subscription_id)
        return "unknown-subscription"
    status = "active" if session.payment_status == "paid" else "incomplete"
    await _ensure(conn, settings, subscription_id, owner, status, stripe_id(session.customer))
    return "subscription-linked"


async def subscription_changed(conn: asyncpg.Connection, event: StripeEvent, settings: Settings) -> str:
    sub = StripeSubscription.model_validate(event.payload)
    owner = await _owner(conn, sub.id, sub.metadata)
    if owner is None:
        log.warning("stripe.subscription_without_owner", subscription_id=sub.id)
        return "unknown-subscription"
    await _ensure(conn, settings, sub.id, owner, sub.status, stripe_id(sub.customer))
    # Only a newer event moves the status; a cancelled subscription stays cancelled.
    status = await conn.execute(
        "update checkout.subscriptions set status = $2, plan = $3, "
        "allotment = coalesce($4, allotment), current_period_end = coalesce($5, current_period_end), "
        "status_event_created = $6, updated_at = now() "
        "where stripe_subscription_id = $1 and status_event_created <= $6 and status <> 'canceled'",
        sub.id,
        sub.status,
        owner[1],
        _downloads(settings, owner[1]),
        _ts(sub.period_end),
        event.created,
    )
    return "subscription-updated" if status.endswith(" 1") else "subscription-stale-event"


async def subscription_deleted(conn: asyncpg.Connection, event: StripeEvent, settings: Settings) -> str:
    sub = StripeSubscription.model_validate(event.payload)
    owner = await _owner(conn, sub.id, sub.metadata)
    if owner is None:
        return "unknown-subscription"
    await _ensure(conn, settings, sub.id, owner, "canceled", stripe_id(sub.customer))
    await conn.execute(
        "update checkout.subscriptions set status = 'canceled', remaining = 0, "
        "status_event_created = greatest(status_event_created, $2), updated_at = now() "
        "where stripe_subscription_id = $1",
        sub.id,
        event.created,
    )
    return "subscription-canceled"


async def invoice_paid(conn: asyncpg.Connection, event: StripeEvent, settings: Settings) -> str:
    invoice = StripeInvoice.model_validate(event.payload)
    subscription_id = invoice.subscription_id
    if subscription_id is None:
        return "ignored"  # a one-off invoice: not ours
    owner = await _owner(conn, subscription_id, invoice.subscription_metadata)
    if owner is None:
        log.warning("stripe.invoice_without_owner", invoice_id=invoice.id, subscription_id=subscription_id)
        return "unknown-subscription"
    await _ensure(conn, settings, subscription_id, owner, "active", stripe_id(invoice.customer))
    # Each paid period refills the allotment; an older invoice delivered late refills nothing.
    status = await conn.execute(
        "update checkout.subscriptions set remaining = allotment, last_invoice_id = $2, last_invoice_created = $3, "
        "status = case when status in ('incomplete', 'past_due', 'unpaid') then 'active' else status end, "
        "updated_at = now() "
        "where stripe_subscription_id = $1 and status <> 'canceled' "
        "and (last_invoice_created < $3 or last_invoice_id is null)",
        subscription_id,
        invoice.id,
        invoice.created,
    )
    return "allotment-refilled" if status.endswith(" 1") else "invoice-stale"
