"""Azurite's CPU per migrated file as blobs accumulate: the stock launcher against ours, in one run.

Each file takes the path a migration gives it: a PUT into `incoming` (the CLI), then, from a listing of the
backlog as the blob trigger does it, a GET, a PUT into `originals` and a DELETE from `incoming` (ingestion).
Both Azurites run side by side with persisted data; steps alternate between them so that the shared
machine's load falls on both alike. The stock launcher (node_modules/.bin/azurite-blob) is the baseline;
ours (tools/azurite-blob.cjs) differs only in how its metadata store orders a lookup's terms.

    .venv/bin/python -m bench.azurite_scaling [--files 20000] [--step 2000] [--concurrency 8]

Prints, per step, files/s and Azurite's CPU ms per file for each, then the growth of the CPU per file per
1,000 blobs stored (a flat line is what a 5M-file migration needs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import psutil

from shared.storage.azure_blob import AzureBlobStore
from shared.storage.azurite import AZURITE_BLOB_BIN, AzuriteServer

PAYLOAD = os.urandom(21 * 1024)  # the size of bench.migration's 0.1 MP files
PAGE = 200  # files moved per listing, as a blob trigger takes a page of new blobs at a time


class Subject:
    def __init__(self, label: str, server: AzuriteServer) -> None:
        self.label = label
        self.server = server
        self.store = AzureBlobStore.from_connection_string(server.connection_string)
        self.process = psutil.Process(server.pid)
        self.rows: list[tuple[int, float, float]] = []  # (blobs stored, files/s, cpu ms per file)

    def cpu_seconds(self) -> float:
        total = 0.0
        for proc in [self.process, *self.process.children(recursive=True)]:
            times = proc.cpu_times()
            total += times.user + times.system
        return total

    async def step(self, start: int, count: int, concurrency: int) -> None:
        gate = asyncio.Semaphore(concurrency)

        async def upload(i: int) -> None:
            async with gate:
                await self.store.put("incoming", f"c/{i:08d}.jpg", PAYLOAD, content_type="image/jpeg")

        async def ingest(name: str) -> None:
            async with gate:
                await self.store.get("incoming", name)
                await self.store.put("originals", name, PAYLOAD, content_type="image/jpeg")
                await self.store.delete("incoming", name)

        cpu, began = self.cpu_seconds(), time.perf_counter()
        await asyncio.gather(*(upload(i) for i in range(start, start + count)))
        while names := [blob.name async for blob in self.store.list("incoming", prefix="c/")]:
            await asyncio.gather(*(ingest(name) for name in names[:PAGE]))
        seconds = time.perf_counter() - began
        self.rows.append((start + count, count / seconds, 1000 * (self.cpu_seconds() - cpu) / count))


def growth_per_thousand(rows: list[tuple[int, float, float]]) -> float:
    """Least-squares slope of CPU ms per file against thousands of blobs stored (0 from a single step)."""
    if len(rows) < 2:
        return 0.0
    return statistics.linear_regression([blobs / 1000 for blobs, _, _ in rows], [ms for _, _, ms in rows]).slope


async def run(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="bench-azurite-"))
    stock = AzuriteServer(root / "stock", executable=AZURITE_BLOB_BIN.resolve())
    ours = AzuriteServer(root / "ours")
    with stock, ours:
        subjects = [Subject("stock", stock), Subject("ours", ours)]
        for subject in subjects:
            await subject.store.ensure_containers()
        load = os.getloadavg()[0]
        for start in range(0, args.files, args.step):
            for subject in subjects if (start // args.step) % 2 == 0 else reversed(subjects):
                await subject.step(start, args.step, args.concurrency)
            line = "  ".join(f"{s.label}: {s.rows[-1][1]:6.1f} files/s {s.rows[-1][2]:6.2f} ms/file" for s in subjects)
            print(f"blobs stored {start + args.step:>8}   {line}", flush=True)
        for subject in subjects:
            await subject.store.close()
    print(f"load average (1 min) before {load:.1f}, after {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for subject in subjects:
        slope = growth_per_thousand(subject.rows)
        first, last = subject.rows[0][2], subject.rows[-1][2]
        print(
            f"{subject.label:>6}: Azurite CPU per file {first:.2f} -> {last:.2f} ms; "
            f"grows {slope:+.2f} ms per 1,000 blobs stored"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--step", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
