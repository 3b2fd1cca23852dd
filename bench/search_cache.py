"""Search result cache benchmark: GET /api/search over devhost with a stock site's query mix while a
background stream of approvals lands, the cache's two invalidations side by side in one run (every page
on every change, SEARCH_CACHE_INVALIDATION=generation, against only the pages a changed image could be
in, =match), and proof that changes made during the load show in the next search.

    flock /work/wt/bench.lock .venv/bin/python -m bench.search_cache [--docs 100000] [--seconds 45] [--clients 16]
        [--rates 5,50] [--uncached]

1. corpus: bench/search.py's synthetic catalogue (same generator, loaded by the full-reindex path), or the
   one already in --var-dir.
2. the mix: a Zipf distribution (s = 1.1) over 5,000 distinct queries plus 30% one-off queries; a third of
   each carry filters (category, orientation + colour, or editorial licence); hybrid with facets, as the
   portal asks.
3. per approval rate (`--rates`, approvals/s through search_sync's own handler, images drawn like the
   corpus's, during prefill and measurement): devhost with whole-cache invalidation, then with match-based
   (each a fresh process; optionally first with the cache off, `--uncached`). The query-embedding cache is
   warmed the same way for each with semantic per_page=1 requests, which the result cache keys apart; then
   `--prefill-seconds` of the mix unmeasured (warm buffers, the result cache in its steady state), then
   `--clients` keep-alive clients for `--seconds`, measured.
4. during each cached load (the approval stream paused for each proof, so that only the proof's change
   lands between its two searches): a takedown of the first result of the most popular query, a price
   change and a new approval matching it, each checked in the request that follows it (and the time from
   the change's commit to that answer); and an approval of an unrelated image (other words, an embedding
   opposite the result's, another category), after which the next search must be a cache hit under
   match-based invalidation.
Prints hit rate, req/s, p50/p95, errors and the approvals that landed per run, the proofs, and the load.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.search_corpus import CATEGORIES, COLORS, GENERIC, Corpus, emit, figures
from functions.search_sync.handlers import handle_message
from shared.bus.events import (
    ColorShare,
    ImageApproved,
    ImageListing,
    ImageRemoved,
    Price,
    PricingUpdated,
    Renditions,
    Tag,
)
from shared.bus.port import ReceivedMessage
from shared.db import Database, connect_database
from shared.db.embedded import EmbeddedPostgres
from shared.db.migrate import migrate
from shared.search.generation import GenerationReader, read_generation
from shared.search.postgres import PostgresSearchIndex

DISTINCT, ZIPF_S, ONE_OFF_SHARE, FILTERED_SHARE = 5000, 1.1, 0.30, 1 / 3


def _filters(rng: random.Random) -> dict[str, str]:
    roll = rng.random()
    if roll < 0.4:
        return {"category": rng.choice(CATEGORIES)}
    if roll < 0.7:
        return {"orientation": rng.choice(["landscape", "portrait"]), "color": rng.choice(COLORS)}
    return {"license": "editorial"}


class QueryMix:
    """Zipf over DISTINCT fixed queries (rank 1 most asked) plus one-offs that never repeat."""

    def __init__(self, corpus: Corpus, seed: int = 11) -> None:
        rng = random.Random(seed)
        tags = [label.tag.lower() for label in corpus.labels]
        texts: dict[str, None] = {}
        while len(texts) < DISTINCT:
            tag = rng.choice(tags)
            texts[tag if rng.random() < 0.4 else f"{tag} {rng.choice(GENERIC)}"] = None
        self.queries = [{"q": text, **(_filters(rng) if rng.random() < FILTERED_SHARE else {})} for text in texts]
        weights = 1 / np.arange(1, DISTINCT + 1) ** ZIPF_S
        self.cumulative = np.cumsum(weights / weights.sum())
        self.tags = tags

    def draw(self, rng: random.Random) -> dict[str, str]:
        if rng.random() < ONE_OFF_SHARE:
            words = f"{rng.choice(self.tags)} {rng.choice(self.tags)} {rng.choice(GENERIC)}"
            return {"q": words, **(_filters(rng) if rng.random() < FILTERED_SHARE else {})}
        return self.queries[int(np.searchsorted(self.cumulative, rng.random()))]


async def load(
    base: str, mix: QueryMix, clients: int, seconds: float, prove=None, seed: int = 1000, stream=None
) -> dict[str, Any]:
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    sizes: list[int] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client(n: int) -> None:
        nonlocal errors
        rng = random.Random(seed + n)  # the same request sequence per client in both runs
        async with httpx.AsyncClient(timeout=30) as http:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await http.get(f"{base}/search", params=mix.draw(rng))
                latencies.append(time.perf_counter() - started)
                errors += response.status_code != 200
                outcomes[response.headers.get("x-search-cache", "none")] += 1
                sizes.append(len(response.content))

    started = time.perf_counter()
    approvals_before = stream.applied if stream else 0
    proofs = await asyncio.gather(*(client(n) for n in range(clients)), *([prove()] if prove else []))
    elapsed = time.perf_counter() - started
    approvals = (stream.applied - approvals_before) if stream else 0
    served = sum(outcomes.values())
    return {
        "requests": len(latencies),
        "errors": errors,
        "requests_per_s": round(len(latencies) / elapsed, 1),
        **figures(latencies),
        "hit_rate": round((outcomes["hit"] + outcomes["coalesced"]) / served, 3) if served else 0.0,
        "outcomes": dict(outcomes),
        "mean_page_kb": round(sum(sizes) / max(1, len(sizes)) / 1024, 1),  # what one cache entry takes
        "approvals_per_s": round(approvals / elapsed, 1),
        **({"proofs": proofs[-1]} if prove else {}),
    }


def _message(event) -> ReceivedMessage:
    now = datetime.now(UTC)
    return ReceivedMessage(
        message_id=uuid.uuid4().hex,
        topic=event.topic,
        subscription="search-sync",
        subject=event.subject,
        body=event.model_dump(mode="json"),
        correlation_id="bench",
        delivery_count=1,
        enqueued_time=now,
        locked_until=now,
        lock_token="",
    )


def _listing(doc, **changes) -> ImageListing:
    """An upload's listing with a corpus document's content (what its approval carries)."""
    values = {
        "title": doc.title,
        "description": doc.description,
        "keywords": doc.keywords,
        "category": doc.category,
        "usage": doc.usage,
        "width": doc.width,
        "height": doc.height,
        "orientation": doc.orientation,
        "colors": [ColorShare(name=c, hex="#808080", share=0.3) for c in doc.colors],
        "tags": [Tag(label=t, confidence=0.9) for t in doc.tags],
        "embedding": doc.embedding,
        "safety_score": doc.safety_score,
        "renditions": Renditions(thumbnail_small_url="s", thumbnail_url="t", preview_url="p"),
        "uploaded_at": datetime.now(UTC),
    }
    return ImageListing(**{**values, **changes})


class ApprovalStream:
    """New images approved at `rate` per second through search_sync's own handler, drawn like the corpus's
    (the generator's next documents), a few at once as concurrent moderators would; `pause` holds it."""

    def __init__(self, db: Database, index: PostgresSearchIndex, corpus: Corpus, rate: float) -> None:
        self.db, self.index, self.corpus, self.rate = db, index, corpus, rate
        self.applied = 0
        self.pending: set[asyncio.Task] = set()
        self.open = asyncio.Event()
        self.open.set()

    async def run(self) -> None:
        next_at = time.perf_counter()
        try:
            while True:
                for doc in await asyncio.to_thread(self.corpus._batch, 100):
                    next_at = max(next_at + 1 / self.rate, time.perf_counter() - 1)  # no burst after a pause
                    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                    await self.open.wait()  # nothing awaited between this and the task's start: pause holds
                    task = asyncio.create_task(self._approve(doc))
                    self.pending.add(task)
                    task.add_done_callback(self.pending.discard)
                    if len(self.pending) >= 8:
                        await asyncio.wait(self.pending, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in self.pending:
                task.cancel()

    async def _approve(self, doc) -> None:
        event = ImageApproved(
            image_id=uuid.uuid4(),
            contributor_id=doc.contributor_id,
            revision=2,
            approved_at=datetime.now(UTC),
            original_blob="originals/bench.jpg",
            listing=_listing(doc),
        )
        assert await handle_message(self.db, self.index, _message(event))
        self.applied += 1

    async def pause(self) -> None:
        self.open.clear()
        if self.pending:
            await asyncio.wait(self.pending)

    def resume(self) -> None:
        self.open.set()


class Prover:
    """Changes the catalogue through search_sync's handler mid-load and checks the very next search."""

    def __init__(self, db: Database, index: PostgresSearchIndex, mix: QueryMix, seconds: float) -> None:
        self.base, self.db, self.index, self.seconds = "", db, index, seconds
        self.top = next(q for q in mix.queries if set(q) == {"q"})  # the most asked query without filters
        self.price = int(time.time())  # pricing revisions only go up, also across runs on one database
        self.match = True  # the invalidation under test: match-based keeps the page across an unrelated change
        self.stream: ApprovalStream | None = None

    async def set_price(self) -> None:
        self.price += 1
        await self._apply(
            PricingUpdated(revision=self.price, prices={"standard": Price(amount_minor=1500, currency="USD")})
        )

    async def __call__(self) -> dict[str, Any]:
        results = {}
        steps = (
            ("takedown", self.takedown),
            ("price", self.price_change),
            ("approval", self.approval),
            ("unrelated approval", self.unrelated),
        )
        async with httpx.AsyncClient(timeout=30) as http:
            for step, check in steps:
                await asyncio.sleep(self.seconds / (len(steps) + 1))
                if self.stream is not None:
                    await self.stream.pause()  # only the proof's own change between its searches
                try:
                    results[step] = await check(http)
                finally:
                    if self.stream is not None:
                        self.stream.resume()
        return results

    async def unrelated(self, http: httpx.AsyncClient) -> dict[str, Any]:
        first, _ = await self._search(http)
        before, outcome_before = await self._search(http)
        doc = await self.index.get(uuid.UUID(first["items"][0]["id"]))
        # No word of the query, the embedding opposite the first result's (far beyond the floor), another
        # category: it cannot be in this query's matching set.
        listing = _listing(
            doc,
            title="Zqxv wobbly plinth",
            description="",
            keywords=["zqxv"],
            tags=[],
            category=next(c for c in CATEGORIES if c != doc.category),
            embedding=[-x for x in doc.embedding],
        )
        new_id = uuid.uuid4()
        committed = await self._apply(
            ImageApproved(
                image_id=new_id,
                contributor_id="bench",
                revision=2,
                approved_at=datetime.now(UTC),
                original_blob="originals/bench.jpg",
                listing=listing,
            )
        )
        after, outcome = await self._search(http)
        return {
            "ok": outcome == ("hit" if self.match else "miss") and after == before,
            "before": outcome_before,
            "next_search": outcome,
            "shown_after_ms": round((time.perf_counter() - committed) * 1000, 1),
        }

    async def _search(self, http: httpx.AsyncClient, **extra) -> tuple[dict, str]:
        response = await http.get(f"{self.base}/search", params={**self.top, **extra})
        return response.json(), response.headers.get("x-search-cache", "none")

    async def _apply(self, event) -> float:
        assert await handle_message(self.db, self.index, _message(event))
        return time.perf_counter()  # committed

    async def takedown(self, http: httpx.AsyncClient) -> dict[str, Any]:
        await self._search(http)
        before, outcome_before = await self._search(http)
        victim = before["items"][0]
        committed = await self._apply(
            ImageRemoved(image_id=victim["id"], contributor_id=victim["contributor_id"], revision=10, reason="bench")
        )
        after, outcome = await self._search(http)
        gone = victim["id"] not in {item["id"] for item in after["items"]}
        # Not total - 1: the vector leg then takes its next nearest neighbour within the floor instead.
        return {
            "ok": gone,
            "total": f"{before['total']} -> {after['total']}",
            "before": outcome_before,
            "next_search": outcome,
            "shown_after_ms": round((time.perf_counter() - committed) * 1000, 1),
        }

    async def price_change(self, http: httpx.AsyncClient) -> dict[str, Any]:
        await self._search(http)
        _, outcome_before = await self._search(http)
        self.price += 1
        amount = 1500 + self.price % 1000
        committed = await self._apply(
            PricingUpdated(revision=self.price, prices={"standard": Price(amount_minor=amount, currency="USD")})
        )
        after, outcome = await self._search(http)
        prices = {item["price"]["amount_minor"] for item in after["items"]}
        return {
            "ok": prices == {amount},
            "before": outcome_before,
            "next_search": outcome,
            "shown_after_ms": round((time.perf_counter() - committed) * 1000, 1),
        }

    async def approval(self, http: httpx.AsyncClient) -> dict[str, Any]:
        await self._search(http, sort="newest")
        _, outcome_before = await self._search(http, sort="newest")
        doc = await self.index.get(uuid.UUID((await self._search(http))[0]["items"][0]["id"]))
        new_id = uuid.uuid4()
        listing = ImageListing(
            title=f"New {self.top['q']}",
            keywords=[self.top["q"]],
            category=doc.category,
            usage=doc.usage,
            width=doc.width,
            height=doc.height,
            orientation=doc.orientation,
            colors=[],
            embedding=doc.embedding,
            safety_score=0.0,
            renditions=Renditions(thumbnail_small_url="s", thumbnail_url="t", preview_url="p"),
            uploaded_at=datetime.now(UTC),
        )
        committed = await self._apply(
            ImageApproved(
                image_id=new_id,
                contributor_id="bench",
                revision=2,
                approved_at=datetime.now(UTC),
                original_blob="originals/bench.jpg",
                listing=listing,
            )
        )
        after, outcome = await self._search(http, sort="newest")
        self.approved = new_id
        return {
            "ok": bool(after["items"]) and after["items"][0]["id"] == str(new_id),
            "before": outcome_before,
            "next_search": outcome,
            "shown_after_ms": round((time.perf_counter() - committed) * 1000, 1),
        }


async def _devhost_run(
    var_dir: Path, mode: str, mix: QueryMix, args, prover: Prover | None, stream: ApprovalStream | None
) -> dict[str, Any]:
    """mode: off (no cache), generation (every page goes on every change) or match."""
    from tests.e2e.devhost_process import devhost_environment, start_devhost, stop_devhost

    env = devhost_environment(var_dir)
    env["RATE_LIMIT_PER_IP_PER_MINUTE"] = "100000000"
    env["SEARCH_ANONYMOUS_PER_IP_PER_MINUTE"] = "100000000"  # the benchmark is one anonymous client
    env["LOG_LEVEL"] = "WARNING"
    env["SEARCH_CACHE_ENABLED"] = "false" if mode == "off" else "true"
    if mode != "off":
        env["SEARCH_CACHE_INVALIDATION"] = mode
    proc = await asyncio.to_thread(start_devhost, env, var_dir.parent / f"devhost-cache-{mode}.log")
    base = f"http://127.0.0.1:{env['DEVHOST_PORT']}/api"
    streaming = None
    try:
        async with httpx.AsyncClient(timeout=60) as http:
            # Query vectors for the head of the mix, in a form the result cache keys apart from the load's.
            for query in mix.queries[: args.warm]:
                await http.get(f"{base}/search", params={**query, "mode": "semantic", "per_page": 1, "facets": False})
        if stream is not None:
            streaming = asyncio.create_task(stream.run())
        # Serve the mix unmeasured first (other client seeds): an instance that has been up a while, with
        # Postgres's buffers warm in both runs and, in the cached run, the cache in its steady state.
        await load(base, mix, args.clients, args.prefill_seconds, seed=5000)
        if prover is not None:
            prover.base, prover.match, prover.stream = base, mode == "match", stream
        return await load(base, mix, args.clients, args.seconds, prover, stream=stream)
    finally:
        if streaming is not None:
            streaming.cancel()
            await asyncio.gather(streaming, return_exceptions=True)
        await asyncio.to_thread(stop_devhost, proc)


async def generation_reads(dsn: str, clients: int, seconds: float) -> dict[str, dict[str, Any]]:
    """What reading the generation per request costs: one query each, or one shared read at a time."""
    db = await connect_database(dsn, min_size=10, max_size=10)  # the app's default pool
    reader = GenerationReader(db)

    async def per_request() -> None:
        async with db.connection() as conn:
            await read_generation(conn)

    results = {}
    try:
        for name, call in (("one query per request", per_request), ("shared read", reader.current)):
            latencies: list[float] = []
            deadline = time.perf_counter() + seconds

            async def client(call=call, latencies=latencies, deadline=deadline) -> None:
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    await call()
                    latencies.append(time.perf_counter() - started)

            await asyncio.gather(*(client() for _ in range(clients)))
            queries = reader.reads if name == "shared read" else len(latencies)
            results[name] = {"calls_per_s": round(len(latencies) / seconds), "queries": queries, **figures(latencies)}
    finally:
        await db.close()
    return results


async def _corpus(var_dir: Path, docs: int) -> tuple[Any, str, Database, PostgresSearchIndex, Corpus, int]:
    server = EmbeddedPostgres(var_dir / "pg" / "data")
    dsn = await asyncio.to_thread(server.start)
    await migrate(dsn)
    db = await connect_database(dsn, min_size=1, max_size=12)  # the approval stream writes a few at once
    index = PostgresSearchIndex(db)
    await index.ensure_ready()
    corpus = Corpus()
    async with db.connection() as conn:
        have = await conn.fetchval("select count(*) from search.serving_index")
    if abs(have - docs) > 100:  # a reused corpus has lost a few documents to the takedown proofs
        await index.rebuild(corpus.batches(docs, 1000))
        have = docs
    async with db.connection() as conn:
        # All-visible pages, as autovacuum keeps a served table (a fresh load is slow until vacuumed).
        await conn.execute("vacuum (analyze) search.serving_index", timeout=600)
    return server, dsn, db, index, corpus, have


async def main_async(args: argparse.Namespace) -> None:
    var_dir = Path(args.var_dir) if args.var_dir else Path(tempfile.mkdtemp(prefix="bench-search-cache-"))
    server, dsn, db, index, corpus, docs = await _corpus(var_dir, args.docs)
    mix = QueryMix(corpus)
    emit({"step": "corpus", "documents": docs, "load": os.getloadavg()})
    rates = [float(r) for r in args.rates.split(",")]
    modes = (["off"] if args.uncached else []) + ["generation", "match"]
    results: dict[tuple[float, str], dict[str, Any]] = {}
    reads = {}
    try:
        if args.generation_reads:
            reads = await generation_reads(dsn, args.clients, 5.0)
            emit({"step": "generation reads", **reads, "load": os.getloadavg()})
        prover = Prover(db, index, mix, args.seconds)
        await prover.set_price()
        for rate in rates:
            stream = ApprovalStream(db, index, corpus, rate) if rate > 0 else None
            for mode in modes:
                found = await _devhost_run(var_dir, mode, mix, args, prover if mode != "off" else None, stream)
                results[(rate, mode)] = found
                emit({"step": "http", "approvals_per_s": rate, "invalidation": mode, **found, "load": os.getloadavg()})
    finally:
        await db.close()
        await asyncio.to_thread(server.stop)

    print(
        f"\nsearch result cache, {docs} documents, {args.clients} clients x {args.seconds:.0f} s, {os.cpu_count()} CPUs"
    )
    print(f"mix: Zipf s={ZIPF_S} over {DISTINCT} queries + {ONE_OFF_SHARE:.0%} one-offs, a third filtered")
    print(
        f"\n{'approvals/s (landed)':22} {'invalidation':13} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7}"
        f" {'hit rate':>9} {'errors':>7}"
    )
    for (rate, mode), f in results.items():
        print(
            f"{rate:>6g} ({f['approvals_per_s']:>5})       {mode:13} {f['requests_per_s']:>7} {f['p50_ms']:>7}"
            f" {f['p95_ms']:>7} {f['hit_rate']:>9} {f['errors']:>7}"
        )
    for (rate, mode), f in results.items():
        print(f"\n{rate:g}/s, {mode}: outcomes {f['outcomes']}")
        for step, proof in f.get("proofs", {}).items():
            print(f"  {step:20} next search: {proof}")
    if reads:
        print(f"\n{'generation read, in-process':28} {'calls/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'queries':>9}")
        for case, f in reads.items():
            print(f"{case:28} {f['calls_per_s']:>8} {f['p50_ms']:>8} {f['p95_ms']:>8} {f['queries']:>9}")
    print(f"load average: {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=45)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--prefill-seconds", type=float, default=30, help="unmeasured load before each run")
    parser.add_argument("--warm", type=int, default=500, help="head queries whose vectors are warmed first")
    parser.add_argument("--var-dir", help="reuse this directory's database (and its corpus) across runs")
    parser.add_argument("--rates", default="5,50", help="approvals per second during the load, one run pair each")
    parser.add_argument("--uncached", action="store_true", help="also run each rate with the cache off")
    parser.add_argument("--generation-reads", action="store_true", help="also time the shared generation read")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
