"""search_api and search_sync logic with in-memory fakes of the ports (index, text encoder)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from functions.search_api import handlers
from functions.search_api.models import SearchParams, SimilarParams, SuggestParams
from functions.search_sync.documents import index_document
from shared.bus.events import ColorShare, ImageListing, Renditions, Tag
from shared.search.port import FacetCount, IndexDocument, SearchHit, SearchQuery, SearchResult

TUNING = handlers.SearchTuning(candidates=200, max_vector_distance=0.6, safe_max_score=0.5)


class RecordingIndex:
    """A SearchIndex fake: remembers queries, answers with what it is given."""

    def __init__(self, result: SearchResult | None = None, documents: list[IndexDocument] = ()) -> None:
        self.queries: list[SearchQuery] = []
        self.result = result or SearchResult(hits=[], total=0)
        self.documents = {d.image_id: d for d in documents}

    async def search(self, query: SearchQuery) -> SearchResult:
        self.queries.append(query)
        return self.result

    async def get(self, image_id):
        return self.documents.get(image_id)


class CountingEncoder:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def encode(self, texts):
        self.calls.append(list(texts))
        v = np.zeros((len(texts), 384), dtype=np.float32)
        v[:, 0] = 1
        return v


class FixedPrices:
    async def prices(self, generation=None):
        return {"standard": handlers.Money(amount_minor=1000, currency="USD")}


def a_listing(**changes) -> ImageListing:
    base = dict(
        title="Lake",
        width=4000,
        height=3000,
        orientation="landscape",
        safety_score=0.1,
        renditions=Renditions(thumbnail_small_url="s", thumbnail_url="t", preview_url="p"),
        uploaded_at=datetime(2026, 1, 1, tzinfo=UTC),
        embedding=[1.0] + [0.0] * 383,
    )
    return ImageListing(**{**base, **changes})


def a_document(**changes) -> IndexDocument:
    return index_document(uuid.uuid4(), "carol", 2, a_listing(**changes), datetime(2026, 1, 2, tzinfo=UTC), 0)


async def search(index, encoder=None, **params):
    embedder = handlers.QueryEmbedder(encoder or CountingEncoder())
    return await handlers.search_images(index, embedder, FixedPrices(), TUNING, SearchParams(**params))


async def test_parameters_become_an_index_query():
    index = RecordingIndex()

    await search(
        index,
        q="red barn",
        category="farm",
        license="editorial",
        color="Blue",
        page=3,
        per_page=20,
        sort="newest",
        min_width=2000,
    )

    query = index.queries[0]
    assert query.text == "red barn" and query.vector is not None and query.mode == "hybrid"
    assert (query.offset, query.limit, query.sort) == (40, 20, "newest")
    f = query.filters
    assert (f.category, f.usage, f.color, f.min_width) == ("farm", "editorial", "blue", 2000)
    assert f.max_safety_score == 0.5  # safe search is on unless turned off
    assert (query.candidates, query.max_vector_distance) == (200, 0.6)


async def test_safe_search_off_drops_the_safety_filter():
    index = RecordingIndex()
    await search(index, q="beach", safe=False)
    assert index.queries[0].filters.max_safety_score is None


async def test_keyword_mode_and_browsing_do_not_run_the_text_encoder():
    encoder, index = CountingEncoder(), RecordingIndex()

    await search(index, encoder, q="barn", mode="keyword")
    await search(index, encoder)

    assert encoder.calls == []
    assert index.queries[0].vector is None and index.queries[1].text is None


async def test_a_repeated_query_is_encoded_once():
    encoder = CountingEncoder()
    embedder = handlers.QueryEmbedder(encoder)

    first = await embedder.embed("sunset over the sea")
    second = await embedder.embed("sunset over the sea")

    assert first == second and encoder.calls == [["sunset over the sea"]]


async def test_results_carry_price_and_facets_under_their_public_names():
    doc = a_document()
    result = SearchResult(
        hits=[SearchHit(document=doc, score=0.03)],
        total=1,
        facets={"colors": [FacetCount(value="blue", count=1)], "usage": [FacetCount(value="commercial", count=1)]},
    )

    out = await search(RecordingIndex(result), q="lake")

    assert out.items[0].id == doc.image_id and out.items[0].price.amount_minor == 1000
    assert out.facets.color[0].value == "blue" and out.facets.license[0].value == "commercial"
    assert out.facets.category == []


@given(
    titles=st.lists(st.text(max_size=30), max_size=4),
    scores=st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=4, max_size=4),
    counts=st.lists(st.integers(min_value=0, max_value=10**9), max_size=3),
    priced=st.booleans(),
    with_facets=st.booleans(),
    estimate=st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_the_page_json_is_the_response_models_json(titles, scores, counts, priced, with_facets, estimate):
    # The search route writes its body without building SearchOut: byte for byte what the model would write.
    hits = [SearchHit(document=a_document(title=t), score=s) for t, s in zip(titles, scores, strict=False)]
    facets = {"colors": [FacetCount(value=f"c{n}", count=c) for n, c in enumerate(counts)], "category": []}
    result = SearchResult(hits=hits, total=len(hits) * 7, facets=facets, total_is_estimate=estimate)
    price = handlers.Money(amount_minor=1250, currency="EUR") if priced else None
    paging = SearchParams(page=2, per_page=5)

    expected = handlers._search_out(result, price, paging, with_facets).model_dump_json(by_alias=True).encode()

    assert handlers.page_json(result, price, paging, with_facets) == expected


async def test_similar_images_query_by_the_images_own_vector_excluding_itself_and_duplicates():
    doc = a_document(phash="00000000ffffffff")
    index = RecordingIndex(documents=[doc])

    await handlers.similar_images(index, FixedPrices(), TUNING, doc.image_id, SimilarParams())

    query = index.queries[0]
    assert query.mode == "semantic" and query.vector == doc.embedding and query.text is None
    assert query.filters.exclude_ids == [doc.image_id] and query.filters.exclude_phashes == [doc.phash]
    with pytest.raises(handlers.ImageNotFound):
        await handlers.similar_images(index, FixedPrices(), TUNING, uuid.uuid4(), SimilarParams())


def test_search_parameters_are_validated():
    with pytest.raises(ValidationError, match="per_page"):
        SearchParams(per_page=101)
    with pytest.raises(ValidationError, match="catgory"):
        SearchParams.model_validate({"catgory": "x"})
    with pytest.raises(ValidationError, match="added_after"):
        SearchParams.model_validate({"added_after": "2026-01-01T00:00:00"})  # no time zone: ambiguous
    with pytest.raises(ValidationError, match="q"):
        SuggestParams.model_validate({})


def test_index_document_normalises_words_and_drops_weak_tags_and_minor_colours():
    item = a_listing(
        keywords=["Beach", "beach ", "Sea"],
        tags=[Tag(label="Seashore", confidence=0.8), Tag(label="sandbar", confidence=0.02)],
        colors=[ColorShare(name="Blue", hex="#0000ff", share=0.6), ColorShare(name="red", hex="#ff0000", share=0.01)],
    )

    doc = index_document(uuid.uuid4(), "carol", 3, item, datetime(2026, 1, 2, tzinfo=UTC), 4)

    assert doc.keywords == ["beach", "sea"]
    assert doc.tags == ["seashore"]
    assert doc.colors == ["blue"]
    assert (doc.revision, doc.popularity, doc.thumbnail_url) == (3, 4, "t")
