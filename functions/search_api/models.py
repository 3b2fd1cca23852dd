"""Query parameters and responses of the search API (pydantic at the edge: bad input -> 400 naming the field)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.bus.events import Orientation, Usage
from shared.http import IsoDateTime
from shared.search.port import Mode, Sort

MAX_PAGE = 100  # deep paging is what crawlers do; page * per_page stays within Azure's $skip limit
# Printable text only: a NUL or other control character is never a real query, and Postgres refuses NUL.
TEXT = r"^[^\x00-\x1f\x7f]*$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# The same, with at least one visible character: values are trimmed, so "  " would become "".
VISIBLE = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"


class _Query(BaseModel):
    # Unknown parameters are refused by name, so a typo ("catgory") is not silently ignored.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _printable(cls, value: object) -> object:
        # Stripping runs before the pattern, so "\nsunset" would pass as "sunset": refuse it first.
        if isinstance(value, str) and _CONTROL.search(value):
            raise ValueError("must not contain control characters")
        return value


class Paging(_Query):
    page: int = Field(1, ge=1, le=MAX_PAGE, description="1-based page number.")
    per_page: int = Field(24, ge=1, le=100, description="Results per page (at most 100).")


class Filters(_Query):
    category: str | None = Field(None, min_length=1, max_length=64, pattern=VISIBLE)
    orientation: Orientation | None = None
    color: str | None = Field(None, min_length=1, max_length=32, pattern=VISIBLE, description="Named colour (blue).")
    contributor: str | None = Field(None, min_length=1, max_length=128, pattern=VISIBLE, description="Contributor id.")
    license: Usage | None = Field(None, description="commercial or editorial use.")
    safe: bool = Field(True, description="Safe search: hide images that may be explicit.")
    min_width: int | None = Field(None, ge=1, le=100_000)
    min_height: int | None = Field(None, ge=1, le=100_000)
    added_after: IsoDateTime | None = Field(None, description="ISO 8601 with a time zone.")


class SearchParams(Filters, Paging):
    q: str | None = Field(None, max_length=200, pattern=TEXT, description="Words; quotes, OR and -exclusion work.")
    mode: Mode = Field("hybrid", description="hybrid (words + meaning), keyword or semantic.")
    sort: Sort = "relevance"
    facets: bool = Field(True, description="Include facet counts.")
    explain: bool = Field(
        False,
        description="Admins only (others get 403): every result says why it matched: which query words hit "
        "which fields, its rank in the keyword and the semantic leg, and its semantic score.",
    )


class SimilarParams(Paging):
    safe: bool = True


class ByImageParams(Filters, Paging):
    pass


class SuggestParams(_Query):
    q: str = Field(min_length=1, max_length=64, pattern=VISIBLE, description="Prefix of a keyword.")
    limit: int = Field(10, ge=1, le=50)


Status = Literal["pending", "flagged", "approved", "rejected", "removed"]


class PortfolioParams(Paging):
    q: str | None = Field(None, max_length=200, pattern=TEXT)
    status: Status | None = None


class AdminSearchParams(PortfolioParams):
    contributor: str | None = Field(None, min_length=1, max_length=128, pattern=VISIBLE)


# --- responses ---------------------------------------------------------------------


class Money(BaseModel):
    amount_minor: int
    currency: str


class Explanation(BaseModel):
    """Why one result matched a query (explain=true): for admins and for debugging the portals."""

    matched_words: dict[str, list[str]] = Field(
        description="Query words found in each field (title, keywords, tags, description), English stemming; "
        "tags are the pipeline's AI keywords."
    )
    keyword_rank: int | None = Field(description="1-based rank in the keyword leg; null if words did not match.")
    semantic_rank: int | None = Field(
        description="1-based rank in the semantic leg; null if beyond the relevance floor or not asked."
    )
    semantic_score: float | None = Field(
        description="Cosine similarity of the query's and the image's embeddings (1 = same direction); null "
        "without a query vector or an image embedding."
    )
    within_floor: bool = Field(description="Whether the semantic score clears the relevance floor.")


class SearchItem(BaseModel):
    id: UUID
    title: str
    thumbnail_url: str
    thumbnail_small_url: str
    preview_url: str
    width: int
    height: int
    orientation: Orientation
    contributor_id: str
    blurhash: str
    price: Money | None = Field(None, description="Standard license price; null until pricing is published.")
    score: float
    explanation: Explanation | None = Field(None, description="Why it matched; only with explain=true.")


class FacetValue(BaseModel):
    value: str
    count: int


class Facets(BaseModel):
    category: list[FacetValue] = Field(default_factory=list)
    orientation: list[FacetValue] = Field(default_factory=list)
    color: list[FacetValue] = Field(default_factory=list)
    license: list[FacetValue] = Field(default_factory=list)


class SearchOut(BaseModel):
    items: list[SearchItem]
    total: int
    total_is_estimate: bool = Field(
        False,
        description="True when the words match so much of the catalogue that `total` and the facet counts are "
        "estimates (show them as 'about N'); the results themselves are ranked as usual.",
    )
    page: int
    per_page: int
    facets: Facets | None = None


class ImageDetail(BaseModel):
    id: UUID
    title: str
    description: str
    keywords: list[str]
    tags: list[str]
    category: str | None
    license: Usage
    width: int
    height: int
    orientation: Orientation
    colors: list[str]
    contributor_id: str
    thumbnail_url: str
    thumbnail_small_url: str
    preview_url: str
    blurhash: str
    added_at: datetime
    prices: dict[str, Money]


class Suggestion(BaseModel):
    keyword: str
    images: int


class SuggestOut(BaseModel):
    suggestions: list[Suggestion]


class AiKeyword(BaseModel):
    """A keyword the image model suggests, with how sure it is."""

    keyword: str
    confidence: float = Field(ge=0, le=1)
    indexed: bool = Field(description="Whether search finds the image by it (only confident ones, below own words).")


class CatalogueItem(BaseModel):
    id: UUID
    contributor_id: str
    status: Status
    status_reason: str | None
    revision: int
    title: str
    keywords: list[str]
    ai_keywords: list[AiKeyword] = Field(
        default_factory=list, description="What the image model suggests, most confident first."
    )
    thumbnail_url: str | None
    width: int | None
    height: int | None
    safety_score: float | None
    updated_at: datetime


class CatalogueOut(BaseModel):
    items: list[CatalogueItem]
    total: int
    page: int
    per_page: int
