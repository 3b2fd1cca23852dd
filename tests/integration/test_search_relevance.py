"""Relevance with the packaged models: real photos, processed by shared.ml, among a few hundred distractors.

The photos carry no contributor words, so what finds them is the ML tags (keyword leg) and the
image embedding against the encoded query (vector leg), fused by RRF, through the real index.
"""

from __future__ import annotations

import pytest

from shared.search.port import SearchQuery
from tests.fixtures.search_corpus import RELEVANCE_QUERIES, relevance_corpus

pytestmark = pytest.mark.slow


@pytest.fixture
async def relevance_index(pg_search_index):
    documents, expected = relevance_corpus(distractors=300)
    await pg_search_index.upsert(documents)
    return pg_search_index, expected


@pytest.mark.parametrize("query", sorted(RELEVANCE_QUERIES))
async def test_the_right_photo_ranks_first(relevance_index, query):
    from shared.config import Settings
    from shared.ml import get_text_encoder

    index, expected = relevance_index
    vector = get_text_encoder().encode([query])[0].tolist()
    floor = Settings().SEARCH_MAX_VECTOR_DISTANCE

    result = await index.search(SearchQuery(text=query, vector=vector, max_vector_distance=floor, limit=5))

    assert result.hits[0].document.image_id == expected[query], [h.document.title for h in result.hits]


@pytest.mark.parametrize("nonsense", ["xqzvbnm wplk", "quarterly tax form"])
async def test_nonsense_finds_little_or_nothing(relevance_index, nonsense):
    from shared.config import Settings
    from shared.ml import get_text_encoder

    index, _ = relevance_index
    vector = get_text_encoder().encode([nonsense])[0].tolist()

    result = await index.search(
        SearchQuery(text=nonsense, vector=vector, max_vector_distance=Settings().SEARCH_MAX_VECTOR_DISTANCE)
    )

    assert result.total <= 3  # of 307 documents
