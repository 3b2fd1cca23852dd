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
   query) as the stack's floor; with --statement-log, where the server's time went, by statement and by filter
   shape (bench/statement_log.py). The step itself lives in bench/search_http.py, the corpus in search_corpus.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.search_corpus import (
    CATEGORIES,
    SIZE_OFF_PRESET,
    Corpus,
    emit,
    figures,
    random_filters,
)
from bench.search_http import http_step
from shared.config import Settings
from shared.db import Database, connect_database
from shared.db.embedded import EmbeddedPostgres
from shared.db.migrate import migrate
from shared.search.factory import build_search_index
from shared.search.port import SearchFilters, SearchQuery
from shared.search.postgres import PostgresSearchIndex

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
