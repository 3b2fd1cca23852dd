"""search_api handlers: plain async functions over the serving index, a text encoder and the read model.

Public search, image details, similar images, search by image and suggestions read the serving
index (only approved, live images) and the `search` schema's price and keyword tables that
search_sync maintains. Portfolio and admin search read the read model (`search.documents`),
which holds every state search_sync has heard of.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import numpy as np
from pydantic_core import to_json

from functions.search_api.cache import PUBLIC, ResultCache, search_key
from functions.search_api.embedding import QueryEmbedder
from functions.search_api.models import (
    AdminSearchParams,
    AiKeyword,
    CatalogueItem,
    CatalogueOut,
    Explanation,
    Facets,
    FacetValue,
    Filters,
    ImageDetail,
    Money,
    Paging,
    PortfolioParams,
    SearchItem,
    SearchOut,
    SearchParams,
    SimilarParams,
    Suggestion,
    SuggestOut,
)
from shared.db import Database
from shared.search.changes import RuleBuilder
from shared.search.generation import Generation, GenerationReader
from shared.search.matching import MatchRule
from shared.search.port import (
    AI_KEYWORD_MIN_CONFIDENCE,
    IndexDocument,
    SearchFilters,
    SearchIndex,
    SearchQuery,
    SearchResult,
)


class ImageNotFound(LookupError):
    pass


class SearchTuning:
    """The knobs a query needs from settings, so handlers do not read settings themselves."""

    def __init__(self, *, candidates: int, max_vector_distance: float, safe_max_score: float) -> None:
        self.candidates = candidates
        self.max_vector_distance = max_vector_distance
        self.safe_max_score = safe_max_score


class PriceBook:
    """The standard price from `search.pricing`, re-read when the index generation moves.

    A price change bumps the generation (search_sync), so the first request that reads the new generation
    re-reads the prices, on every instance; between changes the prices cost nothing. Without a generation
    reader (scripts, benches), every call reads them.
    """

    def __init__(
        self, db: Database, launch: dict[str, Money] | None = None, generations: GenerationReader | None = None
    ) -> None:
        self.db, self.generations = db, generations
        self.launch = launch or {}  # shown until the admin's first pricing.updated arrives
        self._prices: dict[str, Money] = {}
        self._generation: int | None = None  # the generation the prices were read at (or after)

    async def prices(self, generation: Generation | None = None) -> dict[str, Money]:
        if generation is None and self.generations is not None:
            generation = await self.generations.current()
        if generation is not None and self._generation is not None and self._generation >= generation.value:
            return self._prices  # read after this generation was: at least as new as it needs
        async with self.db.connection() as conn:
            raw = await conn.fetchval("select prices from search.pricing")
        prices = {name: Money(**price) for name, price in raw.items()} if raw else dict(self.launch)
        if generation is not None and (self._generation is None or generation.value >= self._generation):
            self._prices, self._generation = prices, generation.value
        return prices


def search_filters(params: Filters, tuning: SearchTuning, **extra: Any) -> SearchFilters:
    return SearchFilters(
        category=params.category,
        orientation=params.orientation,
        color=params.color.lower() if params.color else None,
        contributor_id=params.contributor,
        usage=params.license,
        max_safety_score=tuning.safe_max_score if params.safe else None,
        min_width=params.min_width,
        min_height=params.min_height,
        added_after=params.added_after,
        **extra,
    )


def _offset(paging: Paging) -> int:
    return (paging.page - 1) * paging.per_page


def _item(doc: IndexDocument, score: float, price: Money | None) -> SearchItem:
    return SearchItem(
        id=doc.image_id,
        title=doc.title,
        thumbnail_url=doc.thumbnail_url,
        thumbnail_small_url=doc.thumbnail_small_url,
        preview_url=doc.preview_url,
        width=doc.width,
        height=doc.height,
        orientation=doc.orientation,
        contributor_id=doc.contributor_id,
        blurhash=doc.blurhash,
        price=price,
        score=score,
    )


def _facets(result: SearchResult) -> Facets:
    def values(field: str) -> list[FacetValue]:
        return [FacetValue(value=f.value, count=f.count) for f in result.facets.get(field, [])]

    return Facets(
        category=values("category"), orientation=values("orientation"), color=values("colors"), license=values("usage")
    )


async def _page(
    index: SearchIndex,
    prices: PriceBook,
    query: SearchQuery,
    paging: Paging,
    with_facets: bool,
    generation: Generation | None = None,
) -> SearchOut:
    result = await index.search(query)
    price = (await prices.prices(generation)).get("standard")
    return _search_out(result, price, paging, with_facets)


def _search_out(result: SearchResult, price: Money | None, paging: Paging, with_facets: bool) -> SearchOut:
    return SearchOut(
        items=[_item(hit.document, hit.score, price) for hit in result.hits],
        total=result.total,
        total_is_estimate=result.total_is_estimate,
        page=paging.page,
        per_page=paging.per_page,
        facets=_facets(result) if with_facets else None,
    )


async def search_query(embedder: QueryEmbedder, tuning: SearchTuning, params: SearchParams) -> SearchQuery:
    text = params.q or None
    vector = await embedder.embed(text) if text and params.mode != "keyword" else None
    return SearchQuery(
        text=text,
        vector=vector,
        mode=params.mode,
        filters=search_filters(params, tuning),
        sort=params.sort,
        offset=_offset(params),
        limit=params.per_page,
        facets=params.facets,
        max_vector_distance=tuning.max_vector_distance,
        candidates=tuning.candidates,
    )


async def search_images(
    index: SearchIndex,
    embedder: QueryEmbedder,
    prices: PriceBook,
    tuning: SearchTuning,
    params: SearchParams,
    *,
    db: Database | None = None,  # needed for explain=true (the caller has checked the caller may)
    generation: Generation | None = None,  # the one the caller read, so prices are at least that new
    query: SearchQuery | None = None,  # already built from params
) -> SearchOut:
    query = query or await search_query(embedder, tuning, params)
    out = await _page(index, prices, query, params, params.facets, generation)
    if params.explain and db is not None:
        out = await explain_results(index, db, query, out, tuning.max_vector_distance)
    return out


async def search_response(
    cache: ResultCache | None,
    generations: GenerationReader,
    index: SearchIndex,
    embedder: QueryEmbedder,
    prices: PriceBook,
    tuning: SearchTuning,
    params: SearchParams,
    *,
    db: Database | None = None,
    audience: str = PUBLIC,
    rules: RuleBuilder | None = None,
) -> tuple[bytes, str]:
    """The search page as its JSON body, and where it came from: hit, miss, coalesced (another request's
    computation), bypass (explain=true: never cached) or off (no cache).

    The generation is read first (after this request arrived), so the page shows every change committed
    before it, cached or not; the prices are read at that generation too. `rules` (the local index): a
    cached page then survives the changes that cannot touch it (see cache.py).
    """
    generation = await generations.current()
    query: SearchQuery | None = None

    async def compute() -> bytes:
        nonlocal query
        query = await search_query(embedder, tuning, params)
        if params.explain and db is not None:
            out = await search_images(
                index, embedder, prices, tuning, params, db=db, generation=generation, query=query
            )
            return out.model_dump_json(by_alias=True).encode()
        result = await index.search(query)
        return page_json(result, (await prices.prices(generation)).get("standard"), params, params.facets)

    async def rule() -> MatchRule | None:
        return None if rules is None or query is None else await rules.rule(query)

    if cache is None or params.explain:
        return await compute(), "off" if cache is None else "bypass"
    return await cache.get(
        generation, search_key(params, audience), compute, popular=params.sort == "popular", rule=rule
    )


_FACET_NAMES = (("category", "category"), ("orientation", "orientation"), ("color", "colors"), ("license", "usage"))


def page_json(result: SearchResult, price: Money | None, paging: Paging, with_facets: bool) -> bytes:
    """`_search_out(...).model_dump_json()`, written from the index's result without building the response's
    models: the same bytes (pydantic's own serialiser, the fields in SearchOut's order; a test compares them
    on every field) for a fraction of the CPU, on the path every uncached search takes."""
    money = None if price is None else {"amount_minor": price.amount_minor, "currency": price.currency}
    items = []
    for hit in result.hits:
        doc = hit.document
        items.append(
            {
                "id": doc.image_id,
                "title": doc.title,
                "thumbnail_url": doc.thumbnail_url,
                "thumbnail_small_url": doc.thumbnail_small_url,
                "preview_url": doc.preview_url,
                "width": doc.width,
                "height": doc.height,
                "orientation": doc.orientation,
                "contributor_id": doc.contributor_id,
                "blurhash": doc.blurhash,
                "price": money,
                "score": hit.score,
                "explanation": None,
            }
        )
    facets = None
    if with_facets:
        facets = {
            name: [{"value": f.value, "count": f.count} for f in result.facets.get(field, [])]
            for name, field in _FACET_NAMES
        }
    return to_json(
        {
            "items": items,
            "total": result.total,
            "total_is_estimate": result.total_is_estimate,
            "page": paging.page,
            "per_page": paging.per_page,
            "facets": facets,
        }
    )


# How far down each leg explain looks for a result's rank: a debugging aid, not a query path.
_EXPLAIN_DEPTH = 200
_WORD = re.compile(r"(?<![\w-])(?!or\b)[\w']+", re.IGNORECASE)  # query words, less -excluded ones and OR
_FIELD_WORDS_SQL = """
select d->>'id' as id, f.field, w.word
from jsonb_array_elements($1::jsonb) d
cross join lateral (values ('title', d->>'title'), ('keywords', d->>'keywords'), ('tags', d->>'tags'),
                           ('description', d->>'description')) f(field, body)
cross join unnest($2::text[]) w(word)
where numnode(plainto_tsquery('english', w.word)) > 0
  and to_tsvector('english', f.body) @@ plainto_tsquery('english', w.word)
"""


async def explain_results(
    index: SearchIndex,
    db: Database,
    query: SearchQuery,
    out: SearchOut,
    floor: float,
) -> SearchOut:
    """The page again, each result with why it matched (explain=true)."""
    if not out.items:
        return out
    docs = {item.id: await index.get(item.id) for item in out.items}
    words = list(dict.fromkeys(w.lower() for w in _WORD.findall(query.text or "")))
    matched: dict[UUID, dict[str, list[str]]] = {i: {} for i in docs}
    if words:
        payload = [
            {
                "id": str(i),
                "title": d.title,
                "keywords": " ".join(d.keywords),
                "tags": " ".join(d.tags),
                "description": d.description,
            }
            for i, d in docs.items()
            if d is not None
        ]
        async with db.connection() as conn:
            for row in await conn.fetch(_FIELD_WORDS_SQL, payload, words):
                matched[UUID(row["id"])].setdefault(row["field"], []).append(row["word"])

    async def ranks(mode: str) -> dict[UUID, int]:
        leg = query.model_copy(update={"mode": mode, "offset": 0, "limit": _EXPLAIN_DEPTH, "facets": False})
        result = await index.search(leg)
        return {hit.document.image_id: n for n, hit in enumerate(result.hits, 1)}

    keyword = await ranks("keyword") if query.text and query.mode != "semantic" else {}
    semantic = await ranks("semantic") if query.vector is not None and query.mode != "keyword" else {}
    vector = np.asarray(query.vector, dtype=np.float32) if query.vector is not None else None
    items = []
    for item in out.items:
        doc = docs[item.id]
        score = None
        if vector is not None and doc is not None and len(doc.embedding) == len(vector):
            score = round(float(np.dot(vector, np.asarray(doc.embedding, dtype=np.float32))), 4)
        explanation = Explanation(
            matched_words=matched[item.id],
            keyword_rank=keyword.get(item.id),
            semantic_rank=semantic.get(item.id),
            semantic_score=score,
            within_floor=score is not None and 1 - score <= floor,
        )
        items.append(item.model_copy(update={"explanation": explanation}))
    return out.model_copy(update={"items": items})


async def image_detail(index: SearchIndex, prices: PriceBook, image_id: UUID) -> ImageDetail:
    doc = await index.get(image_id)
    if doc is None:
        raise ImageNotFound(image_id)
    return ImageDetail(
        id=doc.image_id,
        title=doc.title,
        description=doc.description,
        keywords=doc.keywords,
        tags=doc.tags,
        category=doc.category,
        license=doc.usage,
        width=doc.width,
        height=doc.height,
        orientation=doc.orientation,
        colors=doc.colors,
        contributor_id=doc.contributor_id,
        thumbnail_url=doc.thumbnail_url,
        thumbnail_small_url=doc.thumbnail_small_url,
        preview_url=doc.preview_url,
        blurhash=doc.blurhash,
        added_at=doc.added_at,
        prices=await prices.prices(),
    )


async def similar_images(
    index: SearchIndex, prices: PriceBook, tuning: SearchTuning, image_id: UUID, params: SimilarParams
) -> SearchOut:
    doc = await index.get(image_id)
    if doc is None:
        raise ImageNotFound(image_id)
    if not doc.embedding:
        return SearchOut(items=[], total=0, page=params.page, per_page=params.per_page)
    query = SearchQuery(
        vector=doc.embedding,
        mode="semantic",
        filters=SearchFilters(
            max_safety_score=tuning.safe_max_score if params.safe else None,
            exclude_ids=[doc.image_id],
            exclude_phashes=[doc.phash] if doc.phash else [],
        ),
        offset=_offset(params),
        limit=params.per_page,
        facets=False,
        max_vector_distance=tuning.max_vector_distance,
        candidates=tuning.candidates,
    )
    return await _page(index, prices, query, params, with_facets=False)


async def search_by_vector(
    index: SearchIndex,
    prices: PriceBook,
    tuning: SearchTuning,
    vector: Sequence[float],
    params: Filters,
    paging: Paging,
) -> SearchOut:
    query = SearchQuery(
        vector=list(vector),
        mode="semantic",
        filters=search_filters(params, tuning),
        offset=_offset(paging),
        limit=paging.per_page,
        facets=True,
        max_vector_distance=tuning.max_vector_distance,
        candidates=tuning.candidates,
    )
    return await _page(index, prices, query, paging, with_facets=True)


async def suggest_keywords(db: Database, prefix: str, limit: int) -> SuggestOut:
    pattern = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    async with db.connection() as conn:
        rows = await conn.fetch(
            "select keyword, images from search.keyword_counts where keyword like $1 and images > 0 "
            "order by images desc, keyword limit $2",
            pattern,
            limit,
        )
    return SuggestOut(suggestions=[Suggestion(keyword=r["keyword"], images=r["images"]) for r in rows])


_CATALOGUE_TEXT = (
    "to_tsvector('english'::regconfig, coalesce(listing->>'title', '') || ' ' || "
    "coalesce(listing->>'keywords', '') || ' ' || coalesce(listing->>'description', ''))"
)


async def search_catalogue(
    db: Database, params: PortfolioParams | AdminSearchParams, *, contributor_id: str | None
) -> CatalogueOut:
    """Portfolio (one contributor) or admin search over every state, newest change first."""
    clauses, values = ["true"], []

    def add(value: Any) -> str:
        values.append(value)
        return f"${len(values)}"

    if contributor_id is not None:
        clauses.append(f"contributor_id = {add(contributor_id)}")
    if params.status is not None:
        clauses.append(f"status = {add(params.status)}")
    if params.q:
        clauses.append(f"{_CATALOGUE_TEXT} @@ websearch_to_tsquery('english', {add(params.q)})")
    clauses.append("revision > 0")  # placeholders of a transaction in flight
    where = " and ".join(clauses)
    async with db.connection() as conn:
        total = await conn.fetchval(f"select count(*) from search.documents where {where}", *values)
        rows = await conn.fetch(
            f"select * from search.documents where {where} order by updated_at desc, image_id "
            f"offset {add(_offset(params))} limit {add(params.per_page)}",
            *values,
        )
    items = []
    for row in rows:
        listing = row["listing"] or {}
        renditions = listing.get("renditions") or {}
        items.append(
            CatalogueItem(
                id=row["image_id"],
                contributor_id=row["contributor_id"],
                status=row["status"],
                status_reason=row["status_reason"],
                revision=row["revision"],
                title=listing.get("title", ""),
                keywords=listing.get("keywords", []),
                ai_keywords=[
                    AiKeyword(
                        keyword=t["label"],
                        confidence=t["confidence"],
                        indexed=t["confidence"] >= AI_KEYWORD_MIN_CONFIDENCE,
                    )
                    for t in listing.get("tags", [])
                ],
                thumbnail_url=renditions.get("thumbnail_url"),
                width=listing.get("width"),
                height=listing.get("height"),
                safety_score=listing.get("safety_score"),
                updated_at=row["updated_at"],
            )
        )
    return CatalogueOut(items=items, total=total, page=params.page, per_page=params.per_page)
