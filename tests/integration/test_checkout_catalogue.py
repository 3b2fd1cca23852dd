"""Checkout's copy of the catalogue and prices, built from images-topic events in any order, each applied once."""

from __future__ import annotations

import uuid

from functions.checkout.catalogue import apply_catalogue_event, current_prices
from shared.bus.events import ImageUpdated
from shared.config import load_settings
from tests.fixtures.checkout import _LISTING, approved, message, pricing, removed


async def _row(db, image_id):
    return await db.pool.fetchrow("select * from checkout.catalogue where image_id = $1", image_id)


async def test_an_approved_image_goes_on_sale_with_where_its_original_lives(db):
    image_id = uuid.uuid4()
    assert await apply_catalogue_event(db, message(approved(image_id, original_blob="carol/a.jpg"))) is True
    row = await _row(db, image_id)
    assert (row["available"], row["original_blob"], row["contributor_id"], row["file_name"]) == (
        True,
        "carol/a.jpg",
        "carol",
        "coffee.jpg",
    )


async def test_a_redelivered_message_is_applied_once(db):
    image_id = uuid.uuid4()
    event = message(approved(image_id), message_id="m-1")
    assert await apply_catalogue_event(db, event) is True
    await apply_catalogue_event(db, message(removed(image_id, revision=3)))
    assert await apply_catalogue_event(db, event) is False
    assert (await _row(db, image_id))["available"] is False


async def test_a_late_approval_does_not_undo_a_newer_takedown_but_still_says_where_the_original_is(db):
    image_id = uuid.uuid4()
    await apply_catalogue_event(db, message(removed(image_id, revision=3)))
    await apply_catalogue_event(db, message(approved(image_id, revision=2, original_blob="carol/x.jpg")))
    row = await _row(db, image_id)
    assert (row["available"], row["revision"], row["original_blob"]) == (False, 3, "carol/x.jpg")


async def test_an_update_overtaking_the_approval_keeps_the_newer_title(db):
    image_id = uuid.uuid4()
    updated = ImageUpdated(
        image_id=image_id, contributor_id="carol", revision=3, listing={**_LISTING, "title": "Espresso"}
    )
    await apply_catalogue_event(db, message(updated))
    await apply_catalogue_event(db, message(approved(image_id, revision=2, title="Coffee")))
    row = await _row(db, image_id)
    assert (row["title"], row["available"], row["revision"]) == ("Espresso", True, 3)
    assert row["original_blob"]


async def test_prices_follow_the_newest_published_table_and_default_until_then(db, tmp_path):
    settings = load_settings(VAR_DIR=tmp_path, CHECKOUT_DEFAULT_STANDARD_PRICE_MINOR=111)
    async with db.connection() as conn:
        assert (await current_prices(conn, settings))["standard"].amount_minor == 111
    await apply_catalogue_event(db, message(pricing(5, standard=1500, enhanced=9900)))
    await apply_catalogue_event(db, message(pricing(4, standard=1, enhanced=2)))  # older, late
    async with db.connection() as conn:
        prices = await current_prices(conn, settings)
    assert (prices["standard"].amount_minor, prices["enhanced"].amount_minor) == (1500, 9900)
