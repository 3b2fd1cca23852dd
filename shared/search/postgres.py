"""The local serving index: pgvector HNSW + weighted Postgres full text, fused by RRF (k=60).

One table, `search.serving_index`, holds the public documents:
- `tsv`: title (weight A), contributor keywords (B), description (C), AI tags (D); GIN-indexed and
  queried with `websearch_to_tsquery('english', q)` so quotes, OR and -exclusion work; a plain query of
  several words whose words together match nothing falls back to any of them, most words first;
- `embedding halfvec(D)`: D is the embedding model's dimension (ML_EMBEDDING_DIM, checked against the
  model at load), never a constant: a table of another dimension is refused at start-up and replaced by
  a full reindex, which builds the new table aside and swaps it in. Half precision halves the memory of
  the vectors and of the HNSW graph (cosine ranking barely moves); HNSW with `halfvec_cosine_ops`.
  Filtered vector queries use pgvector's iterative scan (relaxed order, re-sorted after) so
  a selective filter still yields `candidates` neighbours; a large category or license type
  has its own partial HNSW graph (a vector partition, partitions.py), which queries filtered on it walk
  instead.

A query is one SQL statement: the keyword matches and the vector candidates (both filtered)
form the matching set; `total` and facets count that set, and the page is ranked from it.
Browse (no words, no vector) pages from the sort's index and counts from `search.facet_counts`, which
statement triggers keep in step with the table (low-cardinality filters), or else in one pass over a
narrow covering index: neither reads the wide rows of every filtered image (see README.md).
`rebuild` loads a new table aside, indexes it (vector partitions included), and renames it into place in
one transaction. The filter SQL is in pg_sql.py, the kept counts in facet_counts.py.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final
from uuid import UUID

import asyncpg
import numpy as np
from pydantic import BaseModel

from shared.db import Database
from shared.search import facet_counts, partitions
from shared.search.changes import attach_change_log, has_change_log
from shared.search.generation import bump_generation
from shared.search.pg_sql import BUILD_TIMEOUT_SECONDS, TABLE, Params, narrowing, where_sql
from shared.search.port import (
    EMBEDDING_DIM,
    HIT_FIELDS,
    RRF_K,
    FacetCount,
    IndexDimensionMismatch,
    IndexDocument,
    ProgressCallback,
    SearchHit,
    SearchQuery,
    SearchResult,
    any_word_text,
)

_COLUMNS: Final = HIT_FIELDS
_SELECT_DOC: Final = ", ".join(f"s.{c}" for c in _COLUMNS)


@asynccontextmanager
async def _connection(db: Database, within: asyncpg.Connection | None) -> AsyncIterator[asyncpg.Connection]:
    if within is not None:
        yield within
    else:
        async with db.connection() as conn:
            yield conn


def _ddl(table: str, dimension: int) -> str:
    # Index names carry the table name: a rebuilt table keeps its own index names after the swap.
    return f"""
    create table if not exists search.{table} (
      image_id uuid primary key,
      contributor_id text not null,
      revision integer not null,
      title text not null default '',
      description text not null default '',
      keywords text[] not null default '{{}}',
      tags text[] not null default '{{}}',
      category text,
      usage text not null,
      width integer not null,
      height integer not null,
      orientation text not null,
      colors text[] not null default '{{}}',
      embedding halfvec({int(dimension)}),
      safety_score real not null default 0,
      thumbnail_small_url text not null default '',
      thumbnail_url text not null default '',
      preview_url text not null default '',
      blurhash text not null default '',
      phash text not null default '',
      added_at timestamptz not null,
      popularity integer not null default 0,
      tsv tsvector not null
    );
    """


def _indexes(table: str) -> list[str]:
    return [
        f"create index if not exists {table}_tsv on search.{table} using gin (tsv)",
        f"create index if not exists {table}_hnsw on search.{table} "
        "using hnsw (embedding halfvec_cosine_ops) with (m = 16, ef_construction = 200)",
        f"create index if not exists {table}_added on search.{table} (added_at desc)",
        f"create index if not exists {table}_popular on search.{table} (popularity desc, added_at desc)",
        f"create index if not exists {table}_contributor on search.{table} (contributor_id)",
        # Every filtered and faceted column, narrow (no text, no vector): browsing on filters the kept counts
        # cannot answer (size, date, contributor) counts its facets from this index alone (index-only scan).
        f"create index if not exists {table}_facets on search.{table}"
        " (usage, category, orientation, safety_score, width, height)"
        " include (colors, added_at, contributor_id)",
    ]


# The weighted text vector, computed from the inserted row (`r`).
# AI keywords (tags) weigh least (D): the contributor's words outrank the model's guesses.
_TSV: Final = (
    "setweight(to_tsvector('english', r.title), 'A')"
    " || setweight(to_tsvector('english', array_to_string(r.keywords, ' ')), 'B')"
    " || setweight(to_tsvector('english', r.description), 'C')"
    " || setweight(to_tsvector('english', array_to_string(r.tags, ' ')), 'D')"
)
_RECORD: Final = (
    "image_id uuid, contributor_id text, revision integer, title text, description text, keywords text[],"
    " tags text[], category text, usage text, width integer, height integer, orientation text, colors text[],"
    " vector_at integer, safety_score real, thumbnail_small_url text, thumbnail_url text, preview_url text,"
    " blurhash text, phash text, added_at timestamptz, popularity integer"
)


def _insert_sql(table: str, upsert: bool, dimension: int) -> str:
    """$1: the documents (JSON rows); $2: their vectors, one flat real[] (binary floats: formatting and
    parsing 384 decimals per image was most of a reindex's time); `vector_at` is a row's 0-based slot in it."""
    columns = ", ".join((*_COLUMNS, "embedding", "tsv"))
    d = int(dimension)
    vector = f"($2::real[])[r.vector_at * {d} + 1 : (r.vector_at + 1) * {d}]::halfvec({d})"
    values = ", ".join((*(f"r.{c}" for c in _COLUMNS), vector, _TSV))
    sql = f"insert into search.{table} ({columns}) select {values} from jsonb_to_recordset($1::jsonb) as r({_RECORD})"
    if upsert:
        updates = ", ".join(f"{c} = excluded.{c}" for c in (*_COLUMNS[1:], "embedding", "tsv"))
        sql += f" on conflict (image_id) do update set {updates}"
    return sql


def _records(
    documents: Sequence[IndexDocument], dimension: int, *, strict: bool = True
) -> tuple[list[dict[str, Any]], list[float]]:
    """Rows for jsonb_to_recordset and their vectors, flat. strict=False (a reindex after a model switch)
    leaves a vector of another model's size out of the vector leg instead of failing: that image is found
    by words until re-embedded."""
    rows, vectors = [], []
    for doc in documents:
        row = doc.model_dump(mode="json", exclude={"embedding"})
        usable = bool(doc.embedding) and (strict or len(doc.embedding) == dimension)
        if usable and len(doc.embedding) != dimension:
            raise ValueError(f"embedding must have {dimension} dimensions, got {len(doc.embedding)}")
        row["vector_at"] = len(vectors) if usable else None
        if usable:
            vectors.append(doc.embedding)
        rows.append(row)
    flat = np.asarray(vectors, dtype=np.float32).ravel().tolist() if vectors else []
    return rows, flat  # the pool's jsonb codec serialises the rows


def _query_vector(vector: Sequence[float], dimension: int) -> list[float]:
    if len(vector) != dimension:
        raise ValueError(f"embedding must have {dimension} dimensions, got {len(vector)}")
    return [float(x) for x in vector]


def _vector_literal(vector: Sequence[float], dimension: int) -> str:
    if len(vector) != dimension:
        raise ValueError(f"embedding must have {dimension} dimensions, got {len(vector)}")
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


def _document(row: asyncpg.Record | dict[str, Any], embedding: Sequence[float] | None = None) -> IndexDocument:
    data = {c: row[c] for c in _COLUMNS}
    if embedding is not None:
        data["embedding"] = list(embedding)
    return IndexDocument.model_validate(data)


class _Found(BaseModel):
    """The one row a search statement returns (its JSON, see _search_sql)."""

    total: int
    keyword_matches: int
    any_word: bool
    facets: dict[str, list[FacetCount]] | None
    page: list[SearchHit] | None


_PARTITIONS_TTL_SECONDS: Final = 60
# Browse has no score: relevance is newest first, as in the one-statement query.
_BROWSE_ORDER: Final = {
    "relevance": "s.added_at desc, s.image_id",
    "newest": "s.added_at desc, s.image_id",
    "popular": "s.popularity desc, s.added_at desc, s.image_id",
}
_FACET_COLS: Final = "image_id, category, orientation, colors, usage, added_at, popularity"


class PostgresSearchIndex:
    """SearchIndex on the service's own Postgres schema (`search`)."""

    logs_changes = True  # its serving table logs every write for the result cache (shared/search/changes.py)

    def __init__(
        self,
        db: Database,
        *,
        dimension: int = EMBEDDING_DIM,
        ef_search: int = 100,
        max_scan_tuples: int = 5000,
        build_memory_mb: int = 2048,
        safe_max_score: float = 0.5,
        ef_search_filtered: int = 800,
        ef_search_partition: int = 400,
        keyword_match_cap: int = 10_000,
        vector_partition_min_images: int = 20_000,
        counted_min_widths: Sequence[int] = (),
    ) -> None:
        self.db = db
        self.vector_partition_min_images = vector_partition_min_images
        # The (column, value)s with their own HNSW graph, as last read (see `_partition`).
        self._partitions: dict[partitions.Key, partitions.Held] = {}
        self._partitions_read_at = -math.inf
        self.keyword_match_cap = keyword_match_cap
        self.dimension = dimension
        self.build_memory_mb = build_memory_mb
        self.ef_search = ef_search
        self.max_scan_tuples = max_scan_tuples
        # A narrowing filter walks a wider graph neighbourhood: the filter drops most of what it meets.
        self.ef_search_filtered = ef_search_filtered
        self.ef_search_partition = ef_search_partition
        # Safe search's threshold (SEARCH_SAFE_MAX_SCORE): the facet counts are kept split at it.
        self.safe_max_score = float(safe_max_score)
        # ... and by width class at these minimum widths (the portal's size presets).
        self.split = facet_counts.Split(self.safe_max_score, tuple(counted_min_widths))

    async def ensure_ready(self) -> None:
        async with self.db.transaction() as conn:
            # Two workers starting at once must not race on create table.
            await conn.execute("select pg_advisory_xact_lock(hashtext('search.serving_index'))")
            if await conn.fetchval("select to_regclass($1) is null", f"search.{TABLE}"):
                await conn.execute(_ddl(TABLE, self.dimension))
                for statement in _indexes(TABLE):
                    await conn.execute(statement)
            held = await self.held_dimension(conn)
            if held != self.dimension:
                raise IndexDimensionMismatch(held, self.dimension)
            # A table from before an index was added gets it once. Index names carry the name the table was
            # built under (a reindex's staging name), so an index is known by its suffix (_hnsw, _facets, ...).
            have = await conn.fetch(
                "select indexname from pg_indexes where schemaname = 'search' and tablename = $1", TABLE
            )
            for statement in _indexes(TABLE):
                suffix = statement.split()[5].removeprefix(TABLE)  # create index if not exists <name> ...
                if not any(r["indexname"].endswith(suffix) for r in have):
                    await conn.execute(statement, timeout=BUILD_TIMEOUT_SECONDS)
            if await facet_counts.kept_split(conn, TABLE) != self.split:
                # A table from before the counts, or counts split at another safe-search threshold or widths.
                await conn.execute(f"lock table search.{TABLE} in share mode")  # no write in between
                await facet_counts.attach_facet_counts(conn, TABLE, self.split)
            if not await has_change_log(conn, TABLE):  # the result cache's change log (shared/search/changes.py)
                await attach_change_log(conn, TABLE)
            await self._read_partitions(conn)

    async def maintain(self) -> dict[str, list[str]]:
        """Keep a vector partition for each value that has grown large enough (`partitions.maintain`)."""
        if not self.vector_partition_min_images:
            return {}  # turned off
        async with self.db.connection() as conn:
            # As the reindex's builds: a graph that does not fit maintenance_work_mem (64 MB by default, a
            # 60k-image graph) is built on disk, many times slower.
            await conn.execute(f"set maintenance_work_mem = '{int(self.build_memory_mb)}MB'")
            try:
                done = await partitions.maintain(
                    conn, TABLE, self.vector_partition_min_images, limit_s=BUILD_TIMEOUT_SECONDS
                )
            finally:
                await conn.execute("reset maintenance_work_mem")  # the pooled connection goes back as it came
            await self._read_partitions(conn)
        return {"partitions_built": done.built, "partitions_dropped": done.dropped, "partitions_kept": done.kept}

    async def _read_partitions(self, conn: asyncpg.Connection) -> None:
        self._partitions = await partitions.held(conn, TABLE)
        self._partitions_read_at = time.monotonic()

    async def _partition(self, conn: asyncpg.Connection, query: SearchQuery) -> str | None:
        """The column (category, license type) whose own graph the query's vector leg can walk, if
        any. The partitions are re-read once a minute (they change with an hourly `maintain` or a reindex):
        until then a new one is not used yet, and a dropped one's value is walked over the whole graph."""
        if query.vector is None or query.mode == "keyword" or not self.vector_partition_min_images:  # 0: off
            return None
        if not any(getattr(query.filters, column) is not None for column in partitions.COLUMNS):
            return None
        if time.monotonic() - self._partitions_read_at > _PARTITIONS_TTL_SECONDS:
            await self._read_partitions(conn)
        key = partitions.choose(query.filters, self._partitions)
        return None if key is None else key[0]

    async def held_dimension(self, conn: asyncpg.Connection | None = None) -> int | None:
        """The dimension of the serving table's vectors (None: no table yet)."""
        sql = (
            "select a.atttypmod from pg_attribute a where a.attrelid = to_regclass($1)"
            " and a.attname = 'embedding' and not a.attisdropped"
        )
        if conn is not None:
            return await conn.fetchval(sql, f"search.{TABLE}")
        async with self.db.connection() as own:
            return await own.fetchval(sql, f"search.{TABLE}")

    async def upsert(self, documents: Sequence[IndexDocument], *, within: asyncpg.Connection | None = None) -> None:
        """`within`: the caller's transaction, so the index changes with the read model (and a caller
        holding a transaction never waits for a second pool connection, which could deadlock the pool)."""
        if documents:
            async with _connection(self.db, within) as conn:
                await conn.execute(_insert_sql(TABLE, True, self.dimension), *_records(documents, self.dimension))

    async def delete(self, image_ids: Sequence[UUID], *, within: asyncpg.Connection | None = None) -> None:
        if image_ids:
            async with _connection(self.db, within) as conn:
                await conn.execute(f"delete from search.{TABLE} where image_id = any($1::uuid[])", list(image_ids))

    async def get(self, image_id: UUID) -> IndexDocument | None:
        async with self.db.connection() as conn:
            row = await conn.fetchrow(
                f"select {_SELECT_DOC}, s.embedding::real[] as vec from search.{TABLE} s where s.image_id = $1",
                image_id,
            )
        return None if row is None else _document(row, row["vec"] or [])

    async def search(self, query: SearchQuery) -> SearchResult:
        if not self._one_statement_applies(query):
            return await self._browse(query, counted=self.split.counted(query.filters))
        return await self._one_statement(query)

    @staticmethod
    def _one_statement_applies(query: SearchQuery) -> bool:
        """Words or a vector to rank by; else browse."""
        return bool(query.text and query.text.strip() and query.mode != "semantic") or (
            query.vector is not None and query.mode != "keyword"
        )

    async def _one_statement(self, query: SearchQuery) -> SearchResult:
        """Any query: the matching set, its page, total and facets in one statement."""
        async with self.db.connection() as conn:
            partition = await self._partition(conn, query)
            sql, values = self._search_sql(query, partition=partition)
            if settings := self._session_settings(query, partition=partition):
                # Kept on the session (only HNSW scans read them, and every query with one sets them first):
                # no RESET at release, and no SET when this connection's last search used the same ones.
                await conn.keep_settings(settings)
            row = await conn.fetchrow(sql, *values)
        # Parsed and validated in one pass from the JSON text (no dicts built first, then validated).
        found = _Found.model_validate_json(row["result"])
        hits, facets = found.page or [], found.facets or {}
        if found.keyword_matches < self.keyword_match_cap:
            return SearchResult(hits=hits, total=found.total, facets=facets)
        # The cap was hit: the planner's row estimate of the keyword matches (its statistics on the
        # tsvector's frequent lexemes are close: 220,363 estimated vs 221,598 for "dog" at 1M) plus what
        # the vector leg added beyond the sample; the facets scaled to that total.
        text = any_word_text(query.text) if found.any_word else query.text
        keyword_rows = await self._estimate_keyword_matches(query, text)
        total = max(found.total, keyword_rows + found.total - found.keyword_matches)
        scale = total / max(found.total, 1)
        facets = {
            field: [FacetCount(value=f.value, count=round(f.count * scale)) for f in counts]
            for field, counts in facets.items()
        }
        return SearchResult(hits=hits, total=total, facets=facets, total_is_estimate=True)

    def _session_settings(self, query: SearchQuery, *, partition: str | None = None) -> str:
        """The SET statements a query's vector leg runs under ('' without one); `partition`: see `_partition`."""
        if query.vector is None or query.mode == "keyword":
            return ""
        if narrowing(query.filters, partition=partition):
            ef = self.ef_search_filtered
        else:
            ef = self.ef_search_partition if partition else self.ef_search
        return (
            "set hnsw.iterative_scan = relaxed_order;"
            f" set hnsw.ef_search = {max(ef, min(query.candidates, 1000))};"
            f" set hnsw.max_scan_tuples = {self.max_scan_tuples}"
        )

    async def _estimate_keyword_matches(self, query: SearchQuery, text: str | None) -> int:
        p = Params()
        where = where_sql(query.filters, p)
        sql = (
            f"explain (format json) select 1 from search.{TABLE} s,"
            f" websearch_to_tsquery('english', {p.add(text)}) q(q) where s.tsv @@ q.q and {where}"
        )
        async with self.db.connection() as conn:
            plan = await conn.fetchval(sql, *p.values)
        return int((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"])

    async def _browse(self, query: SearchQuery, *, counted: bool) -> SearchResult:
        """Browse (no words): the page from an index on the sort (newest or popular first); total and facets
        from the kept counts on the low-cardinality filters (`counted`), else by counting the filtered images
        in one pass over the narrow facets index, never the wide table."""
        (counts_sql, counts), (page_sql, page_values) = self._browse_sql(query, counted=counted)
        async with self.db.connection() as conn:
            rows = await conn.fetch(counts_sql, *counts)
            page = await conn.fetch(page_sql, *page_values) if query.limit else []
        total, facets = facet_counts.from_counts(rows, query.filters.color, query.facet_size)
        return SearchResult(
            hits=[SearchHit(document=_document(r), score=0.0) for r in page],
            total=total,
            facets=facets if query.facets else {},
        )

    def _browse_sql(self, query: SearchQuery, *, counted: bool) -> list[tuple[str, list[Any]]]:
        """Browse's two statements: the counts (total and facets), then the page."""
        p = Params()
        page_sql = (
            f"select {_SELECT_DOC} from search.{TABLE} s where {where_sql(query.filters, p)}"
            f" order by {_BROWSE_ORDER[query.sort]} offset {p.add(query.offset)} limit {p.add(query.limit)}"
        )
        counts = Params()
        counts_sql = (
            facet_counts.counts_sql(query.filters, counts, self.split)
            if counted
            else facet_counts.scan_counts_sql(query.filters, counts)
        )
        return [(counts_sql, counts.values), (page_sql, p.values)]

    def _search_sql(self, query: SearchQuery, *, partition: str | None = None) -> tuple[str, list[Any]]:
        p = Params()
        where = where_sql(query.filters, p, partition=partition, opaque=not self.vector_partition_min_images)
        use_text = bool(query.text and query.text.strip()) and query.mode != "semantic"
        use_vector = query.vector is not None and query.mode != "keyword"
        ctes: list[str] = []
        legs: list[str] = []  # (image_id, r) rankings to fuse
        sets: list[str] = []  # matching documents
        any_words: str | None = None  # the keyword leg's fallback, when it has one
        if use_text:
            # Bounded: a word that matches a fifth of the catalogue ("dog", "background") would otherwise read,
            # rank and count every match (seconds at 1M). The newest `keyword_match_cap` matches are ranked;
            # past the cap, total and facets are estimates and the result says so.
            # The rank in the same select as the limit: the planner evaluates a costly target expression after
            # the top-N sort, so only the kept matches are ranked, and the sort carries no tsvector and tsquery
            # per row (the same rows and ranks as ranking a sub-select of them, at half the time: 8.5 vs 18 ms
            # for a one-off query's ~2,000 matches at 1M).
            def keyword_leg(name: str, text: str, only_if: str = "") -> str:
                return (
                    f"{name} as materialized (select {_FACET_COLS.replace('image_id', 's.image_id')},"
                    f" ts_rank_cd(s.tsv, q.q, 1) as rank"
                    f" from search.{TABLE} s, websearch_to_tsquery('english', {p.add(text)}) q(q)"
                    f" where s.tsv @@ q.q and {where}{only_if}"
                    f" order by s.added_at desc limit {p.add(self.keyword_match_cap)})"
                )

            # Keyword leg alone only: with a vector leg the fallback's loose matches measured no better
            # (bench/relevance.py: hybrid MRR 0.451 with it, 0.471 without, on the tuning half).
            any_words = None if use_vector else any_word_text(query.text)
            if any_words is None:
                ctes.append(keyword_leg("kw", query.text))
            else:
                # All the words first; only when together they match nothing, any of them (ranked by how
                # many match). The uncorrelated `not exists` is a one-time filter: when all the words
                # match, the second scan never runs.
                ctes.append(keyword_leg("kw_all", query.text))
                ctes.append(keyword_leg("kw_any", any_words, " and not exists (select 1 from kw_all)"))
                ctes.append("kw as (select * from kw_all union all select * from kw_any)")
            ctes.append(
                # The limit under the window: a bounded (top-N) sort, not a sort of every keyword match.
                # image_id breaks ties: a rank shared by two images must not follow where their rows lie on disk.
                f"kw_ranked as (select image_id, row_number() over (order by rank desc, added_at desc, image_id) as r"
                f" from (select image_id, rank, added_at from kw order by rank desc, added_at desc, image_id"
                f" limit {p.add(query.candidates)}) top)"
            )
            legs.append("select image_id, r from kw_ranked")
            sets.append(f"select {_FACET_COLS} from kw")
        if use_vector:
            # Binary floats, cast once: formatting 384 decimals per query cost the app more than the cast.
            vec = p.add(_query_vector(query.vector, self.dimension))
            ctes.append(
                f"nn as materialized (select {_FACET_COLS.replace('image_id', 's.image_id')},"
                f" s.embedding <=> {vec}::real[]::halfvec({self.dimension}) as dist from search.{TABLE} s"
                f" where s.embedding is not null and {where}"
                f" order by s.embedding <=> {vec}::real[]::halfvec({self.dimension}) limit {p.add(query.candidates)})"
            )
            ctes.append(
                f"vec as (select *, row_number() over (order by dist, image_id) as r from nn"
                f" where dist <= {p.add(query.max_vector_distance)})"
            )
            legs.append("select image_id, r from vec")
            sets.append(f"select {_FACET_COLS} from vec")
        if not sets:  # browse: every document that passes the filters
            sets.append(f"select {_FACET_COLS.replace('image_id', 's.image_id')} from search.{TABLE} s where {where}")
            legs.append("select image_id, null::bigint as r from matched where false")
        ctes.append(f"matched as materialized ({' union '.join(sets)})")
        ctes.append(
            f"fused as (select image_id, sum(1.0 / ({RRF_K} + r))::float8 as score"
            f" from ({' union all '.join(legs)}) l group by image_id)"
        )
        order = {
            "relevance": "{t}score desc, {t}added_at desc, {t}image_id",
            "newest": "{t}added_at desc, {t}image_id",
            "popular": "{t}popularity desc, {t}added_at desc, {t}image_id",
        }[query.sort]
        page = (
            "select m.image_id, coalesce(f.score, 0) as score, m.added_at, m.popularity"
            " from matched m left join fused f using (image_id)"
            f" order by {order.format(t='')} offset {p.add(query.offset)} limit {p.add(query.limit)}"
        )
        facets = "'{}'::jsonb"
        if query.facets:
            size = p.add(query.facet_size)
            facets = f"""(select coalesce(jsonb_object_agg(field, vals), '{{}}'::jsonb) from (
                select field, jsonb_agg(jsonb_build_object('value', value, 'count', n) order by n desc, value) as vals
                from (
                  select field, value, n, row_number() over (partition by field order by n desc, value) as rn from (
                    select 'category' as field, category as value, count(*) as n from matched
                      where category is not null group by category
                    union all select 'orientation', orientation, count(*) from matched group by orientation
                    union all select 'usage', usage, count(*) from matched group by usage
                    union all select 'colors', c, count(*) from (select unnest(colors) as c from matched) u group by c
                  ) counted
                ) ranked where rn <= {size} group by field) per_field)"""
        sql = f"""with {", ".join(ctes)},
            page as materialized ({page})
            select jsonb_build_object(
              'total', (select count(*) from matched),
              'keyword_matches', {"(select count(*) from kw)" if use_text else "0"},
              'any_word', {"(select count(*) = 0 from kw_all)" if any_words else "false"},
              'facets', {facets},
              'page', (select jsonb_agg(jsonb_build_object('document', to_jsonb(d), 'score', pg.score)
                                         order by {order.format(t="pg.")})
                       from page pg
                       join lateral (select {_SELECT_DOC} from search.{TABLE} s where s.image_id = pg.image_id) d
                       on true)
            )::text as result"""
        return sql, p.values

    async def rebuild(
        self, batches: AsyncIterable[Sequence[IndexDocument]], progress: ProgressCallback | None = None
    ) -> int:
        try:
            await self.ensure_ready()
        except IndexDimensionMismatch:
            pass  # what a rebuild is for: the new table gets the model's dimension
        staging = f"{TABLE}_{secrets.token_hex(4)}"
        async with self.db.connection() as conn:
            await conn.execute(_ddl(staging, self.dimension))
        written = 0
        try:
            async for batch in batches:
                if not batch:
                    continue
                async with self.db.connection() as conn:
                    await conn.execute(
                        _insert_sql(staging, True, self.dimension), *_records(batch, self.dimension, strict=False)
                    )
                written += len(batch)
                if progress is not None:
                    progress(len(batch))
            async with self.db.connection() as conn:
                # Indexes after the load: one sorted build is much faster than row-by-row inserts.
                # The HNSW graph must fit in maintenance_work_mem, or the build goes to disk and crawls.
                await conn.execute(f"set maintenance_work_mem = '{int(self.build_memory_mb)}MB'")
                for statement in _indexes(staging):
                    # An HNSW build over millions of rows takes minutes: no client-side timeout here.
                    await conn.execute(statement, timeout=BUILD_TIMEOUT_SECONDS)
                if self.vector_partition_min_images:  # 0: turned off
                    total, per_key = await partitions.sizes(conn, staging)
                    for key in sorted(partitions.wanted(total, per_key, self.vector_partition_min_images)):
                        await partitions.build(conn, staging, key, concurrently=False, limit_s=BUILD_TIMEOUT_SECONDS)
                # Vacuum, not only analyze: it marks the pages all-visible, which index-only scans need.
                await conn.execute(f"vacuum (analyze) search.{staging}", timeout=BUILD_TIMEOUT_SECONDS)
            async with self.db.transaction() as conn:
                await facet_counts.attach_facet_counts(conn, staging, self.split)
                await attach_change_log(conn, staging)  # after the load: the loaded rows are no change
            async with self.db.transaction() as conn:
                # The swap: queries wait for this short transaction, then see the new table.
                await conn.execute("select pg_advisory_xact_lock(hashtext('search.serving_index'))")
                await conn.execute(f"lock table search.{TABLE} in access exclusive mode")
                old = f"{TABLE}_old_{secrets.token_hex(4)}"
                await conn.execute(f"alter table search.{TABLE} rename to {old}")
                await conn.execute(f"alter table search.{staging} rename to {TABLE}")
                await conn.execute("delete from search.facet_counts where relid = $1::regclass", f"search.{old}")
                await conn.execute(f"drop table search.{old}")
                # Cached result pages go with the old table, in the swap's own transaction.
                await bump_generation(conn)
        except BaseException:
            async with self.db.connection() as conn:
                await conn.execute("delete from search.facet_counts where relid = to_regclass($1)", f"search.{staging}")
                await conn.execute(f"drop table if exists search.{staging}")
            raise
        async with self.db.connection() as conn:
            await self._read_partitions(conn)  # the new table's, at once in this process (others within a minute)
        return written

    async def close(self) -> None:
        """The pool belongs to the runtime; nothing of ours to release."""
