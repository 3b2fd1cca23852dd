"""Placing an order: the cart's prices are frozen into a pending order, then Stripe hosts the payment."""

from __future__ import annotations

import uuid

import asyncpg
import structlog

from functions.checkout.cart import drop_unsellable
from functions.checkout.catalogue import SELLABLE, current_prices
from functions.checkout.models import CheckoutOut, Money, OrderLineOut, OrderOut, OrdersOut
from shared.bus.events import LicenseType, Price
from shared.config import Settings
from shared.db import Database
from shared.http import Problem
from shared.payments import CheckoutLine, PaymentGateway, PaymentProviderError, PaymentProviderUnavailable

log = structlog.get_logger(__name__)

_CART_FOR_ORDER = f"""
select c.image_id, c.license_type, k.title, k.contributor_id, k.original_blob, k.file_name
from checkout.cart_items c join checkout.catalogue k using (image_id)
where c.buyer_id = $1 and {SELLABLE}
order by c.added_at, c.image_id
"""


async def start_checkout(db: Database, gateway: PaymentGateway, settings: Settings, buyer_id: str) -> CheckoutOut:
    """Create a pending order from the cart and a Stripe Checkout Session for it.

    The order is committed before Stripe is called, so a webhook can never name an order we do
    not have; the session is created with the order id as idempotency key, so a retry can never
    open a second one. The cart stays as it is until the payment succeeds.
    """
    order_id = uuid.uuid4()
    async with db.transaction() as conn:
        # One checkout at a time per buyer, so a double submit finds the order the first one placed.
        await conn.execute("select pg_advisory_xact_lock(hashtext('checkout:' || $1))", buyer_id)
        notices = await drop_unsellable(conn, buyer_id)
        rows = await conn.fetch(_CART_FOR_ORDER, buyer_id)
        if not rows:
            raise Problem(409, "cart-empty", "Cart is empty", "Add images to the cart before checking out.")
        prices = await current_prices(conn, settings)
        currencies = {prices[row["license_type"]].currency for row in rows}
        if len(currencies) != 1:
            raise Problem(409, "mixed-currencies", "Mixed currencies", "One order is paid in one currency.")
        currency = currencies.pop()
        total = sum(prices[row["license_type"]].amount_minor for row in rows)
        wanted = sorted(f"{row['image_id']}:{row['license_type']}" for row in rows)
        open_order = await conn.fetchrow(_SAME_OPEN_ORDER, buyer_id, wanted, total, currency)
        if open_order is None:
            # Placed under the same lock, so a concurrent second submit finds it.
            await _place_order(conn, order_id, buyer_id, rows, prices, total, currency)
    if open_order is not None:
        # The same cart at the same prices is already waiting to be paid (a second click, another tab):
        # send the buyer to that payment page instead of opening a second one they could also pay.
        if open_order["checkout_url"]:
            log.info("checkout.open_order_reused", order_id=str(open_order["id"]))
            return CheckoutOut(
                order_id=open_order["id"],
                checkout_url=open_order["checkout_url"],
                total=Money(amount_minor=total, currency=currency),
                notices=notices,
            )
        order_id = open_order["id"]  # its session was never recorded: same idempotency key, same session
    return await _open_payment_page(db, gateway, settings, buyer_id, order_id, rows, prices, total, currency, notices)


async def _place_order(
    conn: asyncpg.Connection,
    order_id: uuid.UUID,
    buyer_id: str,
    rows: list[asyncpg.Record],
    prices: dict[LicenseType, Price],
    total: int,
    currency: str,
) -> None:
    """The pending order with each line's price frozen as it is now."""
    await conn.execute(
        "insert into checkout.orders (id, buyer_id, status, amount_minor, currency) values ($1, $2, 'pending', $3, $4)",
        order_id,
        buyer_id,
        total,
        currency,
    )
    await conn.executemany(
        "insert into checkout.order_lines (order_id, image_id, license_type, amount_minor, currency, title, "
        "contributor_id, original_blob, file_name) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        [
            (
                order_id,
                row["image_id"],
                row["license_type"],
                prices[row["license_type"]].amount_minor,
                currency,
                row["title"],
                row["contributor_id"],
                row["original_blob"],
                row["file_name"],
            )
            for row in rows
        ],
    )


async def _open_payment_page(
    db: Database,
    gateway: PaymentGateway,
    settings: Settings,
    buyer_id: str,
    order_id: uuid.UUID,
    rows: list[asyncpg.Record],
    prices: dict[LicenseType, Price],
    total: int,
    currency: str,
    notices: list[str],
) -> CheckoutOut:
    """A Stripe Checkout Session for the order (idempotency key = order id), recorded on the order."""
    lines = [
        CheckoutLine(
            name=f"{row['title'] or 'Image'} ({row['license_type']} license)",
            amount_minor=prices[row["license_type"]].amount_minor,
            currency=currency,
        )
        for row in rows
    ]
    base = settings.PUBLIC_BASE_URL.rstrip("/")
    try:
        hosted = await gateway.start_payment(
            reference=str(order_id),
            lines=lines,
            metadata={"order_id": str(order_id), "buyer_id": buyer_id},
            # The portal's return page polls the order until the webhook marks it paid.
            success_url=f"{base}/checkout/return/?order_id={order_id}&session_id={{CHECKOUT_SESSION_ID}}",
            cancel_url=f"{base}/cart/?checkout=cancelled&order_id={order_id}",
        )
    except PaymentProviderError as exc:
        log.warning("checkout.session_failed", order_id=str(order_id), error=str(exc))
        if isinstance(exc, PaymentProviderUnavailable):
            # Stripe may come back in a moment: the order stays pending with no session, so the buyer's
            # retry finds it and asks Stripe again under the same idempotency key (one session, one order).
            raise Problem(
                503,
                "payments-unavailable",
                "Payments are unavailable",
                "The payment provider could not be reached; try again in a minute.",
                headers={"Retry-After": "30"},
            ) from None
        async with db.transaction() as conn:
            await conn.execute(
                "update checkout.orders set status = 'failed', status_reason = $2, updated_at = now() "
                "where id = $1 and status = 'pending'",
                order_id,
                "payment page could not be opened",
            )
        raise Problem(
            502, "payment-provider-error", "Payment provider error", "The payment page could not be opened."
        ) from None
    async with db.transaction() as conn:
        await conn.execute(
            "update checkout.orders set stripe_session_id = $2, checkout_url = $3, updated_at = now() where id = $1",
            order_id,
            hosted.session_id,
            hosted.url,
        )
    log.info("checkout.order_placed", order_id=str(order_id), lines=len(rows), amount_minor=total)
    return CheckoutOut(
        order_id=order_id, checkout_url=hosted.url, total=Money(amount_minor=total, currency=currency), notices=notices
    )


# The buyer's newest pending order with exactly these lines at these prices, still payable (a Stripe
# Checkout Session lives 24 hours).
_SAME_OPEN_ORDER = """
    select o.id, o.checkout_url
    from checkout.orders o
    where o.buyer_id = $1 and o.status = 'pending' and o.amount_minor = $3 and o.currency = $4
      and o.created_at > now() - interval '23 hours'
      and (select array_agg(line order by line)
           from (select l.image_id::text || ':' || l.license_type as line
                 from checkout.order_lines l where l.order_id = o.id) lines) = $2::text[]
    order by o.created_at desc
    limit 1
"""


async def list_orders(db: Database, buyer_id: str, limit: int = 100) -> OrdersOut:
    async with db.connection() as conn:
        orders = await conn.fetch(
            "select * from checkout.orders where buyer_id = $1 order by created_at desc limit $2", buyer_id, limit
        )
        lines = await conn.fetch(
            "select * from checkout.order_lines where order_id = any($1::uuid[]) order by order_id, image_id",
            [o["id"] for o in orders],
        )
    by_order: dict[uuid.UUID, list[OrderLineOut]] = {}
    for line in lines:
        by_order.setdefault(line["order_id"], []).append(
            OrderLineOut(
                image_id=line["image_id"],
                license_type=line["license_type"],
                title=line["title"],
                price=Money(amount_minor=line["amount_minor"], currency=line["currency"]),
            )
        )
    return OrdersOut(
        orders=[
            OrderOut(
                id=o["id"],
                status=o["status"],
                total=Money(amount_minor=o["amount_minor"], currency=o["currency"]),
                lines=by_order.get(o["id"], []),
                created_at=o["created_at"],
                paid_at=o["paid_at"],
                refunded_at=o["refunded_at"],
            )
            for o in orders
        ]
    )
