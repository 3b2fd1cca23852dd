"""Search benchmark: corpus generator, query latency per kind, HTTP throughput, ANN recall, relevance MRR.

    .venv/bin/python -m bench.search [--docs 100000] [--seconds 60] [--clients 16] [--skip-http]

What it does, each step printing JSON lines (then a table):
1. relevance: the real photos (tests/fixtures/photos.py) through the packaged models among 300
   distractors; mean reciprocal rank of the labelled queries (hybrid, the API's settings).
2. corpus: N synthetic documents: embeddings are mixtures of 1-3 real ImageNet label embeddings
   (MiniLM, as the fallback image model builds them) plus noise; titles, keywords, categories,
   colours, sizes, license types, safety scores, dates and popularity drawn to look like a stock
   catalogue. Loaded with the real full-reindex path (build aside + swap), so its rate is printed too.
3. single client, in-process: p50/p95 of the index query per kind (keyword / semantic / hybrid, with
   facets; hybrid with filters; browse with filters; sorts), next to the baselines measured in the same
   run: the bare keyword leg (GIN + ts_rank, no facets) and the exact (sequential) vector search. Query
   encoding (MiniLM, uncached) is timed on its own.
4. ANN recall@10 of the vector leg (HNSW, iterative scan, the API's candidate count) against exact
   search with the same filters.
5. HTTP: devhost serving function_app on this database; 16 concurrent keep-alive clients for
   `--seconds` on GET /api/search (hybrid + facets, a third with filters; popular queries repeat, so
   the query-embedding cache is warm as it would be in production), next to GET /api/keywords/suggest
   (same HTTP stack, trivial query) as the stack's floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import tempfile
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from shared.config import Settings
from shared.db import Database, connect_database
from shared.db.embedded import EmbeddedPostgres
from shared.db.migrate import migrate
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
        rng = self.rng
        docs = []
        for _ in range(size):
            picks = rng.choice(len(self.labels), size=int(rng.integers(1, 4)), replace=False)
            weights = rng.dirichlet(np.ones(len(picks)) * 2)
            vector = (weights[:, None] * self.vectors[picks]).sum(axis=0)
            vector += rng.standard_normal(vector.shape[0]).astype(np.float32) * 0.02
            vector /= np.linalg.norm(vector)
            main = self.labels[picks[0]]
            tags = [self.labels[p].tag.lower() for p in picks]
            parents = [self.labels[p].parent for p in picks if self.labels[p].parent]
            width, height = SIZES[int(rng.integers(len(SIZES)))]
            docs.append(
                IndexDocument(
                    image_id=uuid.uuid4(),
                    contributor_id=f"contributor-{int(rng.zipf(1.5)) % 5000}",
                    revision=2,
                    title=f"{ADJECTIVES[int(rng.integers(len(ADJECTIVES)))]} {main.tag}",
                    description=f"Stock photo: {', '.join(tags)}.",
                    keywords=list(dict.fromkeys([*tags, *parents, *rng.choice(GENERIC, 4, replace=False)])),
                    tags=tags,
                    category=self.category(main),
                    usage="editorial" if rng.random() < 0.15 else "commercial",
                    width=width,
                    height=height,
                    orientation="landscape" if width > height else "portrait" if height > width else "square",
                    colors=list(rng.choice(COLORS, int(rng.integers(1, 4)), replace=False)),
                    embedding=vector.tolist(),
                    safety_score=float(min(1.0, rng.beta(0.5, 25) * (20 if rng.random() < 0.02 else 1))),
                    thumbnail_url=f"https://cdn.example/t/{uuid.uuid4().hex}.jpg",
                    preview_url=f"https://cdn.example/w/{uuid.uuid4().hex}.jpg",
                    added_at=T_END - timedelta(seconds=float(rng.uniform(0, 3 * 365 * 86400))),
                    popularity=int(rng.zipf(2.0)) - 1,
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


def random_filters(rng: random.Random) -> SearchFilters:
    choice = rng.random()
    if choice < 0.4:
        return SearchFilters(category=rng.choice(CATEGORIES), max_safety_score=0.5)
    if choice < 0.7:
        return SearchFilters(orientation=rng.choice(["landscape", "portrait"]), color=rng.choice(COLORS))
    return SearchFilters(usage="editorial", min_width=5000, max_safety_score=0.5)


# --- measurements ------------------------------------------------------------------------


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
        "browse+filters+facets": run(lambda i: SearchQuery(filters=filters[i], sort="newest", **common)),
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


async def recall(index: PostgresSearchIndex, db: Database, corpus: Corpus, settings: Settings, n: int):
    words = corpus.query_words(n, seed=11)
    rng = random.Random(13)
    per_kind: dict[str, list[float]] = {"no filter": [], "filtered": []}
    for i, word in enumerate(words):
        vector = corpus.encoder.encode([word])[0].tolist()
        filters = SearchFilters() if i % 2 == 0 else random_filters(rng)
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
        exact_query, values = _exact_sql(filters, vector)
        async with db.transaction() as conn:
            await conn.execute("set local enable_indexscan = off")
            truth = [r["image_id"] for r in await conn.fetch(exact_query, *values)]
        if truth:
            got = {h.document.image_id for h in ann.hits}
            per_kind["no filter" if i % 2 == 0 else "filtered"].append(len(got & set(truth)) / len(truth))
    out = {kind: round(statistics.mean(v), 4) for kind, v in per_kind.items() if v}
    emit({"step": "recall_at_10", **out, "queries": n})
    return out


def _exact_sql(filters: SearchFilters, vector: list[float]) -> tuple[str, list[Any]]:
    from shared.search.postgres import _Params, _vector_literal, _where

    p = _Params()
    where = _where(filters, p)
    v = p.add(_vector_literal(vector))
    return (
        f"select s.image_id from search.serving_index s where s.embedding is not null and {where} "
        f"order by s.embedding <=> {v}::halfvec limit 10",
        p.values,
    )


async def http_load(url: str, make_params: Callable[[random.Random], dict], clients: int, seconds: float):
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal errors
        rng = random.Random(n)
        async with httpx.AsyncClient(timeout=30) as http:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await http.get(url, params=make_params(rng))
                latencies.append(time.perf_counter() - started)
                errors += response.status_code != 200

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": round(len(latencies) / elapsed, 1),
        **figures(latencies),
    }


def http_step(var_dir: Path, corpus: Corpus, seconds: float, clients: int) -> dict[str, dict]:
    from tests.e2e.devhost_process import devhost_environment, start_devhost, stop_devhost

    env = devhost_environment(var_dir)
    env["RATE_LIMIT_PER_IP_PER_MINUTE"] = "100000000"
    env["SEARCH_ANONYMOUS_PER_IP_PER_MINUTE"] = "100000000"  # the benchmark is one anonymous client
    env["LOG_LEVEL"] = "WARNING"
    proc = start_devhost(env, var_dir.parent / "devhost.log")
    words = corpus.query_words(300, seed=21)
    results = {}
    try:
        base = f"http://127.0.0.1:{env['DEVHOST_PORT']}/api"

        def search_params(rng: random.Random) -> dict:
            params: dict[str, Any] = {"q": rng.choice(words)}
            if rng.random() < 0.33:
                params["category"] = rng.choice(CATEGORIES)
            return params

        def suggest_params(rng: random.Random) -> dict:
            return {"q": rng.choice(["ca", "do", "su", "mo", "co"])}

        # Warm: the worker loads the text encoder and fills the query-vector cache once.
        for w in words:
            httpx.get(f"{base}/search", params={"q": w}, timeout=60)
        results["baseline: GET /api/keywords/suggest"] = asyncio.run(
            http_load(f"{base}/keywords/suggest", suggest_params, clients, min(seconds, 15))
        )
        emit(
            {
                "step": "http",
                "case": "suggest baseline",
                "clients": clients,
                **results["baseline: GET /api/keywords/suggest"],
            }
        )
        results["GET /api/search single client"] = asyncio.run(
            http_load(f"{base}/search", search_params, 1, min(seconds, 15))
        )
        emit({"step": "http", "case": "search single client", **results["GET /api/search single client"]})
        results[f"GET /api/search hybrid+facets, {clients} clients"] = asyncio.run(
            http_load(f"{base}/search", search_params, clients, seconds)
        )
        emit(
            {
                "step": "http",
                "case": "search",
                "clients": clients,
                **results[f"GET /api/search hybrid+facets, {clients} clients"],
            }
        )
    finally:
        stop_devhost(proc)
    return results


async def prepare(var_dir: Path) -> tuple[EmbeddedPostgres, Database]:
    server = EmbeddedPostgres(var_dir / "pg" / "data")
    dsn = await asyncio.to_thread(server.start)
    await migrate(dsn)
    return server, await connect_database(dsn, min_size=1, max_size=4)


async def main_async(args: argparse.Namespace) -> None:
    settings = Settings()
    var_dir = Path(args.var_dir) if args.var_dir else Path(tempfile.mkdtemp(prefix="bench-search-"))
    server, db = await prepare(var_dir)
    index = PostgresSearchIndex(
        db,
        ef_search=settings.SEARCH_HNSW_EF_SEARCH,
        max_scan_tuples=settings.SEARCH_HNSW_MAX_SCAN_TUPLES,
        build_memory_mb=settings.SEARCH_REINDEX_BUILD_MEMORY_MB,
    )
    await index.ensure_ready()
    summary: dict[str, Any] = {}
    try:
        summary["relevance"] = await relevance_mrr(index, settings)
        emit({"step": "relevance", **summary["relevance"]})

        corpus = Corpus()
        async with db.connection() as conn:
            have = await conn.fetchval("select count(*) from search.serving_index")
        if have != args.docs:
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

        summary["single"] = await single_client(index, db, corpus, settings, args.queries)
        summary["recall"] = await recall(index, db, corpus, settings, args.recall_queries)
    finally:
        await db.close()
    if not args.skip_http:
        summary["http"] = await asyncio.to_thread(http_step, var_dir, corpus, args.seconds, args.clients)
    await asyncio.to_thread(server.stop)
    if not args.var_dir and not args.keep:
        shutil.rmtree(var_dir, ignore_errors=True)

    print(f"\nsearch benchmark, {args.docs} documents, {os.cpu_count()} CPUs")
    print(f"relevance MRR (real photos, 300 distractors): {summary['relevance']}")
    print(f"load (full reindex path): {summary['load']}")
    print(f"\n{'single client, in-process':48} {'p50 ms':>8} {'p95 ms':>8}")
    for case, f in summary["single"].items():
        print(f"{case:48} {f['p50_ms']:>8} {f['p95_ms']:>8}")
    print(f"\nrecall@10 vs exact search: {summary['recall']}")
    if "http" in summary:
        print(f"\n{'HTTP (devhost)':48} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>7}")
        for case, f in summary["http"].items():
            print(f"{case:48} {f['requests_per_s']:>8} {f['p50_ms']:>8} {f['p95_ms']:>8} {f['errors']:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000, help="corpus size (up to 1,000,000)")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=200, help="queries per single-client case")
    parser.add_argument("--recall-queries", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--var-dir", help="reuse this directory's database (and a loaded corpus) across runs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
