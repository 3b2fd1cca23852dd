"""The search bench's HTTP step: a stock site's query mix against devhost, with the CPU and memory of the app
and of Postgres over the measured window (bench/search.py --steps http)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import resource
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psutil

from bench._support import cpu_seconds
from bench.search_corpus import ADJECTIVES, CATEGORIES, COLORS, GENERIC, SIZE_PRESET, Corpus, emit, figures
from bench.statement_log import StatementLog

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
            reaped = root.cpu_times().children_user + root.cpu_times().children_system
            out[name] = reaped + cpu_seconds(self._tree(name))
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
