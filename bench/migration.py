"""The migration at scale: a large tree, two SIGKILLs at random points, resume, and the end state checked.

Builds (once, cached in var/bench) a tree of small real-photo derivatives (tests/fixtures/migration_crash.py:
mosaics of crops of the scikit-image / scikit-learn sample photos), 1% broken files, 1% byte-identical
copies, nested folders and a sidecar CSV. Starts devhost without the processing function (the pipeline
bench measures that; here its image.uploaded messages wait on the bus), runs the migration CLI against
it, SIGKILLs it twice when random numbers of files are uploaded, restarts it, and checks: every good
file in `originals` exactly once, every broken file and copy reported with its reason, one image id per
file across the restarts, image.uploaded sent once per accepted file, and no done file read again.

Prints files/s for the scan (the CLI's walk), the upload phase and end to end (first start to the last
report, restarts and ingestion's decisions included), next to baselines measured in the same run on the
same files: a bare read + SHA-256 of every file, and bare blob PUTs of a sample to the same Azurite with
the same concurrency. Also the CLI's peak RSS, sampled while it runs, at the start and end of the upload
(flat memory: the walk, the manifest look-ups and the report all stream).

    .venv/bin/python -m bench.migration [--files 100000] [--megapixels 4] [--min-megapixels 4] [--concurrency 8]

The platform refuses images under MIN_UPLOAD_MEGAPIXELS (4 MP by default). Files that pass it cost
far more to build, store and inspect; --megapixels 0.1 --min-megapixels 0.05 runs the same path on
small files (the per-file costs printed say what the real minimum would change).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from functions.ingestion.migration import walk_images
from shared.config import AZURITE_ACCOUNT, AZURITE_KEY, PROJECT_ROOT
from shared.db.embedded import EmbeddedPostgres
from shared.storage import ORIGINALS
from shared.storage.azure_blob import AzureBlobStore
from tests.e2e.devhost_process import devhost_environment, start_devhost, stop_devhost
from tests.fixtures.migration_crash import CrashingMigration, Tree, build_tree, retried_in_flight, verify

BASELINE_PREFIX = "bench-baseline/"  # in `originals`, which no trigger watches; not under the contributor's prefix


def _azurite(env: dict[str, str]) -> AzureBlobStore:
    return AzureBlobStore.from_connection_string(
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://127.0.0.1:{env['AZURITE_BLOB_PORT']}/{AZURITE_ACCOUNT};"
    )


def scan(tree: Tree) -> dict:
    started = time.perf_counter()
    count = sum(1 for _ in walk_images(tree.root))
    seconds = time.perf_counter() - started
    return {"files": count, "seconds": round(seconds, 2), "files_per_s": round(count / seconds)}


def bare_read(tree: Tree, threads: int) -> dict:
    """Read and hash every file (what an upload must do at least), on `threads` threads."""

    def one(path: str) -> int:
        with open(path, "rb") as handle:
            data = handle.read()
        hashlib.sha256(data).digest()
        return len(data)

    paths = [f.path for f in walk_images(tree.root)]
    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(one, paths, chunksize=64))
    seconds = time.perf_counter() - started
    return {"files_per_s": round(len(paths) / seconds), "mib_per_s": round(total / 2**20 / seconds, 1)}


async def bare_upload(env: dict[str, str], tree: Tree, sample: int, concurrency: int) -> dict:
    """PUT a sample of the files to Azurite: the blob I/O alone, no ticket, no manifest, no trigger."""
    store = _azurite(env)
    paths = [f.path for f, _ in zip(walk_images(tree.root), range(sample), strict=False)]
    gate = asyncio.Semaphore(concurrency)
    try:

        async def one(n: int, path: str) -> None:
            async with gate:
                data = await asyncio.to_thread(Path(path).read_bytes)
                await store.put(ORIGINALS, f"{BASELINE_PREFIX}{n:07d}.jpg", data, content_type="image/jpeg")

        started = time.perf_counter()
        await asyncio.gather(*(one(n, p) for n, p in enumerate(paths)))
        seconds = time.perf_counter() - started
    finally:
        await store.close()
    return {"files": len(paths), "files_per_s": round(len(paths) / seconds, 1)}


async def originals(env: dict[str, str]) -> set[str]:
    store = _azurite(env)
    try:
        return {blob.name async for blob in store.list(ORIGINALS)}
    finally:
        await store.close()


async def migrate_with_kills(args: argparse.Namespace, tree: Tree, work: Path) -> dict:
    env = devhost_environment(work / "var")
    env["MIN_UPLOAD_MEGAPIXELS"] = str(args.min_megapixels)
    env["LOG_LEVEL"] = "WARNING"
    proc = start_devhost(env, work / "devhost.log", "--without", "process_uploaded_image")
    try:
        dsn = EmbeddedPostgres(work / "var" / "pg" / "data").start()  # joins devhost's server
        baseline_upload = await bare_upload(env, tree, min(args.baseline_sample, len(tree.kinds)), args.concurrency)
        print(f"bare upload baseline: {baseline_upload}", file=sys.stderr, flush=True)
        n = len(tree.kinds)
        rng = random.Random(args.seed)
        kill_at = sorted(rng.randint(int(n * lo), int(n * hi)) for lo, hi in ((0.1, 0.45), (0.55, 0.9)))
        migration = CrashingMigration(env, dsn, tree, work / "report.jsonl", concurrency=args.concurrency)
        print(f"migrating {n} files; SIGKILL at {kill_at} uploaded", file=sys.stderr, flush=True)
        await migration.run(kill_at=kill_at)
        interim = {
            "runs_s": [round(r.ended - r.started, 1) for r in migration.runs],
            "upload_files_per_s": round(n / ((migration.all_uploaded_at or migration.runs[-1].ended)
                                             - migration.runs[0].started), 1),
            "cli_peak_rss_mib": round(max(r.peak_rss for r in migration.runs) / 2**20),
        }  # fmt: skip
        print(f"CLI runs done (before the checks): {json.dumps(interim)}", file=sys.stderr, flush=True)
        settled = await migration.settle(args.settle_seconds)  # ingestion may lag the uploads on a busy machine
        if settled is not None:
            print("ingestion lagged: waited for it and ran the CLI once more", file=sys.stderr, flush=True)
        problems = await verify(migration, await originals(env))
    finally:
        stop_devhost(proc)
    first, last = migration.runs[0], migration.runs[-1]
    upload_s = (migration.all_uploaded_at or last.ended) - first.started
    samples = [s for run in migration.runs for s in run.rss_samples if s[1]]
    early = [rss for up, rss in samples if up <= n * 0.15]
    late = [rss for up, rss in samples if up >= n * 0.85]
    outcomes: dict[str, int] = {}
    for line in (work / "report.jsonl").read_text().splitlines():
        entry = json.loads(line)
        key = entry["outcome"] + (f":{entry['reason_code']}" if entry["outcome"] == "quarantined" else "")
        outcomes[key] = outcomes.get(key, 0) + 1
    return {
        "files": n,
        "kills_at_uploaded": kill_at,
        "runs": [
            {"seconds": round(r.ended - r.started, 1), "killed": r.killed, "exit": r.returncode} for r in migration.runs
        ],
        "settled_with_another_run": settled is not None,
        "upload_files_per_s": round(n / upload_s, 1),
        "end_to_end_files_per_s": round(n / (last.ended - first.started), 1),
        "bare_upload": baseline_upload,
        "cli_peak_rss_mib": round(max(r.peak_rss for r in migration.runs) / 2**20),
        "cli_rss_mib_first_15pct": round(statistics.median(early) / 2**20) if early else None,
        "cli_rss_mib_last_15pct": round(statistics.median(late) / 2**20) if late else None,
        "uploaded_again_after_kill": retried_in_flight(migration),
        "outcomes": dict(sorted(outcomes.items())),
        "problems": problems[:50],
        "problem_count": len(problems),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--megapixels", type=float, default=4.0, help="size of each good file")
    parser.add_argument("--min-megapixels", type=float, default=4.0, help="devhost's MIN_UPLOAD_MEGAPIXELS")
    parser.add_argument("--concurrency", type=int, default=8, help="the CLI's uploads in flight")
    parser.add_argument("--baseline-sample", type=int, default=1000, help="files PUT bare for the baseline")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument(
        "--settle-seconds", type=float, default=3600, help="how long to wait for ingestion after the CLI gave up"
    )
    args = parser.parse_args()
    if args.megapixels < args.min_megapixels:
        parser.error("--megapixels below --min-megapixels: every good file would be refused")

    cache = PROJECT_ROOT / "var" / "bench" / f"migration-{args.files}-{args.megapixels:g}mp"
    load_before = os.getloadavg()
    started = time.perf_counter()
    print(f"building {args.files} files of {args.megapixels:g} MP in {cache} ...", file=sys.stderr, flush=True)
    tree = build_tree(cache, args.files, megapixels=args.megapixels)
    build_s = time.perf_counter() - started
    sizes = [os.path.getsize(f.path) for f in walk_images(tree.root)]
    result = {
        "machine": {"cpus": os.cpu_count(), "load_average_1m_before": round(load_before[0], 2)},
        "tree": {
            "files": len(tree.kinds),
            "megapixels": args.megapixels,
            "mean_kib": round(statistics.fmean(sizes) / 1024),
            "total_mib": round(sum(sizes) / 2**20),
            "build_seconds_or_cached": round(build_s, 1),
        },
        "scan": scan(tree),
        "bare_read_sha256": bare_read(tree, os.cpu_count() or 1),
    }
    print(json.dumps(result), flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-migration-") as tmp:
        result["migration"] = asyncio.run(migrate_with_kills(args, tree, Path(tmp)))
    result["machine"]["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result["migration"]), flush=True)

    m = result["migration"]
    print(f"\n{'stage':<28}{'files/s':>10}{'baseline files/s':>18}")
    print(f"{'scan (walk)':<28}{result['scan']['files_per_s']:>10}{'-':>18}")
    print(f"{'upload (CLI, 2 kills)':<28}{m['upload_files_per_s']:>10}{m['bare_upload']['files_per_s']:>18}")
    print(f"{'end to end (to the report)':<28}{m['end_to_end_files_per_s']:>10}{'-':>18}")
    print(f"{'bare read + sha256':<28}{result['bare_read_sha256']['files_per_s']:>10}")
    print(f"CLI peak RSS {m['cli_peak_rss_mib']} MiB; median RSS in the first 15% of the upload "
          f"{m['cli_rss_mib_first_15pct']} MiB, in the last 15% {m['cli_rss_mib_last_15pct']} MiB")  # fmt: skip
    print(f"outcomes: {m['outcomes']}; files uploaded again after a kill (in flight): {m['uploaded_again_after_kill']}")
    load = result["machine"]
    print(f"load average (1 min) before {load['load_average_1m_before']}, after {load['load_average_1m_after']} "
          f"on {os.cpu_count()} CPUs (a shared machine)")  # fmt: skip
    if m["problems"]:
        shown = [p if len(p) < 300 else p[:300] + " ..." for p in m["problems"][:12]]
        print(f"CHECKS FAILED ({len(m['problems'])} problems):\n- " + "\n- ".join(shown))
        sys.exit(1)
    print("all checks passed: every good file in originals once, every other file reported with its reason, "
          "nothing sent twice, no done file read again")  # fmt: skip


if __name__ == "__main__":
    main()
