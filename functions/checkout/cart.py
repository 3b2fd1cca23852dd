"""The buyer's cart. Prices are not stored in it: they are read when shown, and frozen into the order."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from functions.checkout.catalogue import SELLABLE, current_prices
from functions.checkout.models import CartItemOut, CartOut, Money, Notice
from shared.bus.events import LicenseType
from shared.config import Settings
from shared.db import Database
from shared.http import Problem

_DROP_UNSELLABLE = f"""
delete from checkout.cart_items c
where c.buyer_id = $1
  and not exists (select 1 from checkout.catalogue k where k.image_id = c.image_id and {SELLABLE})
returning c.image_id
"""

_ITEMS = """
select c.image_id, c.license_type, c.added_at, k.title
from checkout.cart_items c join checkout.catalogue k using (image_id)
where c.buyer_id = $1
order by c.added_at, c.image_id
"""


async def drop_unsellable(conn: asyncpg.Connection, buyer_id: str) -> list[Notice]:
    """Take images that were taken down (or never became sellable) out of the cart, saying so."""
    dropped = await conn.fetch(_DROP_UNSELLABLE, buyer_id)
    return [
        Notice(
            code="image-unavailable",
            image_id=row["image_id"],
            message="This image is no longer available and was removed from your cart.",
        )
        for row in dropped
    ]


async def _cart(conn: asyncpg.Connection, settings: Settings, buyer_id: str, notices: list[Notice]) -> CartOut:
    prices = await current_prices(conn, settings)
    items = [
        CartItemOut(
            image_id=row["image_id"],
            license_type=row["license_type"],
            title=row["title"],
            price=Money(**prices[row["license_type"]].model_dump()),
            added_at=row["added_at"],
        )
        for row in await conn.fetch(_ITEMS, buyer_id)
    ]
    total = None
    if items:
        currencies = {item.price.currency for item in items}
        # One currency per cart is all the pricing table allows today; a mixed cart shows no total.
        if len(currencies) == 1:
            total = Money(amount_minor=sum(i.price.amount_minor for i in items), currency=currencies.pop())
    return CartOut(items=items, total=total, notices=notices)


async def view_cart(db: Database, settings: Settings, buyer_id: str) -> CartOut:
    async with db.transaction() as conn:
        notices = await drop_unsellable(conn, buyer_id)
        return await _cart(conn, settings, buyer_id, notices)


async def add_to_cart(
    db: Database, settings: Settings, buyer_id: str, image_id: UUID, license_type: LicenseType
) -> CartOut:
    """Put an image in the cart (or change its license type). Only images on sale can be added."""
    async with db.transaction() as conn:
        notices = await drop_unsellable(conn, buyer_id)
        if not await conn.fetchval(f"select true from checkout.catalogue where image_id = $1 and {SELLABLE}", image_id):
            raise Problem(404, "image-not-available", "Image not available", f"Image {image_id} is not for sale.")
        # Serialise this buyer's cart changes so the size check below cannot be raced past.
        await conn.execute("select pg_advisory_xact_lock(hashtext('checkout.cart:' || $1))", buyer_id)
        count = await conn.fetchval(
            "select count(*) filter (where image_id <> $2) from checkout.cart_items where buyer_id = $1",
            buyer_id,
            image_id,
        )
        if count >= settings.CHECKOUT_MAX_CART_ITEMS:
            raise Problem(
                409, "cart-full", "Cart is full", f"A cart holds at most {settings.CHECKOUT_MAX_CART_ITEMS} images."
            )
        await conn.execute(
            "insert into checkout.cart_items (buyer_id, image_id, license_type) values ($1, $2, $3) "
            "on conflict (buyer_id, image_id) do update set license_type = excluded.license_type",
            buyer_id,
            image_id,
            license_type,
        )
        return await _cart(conn, settings, buyer_id, notices)


async def remove_from_cart(db: Database, settings: Settings, buyer_id: str, image_id: UUID) -> CartOut:
    """Idempotent: removing an image that is not in the cart leaves the cart as it is."""
    async with db.transaction() as conn:
        await conn.execute("delete from checkout.cart_items where buyer_id = $1 and image_id = $2", buyer_id, image_id)
        notices = await drop_unsellable(conn, buyer_id)
        return await _cart(conn, settings, buyer_id, notices)
