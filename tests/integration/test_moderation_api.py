"""The moderation API through the HTTP edge, in-process: problem+json for every bad input, nothing changed.

Requests go through the same entry points and route table devhost serves, on a real database.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from functions.moderation import handlers
from functions.moderation.policy import ModerationPolicy
from tests.fixtures.moderation import outbox, processed_event, received


async def _pending(db, **overrides) -> str:
    event = processed_event(**({"keywords": ["coffee"]} | overrides))
    await handlers.handle_image_processed(db, received(event), ModerationPolicy())
    return str(event.image_id)


async def _snapshot(db) -> tuple:
    """Everything a refused request must leave as it was."""
    return (
        [dict(r) for r in await db.pool.fetch("select * from moderation.images order by image_id")],
        await db.pool.fetchval("select count(*) from bus.outbox"),
        await db.pool.fetchval("select count(*) from moderation.audit_log"),
        [dict(r) for r in await db.pool.fetch("select * from moderation.categories order by slug")],
        dict(await db.pool.fetchrow("select * from moderation.pricing")),
    )


async def _until_both_wait_on_the_lock(db, tasks) -> None:
    waiting = "select count(*) from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'"
    # Asked outside the blocker's transaction: pg_stat_activity is a snapshot inside one.
    while await db.pool.fetchval(waiting) < 2:
        done = [t.result() for t in tasks if t.done()]
        assert not done, f"a request finished while the row was held: {done}"
        await asyncio.sleep(0.01)


@pytest.fixture
def admin(api_app) -> str:
    return api_app.token("admin-alice", "admin")


def _problem(response, status: int, slug: str) -> dict:
    assert response.status == status, response.body
    assert response.is_problem
    body = response.json()
    assert body["type"].endswith("/" + slug) and body["status"] == status
    return body


async def test_an_admin_works_the_queue_and_the_audit_log_shows_it(db, api_app, admin):
    first, second = await _pending(db), await _pending(db, safety_score=0.9)

    queue = await api_app.request("GET", "admin/moderation/queue", token=admin)
    assert queue.status == 200
    assert [i["image_id"] for i in queue.json()["items"]] == [first, second]
    assert queue.json()["items"][1]["reasons"] == ["nsfw_score", "missing_keywords"]

    approved = await api_app.request("POST", f"admin/images/{first}/approve", token=admin)
    assert approved.status == 200 and approved.json()["state"] == "approved"
    rejected = await api_app.request(
        "POST", f"admin/images/{second}/reject", token=admin, json_body={"reason_code": "nudity", "note": "explicit"}
    )
    assert rejected.status == 200 and rejected.json()["reject_reason_code"] == "nudity"
    assert (await api_app.request("GET", "admin/moderation/queue", token=admin)).json()["items"] == []

    log = await api_app.request("GET", "admin/audit-log", token=admin, query={"actor": "admin-alice"})
    assert [(e["action"], e["target_id"]) for e in log.json()["items"]] == [
        ("image.reject", second),
        ("image.approve", first),
    ]
    assert [e["subject"] for e in await outbox(db)][-2:] == ["image.approved", "image.rejected"]


async def test_an_unknown_reason_code_is_refused_naming_the_field(db, api_app, admin):
    image_id = await _pending(db)
    before = await _snapshot(db)
    response = await api_app.request(
        "POST", f"admin/images/{image_id}/reject", token=admin, json_body={"reason_code": "ugly"}
    )
    body = _problem(response, 422, "invalid-body")
    assert [e["name"] for e in body["errors"]] == ["reason_code"]
    assert await _snapshot(db) == before


async def test_a_reject_without_a_reason_is_refused(db, api_app, admin):
    image_id = await _pending(db)
    before = await _snapshot(db)
    for body in ({}, {"note": "blurry"}, {"reason_code": "other"}):
        response = await api_app.request("POST", f"admin/images/{image_id}/reject", token=admin, json_body=body)
        _problem(response, 422, "invalid-body")
    no_body = await api_app.request("POST", f"admin/images/{image_id}/reject", token=admin)
    assert no_body.status == 415
    assert await _snapshot(db) == before


async def test_approving_an_image_that_is_not_pending_is_a_conflict(db, api_app, admin):
    image_id = await _pending(db)
    assert (await api_app.request("POST", f"admin/images/{image_id}/approve", token=admin)).status == 200
    before = await _snapshot(db)
    again = await api_app.request("POST", f"admin/images/{image_id}/approve", token=admin)
    assert "approved" in _problem(again, 409, "state-conflict")["detail"]
    _problem(await api_app.request("POST", f"admin/images/{uuid.uuid4()}/approve", token=admin), 404, "not-found")
    assert await _snapshot(db) == before


async def test_two_admins_deciding_at_once_one_wins_and_the_other_gets_409(db, api_app, admin):
    image_id = await _pending(db)
    bob = api_app.token("admin-bob", "admin")
    async with db.transaction() as blocker:  # both requests are in flight before either can decide
        await blocker.execute("select 1 from moderation.images where image_id = $1 for update", uuid.UUID(image_id))
        requests = [
            asyncio.create_task(api_app.request("POST", f"admin/images/{image_id}/approve", token=admin)),
            asyncio.create_task(
                api_app.request(
                    "POST", f"admin/images/{image_id}/reject", token=bob, json_body={"reason_code": "poor_quality"}
                )
            ),
        ]
        await _until_both_wait_on_the_lock(db, requests)
    statuses = sorted(r.status for r in await asyncio.gather(*requests))
    assert statuses == [200, 409]
    assert await db.pool.fetchval("select count(*) from moderation.audit_log") == 1


async def test_bulk_over_500_ids_or_with_repeats_is_refused_whole(db, api_app, admin):
    image_id = await _pending(db)
    before = await _snapshot(db)
    too_many = [image_id] + [str(uuid.uuid4()) for _ in range(500)]
    repeated = [image_id, str(uuid.uuid4()), image_id]
    for ids in (too_many, repeated):
        response = await api_app.request(
            "POST", "admin/images/moderate", token=admin, json_body={"action": "approve", "image_ids": ids}
        )
        assert [e["name"] for e in _problem(response, 422, "invalid-body")["errors"]] == ["image_ids"]
    assert await _snapshot(db) == before


async def test_bulk_reports_each_id_and_a_bad_one_fails_alone(db, api_app, admin):
    good = [await _pending(db) for _ in range(2)]
    ids = [good[0], "garbage", str(uuid.uuid4()), good[1]]
    response = await api_app.request(
        "POST", "admin/images/moderate", token=admin, json_body={"action": "approve", "image_ids": ids}
    )
    assert response.status == 200
    body = response.json()
    assert [(r["image_id"], r["status"]) for r in body["results"]] == [
        (good[0], 200),
        ("garbage", 400),
        (ids[2], 404),
        (good[1], 200),
    ]
    assert (body["succeeded"], body["failed"]) == (2, 2)


@pytest.mark.parametrize("bad", ["", "   ", "k" * 101, "k" * 500])
async def test_keywords_that_are_empty_or_too_long_are_refused(db, api_app, admin, bad):
    image_id = await _pending(db)
    before = await _snapshot(db)
    response = await api_app.request(
        "PATCH", f"admin/images/{image_id}", token=admin, json_body={"title": "New", "keywords": ["coffee", bad]}
    )
    assert [e["name"] for e in _problem(response, 422, "invalid-body")["errors"]] == ["keywords.1"]
    assert await _snapshot(db) == before


async def test_an_edit_to_an_unknown_category_is_refused_and_changes_nothing(db, api_app, admin):
    image_id = await _pending(db)
    before = await _snapshot(db)
    response = await api_app.request(
        "PATCH", f"admin/images/{image_id}", token=admin, json_body={"title": "New", "category": "nope"}
    )
    _problem(response, 422, "unknown-category")
    assert await _snapshot(db) == before


async def test_takedown_needs_a_reason_and_a_live_image(db, api_app, admin):
    image_id = await _pending(db)
    before = await _snapshot(db)
    _problem(
        await api_app.request("POST", f"admin/images/{image_id}/takedown", token=admin, json_body={}),
        422,
        "invalid-body",
    )
    _problem(
        await api_app.request("POST", f"admin/images/{image_id}/takedown", token=admin, json_body={"reason": "DMCA"}),
        409,
        "state-conflict",
    )
    assert await _snapshot(db) == before


async def test_categories_over_http(db, api_app, admin):
    created = await api_app.request(
        "POST", "admin/categories", token=admin, json_body={"slug": "food-and-drink", "name": "Food & drink"}
    )
    assert created.status == 201 and created.headers["Location"] == "/api/admin/categories/food-and-drink"
    before = await _snapshot(db)
    _problem(
        await api_app.request(
            "POST", "admin/categories", token=admin, json_body={"slug": "food-and-drink", "name": "x"}
        ),
        409,
        "already-exists",
    )
    _problem(
        await api_app.request("POST", "admin/categories", token=admin, json_body={"slug": "Food Drink", "name": "x"}),
        422,
        "invalid-body",
    )
    _problem(
        await api_app.request("PATCH", "admin/categories/missing", token=admin, json_body={"retired": True}),
        404,
        "not-found",
    )
    assert await _snapshot(db) == before
    retired = await api_app.request(
        "PATCH", "admin/categories/food-and-drink", token=admin, json_body={"retired": True}
    )
    assert retired.status == 200 and retired.json()["retired"] is True
    public = await api_app.request("GET", "categories")
    assert public.status == 200 and public.json()["items"] == []


async def test_pricing_over_http_refuses_fractional_amounts_and_bad_currencies(db, api_app, admin):
    before = await _snapshot(db)
    good = {"amount_minor": 1900, "currency": "EUR"}
    for standard, field in (
        ({"amount_minor": 19.5, "currency": "EUR"}, "prices.standard.amount_minor"),
        ({"amount_minor": 1900, "currency": "eur"}, "prices.standard.currency"),
    ):
        response = await api_app.request(
            "PUT", "admin/pricing", token=admin, json_body={"prices": {"standard": standard, "enhanced": good}}
        )
        assert [e["name"] for e in _problem(response, 422, "invalid-body")["errors"]] == [field]
    assert await _snapshot(db) == before
    put = await api_app.request(
        "PUT", "admin/pricing", token=admin, json_body={"prices": {"standard": good, "enhanced": good}}
    )
    assert put.status == 200 and put.json()["revision"] == 1
    assert (await api_app.request("GET", "admin/pricing", token=admin)).json()["prices"]["standard"] == good


async def test_admin_routes_answer_403_to_contributors_and_buyers_and_change_nothing(db, api_app):
    image_id = await _pending(db)
    before = await _snapshot(db)
    for roles in (("contributor",), ("buyer",), ("buyer", "contributor")):
        token = api_app.token("someone", *roles)
        response = await api_app.request("POST", f"admin/images/{image_id}/approve", token=token)
        _problem(response, 403, "forbidden")
    _problem(await api_app.request("POST", f"admin/images/{image_id}/approve"), 401, "unauthenticated")
    assert await _snapshot(db) == before


async def test_a_contributor_edits_their_own_image_and_the_new_reasons_are_announced(db, api_app):
    image_id = await _pending(db, contributor_id="carol")
    carol = api_app.token("carol", "contributor")
    keywords = ["coffee", "espresso", "cup", "cafe", "morning", "table"]
    edited = await api_app.request(
        "PATCH",
        f"contributor/images/{image_id}",
        token=carol,
        json_body={"description": "Seen from above.", "keywords": keywords},
    )
    assert edited.status == 200, edited.body
    assert edited.json()["keywords"] == keywords and edited.json()["description"] == "Seen from above."
    assert "missing_keywords" not in edited.json()["reasons"]
    flagged = (await outbox(db, "image.flagged"))[-1]
    assert flagged["image_id"] == image_id and "missing_keywords" not in flagged["reasons"]


async def test_a_contributor_cannot_edit_someone_elses_image(db, api_app):
    image_id = await _pending(db, contributor_id="carol")
    before = await _snapshot(db)
    dave = api_app.token("dave", "contributor")
    response = await api_app.request("PATCH", f"contributor/images/{image_id}", token=dave, json_body={"title": "Mine"})
    _problem(response, 404, "not-found")
    assert await _snapshot(db) == before
