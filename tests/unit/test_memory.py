"""A worker caps glibc's malloc arenas so that its threads' freed memory does not pile up in one arena each."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from shared.cpu import available_cpus

# Many threads allocate at once, each holding its memory while the others start, so that glibc must
# hand out arenas; then malloc_stats() lists every arena (one "Arena N:" block each) on stderr.
_THREADS = textwrap.dedent(
    """
    import ctypes, ctypes.util, sys, threading
    from shared.memory import limit_malloc_arenas

    cap = limit_malloc_arenas(per_cpu=int(sys.argv[1])) if sys.argv[1] != "none" else None
    print(cap, flush=True)
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
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
    done = subprocess.run(
        [sys.executable, "-c", _THREADS, per_cpu], capture_output=True, text=True, timeout=60, env=env, check=True
    )
    return done.stdout.strip(), done.stderr.count("Arena ")


@glibc_only
def test_the_cap_bounds_the_arenas_many_allocating_threads_get():
    cap, arenas = _arenas("1")
    assert cap == str(available_cpus())
    assert 1 <= arenas <= available_cpus()


@glibc_only
def test_without_the_cap_the_same_threads_spread_over_more_arenas():
    # The control: shows the test above would catch a cap that does nothing.
    cap, arenas = _arenas("none")
    assert cap == "None"
    assert arenas > available_cpus()


@glibc_only
def test_an_explicit_malloc_arena_max_in_the_environment_wins():
    cap, _ = _arenas("2", env={**os.environ, "MALLOC_ARENA_MAX": "3"})
    assert cap == "None"
