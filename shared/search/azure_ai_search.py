"""Azure AI Search adapter of the `SearchIndex` port (SEARCH_BACKEND=azure).

Queries and document writes go to an *alias* (AZURE_SEARCH_INDEX, default "images") that points
at one physical index named `<alias>-<timestamp>-<rand>`; `rebuild` fills a new physical index
aside and swaps the alias to it in one call, so readers never see a half-built index.
The index definition is `infra/search/images-index.json` (the REST/SDK shape), read here so the
schema the service gets is the one reviewed in infra/.

How the port maps onto the service:
- hybrid = `search` text + `VectorizedQuery` in one request; the service fuses both rankings by
  RRF (k=60, the port's RRF_K). keyword = text only, semantic = vector only.
- The web-search syntax of `text` (quotes, OR, -exclusion) is translated to the service's
  *simple* syntax with searchMode=all, escaping every other operator character. In keyword mode a
  plain multi-word query that matches nothing is asked again with searchMode=any, as Postgres does.
- Filters become OData with string literals quoted and embedded quotes doubled.
- The vector relevance floor (`max_vector_distance`): the GA API has no vector threshold, so a
  light vector-only probe (keys and scores; score = 1/(1 + cosine distance)) counts the
  neighbours inside the floor, and the real query asks for exactly that many (k), so hits,
  total and facets cover the port's matching set. With `vector_threshold=True` (preview API
  versions) the floor is sent as the vector query's `threshold` instead: one request.
- Writes are split into batches of <= 1000 actions and <= 16 MB, the service's limits; HTTP 503/
  429 are retried by azure-core's retry policy (honouring Retry-After); per-document failures in a
  207 answer are resent alone when their status is transient (409, 422, 503) with backoff.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from uuid import UUID

import structlog
from azure.core.credentials import AzureKeyCredential
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.search.documents.aio import SearchClient
from azure.search.documents.indexes.aio import SearchIndexClient
from azure.search.documents.indexes.models import SearchAlias
from azure.search.documents.indexes.models import SearchIndex as IndexDefinition
from azure.search.documents.models import IndexAction, IndexDocumentsBatch, VectorizedQuery

from shared.config import PROJECT_ROOT, Settings
from shared.search.port import (
    FACET_FIELDS,
    HIT_FIELDS,
    FacetCount,
    IndexDimensionMismatch,
    IndexDocument,
    ProgressCallback,
    SearchFilters,
    SearchHit,
    SearchQuery,
    SearchResult,
    any_word_text,
)

log = structlog.get_logger()

INDEX_DEFINITION_PATH: Final = PROJECT_ROOT / "infra" / "search" / "images-index.json"

# Service limits of one indexing request (Azure AI Search "service limits": documents per batch
# and request payload). 16 MB is read as 16 * 10**6 bytes, the stricter of the two readings.
MAX_BATCH_DOCUMENTS: Final = 1000
MAX_BATCH_BYTES: Final = 16_000_000
MAX_RESULTS_PER_REQUEST: Final = 1000  # $top beyond this is paged by the service

# Per-document statuses in a 207 answer that succeed when sent again (version conflict, index
# briefly unavailable, service throttling); anything else (400 bad document...) is the caller's bug.
RETRYABLE_DOCUMENT_STATUSES: Final = frozenset({409, 422, 503})

# Every request this adapter sends is idempotent (queries; `upload`/`delete` actions set the final
# state), so azure-core may retry POSTs on any retryable status, 429 included.
_RETRY_METHODS: Final = frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"})

SEARCH_FIELDS: Final = ("title", "keywords", "tags", "description")
TEXT_SCORING_PROFILE: Final = "weighted"
VECTOR_FIELD: Final = "embedding"
SEMANTIC_CONFIGURATION: Final = "images-semantic"

# Returned with every hit; the embedding is left out (384 floats per hit) and comes back empty.
# The index's key is `id`, the port's `image_id`.
RESULT_FIELDS: Final = tuple("id" if name == "image_id" else name for name in HIT_FIELDS)

Sleep = Callable[[float], Awaitable[None]]


class IndexingFailed(RuntimeError):
    """Some documents were refused for good (or stayed throttled through every attempt)."""

    def __init__(self, failures: Mapping[str, tuple[int, str | None]]) -> None:
        self.failures = dict(failures)
        shown = ", ".join(f"{key}: {code} {msg or ''}".strip() for key, (code, msg) in list(self.failures.items())[:5])
        super().__init__(f"{len(self.failures)} document(s) not indexed ({shown})")


# --- documents -------------------------------------------------------------------------------


def _utc(value: datetime) -> str:
    """Edm.DateTimeOffset literal; naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_search_document(doc: IndexDocument) -> dict[str, Any]:
    """The service's document for one IndexDocument (field names of infra/search/images-index.json)."""
    return {
        "id": str(doc.image_id),
        "contributor_id": doc.contributor_id,
        "revision": doc.revision,
        "title": doc.title,
        "description": doc.description,
        "keywords": list(doc.keywords),
        "tags": list(doc.tags),
        "category": doc.category,
        "usage": doc.usage,
        "width": doc.width,
        "height": doc.height,
        "orientation": doc.orientation,
        "colors": list(doc.colors),
        # An image without an embedding stays out of the vector leg; the service rejects [] as the
        # wrong number of dimensions, null it accepts.
        VECTOR_FIELD: list(doc.embedding) or None,
        "safety_score": doc.safety_score,
        "thumbnail_small_url": doc.thumbnail_small_url,
        "thumbnail_url": doc.thumbnail_url,
        "preview_url": doc.preview_url,
        "blurhash": doc.blurhash,
        "phash": doc.phash,
        "added_at": _utc(doc.added_at),
        "popularity": doc.popularity,
    }


def from_search_document(raw: Mapping[str, Any]) -> IndexDocument:
    fields = {k: v for k, v in raw.items() if not k.startswith("@search.") and v is not None}
    fields["image_id"] = UUID(fields.pop("id"))
    fields[VECTOR_FIELD] = fields.get(VECTOR_FIELD) or []
    return IndexDocument.model_validate(fields)


def _encoded_size(action: Mapping[str, Any]) -> int:
    # Serialised the way the SDK does it (json.dumps defaults: ASCII escapes, ", " separators).
    return len(json.dumps(action).encode())


def split_batches(
    actions: Sequence[Mapping[str, Any]],
    max_documents: int = MAX_BATCH_DOCUMENTS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> list[list[Mapping[str, Any]]]:
    """Consecutive batches of at most `max_documents` actions whose request body stays <= max_bytes."""
    envelope = len(b'{"value": []}')
    batches: list[list[Mapping[str, Any]]] = []
    current: list[Mapping[str, Any]] = []
    size = envelope
    for action in actions:
        item = _encoded_size(action)
        if envelope + item > max_bytes:
            raise ValueError(f"document {action.get('id')!r} alone is {item} bytes, over the {max_bytes}-byte limit")
        extra = item + (2 if current else 0)  # ", " between items
        if current and (len(current) >= max_documents or size + extra > max_bytes):
            batches.append(current)
            current, size, extra = [], envelope, item
        current.append(action)
        size += extra
    if current:
        batches.append(current)
    return batches


# --- queries -----------------------------------------------------------------------------------


def odata_string(value: str) -> str:
    """An OData string literal: single quotes, embedded single quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


def _search_in(field: str, values: Sequence[str]) -> str:
    """`search.in` over values, with a delimiter none of them contains."""
    for delimiter in (",", "|", ";", "~", "^"):
        if not any(delimiter in v for v in values):
            return f"search.in({field}, {odata_string(delimiter.join(values))}, {odata_string(delimiter)})"
    return "(" + " or ".join(f"{field} eq {odata_string(v)}" for v in values) + ")"


def odata_filter(filters: SearchFilters) -> str | None:
    """The filters as one OData $filter (clauses ANDed), None when there is none."""
    clauses: list[str] = []
    for field, value in (
        ("category", filters.category),
        ("orientation", filters.orientation),
        ("contributor_id", filters.contributor_id),
        ("usage", filters.usage),
    ):
        if value is not None:
            clauses.append(f"{field} eq {odata_string(value)}")
    if filters.color is not None:
        clauses.append(f"colors/any(c: c eq {odata_string(filters.color)})")
    if filters.max_safety_score is not None:
        clauses.append(f"safety_score lt {float(filters.max_safety_score)!r}")
    if filters.min_width is not None:
        clauses.append(f"width ge {int(filters.min_width)}")
    if filters.min_height is not None:
        clauses.append(f"height ge {int(filters.min_height)}")
    if filters.added_after is not None:
        clauses.append(f"added_at gt {_utc(filters.added_after)}")
    if filters.exclude_ids:
        clauses.append("not " + _search_in("id", [str(i) for i in filters.exclude_ids]))
    if filters.exclude_phashes:
        clauses.append("not " + _search_in("phash", list(filters.exclude_phashes)))
    return " and ".join(clauses) or None


# Operator characters of the simple query syntax; escaped inside words so user input is only text.
_SIMPLE_SPECIALS: Final = frozenset('+-&|!(){}[]^"~*?:\\/')


def _escape_word(word: str) -> str:
    return "".join("\\" + ch if ch in _SIMPLE_SPECIALS else ch for ch in word)


def _tokens(text: str) -> list[tuple[str, str]]:
    """('phrase'|'word'|'or', text) tokens of a web-search query; '-' before a term is kept on it."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        negated = ch == "-" and i + 1 < n and not text[i + 1].isspace()
        start = i + 1 if negated else i
        if start < n and text[start] == '"':
            end = text.find('"', start + 1)
            end = n if end == -1 else end
            phrase = " ".join(text[start + 1 : end].split())
            if phrase:
                tokens.append(("-phrase" if negated else "phrase", phrase))
            i = end + 1
            continue
        end = start
        while end < n and not text[end].isspace() and text[end] != '"':
            end += 1
        word = text[start:end]
        i = end
        if not word:
            continue
        if word == "OR" and not negated:
            tokens.append(("or", word))
        else:
            tokens.append(("-word" if negated else "word", word))
    return tokens


def to_simple_query(text: str) -> str | None:
    """Translate a web-search query (as Postgres websearch_to_tsquery reads it) to simple syntax.

    Terms are ANDed (searchMode=all), `a OR b` becomes `(a | b)`, `-term` stays an exclusion,
    "quoted text" a phrase; every other operator character is escaped. None: nothing to search.
    """
    groups: list[list[str]] = []
    pending_or = False
    for kind, value in _tokens(text):
        if kind == "or":
            pending_or = bool(groups)
            continue
        # Inside a phrase only the quote and the escape character are special.
        term = '"' + value.replace("\\", "\\\\") + '"' if kind.endswith("phrase") else _escape_word(value)
        term = "-" + term if kind.startswith("-") else term
        if pending_or and groups:
            groups[-1].append(term)
        else:
            groups.append([term])
        pending_or = False
    parts = [g[0] if len(g) == 1 else "(" + " | ".join(g) + ")" for g in groups]
    return " ".join(parts) or None


def cosine_distance_from_score(score: float) -> float:
    """The service scores a cosine vector match 1 / (1 + cosine distance)."""
    return 1.0 / score - 1.0 if score > 0 else 2.0


# --- the adapter -------------------------------------------------------------------------------


class AzureAISearchIndex:
    def __init__(
        self,
        endpoint: str,
        alias: str,
        credential: AzureKeyCredential | AsyncTokenCredential,
        *,
        definition_path: Path = INDEX_DEFINITION_PATH,
        max_batch_documents: int = MAX_BATCH_DOCUMENTS,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        max_attempts: int = 6,
        backoff_seconds: float = 1.0,
        backoff_max_seconds: float = 30.0,
        vector_threshold: bool = False,
        semantic_ranker: bool = False,
        rebuild_concurrency: int = 4,
        dimension: int | None = None,
        sleep: Sleep = asyncio.sleep,
        **client_options: Any,
    ) -> None:
        """`client_options` go to every SDK client (e.g. `transport=`, `api_version=`, retry_* options).

        A `transport` given here is shared by every client the adapter opens (tests record with it)
        and must outlive them; without one each client owns its own connection pool.
        """
        self._endpoint = endpoint
        self._alias = alias
        self._credential = credential
        self._definition = json.loads(definition_path.read_text())
        if dimension is not None:
            # The embedding model decides the vector field's size; the reviewed file gives everything else.
            for field in self._definition["fields"]:
                if field["name"] == VECTOR_FIELD:
                    field["dimensions"] = int(dimension)
        self.dimension = next(f["dimensions"] for f in self._definition["fields"] if f["name"] == VECTOR_FIELD)
        self._max_docs = max_batch_documents
        self._max_bytes = max_batch_bytes
        self._max_attempts = max_attempts
        self._backoff = backoff_seconds
        self._backoff_max = backoff_max_seconds
        self._vector_threshold = vector_threshold
        self._semantic_ranker = semantic_ranker
        self._rebuild_concurrency = max(1, rebuild_concurrency)
        self._sleep = sleep
        self._client_options = {"retry_total": 6, "retry_backoff_factor": 0.8, "retry_backoff_max": 60} | client_options
        self._docs = SearchClient(endpoint, alias, credential, **self._client_options)
        self._indexes = SearchIndexClient(endpoint, credential, **self._client_options)

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> AzureAISearchIndex:
        if not settings.AZURE_SEARCH_ENDPOINT:
            raise ValueError("SEARCH_BACKEND=azure needs AZURE_SEARCH_ENDPOINT (https://<service>.search.windows.net)")
        credential: AzureKeyCredential | AsyncTokenCredential
        if settings.AZURE_SEARCH_API_KEY:
            credential = AzureKeyCredential(settings.AZURE_SEARCH_API_KEY)
        else:
            from azure.identity.aio import DefaultAzureCredential  # only needed with managed identity

            credential = DefaultAzureCredential()
        return cls(settings.AZURE_SEARCH_ENDPOINT, settings.AZURE_SEARCH_INDEX, credential, **options)

    # -- index lifecycle --

    def index_definition(self, name: str) -> IndexDefinition:
        return IndexDefinition({**self._definition, "name": name})

    def _new_index_name(self) -> str:
        return f"{self._alias}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"

    async def ensure_ready(self) -> None:
        """Create a physical index and the alias to it, unless the alias exists."""
        try:
            alias = await self._indexes.get_alias(self._alias)
        except ResourceNotFoundError:
            alias = None
        if alias is not None:
            held = await self._held_dimension(list(alias.indexes))
            if held is not None and held != self.dimension:
                raise IndexDimensionMismatch(held, self.dimension)
            return
        name = self._new_index_name()
        await self._indexes.create_index(self.index_definition(name))
        try:
            await self._indexes.create_alias(SearchAlias(name=self._alias, indexes=[name]))
        except ResourceExistsError:
            # Another worker created the alias first; ours is not needed.
            await self._indexes.delete_index(name)

    async def _held_dimension(self, indexes: Sequence[str]) -> int | None:
        for name in indexes:
            definition = await self._indexes.get_index(name)
            for field in definition.fields:
                if field.name == VECTOR_FIELD:
                    return field.vector_search_dimensions
        return None

    async def rebuild(
        self, batches: AsyncIterable[Sequence[IndexDocument]], progress: ProgressCallback | None = None
    ) -> int:
        """Fill a new physical index, point the alias at it in one call, then drop the old index.

        Up to `rebuild_concurrency` batches are in flight at once: a 5M-image reindex is thousands
        of requests, and the service indexes concurrent batches in parallel.
        """
        name = self._new_index_name()
        await self._indexes.create_index(self.index_definition(name))
        written = 0
        in_flight: set[asyncio.Task[int]] = set()

        async def settle(when: str) -> None:
            nonlocal written
            done, _ = await asyncio.wait(in_flight, return_when=when)
            for task in done:
                in_flight.discard(task)
                count = task.result()  # re-raises the batch's failure
                written += count
                if progress is not None:
                    progress(count)

        async def write(target: SearchClient, batch: Sequence[IndexDocument]) -> int:
            # After a model switch, a vector of the old model's size stays out of the vector leg (found by
            # words) until the image is embedded again, rather than failing the whole rebuild.
            batch = [
                d if len(d.embedding) in (0, self.dimension) else d.model_copy(update={"embedding": []}) for d in batch
            ]
            await self._write(target, [{"@search.action": "upload", **to_search_document(d)} for d in batch])
            return len(batch)

        try:
            async with SearchClient(self._endpoint, name, self._credential, **self._client_options) as target:
                async for batch in batches:
                    if len(in_flight) >= self._rebuild_concurrency:
                        await settle(asyncio.FIRST_COMPLETED)
                    in_flight.add(asyncio.create_task(write(target, batch)))
                while in_flight:
                    await settle(asyncio.FIRST_COMPLETED)
        except BaseException:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)
            try:
                await self._indexes.delete_index(name)
            except Exception:
                log.exception("search.rebuild_cleanup_failed", index=name)
            raise
        try:
            previous = list((await self._indexes.get_alias(self._alias)).indexes)
        except ResourceNotFoundError:
            previous = []
        await self._indexes.create_or_update_alias(SearchAlias(name=self._alias, indexes=[name]))
        log.info("search.alias_switched", alias=self._alias, index=name, previous=previous, documents=written)
        for old in previous:
            if old != name:
                try:
                    await self._indexes.delete_index(old)
                except ResourceNotFoundError:
                    pass
        return written

    async def maintain(self) -> dict[str, list[str]]:
        """Nothing to keep: AI Search applies a vector query's filter inside its own graph walk (prefilter)."""
        return {}

    async def close(self) -> None:
        await self._docs.close()
        await self._indexes.close()
        close = getattr(self._credential, "close", None)
        if close is not None:
            await close()

    # -- documents --

    async def upsert(self, documents: Sequence[IndexDocument], *, within: Any = None) -> None:
        # `within` (a database transaction) cannot span a call to the service: written at once.
        await self._write(self._docs, [{"@search.action": "upload", **to_search_document(d)} for d in documents])

    async def delete(self, image_ids: Sequence[UUID], *, within: Any = None) -> None:
        # Deleting a key the index does not hold succeeds on the service: no special case.
        await self._write(self._docs, [{"@search.action": "delete", "id": str(i)} for i in image_ids])

    async def get(self, image_id: UUID) -> IndexDocument | None:
        try:
            raw = await self._docs.get_document(str(image_id), retry_on_methods=_RETRY_METHODS)
        except ResourceNotFoundError:
            return None
        return from_search_document(raw)

    async def _write(self, client: SearchClient, actions: Sequence[Mapping[str, Any]]) -> None:
        for batch in split_batches(actions, self._max_docs, self._max_bytes):
            await self._write_batch(client, batch)

    async def _write_batch(self, client: SearchClient, batch: Sequence[Mapping[str, Any]]) -> None:
        """Send one batch; resend only the documents whose failure is transient, with backoff."""
        pending = list(batch)
        failed: dict[str, tuple[int, str | None]] = {}
        for attempt in range(self._max_attempts):
            if attempt:
                await self._sleep(min(self._backoff_max, self._backoff * 2 ** (attempt - 1)))
            results = await client.index_documents(_batch_of(pending), retry_on_methods=_RETRY_METHODS)
            by_key = {action["id"]: action for action in pending}
            retry: list[Mapping[str, Any]] = []
            for result in results:
                if result.succeeded:
                    failed.pop(result.key, None)
                    continue
                failed[result.key] = (result.status_code, result.error_message)
                if result.status_code in RETRYABLE_DOCUMENT_STATUSES and result.key in by_key:
                    retry.append(by_key[result.key])
            if not retry:
                break
            pending = retry
        if failed:
            raise IndexingFailed(failed)

    # -- queries --

    def search_arguments(self, query: SearchQuery, *, any_word: bool = False) -> dict[str, Any]:
        """The SDK `search()` arguments for a port query (the request the service will get).

        `any_word`: any of the words rather than all (searchMode=any), for the fallback of a plain
        multi-word query whose words together match nothing.
        """
        text = to_simple_query(query.text) if query.text and query.mode in ("hybrid", "keyword") else None
        vector = list(query.vector) if query.vector and query.mode in ("hybrid", "semantic") else None
        args: dict[str, Any] = {
            "search_text": text,
            "filter": odata_filter(query.filters),
            "include_total_count": True,
            "skip": query.offset,
            "top": query.limit,
            "select": list(RESULT_FIELDS),
        }
        if text is not None:
            args.update(
                search_mode="any" if any_word else "all", query_type="simple", search_fields=list(SEARCH_FIELDS)
            )
            args["scoring_profile"] = TEXT_SCORING_PROFILE
            if self._semantic_ranker:
                args.update(query_type="semantic", semantic_configuration_name=SEMANTIC_CONFIGURATION)
        if vector is not None:
            vq = VectorizedQuery(vector=vector, k_nearest_neighbors=query.candidates, fields=VECTOR_FIELD)
            if self._vector_threshold:
                # Preview API versions only: the service keeps neighbours with cosine >= 1 - distance.
                vq["threshold"] = {"kind": "vectorSimilarity", "value": 1.0 - query.max_vector_distance}
            args["vector_queries"] = [vq]
        if query.facets:
            args["facets"] = [f"{field},count:{query.facet_size}" for field in FACET_FIELDS]
        if query.sort == "newest":
            args["order_by"] = ["added_at desc"]
        elif query.sort == "popular":
            args["order_by"] = ["popularity desc", "added_at desc"]
        elif text is None and vector is None:
            args["order_by"] = ["added_at desc"]  # browse: newest first
        elif vector is None:
            args["order_by"] = ["search.score() desc", "added_at desc"]
        # With a vector leg the service's own ranking (RRF in hybrid) decides; ties are unordered.
        return args

    async def search(self, query: SearchQuery, *, any_word: bool = False) -> SearchResult:
        args = self.search_arguments(query, any_word=any_word)
        vector_only = "vector_queries" in args and args["search_text"] is None
        if "vector_queries" in args and not self._vector_threshold:
            within = await self._count_within_floor(query, args)
            if within:
                # The `within` nearest neighbours under the same filter are the ones inside the floor,
                # so k=within makes the service's total and facets count exactly the port's set.
                args["vector_queries"][0].k_nearest_neighbors = within
            elif vector_only:
                return SearchResult(hits=[], total=0, facets=_no_facets() if query.facets else {})
            else:
                del args["vector_queries"]  # nothing is close enough: the keyword leg alone
                if query.sort == "relevance":
                    args["order_by"] = ["search.score() desc", "added_at desc"]

        results = await self._docs.search(**args, retry_on_methods=_RETRY_METHODS)
        pages = results.by_page()
        # Read the first page before asking for count/facets: they come from the same response.
        try:
            page = await pages.__anext__()
            raw_hits = [hit async for hit in page]
        except StopAsyncIteration:
            raw_hits = []
        total = await pages.get_count() or 0
        raw_facets = await pages.get_facets() or {}

        hits: list[SearchHit] = []
        for raw in raw_hits[: query.limit]:
            score = float(raw.get("@search.score") or 0.0)
            if vector_only:
                distance = cosine_distance_from_score(score)
                if distance > query.max_vector_distance:
                    continue  # an approximate neighbour that moved past the floor since the probe
                score = 1.0 - distance
            hits.append(SearchHit(document=from_search_document(raw), score=score))
        facets = {
            field: [FacetCount(value=str(b["value"]), count=int(b["count"])) for b in raw_facets.get(field, [])]
            for field in FACET_FIELDS
        }
        if total == 0 and query.mode == "keyword" and not any_word and any_word_text(query.text):
            # As the Postgres index does: all the words matched nothing, so any of them, most words first.
            # Only in keyword mode here: in hybrid the vector leg's hits hide whether the words matched.
            return await self.search(query, any_word=True)
        return SearchResult(hits=hits, total=total, facets=facets if query.facets else {})

    async def _count_within_floor(self, query: SearchQuery, args: Mapping[str, Any]) -> int:
        """How many of the `candidates` nearest neighbours (under the filters) lie inside the floor.

        The GA API has no vector threshold, so a light vector-only probe (keys and scores only)
        measures it; neighbours come best first, so the count is where the floor cuts the list.
        """
        [vector_query] = args["vector_queries"]
        top = min(query.candidates, MAX_RESULTS_PER_REQUEST)
        probe = await self._docs.search(
            search_text=None,
            vector_queries=[
                VectorizedQuery(vector=vector_query.vector, k_nearest_neighbors=query.candidates, fields=VECTOR_FIELD)
            ],
            filter=args["filter"],
            top=top,
            select=["id"],
            retry_on_methods=_RETRY_METHODS,
        )
        within = 0
        async for hit in probe:
            if cosine_distance_from_score(float(hit["@search.score"])) > query.max_vector_distance:
                break
            within += 1
        if within == top < query.candidates:
            return query.candidates  # every neighbour the probe could see is inside: take them all
        return within


def _no_facets() -> dict[str, list[FacetCount]]:
    return {field: [] for field in FACET_FIELDS}


def _batch_of(actions: Sequence[Mapping[str, Any]]) -> IndexDocumentsBatch:
    return IndexDocumentsBatch(actions=[IndexAction(dict(a)) for a in actions])
