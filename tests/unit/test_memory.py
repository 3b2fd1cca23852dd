"""A worker caps glibc's malloc arenas so that its threads' freed memory does not pile up in one arena each."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from shared.config import PROJECT_ROOT

# Many threads allocate at once, each holding its memory while the others start, so that glibc must
# hand out arenas; then malloc_stats() lists every arena (one "Arena N:" block each) on stderr.
_THREADS = textwrap.dedent(
    """
    import ctypes, sys, threading
    import shared.memory

    shared.memory.available_cpus = lambda: 1  # the cap is then per_cpu, whatever machine runs this
    cap = shared.memory.limit_malloc_arenas(per_cpu=int(sys.argv[1])) if sys.argv[1] != "none" else None
    print(cap, flush=True)
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    ready, go = threading.Barrier(25), threading.Event()

    def work():
        blocks = [libc.malloc(4096) for _ in range(64)]  # small blocks: served by an arena, not by mmap
        ready.wait()
        go.wait()
        for block in blocks:
            libc.free(ctypes.c_void_p(block))

    threads = [threading.Thread(target=work) for _ in range(24)]
    for t in threads:
        t.start()
    ready.wait()
    libc.malloc_stats()
    go.set()
    for t in threads:
        t.join()
    """
)

glibc_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="arenas are glibc's")


def _arenas(per_cpu: str, env: dict[str, str] | None = None) -> tuple[str, int]:
    if env is None:  # glibc's own default, whatever the environment running the tests says
        env = {name: value for name, value in os.environ.items() if name != "MALLOC_ARENA_MAX"}
    done = subprocess.run(
        [sys.executable, "-c", _THREADS, per_cpu],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=PROJECT_ROOT,
        check=True,
    )
    return done.stdout.strip(), done.stderr.count("Arena ")


@glibc_only
def test_the_cap_bounds_the_arenas_many_allocating_threads_get():
    cap, arenas = _arenas("2")
    assert cap == "2"
    assert 1 <= arenas <= 2


@glibc_only
def test_without_the_cap_the_same_threads_spread_over_more_arenas():
    # The control: shows the test above would catch a cap that does nothing.
    cap, arenas = _arenas("none")
    assert cap == "None"
    assert arenas > 2  # glibc allows 8 per core, and each of the 24 threads takes one while it can


@glibc_only
def test_an_explicit_malloc_arena_max_in_the_environment_wins():
    cap, _ = _arenas("2", env={**os.environ, "MALLOC_ARENA_MAX": "3"})
    assert cap == "None"
