"""The serving search index, as a port with two adapters.

`search_sync` keeps every image document in its own Postgres schema (the source
of truth) and pushes the *public* ones (approved, not removed) into a
`SearchIndex`; `search_api` queries it. Adapters:

- `shared.search.postgres.PostgresSearchIndex` (embedded default): pgvector
  HNSW on the embedding + weighted full text, fused with RRF (k=60).
- `shared.search.azure_ai_search.AzureAISearchIndex` (SEARCH_BACKEND=azure):
  Azure AI Search hybrid query. Built by `AzureAISearchIndex.from_settings(settings)`.

`shared.search.factory.build_search_index(settings, db)` picks one.

Contract every adapter keeps (tests in tests/unit/test_search_port_contract.py
run against any adapter given to them):

- `upsert` replaces whole documents by `image_id` (last write wins; the caller
  has already ordered by revision, the index does not compare revisions).
- `delete` of an unknown id is not an error.
- `search`:
    * `text` is a web-search query (quotes, OR, -exclusion) for the keyword leg;
      `vector` (the index's `dimension`, L2-normalised, same space as `IndexDocument.embedding`)
      is the semantic leg. mode=hybrid uses whichever legs are given and fuses
      them by Reciprocal Rank Fusion (k=`RRF_K`); keyword/semantic use one leg.
      No text and no vector: every document that passes the filters (browse).
    * The semantic leg only returns documents within `max_vector_distance`
      (cosine distance) of the vector: the relevance floor, so nonsense queries
      return few or no results. It looks at no more than `candidates`
      nearest neighbours.
    * Filters are ANDed; `None` means "no filter".
    * `sort`: relevance (fused score, ties by newest), newest (`added_at`
      desc), popular (`popularity` desc, then newest). Browse with
      sort=relevance is newest first.
    * `total` counts every matching document (for the semantic leg: those
      within the floor among the `candidates` nearest); `facets` count the
      same matching set per value of each `FACET_FIELDS` field, most frequent
      first, at most `facet_size` values each, so they agree with the filters.
    * Paging by `offset`/`limit` over that ranking. Hit documents may come
      without `embedding` (it is not needed to show a result); `get` has it.
- `rebuild` builds a brand-new index aside from the documents it is given (in
  batches), then switches queries over to it at once (no downtime), and drops
  the old one. Concurrent `upsert`/`delete` during a rebuild may be lost on the
  old index; the reindex command re-applies the documents table afterwards.
  The new index takes the adapter's `dimension` (the embedding model's, from
  ML_EMBEDDING_DIM): switching models is a rebuild, never a manual migration.
- `ensure_ready` refuses an existing index whose vectors have another dimension
  (`IndexDimensionMismatch`), naming the reindex command that replaces it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Sequence
from datetime import datetime
from typing import Any, Final, Literal, Protocol, runtime_checkable
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.bus.events import Orientation, Usage

# The packaged models' dimension: only a default. Adapters take the configured model's
# dimension (settings.ML_EMBEDDING_DIM, which the model loaders check against the model files).
EMBEDDING_DIM: Final = 384
RRF_K: Final = 60
# AI keywords (the image model's tags) are indexed only at or above this confidence, and below the
# contributor's own words: an unsure guess must not find an image as if the contributor had typed it.
AI_KEYWORD_MIN_CONFIDENCE: Final = 0.3
FACET_FIELDS: Final = ("category", "orientation", "colors", "usage")

Mode = Literal["hybrid", "keyword", "semantic"]
Sort = Literal["relevance", "newest", "popular"]


class IndexDocument(BaseModel):
    """One public image as the serving index holds it (flat, filterable, facetable)."""

    model_config = ConfigDict(frozen=True)

    image_id: UUID
    contributor_id: str
    revision: int
    title: str = ""
    description: str = ""
    keywords: list[str] = Field(default_factory=list)  # contributor keywords, lower-cased
    tags: list[str] = Field(default_factory=list)  # ML labels, lower-cased; searched like keywords
    category: str | None = None
    usage: Usage = "commercial"  # the license-type facet: commercial / editorial
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    orientation: Orientation
    colors: list[str] = Field(default_factory=list)  # named colours, e.g. ["blue", "white"]
    embedding: list[float] = Field(default_factory=list)  # the model's dimension, or empty (not in the vector leg)
    safety_score: float = Field(0.0, ge=0, le=1)
    thumbnail_small_url: str = ""
    thumbnail_url: str = ""
    preview_url: str = ""
    blurhash: str = ""
    phash: str = ""  # 16 hex digits; equal phash = exact duplicate
    added_at: datetime  # when it became public (approved_at)
    popularity: int = 0  # licenses sold


# Every field of a hit except the embedding (384 floats per hit that no result page shows).
HIT_FIELDS: Final = tuple(name for name in IndexDocument.model_fields if name != "embedding")


class SearchFilters(BaseModel):
    model_config = ConfigDict(frozen=True)

    category: str | None = None
    orientation: Orientation | None = None
    color: str | None = None  # document has this named colour
    contributor_id: str | None = None
    usage: Usage | None = None
    max_safety_score: float | None = None  # safe search: safety_score < this
    min_width: int | None = None
    min_height: int | None = None
    added_after: datetime | None = None
    exclude_ids: list[UUID] = Field(default_factory=list)
    exclude_phashes: list[str] = Field(default_factory=list)  # drop exact duplicates (similar images)


class SearchQuery(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str | None = None
    vector: list[float] | None = None
    mode: Mode = "hybrid"
    filters: SearchFilters = Field(default_factory=SearchFilters)
    sort: Sort = "relevance"
    offset: int = Field(0, ge=0)
    limit: int = Field(24, ge=0, le=1000)
    facets: bool = True
    facet_size: int = Field(20, ge=1, le=100)
    max_vector_distance: float = Field(0.75, gt=0, le=2)
    candidates: int = Field(1000, ge=1, le=10000)


def any_word_text(text: str | None) -> str | None:
    """The same words ORed (`a or b or c`), for when all of them together match nothing; None if not plain.

    Only a plain query of two or more words falls back: quotes, OR and -exclusion say what the buyer
    wants, so they are never loosened. A photo tagged only "bedroom" is then found by "bedroom with
    fairy lights", ranked below any that match more of the words.
    """
    if not text or '"' in text:
        return None
    words = text.split()
    if len(words) < 2 or any(w.lower() == "or" or w.startswith("-") for w in words):
        return None
    return " or ".join(words)


class SearchHit(BaseModel):
    model_config = ConfigDict(frozen=True)

    document: IndexDocument
    score: float  # higher is better; RRF score, rank score or 1 - cosine distance, per mode


class FacetCount(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: str
    count: int


class SearchResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    hits: list[SearchHit]
    total: int
    facets: dict[str, list[FacetCount]] = Field(default_factory=dict)  # keyed by FACET_FIELDS
    total_is_estimate: bool = False  # total and facet counts are estimates (a very broad query)


class IndexDimensionMismatch(RuntimeError):
    """The serving index holds vectors of another size than the configured embedding model gives."""

    def __init__(self, held: int | None, wanted: int) -> None:
        self.held, self.wanted = held, wanted
        super().__init__(
            f"the serving index holds {held}-d vectors but the embedding model gives {wanted}-d "
            "(ML_EMBEDDING_DIM): rebuild it with `python -m functions.search_sync.reindex`, which builds the "
            "new index aside and swaps it in"
        )


ProgressCallback = Callable[[int], None]  # called with the number of documents just written


@runtime_checkable
class SearchIndex(Protocol):
    async def ensure_ready(self) -> None:
        """Create the index if it does not exist (idempotent)."""
        ...

    # `within`: the caller's database transaction, which an index kept in the same database joins.
    async def upsert(self, documents: Sequence[IndexDocument], *, within: Any = None) -> None: ...

    async def delete(self, image_ids: Sequence[UUID], *, within: Any = None) -> None: ...

    async def get(self, image_id: UUID) -> IndexDocument | None: ...

    async def search(self, query: SearchQuery) -> SearchResult: ...

    async def rebuild(
        self, batches: AsyncIterable[Sequence[IndexDocument]], progress: ProgressCallback | None = None
    ) -> int:
        """Build aside, switch, drop the old index; returns the number of documents indexed."""
        ...

    async def maintain(self) -> dict[str, list[str]]:
        """Upkeep that follows the catalogue's shape (a timer runs it); returns what changed, by kind."""
        ...

    async def close(self) -> None: ...
