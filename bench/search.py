"""Search benchmark: corpus generator, query latency per kind, HTTP throughput, ANN recall, relevance MRR.

    flock /work/wt/bench.lock .venv/bin/python -m bench.search [--docs 100000] [--var-dir var/bench-search-1m]
        [--steps relevance,maintain,single,recall,http] [--seconds 60] [--clients 16] [--cache off,on]
        [--ef-sweep 200,800]
        [--baseline-checkout /tmp/base]

At 1M documents split the steps over several locked runs (each under ~12 minutes) with --steps and the same
--var-dir: the first builds the corpus (about 5 min load + 7 min HNSW on a quiet machine), the others reuse it
(--rebuild builds it again, which is then what the load figure measures).

What it does, each step printing JSON lines (then a table, then one line per target of issue 16):
1. relevance: the real photos (tests/fixtures/photos.py) through the packaged models among 300
   distractors; mean reciprocal rank of the labelled queries (hybrid, the API's settings). Fresh corpus only.
2. corpus: N synthetic documents: embeddings are mixtures of 1-3 real ImageNet label embeddings
   (MiniLM, as the fallback image model builds them) plus noise; titles, keywords, categories,
   colours, sizes, license types, safety scores, dates and popularity drawn to look like a stock
   catalogue. Loaded with the real full-reindex path (build aside + swap), so its rate is printed too.
2b. maintain: the index's upkeep on a kept corpus (vector partitions built concurrently), timed.
3. single client, in-process: p50/p95 of the index query per kind (keyword / semantic / hybrid, with
   facets; hybrid with filters; browse with filters; sorts), next to the baselines measured in the same
   run: browse as it was (facets counted over every filtered image in one statement), the bare keyword leg
   (GIN + ts_rank, no facets) and the exact (sequential) vector search. Query encoding (MiniLM, uncached)
   is timed on its own.
4. ANN recall@10 of the vector leg (HNSW, iterative scan, the API's candidate count) against exact
   search with the same filters: as configured, as before (one ef_search for all), and per --ef-sweep.
5. HTTP: devhost serving function_app on this database; `--clients` keep-alive clients for `--seconds` on
   GET /api/search with a stock site's mix (a Zipf distribution, s = 1.1, over 5,000 distinct queries plus
   30% one-off queries, a third of both with filters; hybrid + facets), once per --cache mode (off: every
   search reaches the index; on: the API's result cache), with the CPU seconds of the app and of Postgres
   over the run and their peak memory (PSS); next to GET /api/keywords/suggest (same HTTP stack, trivial
   query) as the stack's floor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import resource
import shutil
import statistics
import tempfile
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import numpy as np
import psutil

from bench.statement_log import StatementLog
from shared.config import Settings
from shared.db import Database, connect_database
from shared.db.embedded import EmbeddedPostgres
from shared.db.migrate import migrate
from shared.search.factory import build_search_index
from shared.search.port import IndexDocument, SearchFilters, SearchQuery
from shared.search.postgres import PostgresSearchIndex

CATEGORIES = [
    "nature",
    "animals",
    "food",
    "transport",
    "architecture",
    "people",
    "business",
    "sports",
    "technology",
    "travel",
    "objects",
    "science",
    "industry",
    "interiors",
    "fashion",
]
COLORS = ["black", "white", "gray", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "beige"]
GENERIC = [
    "background",
    "closeup",
    "outdoor",
    "indoor",
    "vintage",
    "modern",
    "colorful",
    "isolated",
    "copy space",
    "summer",
    "winter",
    "morning",
    "night",
    "detail",
    "texture",
    "lifestyle",
    "concept",
    "minimal",
    "natural",
    "urban",
]
ADJECTIVES = ["Beautiful", "Close-up of a", "Vintage", "Bright", "Moody", "Aerial view of a", "Portrait of a", "Old"]
SIZES = [(6000, 4000), (5472, 3648), (4000, 3000), (4000, 6000), (3648, 5472), (4000, 4000), (7952, 5304)]
T_END = datetime(2026, 11, 1, tzinfo=UTC)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def figures(latencies: list[float]) -> dict[str, float]:
    return {
        "n": len(latencies),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 2),
    }


def emit(record: dict[str, Any]) -> None:
    print(json.dumps({"bench": "search", **record}), flush=True)


# --- corpus ---------------------------------------------------------------------------


class Corpus:
    def __init__(self, seed: int = 42) -> None:
        from shared.ml import get_text_encoder
        from shared.ml.labels import load_labels

        self.encoder = get_text_encoder()
        self.labels = load_labels()
        self.vectors = np.asarray(self.encoder.encode([label.tag for label in self.labels]), dtype=np.float32)
        self.rng = np.random.default_rng(seed)
        self.pyrng = random.Random(seed)

    def category(self, label) -> str:
        key = label.parent.encode() if label.parent else str(label.index).encode()
        return CATEGORIES[zlib.crc32(key) % len(CATEGORIES)]

    def batches(self, total: int, batch_size: int) -> AsyncIterator[list[IndexDocument]]:
        async def generate() -> AsyncIterator[list[IndexDocument]]:
            made = 0
            while made < total:
                size = min(batch_size, total - made)
                yield await asyncio.to_thread(self._batch, size)
                made += size

        return generate()

    def _batch(self, size: int) -> list[IndexDocument]:
        # Drawn a batch at a time with numpy, and built without validation (the values are valid by
        # construction): at 1M documents the generator would otherwise cost more than the load it feeds.
        rng = self.rng
        dim = self.vectors.shape[1]
        noise = rng.standard_normal((size, dim)).astype(np.float32) * 0.02
        n_picks = rng.integers(1, 4, size)
        sizes = rng.integers(len(SIZES), size=size)
        editorial = rng.random(size) < 0.15
        unsafe = rng.random(size) < 0.02
        safety = rng.beta(0.5, 25, size)
        ages = rng.uniform(0, 3 * 365 * 86400, size)
        popularity = rng.zipf(2.0, size) - 1
        contributors = rng.zipf(1.5, size) % 5000
        adjectives = rng.integers(len(ADJECTIVES), size=size)
        n_colors = rng.integers(1, 4, size)
        # Each image mixes 1-3 label embeddings with Dirichlet(2, ...) weights, plus noise.
        picks_all = rng.integers(len(self.labels), size=(size, 3))
        gammas = rng.gamma(2.0, size=(size, 3)) * (np.arange(3)[None, :] < n_picks[:, None])
        weights = (gammas / gammas.sum(axis=1, keepdims=True)).astype(np.float32)
        mixed = np.einsum("ij,ijk->ik", weights, self.vectors[picks_all]) + noise
        mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
        embeddings = mixed.tolist()
        docs = []
        for i in range(size):
            picks = list(dict.fromkeys(int(p) for p in picks_all[i, : n_picks[i]]))
            main = self.labels[picks[0]]
            tags = [self.labels[p].tag.lower() for p in picks]
            parents = [self.labels[p].parent for p in picks if self.labels[p].parent]
            width, height = SIZES[int(sizes[i])]
            docs.append(
                IndexDocument.model_construct(
                    image_id=uuid.uuid4(),
                    contributor_id=f"contributor-{int(contributors[i])}",
                    revision=2,
                    title=f"{ADJECTIVES[int(adjectives[i])]} {main.tag}",
                    description=f"Stock photo: {', '.join(tags)}.",
                    keywords=list(dict.fromkeys([*tags, *parents, *self.pyrng.sample(GENERIC, 4)])),
                    tags=tags,
                    category=self.category(main),
                    usage="editorial" if editorial[i] else "commercial",
                    width=width,
                    height=height,
                    orientation="landscape" if width > height else "portrait" if height > width else "square",
                    colors=self.pyrng.sample(COLORS, int(n_colors[i])),
                    embedding=embeddings[i],
                    safety_score=float(min(1.0, safety[i] * (20 if unsafe[i] else 1))),
                    thumbnail_small_url="",
                    thumbnail_url=f"https://cdn.example/t/{uuid.uuid4().hex}.jpg",
                    preview_url=f"https://cdn.example/w/{uuid.uuid4().hex}.jpg",
                    blurhash="",
                    phash="",
                    added_at=T_END - timedelta(seconds=float(ages[i])),
                    popularity=int(popularity[i]),
                )
            )
        return docs

    def query_words(self, n: int, seed: int = 3) -> list[str]:
        rng = random.Random(seed)
        words = []
        for _ in range(n):
            roll = rng.random()
            if roll < 0.45:
                words.append(rng.choice(self.labels).tag.lower())
            elif roll < 0.75:
                words.append(f"{rng.choice(self.labels).tag.lower()} {rng.choice(GENERIC)}")
            elif roll < 0.95:
                words.append(
                    rng.choice(
                        [
                            "cup of coffee",
                            "dog on the beach",
                            "city at night",
                            "red sports car",
                            "family dinner",
                            "mountain lake",
                            "space rocket launch",
                            "cat",
                        ]
                    )
                )
            else:
                words.append(rng.choice(["xqzvbnm", "quarterly tax form", "asdf qwer"]))
        return words


# Sizes as buyers pick them: the portal's "extra large" preset (portals/web/src/lib/searchState.ts), which the
# facet counts keep (SEARCH_COUNTED_MIN_WIDTHS). Until 2026-12-07 the mix used 5,000 px, a width no control
# offers; the single step still measures it apart ("size off the presets"), where browse counts the images.
SIZE_PRESET = 4000
SIZE_OFF_PRESET = 5000


def random_filters(rng: random.Random) -> SearchFilters:
    choice = rng.random()
    if choice < 0.4:
        return SearchFilters(category=rng.choice(CATEGORIES), max_safety_score=0.5)
    if choice < 0.7:
        return SearchFilters(orientation=rng.choice(["landscape", "portrait"]), color=rng.choice(COLORS))
    return SearchFilters(usage="editorial", min_width=SIZE_PRESET, max_safety_score=0.5)


# --- measurements ------------------------------------------------------------------------


class Before:
    """The index as it was measured before (the baseline in the same run): browse counts its total and
    facets over every filtered image in one statement, and a filtered vector leg walks as wide as any."""

    def __init__(self, index: PostgresSearchIndex) -> None:
        self.index = index

    async def search(self, query: SearchQuery) -> Any:
        saved, self.index.ef_search_filtered = self.index.ef_search_filtered, self.index.ef_search
        try:
            with whole_graph(self.index):
                return await self.index._one_statement(query)
        finally:
            self.index.ef_search_filtered = saved


@contextlib.contextmanager
def whole_graph(index: PostgresSearchIndex) -> Iterator[None]:
    """The index as before vector partitions: a filtered vector leg walks the whole catalogue's graph
    (partitions turned off: the planner is not shown the partition columns' values, so it cannot pick one)."""
    saved, index.vector_partition_min_images = index.vector_partition_min_images, 0
    try:
        yield
    finally:
        index.vector_partition_min_images = saved


class WholeGraph:
    def __init__(self, index: PostgresSearchIndex) -> None:
        self.index = index

    async def search(self, query: SearchQuery) -> Any:
        with whole_graph(self.index):
            return await self.index.search(query)


async def timed(call: Callable[[], Any], repeats: list[Any]) -> list[float]:
    out = []
    for item in repeats:
        started = time.perf_counter()
        await call(item)
        out.append(time.perf_counter() - started)
    return out


async def relevance_mrr(index: PostgresSearchIndex, settings: Settings) -> dict[str, Any]:
    from tests.fixtures.search_corpus import relevance_corpus

    documents, expected = relevance_corpus(distractors=300)
    async with index.db.connection() as conn:
        if await conn.fetchval("select exists (select from search.serving_index)"):
            # Among a reused synthetic corpus (full of cats and coffee cups) the figure would mean nothing.
            return {"mrr": None, "skipped": "the index already holds a corpus; run on a fresh --var-dir"}
    await index.upsert(documents)
    from shared.ml import get_text_encoder

    encoder = get_text_encoder()
    ranks = {}
    for query, image_id in expected.items():
        result = await index.search(
            SearchQuery(
                text=query,
                vector=encoder.encode([query])[0].tolist(),
                max_vector_distance=settings.SEARCH_MAX_VECTOR_DISTANCE,
                candidates=settings.SEARCH_VECTOR_CANDIDATES,
                limit=100,
            )
        )
        found = [h.document.image_id for h in result.hits]
        ranks[query] = found.index(image_id) + 1 if image_id in found else None
    mrr = sum(1 / r for r in ranks.values() if r) / len(ranks)
    await index.delete([d.image_id for d in documents])
    return {"mrr": round(mrr, 3), "ranks": ranks, "documents": len(documents)}


async def single_client(index: PostgresSearchIndex, db: Database, corpus: Corpus, settings: Settings, n: int):
    words = corpus.query_words(n)
    vectors = {w: corpus.encoder.encode([w])[0].tolist() for w in set(words)}
    rng = random.Random(5)
    filters = [random_filters(rng) for _ in words]
    common = dict(
        max_vector_distance=settings.SEARCH_MAX_VECTOR_DISTANCE, candidates=settings.SEARCH_VECTOR_CANDIDATES, limit=24
    )

    def run(make: Callable[[int], SearchQuery]) -> Callable[[int], Any]:
        return lambda i: index.search(make(i))

    before, whole = Before(index), WholeGraph(index)
    by_category = [SearchFilters(category=rng.choice(CATEGORIES), max_safety_score=0.5) for _ in words]
    off_preset = SearchFilters(usage="editorial", min_width=SIZE_OFF_PRESET, max_safety_score=0.5)
    cases: dict[str, Callable[[int], Any]] = {
        "keyword+facets": run(lambda i: SearchQuery(text=words[i], mode="keyword", **common)),
        "semantic+facets": run(lambda i: SearchQuery(vector=vectors[words[i]], mode="semantic", **common)),
        "hybrid+facets": run(lambda i: SearchQuery(text=words[i], vector=vectors[words[i]], **common)),
        "hybrid+facets+filters": run(
            lambda i: SearchQuery(text=words[i], vector=vectors[words[i]], filters=filters[i], **common)
        ),
        "hybrid, no facets": run(
            lambda i: SearchQuery(text=words[i], vector=vectors[words[i]], facets=False, **common)
        ),
        "hybrid+facets sort=popular": run(
            lambda i: SearchQuery(text=words[i], vector=vectors[words[i]], sort="popular", **common)
        ),
        "hybrid+facets+category": run(
            lambda i: SearchQuery(text=words[i], vector=vectors[words[i]], filters=by_category[i], **common)
        ),
        "hybrid+facets+category, before (whole graph)": lambda i: whole.search(
            SearchQuery(text=words[i], vector=vectors[words[i]], filters=by_category[i], **common)
        ),
        "browse+filters+facets": run(lambda i: SearchQuery(filters=filters[i], sort="newest", **common)),
        "browse+filters+facets, before (counting)": lambda i: before.search(
            SearchQuery(filters=filters[i], sort="newest", **common)
        ),
        "browse+facets, size off the presets": run(lambda i: SearchQuery(filters=off_preset, sort="newest", **common)),
    }

    async def keyword_leg(i: int) -> None:
        async with db.connection() as conn:
            await conn.fetch(
                "select image_id from search.serving_index s, websearch_to_tsquery('english', $1) q "
                "where s.tsv @@ q order by ts_rank_cd(s.tsv, q, 1) desc limit 24",
                words[i],
            )

    async def exact_vector(i: int) -> None:
        async with db.transaction() as conn:
            await conn.execute("set local enable_indexscan = off")
            await conn.fetch(
                "select image_id from search.serving_index order by embedding <=> $1::halfvec limit 24",
                str(vectors[words[i]]),
            )

    baselines = {"baseline: bare keyword leg (GIN, no facets)": keyword_leg}
    baselines["baseline: exact vector search (seq scan)"] = exact_vector
    results = {}
    indexes = list(range(n))
    for name, call in {**cases, **baselines}.items():
        await timed(call, indexes[:10])  # warm caches
        sample = indexes if "exact" not in name else indexes[: max(10, n // 5)]
        results[name] = figures(await timed(call, sample))
        emit({"step": "single_client", "case": name, **results[name]})
    encode_times = []
    for w in words[:50]:
        started = time.perf_counter()
        corpus.encoder.encode([w + " x"])  # never the cached form
        encode_times.append(time.perf_counter() - started)
    results["query encoding (MiniLM int8, uncached)"] = figures(encode_times)
    emit({"step": "single_client", "case": "query encoding", **results["query encoding (MiniLM int8, uncached)"]})
    return results


async def recall(
    index: PostgresSearchIndex, db: Database, corpus: Corpus, settings: Settings, n: int, sweep: list[int]
) -> dict[str, float]:
    """Recall@10 of the vector leg against exact search with the same filters, for the index as configured,
    as it was (ef_search the same for every query), and for each ef_search of `sweep` under filters."""
    words = corpus.query_words(n, seed=11)
    rng = random.Random(13)
    queries = []
    for i, word in enumerate(words):
        vector = corpus.encoder.encode([word])[0].tolist()
        filters = SearchFilters() if i % 2 == 0 else random_filters(rng)
        exact_query, values = _exact_sql(filters, vector)
        async with db.transaction() as conn:
            await conn.execute("set local enable_indexscan = off")
            truth = [r["image_id"] for r in await conn.fetch(exact_query, *values)]
        if truth:
            queries.append((vector, filters, set(truth)))

    async def measure(ef_filtered: int) -> tuple[list[float], list[float], list[float]]:
        saved, index.ef_search_filtered = index.ef_search_filtered, ef_filtered
        unfiltered, filtered, times = [], [], []
        by_kind.clear()
        try:
            for vector, filters, truth in queries:
                started = time.perf_counter()
                ann = await index.search(
                    SearchQuery(
                        vector=vector,
                        mode="semantic",
                        filters=filters,
                        limit=10,
                        facets=False,
                        max_vector_distance=2.0,
                        candidates=settings.SEARCH_VECTOR_CANDIDATES,
                    )
                )
                got = {h.document.image_id for h in ann.hits}
                (filtered if filters != SearchFilters() else unfiltered).append(len(got & truth) / len(truth))
                if filters != SearchFilters():
                    times.append(time.perf_counter() - started)
                    kind = "category" if filters.category else "other filters"
                    by_kind.setdefault(kind, ([], []))[0].append(len(got & truth) / len(truth))
                    by_kind[kind][1].append(time.perf_counter() - started)
        finally:
            index.ef_search_filtered = saved
        return unfiltered, filtered, times

    out: dict[str, float] = {}
    by_kind: dict[str, tuple[list[float], list[float]]] = {}

    def kinds(label: str) -> None:
        for kind, (recalls, kind_times) in sorted(by_kind.items()):
            out[f"{label}{kind} ({len(recalls)})"] = round(statistics.mean(recalls), 4)
            out[f"{label}{kind} p50 / p95 ms"] = (figures(kind_times)["p50_ms"], figures(kind_times)["p95_ms"])

    unfiltered, filtered, times = await measure(index.ef_search_filtered)
    out["no filter"] = round(statistics.mean(unfiltered), 4)
    out["filtered"] = round(statistics.mean(filtered), 4)
    out["filtered p50 ms"] = figures(times)["p50_ms"]
    kinds("")
    with whole_graph(index):
        _, filtered, times = await measure(index.ef_search_filtered)
    out["filtered, before partitions (whole graph)"] = round(statistics.mean(filtered), 4)
    kinds("before partitions: ")
    _, filtered, times = await measure(index.ef_search)
    out[f"filtered, before (ef_search {index.ef_search} for all)"] = round(statistics.mean(filtered), 4)
    for ef in sweep:
        _, filtered, times = await measure(ef)
        out[f"filtered, ef_search {ef}"] = round(statistics.mean(filtered), 4)
        out[f"filtered, ef_search {ef} p50 ms"] = figures(times)["p50_ms"]
    saved = index.ef_search_partition
    try:
        for ef in sweep:  # the same values for a walk of a category's own graph (SEARCH_HNSW_EF_SEARCH_PARTITION)
            index.ef_search_partition = ef
            await measure(index.ef_search_filtered)
            kinds(f"partition ef_search {ef}: ")
    finally:
        index.ef_search_partition = saved
    emit({"step": "recall_at_10", **out, "queries": len(queries)})
    return out


def _exact_sql(filters: SearchFilters, vector: list[float]) -> tuple[str, list[Any]]:
    from shared.search.pg_sql import Params, where_sql
    from shared.search.postgres import _vector_literal

    p = Params()
    where = where_sql(filters, p)
    v = p.add(_vector_literal(vector, len(vector)))
    return (
        f"select s.image_id from search.serving_index s where s.embedding is not null and {where} "
        f"order by s.embedding <=> {v}::halfvec limit 10",
        p.values,
    )


# --- HTTP: a stock site's query mix ---------------------------------------------------------


class QueryMix:
    """What buyers type: a Zipf distribution (s = `zipf_s`) over `distinct` queries, plus `one_off` of all
    queries never seen before or again (the long tail no cache can hold); a third of both with filters.
    A popular query keeps its filters, so a repeat is the same request."""

    def __init__(self, corpus: Corpus, *, distinct: int = 5000, zipf_s: float = 1.1, one_off: float = 0.3, seed=21):
        rng = random.Random(seed)
        words = dict.fromkeys(corpus.query_words(distinct * 3, seed=seed))
        while len(words) < distinct:  # more two-word queries until there are enough distinct ones
            words[f"{rng.choice(corpus.labels).tag.lower()} {rng.choice(GENERIC)}"] = None
        words = list(words)
        self.popular = [(w, api_filters(rng) if rng.random() < 1 / 3 else {}) for w in words[:distinct]]
        self.cum_weights = list(itertools.accumulate(1 / (k**zipf_s) for k in range(1, distinct + 1)))
        self.one_off = one_off
        self.labels = [label.tag.lower() for label in corpus.labels]
        self.seen = {w for w, _ in self.popular}
        self.one_offs = 0

    def params(self, rng: random.Random) -> dict[str, Any]:
        if rng.random() < self.one_off:
            self.one_offs += 1
            while True:  # a query no one asked before (and no one will again)
                words = f"{rng.choice(GENERIC)} {rng.choice(self.labels)} {rng.choice(ADJECTIVES).lower()}"
                if words not in self.seen:
                    self.seen.add(words)
                    break
            return {"q": words, **(api_filters(rng) if rng.random() < 1 / 3 else {})}
        words, filters = rng.choices(self.popular, cum_weights=self.cum_weights)[0]
        return {"q": words, **filters}


def api_filters(rng: random.Random) -> dict[str, Any]:
    """random_filters as GET /api/search parameters (safe search is on by default)."""
    choice = rng.random()
    if choice < 0.4:
        return {"category": rng.choice(CATEGORIES)}
    if choice < 0.7:
        return {"orientation": rng.choice(["landscape", "portrait"]), "color": rng.choice(COLORS)}
    return {"license": "editorial", "min_width": SIZE_PRESET}


class ProcessMeter:
    """CPU seconds and memory of the app (devhost) and of Postgres over a run, from /proc (psutil).
    CPU counts exited children too (their time is added to the parent's when it reaps them).

    Memory (PSS) is read when the run starts and when it ends, never during it: reading it parses every
    Postgres backend's memory map (3 GB of shared buffers each), which cost 0.11-0.13 of the 2 cores when
    sampled every 5 s, CPU taken from what the run measures. The end is the peak for what grows in a run
    (shared buffers touched, the result cache)."""

    def __init__(self, app_pid: int, pg_data: Path) -> None:
        self.roots = {"app": psutil.Process(app_pid), "postgres": psutil.Process(_postmaster_pid(pg_data))}
        self.peak_mb = {name: 0.0 for name in self.roots}

    def _tree(self, name: str) -> list[psutil.Process]:
        root = self.roots[name]
        return [root, *root.children(recursive=True)]

    def cpu(self) -> dict[str, float]:
        out = {}
        for name, root in self.roots.items():
            total = root.cpu_times().children_user + root.cpu_times().children_system
            for proc in self._tree(name):
                try:
                    t = proc.cpu_times()
                    total += t.user + t.system
                except psutil.NoSuchProcess:
                    pass
            out[name] = total
        usage = resource.getrusage(resource.RUSAGE_SELF)
        out["load generator (this process)"] = usage.ru_utime + usage.ru_stime
        return out

    def _sample_memory(self) -> None:
        for name in self.roots:
            mb = 0.0
            for proc in self._tree(name):
                try:  # proportional set size: Postgres' shared buffers counted once, not per backend
                    mb += proc.memory_full_info().pss / 2**20
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
            self.peak_mb[name] = max(self.peak_mb[name], mb)

    def __enter__(self) -> ProcessMeter:
        self._sample_memory()
        self.started, self.wall = self.cpu(), time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        ended, wall = self.cpu(), time.perf_counter() - self.wall
        self.cpu_seconds = {name: round(ended[name] - self.started[name], 1) for name in ended}
        self.cores = {name: round(seconds / wall, 2) for name, seconds in self.cpu_seconds.items()}
        self._sample_memory()


def _postmaster_pid(pg_data: Path) -> int:
    return int((pg_data / "postmaster.pid").read_text().split()[0])


async def http_load(
    url: str,
    make_params: Callable[[random.Random], dict],
    clients: int,
    seconds: float,
    *,
    seed_base: int = 0,
    client: str = "aiohttp",
):
    """`clients` keep-alive connections asking in a loop for `seconds`. The load generator shares the 2 cores
    with what it measures, so it should cost little: aiohttp's client takes about a third of httpx's CPU per
    request (both measured on GET /api/keywords/suggest in the same run: `client` picks one)."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def with_httpx(n: int) -> None:
        nonlocal errors
        rng = random.Random(seed_base + n)
        async with httpx.AsyncClient(timeout=30) as http:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                try:
                    response = await http.get(url, params=make_params(rng))
                    errors += response.status_code != 200
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - started)

    async def with_aiohttp(n: int, http: aiohttp.ClientSession) -> None:
        nonlocal errors
        rng = random.Random(seed_base + n)
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                params = {k: str(v) for k, v in make_params(rng).items()}
                async with http.get(url, params=params) as response:
                    await response.read()
                    errors += response.status != 200
            except (aiohttp.ClientError, TimeoutError):
                errors += 1
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    if client == "httpx":
        await asyncio.gather(*(with_httpx(n) for n in range(clients)))
    else:
        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as http:
            await asyncio.gather(*(with_aiohttp(n, http) for n in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": round(len(latencies) / elapsed, 1),
        **figures(latencies),
    }


def http_step(
    var_dir: Path,
    corpus: Corpus,
    seconds: float,
    clients: int,
    cache_modes: list[str],
    warm_seconds: float = 0,
    baseline_checkout: Path | None = None,
    partition_modes: tuple[str, ...] = ("on",),
    statement_log: bool = False,
) -> dict[str, dict]:
    """The stock mix over devhost once per result-cache mode ("off": every search reaches the index, the
    uncached path one-offs always take; "on": the API's generation-keyed cache), each a fresh process; with
    `baseline_checkout`, that checkout's devhost first in each mode, on the same corpus and the same mix;
    with partition mode "off", this checkout's devhost with vector partitions turned off."""
    results: dict[str, dict] = {}
    runs = [(baseline_checkout.resolve(), "on", "baseline checkout: ")] if baseline_checkout else []
    runs += [(None, p, "vector partitions off: " if p == "off" else "") for p in partition_modes]
    for n, mode in enumerate(cache_modes):
        for root, partitions, label in runs:
            run = _http_run(
                var_dir,
                corpus,
                seconds,
                clients,
                cache=mode,
                baselines=n == 0 and not label,
                warm_seconds=warm_seconds,
                root=root,
                partitions=partitions,
                statement_log=statement_log,
            )
            results.update({label + case: figures for case, figures in run.items()})
    return results


def _http_run(
    var_dir: Path,
    corpus: Corpus,
    seconds: float,
    clients: int,
    *,
    cache: str,
    baselines: bool,
    warm_seconds: float,
    root: Path | None = None,
    partitions: str = "on",
    statement_log: bool = False,
) -> dict[str, dict]:
    from tests.e2e.devhost_process import devhost_environment, start_devhost, stop_devhost

    env = devhost_environment(var_dir)
    env["RATE_LIMIT_PER_IP_PER_MINUTE"] = "100000000"
    env["SEARCH_ANONYMOUS_PER_IP_PER_MINUTE"] = "100000000"  # the benchmark is one anonymous client
    env["SEARCH_CACHE_ENABLED"] = "true" if cache == "on" else "false"
    env["LOG_LEVEL"] = "WARNING"
    if partitions == "off":
        env["SEARCH_VECTOR_PARTITION_MIN_IMAGES"] = "0"
    if root is not None:
        # Its own code first and nothing else: PYTHONPATH additions (packages tried before requirements.txt
        # has them) are the candidate's.
        env["PYTHONPATH"] = str(root)
    options = {"root": root} if root is not None else {}
    proc = start_devhost(env, var_dir.parent / "devhost.log", **options)
    emit({"step": "http", "devhost": str(root or "this checkout"), "cache": cache})
    results = {}
    try:
        base = f"http://127.0.0.1:{env['DEVHOST_PORT']}/api"
        mix = QueryMix(corpus)

        def suggest_params(rng: random.Random) -> dict:
            return {"q": rng.choice(["ca", "do", "su", "mo", "co"])}

        # Warm: the worker loads the text encoder and the database's caches once (a server that has run).
        # Semantic per_page=1 requests: the same query vectors, but pages the result cache keys apart.
        warm = random.Random(99)
        for _ in range(50):
            httpx.get(f"{base}/search", params={**mix.params(warm), "mode": "semantic", "per_page": 1}, timeout=60)
        if baselines:
            for load_client in ("httpx", "aiohttp"):  # the load generator's own cost, same run
                name = f"baseline: GET /api/keywords/suggest ({load_client} load client)"
                own = time.process_time()
                results[name] = asyncio.run(
                    http_load(f"{base}/keywords/suggest", suggest_params, clients, min(seconds, 15), client=load_client)
                )
                results[name]["load_client_cpu_ms_per_request"] = round(
                    (time.process_time() - own) * 1000 / max(1, results[name]["requests"]), 2
                )
                emit({"step": "http", "case": "suggest baseline", "clients": clients, **results[name]})
            results["GET /api/search single client"] = asyncio.run(
                http_load(f"{base}/search", QueryMix(corpus, seed=7).params, 1, min(seconds, 15))
            )
            emit({"step": "http", "case": "search single client", **results["GET /api/search single client"]})
        if warm_seconds:
            # A server that has served for a while (Postgres' buffers, and the result cache when on): the mix
            # for `warm_seconds`, unmeasured.
            # The same mix (its one-offs stay one-off: it remembers them), other client seeds.
            warmed = asyncio.run(http_load(f"{base}/search", mix.params, clients, warm_seconds, seed_base=1000))
            mix.one_offs = 0
            emit({"step": "http", "case": "warm-up (not measured)", "cache": cache, **warmed})
        name = f"GET /api/search stock mix, {clients} clients, cache {cache}"
        log = StatementLog(var_dir / "pg" / "data") if statement_log else contextlib.nullcontext()
        with log, ProcessMeter(proc.pid, var_dir / "pg" / "data") as meter:
            results[name] = asyncio.run(http_load(f"{base}/search", mix.params, clients, seconds))
        if isinstance(log, StatementLog):
            results[name]["postgres_statements"] = log.summary
        results[name]["one_off_share"] = round(mix.one_offs / max(1, results[name]["requests"]), 3)
        results[name]["cpu_seconds"] = meter.cpu_seconds
        results[name]["cpu_cores"] = meter.cores
        # CPU per search: the figure that decides throughput on a fixed number of cores, whatever the load.
        requests = max(1, results[name]["requests"])
        results[name]["cpu_ms_per_search"] = {
            k: round(v * 1000 / requests, 1) for k, v in meter.cpu_seconds.items() if k in ("app", "postgres")
        }
        results[name]["peak_pss_mb"] = {k: round(v) for k, v in meter.peak_mb.items()}
        emit({"step": "http", "case": "search", "cache": cache, "clients": clients, **results[name]})
    finally:
        stop_devhost(proc)
    return results


async def prepare(var_dir: Path, shared_buffers_mb: int = 0) -> tuple[EmbeddedPostgres, Database]:
    server = EmbeddedPostgres(var_dir / "pg" / "data", shared_buffers_mb=shared_buffers_mb)
    dsn = await asyncio.to_thread(server.start)
    await migrate(dsn)
    return server, await connect_database(dsn, min_size=1, max_size=4)


async def main_async(args: argparse.Namespace) -> None:
    settings = Settings()
    var_dir = Path(args.var_dir) if args.var_dir else Path(tempfile.mkdtemp(prefix="bench-search-"))
    buffers = args.shared_buffers_mb
    if buffers is None:
        buffers = settings.EMBEDDED_POSTGRES_SHARED_BUFFERS_MB or max(128, 5 * args.docs // 1000)
    server, db = await prepare(var_dir, buffers)
    index = build_search_index(settings, db)  # the API's adapter with the API's settings
    assert isinstance(index, PostgresSearchIndex), "the benchmark measures the local backend"
    await index.ensure_ready()
    async with db.connection() as conn:
        # A served table is kept vacuumed by autovacuum (pages all-visible, which the facets index's index-only
        # scans need); a corpus reused straight after its build may not be yet.
        stale = await conn.fetchval(
            "select relpages > 0 and relallvisible < 0.9 * relpages from pg_class"
            " where oid = 'search.serving_index'::regclass"
        )
        if stale:
            await conn.execute("vacuum (analyze) search.serving_index", timeout=3600)
    summary: dict[str, Any] = {}
    steps = set(args.steps.split(","))
    try:
        if "relevance" in steps:
            summary["relevance"] = await relevance_mrr(index, settings)
            emit({"step": "relevance", **summary["relevance"]})

        corpus = Corpus()
        async with db.connection() as conn:
            have = await conn.fetchval("select count(*) from search.serving_index")
        if have and have != args.docs and not args.rebuild:
            # A kept corpus took many minutes to build: never replace it by accident.
            raise SystemExit(f"--var-dir holds {have} documents, not --docs {args.docs}: pass that, or --rebuild")
        if have != args.docs or args.rebuild:
            started = time.perf_counter()
            loaded = await index.rebuild(corpus.batches(args.docs, args.batch))
            elapsed = time.perf_counter() - started
            summary["load"] = {"documents": loaded, "seconds": round(elapsed, 1), "docs_per_s": round(loaded / elapsed)}
        else:
            summary["load"] = {"documents": have, "reused": True}
        async with db.connection() as conn:
            summary["load"]["table_mb"] = round(
                await conn.fetchval("select pg_total_relation_size('search.serving_index')") / 2**20
            )
        emit({"step": "load", **summary["load"]})

        if "maintain" in steps:
            # A kept corpus from before vector partitions gets them the way a live catalogue does (concurrently).
            started = time.perf_counter()
            changed = await index.maintain()
            summary["maintain"] = {**changed, "seconds": round(time.perf_counter() - started, 1)}
            emit({"step": "maintain", **summary["maintain"]})
        if "single" in steps:
            summary["single"] = await single_client(index, db, corpus, settings, args.queries)
        if "recall" in steps:
            sweep = [int(x) for x in args.ef_sweep.split(",") if x]
            summary["recall"] = await recall(index, db, corpus, settings, args.recall_queries, sweep)
    finally:
        await db.close()
    if "http" in steps and not args.skip_http:
        modes = args.cache.split(",")
        baseline = Path(args.baseline_checkout) if args.baseline_checkout else None
        summary["http"] = await asyncio.to_thread(
            http_step,
            var_dir,
            corpus,
            args.seconds,
            args.clients,
            modes,
            args.warm_seconds,
            baseline,
            tuple(args.partitions.split(",")),
            args.statement_log,
        )
    await asyncio.to_thread(server.stop)
    if not args.var_dir and not args.keep:
        shutil.rmtree(var_dir, ignore_errors=True)

    print(f"\nsearch benchmark, {args.docs} documents, {os.cpu_count()} CPUs, load average {os.getloadavg()}")
    if "relevance" in summary:
        print(f"relevance MRR (real photos, 300 distractors): {summary['relevance']}")
    print(f"load (full reindex path): {summary['load']}")
    if "maintain" in summary:
        print(f"maintain (vector partitions): {summary['maintain']}")
    if "single" in summary:
        print(f"\n{'single client, in-process':48} {'p50 ms':>8} {'p95 ms':>8}")
        for case, f in summary["single"].items():
            print(f"{case:48} {f['p50_ms']:>8} {f['p95_ms']:>8}")
    if "recall" in summary:
        print(f"\nrecall@10 vs exact search: {summary['recall']}")
    if "http" in summary:
        print(f"\n{'HTTP (devhost)':48} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>7}")
        for case, f in summary["http"].items():
            print(f"{case:48} {f['requests_per_s']:>8} {f['p50_ms']:>8} {f['p95_ms']:>8} {f['errors']:>7}")
            for extra in (
                "one_off_share",
                "cpu_seconds",
                "cpu_cores",
                "cpu_ms_per_search",
                "peak_pss_mb",
                "load_client_cpu_ms_per_request",
            ):
                if extra in f:
                    print(f"    {extra}: {f[extra]}")
            for section, figures in f.get("postgres_statements", {}).items():
                if isinstance(figures, dict):
                    print(f"    Postgres {section.replace('_', ' ')}:")
                    for k, v in figures.items():
                        print(f"        {k}: {v}")
                else:
                    print(f"    Postgres {section}: {figures}")
    print()
    for line in targets(summary, args):
        print(line)


def targets(summary: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """One line per target of issue 16 (Scale), at this corpus size."""
    lines = []

    def verdict(name: str, met: bool, figure: str) -> None:
        lines.append(f"target {name}: {'met' if met else 'NOT MET'} ({figure}, {args.docs} docs)")

    browse = summary.get("single", {}).get("browse+filters+facets")
    if browse:
        ok = browse["p50_ms"] <= 50 and browse["p95_ms"] <= 150
        figure = f"{browse['p50_ms']} / {browse['p95_ms']} ms"
        verdict("browse + filters + facets p50 <= 50 ms, p95 <= 150 ms", ok, figure)
    filtered = summary.get("recall", {}).get("filtered")
    if filtered is not None:
        verdict("filtered recall@10 >= 0.95", filtered >= 0.95, f"{filtered}")
    for case, f in summary.get("http", {}).items():
        if "stock mix" in case:
            ok = f["requests_per_s"] >= 167 and f["p95_ms"] <= 250 and f["errors"] == 0
            figure = f"{f['requests_per_s']} req/s, p95 {f['p95_ms']} ms, {f['errors']} errors"
            verdict(f">= 167 searches/s, p95 <= 250 ms, no errors ({case})", ok, figure)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000, help="corpus size (up to 1,000,000)")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=200, help="queries per single-client case")
    parser.add_argument("--recall-queries", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument(
        "--shared-buffers-mb",
        type=int,
        default=None,
        help="the embedded server's shared_buffers when this run starts it; default: "
        "EMBEDDED_POSTGRES_SHARED_BUFFERS_MB when set, else 5 MB per 1,000 documents: the serving table with every "
        "index and vector partition (4.2 GB at 1M: heap 1.6, whole HNSW graph 1.1, 16 partition graphs 1.3) and room "
        "around it; 0: Postgres' own 128 MB",
    )
    parser.add_argument(
        "--warm-seconds",
        type=float,
        default=0,
        help="run the mix this long, unmeasured, before each HTTP measurement (a server that has served a while: "
        "Postgres' buffers and, cache on, the result cache); 0: only the short warm-up of the encoder",
    )
    parser.add_argument(
        "--var-dir",
        help="keep the embedded database here and reuse its corpus when it has --docs documents "
        "(e.g. var/bench-search-1m: the 1M build costs minutes of load and HNSW build)",
    )
    parser.add_argument("--ef-sweep", default="", help="filtered ef_search values to measure recall at, e.g. 200,800")
    parser.add_argument(
        "--cache",
        default="off,on",
        help="result-cache modes of the HTTP step: off (the uncached path), on (SEARCH_CACHE_ENABLED), or both",
    )
    parser.add_argument(
        "--baseline-checkout",
        help="another checkout of this repository (e.g. `git worktree add /tmp/base main`, with a tools/node_modules "
        "link for Azurite) whose devhost serves the same corpus and mix before this one's in each HTTP run: a "
        "same-run A/B of the app's code",
    )
    parser.add_argument(
        "--partitions",
        default="on",
        help="HTTP step: vector partitions on, off, or off,on (this checkout's devhost once with them turned off)",
    )
    parser.add_argument(
        "--statement-log",
        action="store_true",
        help="HTTP step: log every Postgres statement over the measured window and print where the server's time "
        "went, by statement and by filter shape (bench/statement_log.py; costs the server a little)",
    )
    parser.add_argument("--rebuild", action="store_true", help="build the corpus even if --var-dir holds one")
    parser.add_argument(
        "--steps",
        default="relevance,single,recall,http",
        help="comma-separated: relevance,single,recall,http (the corpus is built or reused for any of them); "
        "split a 1M run so each locked run stays short",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if args.var_dir:  # absolute: a --baseline-checkout's devhost runs in that checkout
        args.var_dir = os.path.abspath(args.var_dir)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
