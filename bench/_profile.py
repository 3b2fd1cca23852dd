"""Where a worker's CPU goes, by pipeline stage: py-spy samples of the worker, sorted into stages.

py-spy (a dev dependency) records the worker's Python stacks while the timed part of a benchmark
runs; `stage_shares` sorts each busy sample into the first stage whose functions it contains, in
the order of STAGES (the innermost work wins: a decode inside ingestion counts as ingestion's check,
a database call inside a handler as a database write). Native threads of libvips and ONNX Runtime
are not sampled, only the Python thread that waits on them, so the shares are of the worker's
Python-visible busy time, not exact CPU seconds.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

# stage -> frames that put a sample in it: a function name's start, optionally "@" a fragment of its file
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ingest checks", ("inspect_image", "check_header", "_content@ingestion")),
    ("decode", ("decode@shared/imaging/decode.py",)),
    ("renditions", ("make_renditions", "dominant_colors", "blurhash_of", "phash@shared/imaging/phash.py", "read_exif")),
    ("inference", ("BatchingAnalyzer._run", "FallbackImageAnalyzer.analyze")),
    (
        "blob copies",
        (
            *("AzureBlobStore.", "BlobWatcher.", "AioHttpTransport.", "StorageStreamDownloader."),
            *("get_env_proxy_for_url", "netrc_from_env"),  # aiohttp's per-request proxy look-up
        ),
    ),
    ("DB writes", ("Connection.", "Pool.", "PoolConnectionHolder.", "Database.")),
    ("bus", ("PostgresTransport.", "OutboxRelay.", "to_functions_message", "add_to_outbox")),
    ("other handlers", ("search_sync", "moderation", "ingestion_catalogue", "checkout")),
    ("ingestion, rest", ("ingest_blob", "ingest_incoming_blob")),
    ("processing, rest", ("process_uploaded",)),
    ("HTTP API", ("FunctionsAsgiApp.", "RequestResponseCycle.", "H11Protocol.", "HttpToolsProtocol.")),
    ("bus", ("SubscriptionConsumer.", "process_one")),
    ("event loop, sockets", ("BaseEventLoop.run_forever",)),  # socket reads and callbacks of no stage above
)
# Leaf frames of a thread that waits (a pool thread with no work, the event loop in select, a pipe reader).
_IDLE_LEAVES = frozenset(
    {"_worker", "EpollSelector.select", "select", "Condition.wait", "_wait_for_tstate_lock"}
    | {"AzuriteServer._read_output", "_PollLikeSelector.select"}  # the last: a subprocess waited on
)
_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^:]*)")


def start(pid: int, out: Path | None, rate: int = 25) -> subprocess.Popen | None:
    """Sample `pid` `rate` times a second into `out` (collapsed stacks) until stop(); None when out is None or
    py-spy is missing."""
    if out is None:
        return None
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        print("py-spy not installed (requirements-dev.txt): no CPU breakdown", file=sys.stderr)
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(  # noqa: S603 - py-spy with fixed arguments
        [py_spy, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(profiler: subprocess.Popen | None) -> None:
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
        profiler.wait(60)


def stage_shares(collapsed: Path) -> dict[str, float]:
    """Share (0..1) of the busy samples in `collapsed` (py-spy raw output) per stage, plus "other"."""
    counts: Counter[str] = Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [_parse(f) for f in stack.split(";")]
        if not frames or frames[-1][0] in _IDLE_LEAVES or any("StripeStandin" in name for name, _ in frames):
            continue
        counts[_stage(frames)] += int(count)
    total = sum(counts.values()) or 1
    names = list(dict.fromkeys(s for s, _ in STAGES))  # "bus" appears twice: its own code, then what it drives
    return {stage: round(counts[stage] / total, 3) for stage in [*names, "other"]}


def _parse(frame: str) -> tuple[str, str]:
    match = _FRAME.match(frame)
    return (match["name"], match["file"]) if match else (frame, "")


def _stage(frames: list[tuple[str, str]]) -> str:
    for stage, patterns in STAGES:
        for pattern in patterns:
            name, _, where = pattern.partition("@")
            for fn, file in frames:
                if fn.startswith(name) and where in file:
                    return stage
    return "other"
