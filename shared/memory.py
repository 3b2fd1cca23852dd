"""How many malloc arenas a worker's threads may spread their memory over (glibc).

glibc gives each thread that meets a locked arena a new one, up to 8 per core. A worker's threads
(image decoding, ONNX Runtime's pools, `asyncio.to_thread`, the SDKs') each allocate and free
megabytes, and every arena keeps its own freed-but-fragmented memory: at 200 images of 12 MP the
worker's peak RSS reached the 1 GiB target (1,001-1,047 MiB, `bench/pipeline.py`). Two arenas per
CPU held it at 872-903 MiB for about 5% more CPU; one per CPU cost 14%, in lock waits (docs/scale.md).

On Azure the same cap is the `MALLOC_ARENA_MAX` app setting (infra/main.bicep): glibc reads it when
the worker process starts, before any of our code runs.
"""

from __future__ import annotations

import ctypes
import os

from shared.cpu import available_cpus

ARENAS_PER_CPU = 2
_M_ARENA_MAX = -8  # mallopt's parameter number, from glibc's malloc.h


def limit_malloc_arenas(per_cpu: int = ARENAS_PER_CPU) -> int | None:
    """Cap glibc's arenas at `per_cpu` x the CPUs this process may use; the cap, or None when not applied.

    Call it first thing, before threads start allocating: glibc fixes its limit when it first needs
    more arenas than its start-up allowance. An explicit MALLOC_ARENA_MAX in the environment wins (glibc
    has applied it already), and on a C library other than glibc this does nothing.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return None
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter already runs on
    except (OSError, TypeError, AttributeError):  # Windows; macOS's allocator has no mallopt
        return None
    arenas = per_cpu * available_cpus()
    return arenas if mallopt(_M_ARENA_MAX, arenas) == 1 else None
