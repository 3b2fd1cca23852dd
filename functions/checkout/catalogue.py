"""Checkout's own copy of what it sells: images (from the images topic) and the admin's prices.

Built from events alone (ARCHITECTURE §2): image.approved/updated make an image
available, image.removed takes it off sale, pricing.updated replaces the price
list. `revision` orders them, so a late or repeated event never undoes a newer one.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import structlog

from shared.bus.events import ImageApproved, ImageRemoved, ImageUpdated, LicenseType, Price, PricingUpdated, parse_event
from shared.bus.inbox import claim_message
from shared.bus.port import ReceivedMessage
from shared.config import Settings
from shared.db import Database
from shared.pricing import launch_prices

SUBSCRIPTION = "checkout"
log = structlog.get_logger(__name__)

# An image can be sold when it is available and we know which original to deliver.
SELLABLE = "available and original_blob <> ''"

_APPROVED = """
insert into checkout.catalogue (image_id, contributor_id, original_blob, file_name, title, available, revision)
values ($1, $2, $3, $4, $5, true, $6)
on conflict (image_id) do update set
    -- where the original lives never changes, so an older approval may still fill it in
    contributor_id = excluded.contributor_id,
    original_blob = excluded.original_blob,
    file_name = excluded.file_name,
    title = case when excluded.revision > catalogue.revision then excluded.title else catalogue.title end,
    available = case when excluded.revision > catalogue.revision then true else catalogue.available end,
    revision = greatest(catalogue.revision, excluded.revision),
    updated_at = now()
"""

_UPDATED = """
insert into checkout.catalogue (image_id, contributor_id, title, available, revision)
values ($1, $2, $3, true, $4)
on conflict (image_id) do update set
    title = excluded.title, available = true, revision = excluded.revision, updated_at = now()
where catalogue.revision < excluded.revision
"""

_REMOVED = """
insert into checkout.catalogue (image_id, contributor_id, available, revision)
values ($1, $2, false, $3)
on conflict (image_id) do update set available = false, revision = excluded.revision, updated_at = now()
where catalogue.revision < excluded.revision
"""

_PRICES = """
insert into checkout.price_list (revision, prices) values ($1, $2)
on conflict (singleton) do update set revision = excluded.revision, prices = excluded.prices, updated_at = now()
where price_list.revision < excluded.revision
"""


async def apply_catalogue_event(db: Database, message: ReceivedMessage) -> bool:
    """Apply one images-topic message exactly once; False for a redelivery."""
    event = parse_event(message.subject, message.body)
    async with db.transaction() as conn:
        if not await claim_message(conn, "checkout", SUBSCRIPTION, message.message_id):
            return False
        match event:
            case ImageApproved():
                await conn.execute(
                    _APPROVED,
                    event.image_id,
                    event.contributor_id,
                    event.original_blob,
                    event.file_name,
                    event.listing.title,
                    event.revision,
                )
            case ImageUpdated():
                await conn.execute(_UPDATED, event.image_id, event.contributor_id, event.listing.title, event.revision)
            case ImageRemoved():
                await conn.execute(_REMOVED, event.image_id, event.contributor_id, event.revision)
            case PricingUpdated():
                prices = {kind: price.model_dump() for kind, price in event.prices.items()}
                await conn.execute(_PRICES, event.revision, prices)
            case _:
                log.info("checkout.catalogue_event_ignored", subject=message.subject)
    return True


def default_prices(settings: Settings) -> dict[LicenseType, Price]:
    return launch_prices(settings)


async def current_prices(conn: asyncpg.Connection, settings: Settings) -> dict[LicenseType, Price]:
    """The admin's last published prices; the configured defaults for any type not published yet."""
    prices = default_prices(settings)
    published: dict[str, Any] | None = await conn.fetchval("select prices from checkout.price_list")
    for kind, price in (published or {}).items():
        prices[kind] = Price.model_validate(price)  # type: ignore[index]
    return prices
