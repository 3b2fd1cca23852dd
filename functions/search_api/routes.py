"""Search HTTP routes: thin wrappers that hand the ports to the handlers and map errors to problems."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from uuid import UUID

from functions.search_api import handlers
from functions.search_api.blueprint import bp
from functions.search_api.cache import ResultCache
from functions.search_api.models import (
    AdminSearchParams,
    ByImageParams,
    CatalogueOut,
    ImageDetail,
    PortfolioParams,
    SearchOut,
    SearchParams,
    SimilarParams,
    SuggestOut,
    SuggestParams,
)
from shared.config import Settings
from shared.db import Database
from shared.http import ANYONE, ApiRequest, ApiResponse, Problem, api
from shared.pricing import launch_prices
from shared.runtime import get_runtime
from shared.search.changes import ChangeReader, RuleBuilder
from shared.search.factory import get_search_index
from shared.search.generation import GenerationReader
from shared.search.port import SearchIndex

# Anonymous searches share one per-IP budget: scraping the catalogue must sign in or slow down.
ANONYMOUS_SEARCH_LIMIT = "SEARCH_ANONYMOUS_PER_IP_PER_MINUTE"
TAGS = ["search"]
EXPLAIN_ROLE = "admin"
CACHE_HEADER = "X-Search-Cache"  # hit, miss, coalesced, bypass (explain) or off


@dataclass
class _Deps:
    runtime: object
    index: SearchIndex
    embedder: handlers.QueryEmbedder
    prices: handlers.PriceBook
    tuning: handlers.SearchTuning
    generations: GenerationReader
    cache: ResultCache | None
    rules: RuleBuilder | None  # match-based invalidation (the local index): which images move a page


_deps: _Deps | None = None


async def _dependencies() -> _Deps:
    global _deps
    runtime = await get_runtime()
    if _deps is None or _deps.runtime is not runtime:
        from shared.ml import get_text_encoder

        settings = runtime.settings
        generations = GenerationReader(runtime.db)
        by_match = settings.SEARCH_CACHE_ENABLED and _invalidation(settings) == "match"
        _deps = _Deps(
            runtime=runtime,
            index=await get_search_index(),
            embedder=handlers.QueryEmbedder(get_text_encoder(), settings.SEARCH_QUERY_VECTORS_CACHED),
            prices=handlers.PriceBook(
                runtime.db,
                {name: handlers.Money(**price.model_dump()) for name, price in launch_prices(runtime.settings).items()},
                generations,
            ),
            tuning=handlers.SearchTuning(
                candidates=settings.SEARCH_VECTOR_CANDIDATES,
                max_vector_distance=settings.SEARCH_MAX_VECTOR_DISTANCE,
                safe_max_score=settings.SEARCH_SAFE_MAX_SCORE,
            ),
            generations=generations,
            cache=_result_cache(settings, runtime.db) if settings.SEARCH_CACHE_ENABLED else None,
            rules=RuleBuilder(runtime.db) if by_match else None,
        )
    return _deps


def _invalidation(settings: Settings) -> str:
    # Match-based invalidation reads the local index's change log: Azure AI Search has none, so its cache
    # drops every page when the generation moves (its steps are logged as 'all' anyway).
    return "generation" if settings.SEARCH_BACKEND == "azure" else settings.SEARCH_CACHE_INVALIDATION


def _result_cache(settings: Settings, db: Database) -> ResultCache:
    settle = settings.SEARCH_CACHE_SETTLE_SECONDS
    if settle is None:  # Azure AI Search shows a write about 1 s after the call; Postgres at commit
        settle = 2.0 if settings.SEARCH_BACKEND == "azure" else 0.0
    return ResultCache(
        max_entries=settings.SEARCH_CACHE_MAX_ENTRIES,
        max_bytes=settings.SEARCH_CACHE_MAX_MB * 2**20,
        popular_ttl=settings.SEARCH_CACHE_POPULAR_TTL_SECONDS,
        settle_seconds=settle,
        changes=ChangeReader(db).steps if _invalidation(settings) == "match" else None,
    )


def _image_id(request: ApiRequest) -> UUID:
    # The route's {id:guid} constraint already turned anything else into a 404.
    return UUID(request.path_params["id"])


def _not_found(image_id: UUID) -> Problem:
    return Problem(404, "image-not-found", "No such image", f"Image {image_id} is not in the public catalogue.")


@api(
    bp,
    "GET",
    "search",
    roles=ANYONE,
    anonymous_limit=ANONYMOUS_SEARCH_LIMIT,
    summary="Search approved images by words and meaning, with filters, sorting and facets",
    query_model=SearchParams,
    response_model=SearchOut,
    errors=(403,),
    tags=TAGS,
)
async def search(request: ApiRequest) -> ApiResponse:
    deps = await _dependencies()
    if request.query.explain and (request.principal is None or EXPLAIN_ROLE not in request.principal.roles):
        # Explanations show ranking internals (how to game it): admins and portal debugging only.
        raise Problem(403, "explain-forbidden", "Forbidden", "explain=true is for admins; search without it.")
    body, outcome = await handlers.search_response(
        deps.cache,
        deps.generations,
        deps.index,
        deps.embedder,
        deps.prices,
        deps.tuning,
        request.query,
        db=deps.runtime.db,
        rules=deps.rules,
    )
    # The body is SearchOut's JSON (cached pages are kept serialised); the header says where it came from.
    return ApiResponse(200, body, {CACHE_HEADER: outcome}, "application/json")


@api(
    bp,
    "GET",
    "images/{id:guid}",
    roles=ANYONE,
    summary="One public image: metadata, keywords, rendition URLs and prices",
    response_model=ImageDetail,
    tags=TAGS,
)
async def image_detail(request: ApiRequest) -> ImageDetail:
    deps = await _dependencies()
    image_id = _image_id(request)
    try:
        return await handlers.image_detail(deps.index, deps.prices, image_id)
    except handlers.ImageNotFound:
        raise _not_found(image_id) from None


@api(
    bp,
    "GET",
    "images/{id:guid}/similar",
    roles=ANYONE,
    anonymous_limit=ANONYMOUS_SEARCH_LIMIT,
    summary="Nearest neighbours of a public image (not itself, not its exact duplicates)",
    query_model=SimilarParams,
    response_model=SearchOut,
    tags=TAGS,
)
async def similar_images(request: ApiRequest) -> SearchOut:
    deps = await _dependencies()
    image_id = _image_id(request)
    try:
        return await handlers.similar_images(deps.index, deps.prices, deps.tuning, image_id, request.query)
    except handlers.ImageNotFound:
        raise _not_found(image_id) from None


BY_IMAGE_MAX_BYTES = 15 * 1024 * 1024
BY_IMAGE_MAX_PIXELS = 40_000_000


@api(
    bp,
    "POST",
    "search/by-image",
    roles=ANYONE,
    anonymous_limit=ANONYMOUS_SEARCH_LIMIT,
    summary="Upload a picture (raw body: JPEG, PNG, WebP or TIFF) and get similar images; nothing is stored",
    query_model=ByImageParams,
    raw_body=("image/jpeg", "image/png", "image/webp", "image/tiff"),
    response_model=SearchOut,
    tags=TAGS,
)
async def search_by_image(request: ApiRequest) -> SearchOut:
    from shared.imaging.decode import UndecodableImage, decode
    from shared.imaging.inspect import Limits, Rejected, check_header
    from shared.ml import ModelInputError, get_image_analyzer

    runtime = await get_runtime()
    settings = runtime.settings
    data = request.http.get_body() or b""
    # Validated like an upload, but anyone may call this: a query picture gets far smaller limits than
    # a contributor's original (any resolution is a fair query; the model sees 224 px).
    limits = Limits(
        max_bytes=min(settings.MAX_UPLOAD_BYTES, BY_IMAGE_MAX_BYTES),
        max_pixels=min(settings.MAX_IMAGE_PIXELS, BY_IMAGE_MAX_PIXELS),
        min_megapixels=0.0,
    )
    try:
        check_header(data, limits)  # no decoding: cheap enough for the event loop
        decoded = await asyncio.to_thread(decode, data, 512)  # the one decode; fails on truncated data
        analysis = (await asyncio.to_thread(get_image_analyzer().analyze, [decoded.image]))[0]
    except Rejected as exc:
        status = 413 if exc.code == "too-large" else 415 if exc.code == "unsupported-type" else 400
        raise Problem(status, f"image-{exc.code}", "Image not accepted", exc.message, code=exc.code) from None
    except (UndecodableImage, ModelInputError) as exc:
        raise Problem(
            400,
            "image-undecodable",
            "Image not accepted",
            f"The image could not be read ({exc}); send the complete file as a JPEG, PNG, WebP or TIFF picture.",
        ) from None
    deps = await _dependencies()
    query: ByImageParams = request.query
    return await handlers.search_by_vector(
        deps.index, deps.prices, deps.tuning, analysis.embedding.tolist(), query, query
    )


@api(
    bp,
    "GET",
    "keywords/suggest",
    roles=ANYONE,
    summary="Keywords starting with a prefix, most used first",
    query_model=SuggestParams,
    response_model=SuggestOut,
    tags=TAGS,
)
async def suggest_keywords(request: ApiRequest) -> SuggestOut:
    runtime = await get_runtime()
    return await handlers.suggest_keywords(runtime.db, request.query.q, request.query.limit)


@api(
    bp,
    "GET",
    "contributor/search",
    roles={"contributor"},
    summary="Search the caller's own images in every state (pending, flagged, approved, rejected, removed)",
    query_model=PortfolioParams,
    response_model=CatalogueOut,
    tags=TAGS,
)
async def portfolio_search(request: ApiRequest) -> CatalogueOut:
    runtime = await get_runtime()
    principal = request.require_principal()
    return await handlers.search_catalogue(runtime.db, request.query, contributor_id=principal.sub)


@api(
    bp,
    "GET",
    "admin/search",
    roles={"admin"},
    summary="Search every image in every state, including pending, flagged and rejected",
    query_model=AdminSearchParams,
    response_model=CatalogueOut,
    tags=TAGS,
)
async def admin_search(request: ApiRequest) -> CatalogueOut:
    runtime = await get_runtime()
    query: AdminSearchParams = request.query
    return await handlers.search_catalogue(runtime.db, query, contributor_id=query.contributor)
