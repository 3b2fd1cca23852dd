"""Moderation's handlers on a real database: the policy on image.processed, decisions, edits, takedowns.

Each state change is checked together with the event it puts in the outbox and the audit entry it
writes, since all three commit in one transaction.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from functions.moderation import handlers
from functions.moderation.handlers import Actor, NotFound, StateConflict, UnknownCategory
from functions.moderation.models import (
    BulkModerateIn,
    CategoryIn,
    CategoryPatch,
    ImagePatch,
    PricingIn,
    QueueQuery,
)
from functions.moderation.policy import ModerationPolicy
from shared.bus.events import ImageApproved, ImageFlagged, ImageRejected, ImageRemoved, ImageUpdated, PricingUpdated
from shared.config import load_settings
from tests.fixtures.moderation import outbox, processed_event, received

POLICY = ModerationPolicy()
ALICE = Actor("admin-alice")
BOB = Actor("admin-bob")


async def _flagged(db, **overrides) -> uuid.UUID:
    """An image waiting in the queue (missing keywords unless told otherwise)."""
    event = processed_event(**({"keywords": ["coffee"]} | overrides))
    assert await handlers.handle_image_processed(db, received(event), POLICY) == "pending"
    return event.image_id


async def _live(db, **overrides) -> uuid.UUID:
    event = processed_event(**overrides)
    assert await handlers.handle_image_processed(db, received(event), POLICY) == "approved"
    return event.image_id


async def _audit(db) -> list[dict]:
    return [dict(r) for r in await db.pool.fetch("select * from moderation.audit_log order by id")]


# --- the image.processed policy -------------------------------------------------------------------


async def test_a_clean_image_is_approved_automatically_with_its_whole_listing(db):
    event = processed_event()
    assert await handlers.handle_image_processed(db, received(event), POLICY) == "approved"

    (approved,) = await outbox(db)
    assert approved["subject"] == "image.approved"
    message = ImageApproved.model_validate(approved)
    assert message.image_id == event.image_id and message.contributor_id == "contributor-1"
    assert message.revision == 2  # processing emitted 1; moderation owns every later revision
    assert message.listing == event.listing
    assert message.original_blob == event.original_blob and message.file_name == "espresso.jpg"
    image = await handlers.get_image(db, event.image_id)
    assert (image["state"], image["decided_by"], image["reasons"]) == ("approved", "moderation-policy", [])
    assert await _audit(db) == []  # no admin acted


async def test_an_image_that_fails_the_policy_waits_for_a_human_with_its_reasons(db):
    event = processed_event(safety_score=0.8, keywords=["coffee"], near_duplicate_of=uuid.uuid4())
    assert await handlers.handle_image_processed(db, received(event), POLICY) == "pending"

    (flagged,) = await outbox(db)
    assert flagged["subject"] == "image.flagged"
    message = ImageFlagged.model_validate(flagged)
    assert message.reasons == ["nsfw_score", "near_duplicate_of", "missing_keywords"]
    assert message.revision == 2
    image = await handlers.get_image(db, event.image_id)
    assert image["state"] == "pending" and image["reasons"] == message.reasons
    assert image["near_duplicate_of"] == event.near_duplicate_of


async def test_a_redelivered_or_repeated_processed_event_has_no_second_effect(db):
    event = processed_event()
    message = received(event)
    assert await handlers.handle_image_processed(db, message, POLICY) == "approved"
    assert await handlers.handle_image_processed(db, message, POLICY) == "duplicate"
    # The same image processed again (a new message) does not re-open a decision.
    assert await handlers.handle_image_processed(db, received(event), POLICY) == "already_known"
    assert len(await outbox(db)) == 1
    assert await db.pool.fetchval("select revision from moderation.images where image_id = $1", event.image_id) == 2


# --- decisions -----------------------------------------------------------------------------------------


async def test_approving_a_pending_image_publishes_it_and_audits_who_did_it(db):
    image_id = await _flagged(db)
    view = await handlers.approve_image(db, image_id, ALICE)

    assert (view["state"], view["revision"], view["decided_by"]) == ("approved", 3, "admin-alice")
    approved = ImageApproved.model_validate((await outbox(db, "image.approved"))[0])
    assert approved.revision == 3 and approved.listing.keywords == ["coffee"]
    (entry,) = await _audit(db)
    assert (entry["actor"], entry["action"], entry["target_type"], entry["target_id"]) == (
        "admin-alice",
        "image.approve",
        "image",
        str(image_id),
    )
    assert entry["before"] == {"state": "pending", "revision": 2, "reasons": ["missing_keywords"]}
    assert entry["after"]["state"] == "approved" and entry["after"]["revision"] == 3
    assert entry["at"] is not None


async def test_a_decided_image_cannot_be_decided_again(db):
    image_id = await _flagged(db)
    live = await _live(db)
    await handlers.reject_image(db, image_id, ALICE, "poor_quality", None)
    events_before = len(await outbox(db))

    with pytest.raises(StateConflict, match="rejected"):
        await handlers.approve_image(db, image_id, BOB)
    with pytest.raises(StateConflict):
        await handlers.reject_image(db, image_id, BOB, "nudity", None)
    with pytest.raises(StateConflict):
        await handlers.approve_image(db, live, BOB)
    assert len(await outbox(db)) == events_before
    assert [e["action"] for e in await _audit(db)] == ["image.reject"]


async def test_an_unknown_image_is_not_found(db):
    with pytest.raises(NotFound):
        await handlers.approve_image(db, uuid.uuid4(), ALICE)
    assert await outbox(db) == [] and await _audit(db) == []


async def test_rejecting_tells_the_contributor_the_reason_code_and_note(db):
    image_id = await _flagged(db)
    view = await handlers.reject_image(db, image_id, ALICE, "other", "Visible watermark in the corner")

    assert (view["state"], view["reject_reason_code"], view["reject_note"]) == (
        "rejected",
        "other",
        "Visible watermark in the corner",
    )
    rejected = ImageRejected.model_validate((await outbox(db, "image.rejected"))[0])
    assert (rejected.reason_code, rejected.note, rejected.revision) == ("other", "Visible watermark in the corner", 3)
    assert (await _audit(db))[0]["after"]["reason_code"] == "other"


async def test_two_admins_deciding_the_same_image_at_once_exactly_one_wins(db):
    image_id = await _flagged(db)
    # Hold the row so both decisions are provably in flight together before either can proceed.
    async with db.transaction() as blocker:
        await blocker.execute("select 1 from moderation.images where image_id = $1 for update", image_id)
        approve = asyncio.create_task(handlers.approve_image(db, image_id, ALICE))
        reject = asyncio.create_task(handlers.reject_image(db, image_id, BOB, "nudity", None))
        # Asked outside the blocker's transaction: pg_stat_activity is a snapshot inside one.
        waiting = (
            "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'"
        )
        while await db.pool.fetchval(waiting) < 2:
            assert not (approve.done() or reject.done()), "a decision finished while the row was held"
            await asyncio.sleep(0.01)
    results = await asyncio.gather(approve, reject, return_exceptions=True)

    winners = [r for r in results if isinstance(r, dict)]
    losers = [r for r in results if isinstance(r, StateConflict)]
    assert len(winners) == 1 and len(losers) == 1, results
    decisions = [e for e in await outbox(db) if e["subject"] in ("image.approved", "image.rejected")]
    assert len(decisions) == 1 and decisions[0]["revision"] == 3
    assert len(await _audit(db)) == 1
    assert (await handlers.get_image(db, image_id))["state"] == winners[0]["state"]


async def test_bulk_moderation_decides_each_id_on_its_own(db):
    pending = [await _flagged(db) for _ in range(3)]
    live = await _live(db)
    missing = uuid.uuid4()
    request = BulkModerateIn(
        action="reject",
        image_ids=[str(pending[0]), "not-a-uuid", str(missing), str(live), str(pending[1]), str(pending[2])],
        reason_code="poor_quality",
    )
    results = await handlers.moderate_in_bulk(db, request, ALICE)

    assert [(r.image_id, r.status, r.state, r.error) for r in results] == [
        (str(pending[0]), 200, "rejected", None),
        ("not-a-uuid", 400, None, "invalid-id"),
        (str(missing), 404, None, "not-found"),
        (str(live), 409, None, "state-conflict"),
        (str(pending[1]), 200, "rejected", None),
        (str(pending[2]), 200, "rejected", None),
    ]
    assert len(await outbox(db, "image.rejected")) == 3
    assert [e["target_id"] for e in await _audit(db)] == [str(i) for i in pending]


# --- edits and takedowns ---------------------------------------------------------------------------------


async def test_editing_a_live_image_announces_its_new_listing(db):
    await handlers.create_category(db, CategoryIn(slug="food-and-drink", name="Food & drink"), ALICE)
    image_id = await _live(db)
    patch = ImagePatch(title="Espresso, top view", keywords=["coffee", "espresso", "crema"], category="food-and-drink")
    view = await handlers.edit_image(db, image_id, patch, ALICE, POLICY)

    assert view["title"] == "Espresso, top view" and view["revision"] == 3 and view["state"] == "approved"
    updated = ImageUpdated.model_validate((await outbox(db, "image.updated"))[0])
    assert updated.revision == 3
    assert (updated.listing.title, updated.listing.keywords, updated.listing.category) == (
        "Espresso, top view",
        ["coffee", "espresso", "crema"],
        "food-and-drink",
    )
    assert updated.listing.width == 6000  # the rest of the listing is carried unchanged
    entry = (await _audit(db))[-1]
    assert entry["action"] == "image.edit"
    assert entry["before"] == {
        "title": "Espresso on a marble counter",
        "keywords": ["coffee", "espresso", "cup", "cafe", "morning"],
        "category": None,
    }
    assert entry["after"] == patch.model_dump(exclude_unset=True)


async def test_editing_a_pending_image_rechecks_its_reasons_and_keeps_it_for_a_human(db):
    image_id = await _flagged(db)  # missing_keywords
    view = await handlers.edit_image(
        db, image_id, ImagePatch(keywords=["coffee", "espresso", "cup", "cafe", "beans"]), ALICE, POLICY
    )
    assert (view["state"], view["reasons"], view["revision"]) == ("pending", [], 3)
    flagged = [ImageFlagged.model_validate(e) for e in await outbox(db, "image.flagged")]
    assert [(f.revision, f.reasons) for f in flagged] == [(2, ["missing_keywords"]), (3, [])]
    assert await outbox(db, "image.updated") == []  # not live: nothing for search to show


async def test_an_edit_to_an_unknown_or_retired_category_changes_nothing(db):
    await handlers.create_category(db, CategoryIn(slug="travel", name="Travel"), ALICE)
    await handlers.change_category(db, "travel", CategoryPatch(retired=True), ALICE)
    image_id = await _live(db)
    events_before = len(await outbox(db))
    for slug in ("travel", "no-such-category"):
        with pytest.raises(UnknownCategory):
            await handlers.edit_image(db, image_id, ImagePatch(title="New", category=slug), ALICE, POLICY)
    image = await handlers.get_image(db, image_id)
    assert (image["title"], image["category"], image["revision"]) == ("Espresso on a marble counter", None, 2)
    assert len(await outbox(db)) == events_before


async def test_taking_down_a_live_image_removes_it_and_only_a_live_one(db):
    image_id = await _live(db)
    view = await handlers.take_down_image(db, image_id, "DMCA notice 2026-118", ALICE)

    assert (view["state"], view["removed_reason"], view["revision"]) == ("removed", "DMCA notice 2026-118", 3)
    removed = ImageRemoved.model_validate((await outbox(db, "image.removed"))[0])
    assert (removed.reason, removed.revision) == ("DMCA notice 2026-118", 3)
    with pytest.raises(StateConflict):
        await handlers.take_down_image(db, image_id, "again", ALICE)
    with pytest.raises(StateConflict):
        await handlers.take_down_image(db, await _flagged(db), "not live", ALICE)
    with pytest.raises(StateConflict):
        await handlers.edit_image(db, image_id, ImagePatch(title="x"), ALICE, POLICY)
    assert [e["action"] for e in await _audit(db)] == ["image.takedown"]


# --- the queue -----------------------------------------------------------------------------------------


async def test_the_queue_lists_pending_images_oldest_first_with_filters_and_paging(db):
    nsfw = await _flagged(db, safety_score=0.9, keywords=["a", "b", "c", "d", "e"])
    dup = await _flagged(db, near_duplicate_of=uuid.uuid4(), contributor_id="contributor-2")
    few = await _flagged(db)
    await _live(db)
    await db.pool.execute(
        "update moderation.images set queued_at = now() - interval '2 hours' where image_id = $1", nsfw
    )
    await db.pool.execute("update moderation.images set queued_at = now() - interval '1 hour' where image_id = $1", dup)

    async def ids(**filters) -> list[uuid.UUID]:
        page = await handlers.moderation_queue(db, QueueQuery(**filters))
        return [item["image_id"] for item in page["items"]]

    assert await ids() == [nsfw, dup, few]
    assert await ids(reason="missing_keywords") == [dup, few]
    assert await ids(reason="nsfw_score") == [nsfw]
    assert await ids(contributor="contributor-2") == [dup]
    assert await ids(min_age_minutes=30) == [nsfw, dup]
    page2 = await handlers.moderation_queue(db, QueueQuery(page=2, per_page=2))
    assert [i["image_id"] for i in page2["items"]] == [few] and page2["total"] == 3
    beyond = await handlers.moderation_queue(db, QueueQuery(page=5, per_page=2))
    assert beyond["items"] == [] and beyond["total"] == 3
    await handlers.approve_image(db, dup, ALICE)
    assert await ids() == [nsfw, few]


# --- categories and pricing -------------------------------------------------------------------------------


async def test_categories_are_created_renamed_retired_and_brought_back(db):
    created = await handlers.create_category(db, CategoryIn(slug="nature", name="Nature"), ALICE)
    assert (created["slug"], created["name"], created["retired"]) == ("nature", "Nature", False)
    with pytest.raises(handlers.AlreadyExists):
        await handlers.create_category(db, CategoryIn(slug="nature", name="Outdoors"), ALICE)
    with pytest.raises(handlers.AlreadyExists):
        await handlers.create_category(db, CategoryIn(slug="wild", name="nature"), ALICE)

    renamed = await handlers.change_category(db, "nature", CategoryPatch(name="Nature & landscapes"), ALICE)
    assert renamed["name"] == "Nature & landscapes" and not renamed["retired"]
    retired = await handlers.change_category(db, "nature", CategoryPatch(retired=True), ALICE)
    assert retired["retired"] and retired["retired_at"] is not None
    assert await handlers.list_categories(db, include_retired=False) == []
    assert [c["slug"] for c in await handlers.list_categories(db, include_retired=True)] == ["nature"]
    back = await handlers.change_category(db, "nature", CategoryPatch(retired=False), ALICE)
    assert not back["retired"] and back["retired_at"] is None
    with pytest.raises(NotFound):
        await handlers.change_category(db, "missing", CategoryPatch(name="x"), ALICE)

    assert [(e["action"], e["before"], e["after"]) for e in await _audit(db)] == [
        ("category.create", None, {"name": "Nature", "retired": False}),
        ("category.change", {"name": "Nature", "retired": False}, {"name": "Nature & landscapes", "retired": False}),
        (
            "category.change",
            {"name": "Nature & landscapes", "retired": False},
            {"name": "Nature & landscapes", "retired": True},
        ),
        (
            "category.change",
            {"name": "Nature & landscapes", "retired": True},
            {"name": "Nature & landscapes", "retired": False},
        ),
    ]


def _prices(standard: int, enhanced: int, currency: str = "EUR") -> PricingIn:
    return PricingIn.model_validate(
        {
            "prices": {
                "standard": {"amount_minor": standard, "currency": currency},
                "enhanced": {"amount_minor": enhanced, "currency": currency},
            }
        }
    )


async def test_pricing_changes_are_announced_with_increasing_revisions_and_a_retry_announces_nothing(db):
    settings = load_settings(CHECKOUT_DEFAULT_STANDARD_PRICE_MINOR=1234, CHECKOUT_DEFAULT_CURRENCY="EUR")
    launch = await handlers.get_pricing(db, settings)
    # Nothing published yet: the page lists the launch prices checkout charges and search shows.
    assert launch["revision"] == 0
    assert launch["prices"]["standard"] == {"amount_minor": 1234, "currency": "EUR"}
    assert set(launch["prices"]) == {"standard", "enhanced"}

    first = await handlers.set_pricing(db, _prices(1900, 6900), ALICE)
    again = await handlers.set_pricing(db, _prices(1900, 6900), ALICE)
    second = await handlers.set_pricing(db, _prices(2400, 7900), BOB)

    assert (first["revision"], again["revision"], second["revision"]) == (1, 1, 2)
    announced = [PricingUpdated.model_validate(e) for e in await outbox(db, "pricing.updated")]
    assert [(p.revision, p.prices["standard"].amount_minor, p.prices["enhanced"].currency) for p in announced] == [
        (1, 1900, "EUR"),
        (2, 2400, "EUR"),
    ]
    entries = await _audit(db)
    assert [(e["actor"], e["before"]["revision"], e["after"]["revision"]) for e in entries] == [
        ("admin-alice", 0, 1),
        ("admin-bob", 1, 2),
    ]
    published = await handlers.get_pricing(db, settings)
    assert published["updated_by"] == "admin-bob" and published["prices"]["standard"]["amount_minor"] == 2400
