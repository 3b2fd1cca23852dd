"""Admin HTTP routes of moderation: the queue, decisions, edits, takedowns, categories, pricing, audit log.

Each route parses (the edge already validated the body and query), calls one handler and maps its
domain errors to problem+json.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from functions.moderation import handlers
from functions.moderation.blueprint import bp
from functions.moderation.handlers import Actor, ModerationError
from functions.moderation.models import (
    AuditPage,
    AuditQuery,
    BulkModerateIn,
    BulkModerateOut,
    CategoriesQuery,
    Category,
    CategoryIn,
    CategoryList,
    CategoryPatch,
    ImagePatch,
    ModerationImage,
    PricingIn,
    PricingOut,
    QueuePage,
    QueueQuery,
    RejectIn,
    TakedownIn,
)
from functions.moderation.policy import ModerationPolicy
from shared.http import ANYONE, ApiRequest, ApiResponse, Problem, api
from shared.runtime import get_runtime

ADMIN = {"admin"}
TAGS = ["moderation"]


@contextmanager
def _as_problem() -> Iterator[None]:
    try:
        yield
    except ModerationError as exc:
        raise Problem(exc.status, exc.slug, exc.title, exc.detail) from None


def _actor(request: ApiRequest) -> Actor:
    return Actor(sub=request.require_principal().sub)


def _image_id(request: ApiRequest) -> uuid.UUID:
    try:
        return uuid.UUID(request.path_params["id"])
    except (KeyError, ValueError):
        raise Problem(404, "not-found", "Not found", "No image has this id.") from None


# --- queue and decisions -----------------------------------------------------------------------


@api(
    bp,
    "GET",
    "admin/moderation/queue",
    roles=ADMIN,
    summary="Images waiting for a decision, oldest first",
    query_model=QueueQuery,
    response_model=QueuePage,
    tags=TAGS,
)
async def moderation_queue(request: ApiRequest) -> QueuePage:
    runtime = await get_runtime()
    return QueuePage(**await handlers.moderation_queue(runtime.db, request.query))


@api(
    bp,
    "GET",
    "admin/images/{id:guid}",
    roles=ADMIN,
    summary="One image as moderation holds it: state, reasons, decision",
    response_model=ModerationImage,
    errors=(404,),
    tags=TAGS,
)
async def moderation_image(request: ApiRequest) -> ModerationImage:
    runtime = await get_runtime()
    with _as_problem():
        return ModerationImage(**await handlers.get_image(runtime.db, _image_id(request)))


@api(
    bp,
    "POST",
    "admin/images/{id:guid}/approve",
    roles=ADMIN,
    summary="Approve a pending image: it goes live",
    response_model=ModerationImage,
    errors=(404, 409),
    tags=TAGS,
)
async def approve_image(request: ApiRequest) -> ModerationImage:
    runtime = await get_runtime()
    with _as_problem():
        return ModerationImage(**await handlers.approve_image(runtime.db, _image_id(request), _actor(request)))


@api(
    bp,
    "POST",
    "admin/images/{id:guid}/reject",
    roles=ADMIN,
    summary="Reject a pending image with a reason code the contributor sees",
    body_model=RejectIn,
    response_model=ModerationImage,
    errors=(404, 409),
    tags=TAGS,
)
async def reject_image(request: ApiRequest) -> ModerationImage:
    runtime = await get_runtime()
    body: RejectIn = request.body
    with _as_problem():
        view = await handlers.reject_image(runtime.db, _image_id(request), _actor(request), body.reason_code, body.note)
    return ModerationImage(**view)


@api(
    bp,
    "POST",
    "admin/images/moderate",
    roles=ADMIN,
    summary="Approve or reject up to 500 images; each id succeeds or fails on its own",
    body_model=BulkModerateIn,
    response_model=BulkModerateOut,
    tags=TAGS,
)
async def moderate_images(request: ApiRequest) -> BulkModerateOut:
    runtime = await get_runtime()
    results = await handlers.moderate_in_bulk(runtime.db, request.body, _actor(request))
    succeeded = sum(1 for r in results if r.status == 200)
    return BulkModerateOut(results=results, succeeded=succeeded, failed=len(results) - succeeded)


# --- edits and takedowns ---------------------------------------------------------------------------


@api(
    bp,
    "PATCH",
    "admin/images/{id:guid}",
    roles=ADMIN,
    summary="Edit an image's title, keywords or category",
    body_model=ImagePatch,
    response_model=ModerationImage,
    errors=(404, 409, 422),
    tags=TAGS,
)
async def edit_image(request: ApiRequest) -> ModerationImage:
    runtime = await get_runtime()
    policy = ModerationPolicy.from_settings(runtime.settings)
    with _as_problem():
        view = await handlers.edit_image(runtime.db, _image_id(request), request.body, _actor(request), policy)
    return ModerationImage(**view)


@api(
    bp,
    "PATCH",
    "contributor/images/{id}",
    roles={"contributor"},
    summary="Edit one's own image: title, description, keywords or category (in review or live)",
    body_model=ImagePatch,
    response_model=ModerationImage,
    errors=(404, 409, 422),
    tags=["contributor"],
)
async def edit_own_image(request: ApiRequest) -> ModerationImage:
    runtime = await get_runtime()
    policy = ModerationPolicy.from_settings(runtime.settings)
    actor = _actor(request)
    with _as_problem():
        view = await handlers.edit_image(runtime.db, _image_id(request), request.body, actor, policy, owner=actor.sub)
    return ModerationImage(**view)


@api(
    bp,
    "POST",
    "admin/images/{id:guid}/takedown",
    roles=ADMIN,
    summary="Take a live image down; licenses already sold stay valid",
    body_model=TakedownIn,
    response_model=ModerationImage,
    errors=(404, 409),
    tags=TAGS,
)
async def take_down_image(request: ApiRequest) -> ModerationImage:
    runtime = await get_runtime()
    with _as_problem():
        view = await handlers.take_down_image(runtime.db, _image_id(request), request.body.reason, _actor(request))
    return ModerationImage(**view)


# --- categories ------------------------------------------------------------------------------------


@api(
    bp,
    "GET",
    "categories",
    roles=ANYONE,
    summary="The categories contributors and buyers can choose from",
    response_model=CategoryList,
    tags=TAGS,
)
async def public_categories(request: ApiRequest) -> CategoryList:
    runtime = await get_runtime()
    return CategoryList(items=await handlers.list_categories(runtime.db, include_retired=False))


@api(
    bp,
    "GET",
    "admin/categories",
    roles=ADMIN,
    summary="Every category, retired ones included",
    query_model=CategoriesQuery,
    response_model=CategoryList,
    tags=TAGS,
)
async def admin_categories(request: ApiRequest) -> CategoryList:
    runtime = await get_runtime()
    items = await handlers.list_categories(runtime.db, include_retired=request.query.include_retired)
    return CategoryList(items=items)


@api(
    bp,
    "POST",
    "admin/categories",
    roles=ADMIN,
    summary="Create a category",
    body_model=CategoryIn,
    response_model=Category,
    status=201,
    errors=(409,),
    tags=TAGS,
)
async def create_category(request: ApiRequest) -> ApiResponse:
    runtime = await get_runtime()
    with _as_problem():
        created = Category(**await handlers.create_category(runtime.db, request.body, _actor(request)))
    return ApiResponse(201, created, headers={"Location": f"/api/admin/categories/{created.slug}"})


@api(
    bp,
    "PATCH",
    "admin/categories/{slug}",
    roles=ADMIN,
    summary="Rename, retire or bring back a category",
    body_model=CategoryPatch,
    response_model=Category,
    errors=(404, 409),
    tags=TAGS,
)
async def change_category(request: ApiRequest) -> Category:
    runtime = await get_runtime()
    with _as_problem():
        return Category(
            **await handlers.change_category(runtime.db, request.path_params["slug"], request.body, _actor(request))
        )


# --- pricing and audit log ---------------------------------------------------------------------------


@api(
    bp,
    "GET",
    "admin/pricing",
    roles=ADMIN,
    summary="Prices per license type",
    response_model=PricingOut,
    tags=TAGS,
)
async def get_pricing(request: ApiRequest) -> PricingOut:
    runtime = await get_runtime()
    return PricingOut(**await handlers.get_pricing(runtime.db, runtime.settings))


@api(
    bp,
    "PUT",
    "admin/pricing",
    roles=ADMIN,
    summary="Set the prices per license type (integer minor units and currency)",
    body_model=PricingIn,
    response_model=PricingOut,
    tags=TAGS,
)
async def set_pricing(request: ApiRequest) -> PricingOut:
    runtime = await get_runtime()
    return PricingOut(**await handlers.set_pricing(runtime.db, request.body, _actor(request)))


@api(
    bp,
    "GET",
    "admin/audit-log",
    roles=ADMIN,
    summary="Every admin action: who, what, when, before and after",
    query_model=AuditQuery,
    response_model=AuditPage,
    tags=TAGS,
)
async def audit_log(request: ApiRequest) -> AuditPage:
    runtime = await get_runtime()
    return AuditPage(**await handlers.read_audit_log(runtime.db, request.query))
