"""Contributor HTTP routes of ingestion: ask for an upload ticket, read one's own catalogue."""

from __future__ import annotations

import uuid

from functions.ingestion.blueprint import bp
from functions.ingestion.catalogue import get_image, list_images
from functions.ingestion.models import ContributorImage, ImagesPage, ImagesQuery, UploadRequest, UploadTicket
from functions.ingestion.policy import IngestionPolicy
from functions.ingestion.quotas import QuotaExceeded
from functions.ingestion.uploads import StorageUnavailable, UploadRefused, register_upload
from shared.http import ApiRequest, Problem, api
from shared.runtime import get_runtime

CONTRIBUTOR = {"contributor"}
TAGS = ["contributor"]


@api(
    bp,
    "POST",
    "contributor/uploads",
    roles=CONTRIBUTOR,
    summary="Register an upload and get a write-only SAS URL to PUT the file to",
    body_model=UploadRequest,
    response_model=UploadTicket,
    status=201,
    tags=TAGS,
)
async def create_upload(request: ApiRequest) -> UploadTicket:
    runtime = await get_runtime()
    try:
        return await register_upload(
            runtime.db,
            runtime.storage,
            IngestionPolicy.from_settings(runtime.settings),
            request.require_principal().sub,
            request.body,
            correlation_id=request.correlation_id,
        )
    except QuotaExceeded as exc:
        raise Problem(
            429,
            "upload-quota-exceeded",
            "Daily upload quota used",
            f"You have used today's upload {exc.what} quota ({exc.used} of {exc.limit}); it renews at 00:00 UTC.",
            headers={"Retry-After": str(exc.retry_after)},
            retry_after=exc.retry_after,
            quota=exc.what,
            limit=exc.limit,
        ) from None
    except StorageUnavailable:
        raise Problem(
            503,
            "storage-unavailable",
            "Uploads are unavailable",
            "File storage cannot be reached right now; try again in a minute.",
            headers={"Retry-After": "30"},
        ) from None
    except UploadRefused as exc:
        raise Problem(
            422,
            "invalid-body",
            "Invalid request body",
            f"Check: {exc.field}.",
            errors=[{"name": exc.field, "in": "body", "reason": str(exc)}],
        ) from None


@api(
    bp,
    "GET",
    "contributor/images",
    roles=CONTRIBUTOR,
    summary="The caller's own images in every state, newest first, with quarantine and rejection reasons",
    query_model=ImagesQuery,
    response_model=ImagesPage,
    tags=TAGS,
)
async def list_contributor_images(request: ApiRequest) -> ImagesPage:
    runtime = await get_runtime()
    query: ImagesQuery = request.query
    items, next_cursor = await list_images(
        runtime.db,
        request.require_principal().sub,
        state=query.state,
        per_page=query.per_page,
        cursor=query.cursor,
        ids=query.image_ids(),
    )
    return ImagesPage(items=items, next_cursor=next_cursor)


@api(
    bp,
    "GET",
    "contributor/images/{id}",
    roles=CONTRIBUTOR,
    summary="One of the caller's images: state, reasons, renditions, tags, safety score",
    response_model=ContributorImage,
    tags=TAGS,
)
async def get_contributor_image(request: ApiRequest) -> ContributorImage:
    runtime = await get_runtime()
    not_found = Problem(404, "not-found", "Not found", "You have no image with this id.")
    try:
        image_id = uuid.UUID(request.path_params["id"])
    except (KeyError, ValueError):
        raise not_found from None
    image = await get_image(runtime.db, request.require_principal().sub, image_id)
    if image is None:  # someone else's image answers exactly like a missing one
        raise not_found
    return image
