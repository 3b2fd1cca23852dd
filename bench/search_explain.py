"""Where an uncached search's Postgres time goes: EXPLAIN (ANALYZE, BUFFERS) of the adapter's own SQL per
query shape of bench/search.py's stock mix, on a kept corpus.

    flock /work/wt/bench.lock .venv/bin/python -m bench.search_explain --var-dir /work/wt/corpus-1m [--n 20]

For each shape it prints the mean execution and planning time of `--n` different queries (EXPLAIN ANALYZE,
so the server's own time, no client or network), the part each materialized CTE / sub-plan took (a
CTE's time includes what it reads; the page fetch and facet counting are sub-plans of the final select),
and the buffers touched. Variants of the same queries (no facets, one leg only) attribute the rest.
The server's settings that matter for short queries (jit, shared_buffers, work_mem) are printed first.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from bench.search import prepare
from bench.search_corpus import SIZE_OFF_PRESET, SIZE_PRESET, Corpus, random_filters
from bench.search_http import QueryMix
from shared.config import Settings
from shared.search.factory import build_search_index
from shared.search.port import SearchFilters, SearchQuery
from shared.search.postgres import PostgresSearchIndex

FILTERS = {
    "category": lambda rng: SearchFilters(category=rng.choice(["nature", "animals", "food"]), max_safety_score=0.5),
    "orientation+colour": lambda rng: SearchFilters(
        orientation=rng.choice(["landscape", "portrait"]),
        color=rng.choice(["red", "blue", "green"]),
        max_safety_score=0.5,
    ),
    "license+min_width": lambda rng: SearchFilters(usage="editorial", min_width=SIZE_PRESET, max_safety_score=0.5),
    "license+min_width off the presets": lambda rng: SearchFilters(
        usage="editorial", min_width=SIZE_OFF_PRESET, max_safety_score=0.5
    ),
}


def _walk(node: dict[str, Any], out: dict[str, list[float]], bufs: dict[str, list[int]]) -> None:
    name = node.get("Subplan Name")
    if name:
        t = node["Actual Total Time"] * node.get("Actual Loops", 1)
        out[name].append(t)
        bufs[name].append(node.get("Shared Hit Blocks", 0) + node.get("Shared Read Blocks", 0))
    for child in node.get("Plans", []):
        _walk(child, out, bufs)


async def explain(conn, settings: str, sql: str, values: list[Any]) -> dict[str, Any]:
    async with conn.transaction():
        if settings:
            for statement in settings.split(";"):
                await conn.execute(statement.replace("set ", "set local ", 1))
        plan = await conn.fetchval(f"explain (analyze, buffers, format json) {sql}", *values)
    return (json.loads(plan) if isinstance(plan, str) else plan)[0]


async def shape(conn, index: PostgresSearchIndex, name: str, queries: list[SearchQuery]) -> dict[str, Any]:
    execution, planning, jit, hits, reads = [], [], [], [], []
    parts: dict[str, list[float]] = defaultdict(list)
    bufs: dict[str, list[int]] = defaultdict(list)
    for q in queries:
        if index._one_statement_applies(q):
            partition = await index._partition(conn, q)  # a vector partition for one of its filters, if held
            statements = [(index._session_settings(q, partition=partition), *index._search_sql(q, partition=partition))]
        else:
            statements = index._browse_sql(q, counted=index.split.counted(q.filters))
            statements = [("", sql, values) for sql, values in statements]
        e = p = j = h = r = 0.0
        for settings, sql, values in statements:
            plan = await explain(conn, settings, sql, values)
            e += plan["Execution Time"]
            p += plan["Planning Time"]
            j += plan.get("JIT", {}).get("Timing", {}).get("Total", 0.0)
            h += plan["Plan"].get("Shared Hit Blocks", 0)
            r += plan["Plan"].get("Shared Read Blocks", 0)
            _walk(plan["Plan"], parts, bufs)
        execution.append(e)
        planning.append(p)
        jit.append(j)
        hits.append(h)
        reads.append(r)
    out = {
        "shape": name,
        "n": len(queries),
        "execution_ms": round(statistics.mean(execution), 2),
        "execution_p95_ms": round(sorted(execution)[int(len(execution) * 0.95) - 1], 2),
        "planning_ms": round(statistics.mean(planning), 2),
        "jit_ms": round(statistics.mean(jit), 2),
        "shared_hit": round(statistics.mean(hits)),
        "shared_read": round(statistics.mean(reads)),
        "parts_ms": {k: round(sum(v) / len(queries), 2) for k, v in parts.items()},
        "parts_buffers": {k: round(sum(v) / len(queries)) for k, v in bufs.items()},
    }
    print(json.dumps(out), flush=True)
    return out


async def main_async(args: argparse.Namespace) -> None:
    settings = Settings()
    server, db = await prepare(Path(args.var_dir), args.shared_buffers_mb)  # migrated, as bench/search.py starts it
    try:
        index = build_search_index(settings, db)
        assert isinstance(index, PostgresSearchIndex)
        await index.ensure_ready()
        async with db.connection() as conn:
            for name in ("server_version", "jit", "shared_buffers", "work_mem", "effective_cache_size"):
                print(f"{name} = {await conn.fetchval(f'show {name}')}")
            sizes = await conn.fetchrow(
                "select pg_relation_size('search.serving_index') heap,"
                " pg_total_relation_size('search.serving_index') - pg_relation_size('search.serving_index')"
                "   - pg_indexes_size('search.serving_index') toast,"
                " pg_indexes_size('search.serving_index') indexes,"
                " (select reltuples from pg_class where oid = 'search.serving_index'::regclass) n"
            )
            print({k: (round(v / 2**20) if k != "n" else v) for k, v in dict(sizes).items()}, "(MB)")
            for row in await conn.fetch(
                "select indexrelid::regclass::text as name, pg_relation_size(indexrelid) / 1048576 as mb"
                " from pg_index where indrelid = 'search.serving_index'::regclass"
            ):
                print(f"  index {row['name']}: {row['mb']} MB")
        corpus = Corpus()
        mix = QueryMix(corpus)
        rng = random.Random(args.seed)
        popular = [w for w, _ in mix.popular[: args.n * 4]]
        rng.shuffle(popular)
        words = popular[: args.n]
        one_offs = [mix.params(random.Random(1000 + i))["q"] for i in range(args.n * 3)]
        one_offs = [w for w in one_offs if w not in words][: args.n]
        vectors = {w: corpus.encoder.encode([w])[0].tolist() for w in {*words, *one_offs}}
        common = dict(
            max_vector_distance=settings.SEARCH_MAX_VECTOR_DISTANCE,
            candidates=settings.SEARCH_VECTOR_CANDIDATES,
            limit=24,
            filters=SearchFilters(max_safety_score=0.5),
        )
        shapes: dict[str, list[SearchQuery]] = {
            "hybrid+facets (popular)": [SearchQuery(text=w, vector=vectors[w], **common) for w in words],
            "hybrid+facets (one-off)": [SearchQuery(text=w, vector=vectors[w], **common) for w in one_offs],
            "hybrid, no facets": [SearchQuery(text=w, vector=vectors[w], facets=False, **common) for w in words],
            "keyword only+facets": [SearchQuery(text=w, mode="keyword", **common) for w in words],
            "keyword only, no facets": [SearchQuery(text=w, mode="keyword", facets=False, **common) for w in words],
            "semantic only+facets": [SearchQuery(vector=vectors[w], mode="semantic", **common) for w in words],
            "semantic only, no facets": [
                SearchQuery(vector=vectors[w], mode="semantic", facets=False, **common) for w in words
            ],
        }
        for fname, make in FILTERS.items():
            frng = random.Random(7)
            shapes[f"hybrid+facets, {fname}"] = [
                SearchQuery(text=w, vector=vectors[w], **{**common, "filters": make(frng)}) for w in words
            ]
            shapes[f"semantic only, no facets, {fname}"] = [
                SearchQuery(vector=vectors[w], mode="semantic", facets=False, **{**common, "filters": make(frng)})
                for w in words
            ]
        brng = random.Random(5)
        shapes["browse+facets, mixed filters"] = [
            SearchQuery(filters=random_filters(brng), sort="newest", limit=24) for _ in words
        ]
        for fname, make in FILTERS.items():
            frng = random.Random(9)
            shapes[f"browse+facets, {fname}"] = [
                SearchQuery(filters=make(frng), sort="newest", limit=24) for _ in words
            ]
        only = set(args.shapes.split(",")) if args.shapes else None
        if args.warm:
            # A server that has served for a while: other queries of the mix (not the measured ones) first.
            wrng = random.Random(77)
            started = time.perf_counter()
            for _ in range(args.warm):
                params = mix.params(wrng)
                w = params["q"]
                f = random_filters(wrng) if len(params) > 1 else SearchFilters(max_safety_score=0.5)
                await index.search(
                    SearchQuery(text=w, vector=corpus.encoder.encode([w])[0].tolist(), **{**common, "filters": f})
                )
            print(f"warmed with {args.warm} queries of the mix in {time.perf_counter() - started:.1f} s")
        async with db.connection() as conn:
            if args.plan_cache_mode:
                await conn.execute(f"set plan_cache_mode = {args.plan_cache_mode}")
            for name, queries in shapes.items():
                if only and not any(o in name for o in only):
                    continue
                await shape(conn, index, name, queries[:3])  # warm the pages these queries touch
                await shape(conn, index, name, queries)
    finally:
        await db.close()
        await asyncio.to_thread(server.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--var-dir", required=True)
    parser.add_argument("--n", type=int, default=20, help="queries per shape")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--shared-buffers-mb", type=int, default=Settings().EMBEDDED_POSTGRES_SHARED_BUFFERS_MB)
    parser.add_argument(
        "--plan-cache-mode", choices=["auto", "force_custom_plan", "force_generic_plan"], help="as the session's"
    )
    parser.add_argument("--warm", type=int, default=0, help="queries of the mix run first, unmeasured")
    parser.add_argument("--shapes", default="", help="only shapes whose name contains one of these (comma-separated)")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
