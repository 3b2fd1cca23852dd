"""How many CPUs this process may really use, for sizing thread pools.

`os.cpu_count()` counts the host's CPUs. A container (a Flex Consumption instance, a Kubernetes pod)
usually gets fewer through a CFS quota: a 2,048 MB Flex instance has about one core on a host with
many, and sizing thread pools from the host's count would put several decoding and inference
threads on that one core, each slower and each holding an image in memory.
"""

from __future__ import annotations

import math
import os
from functools import cache
from pathlib import Path

_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")


@cache
def available_cpus() -> int:
    """CPUs in this process's affinity mask, capped by its cgroup CPU quota (rounded up); at least 1."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.ceil(quota)))
    return max(1, cpus)


def cgroup_cpu_quota(v2: Path = _CGROUP_V2, v1: tuple[Path, Path] = _CGROUP_V1) -> float | None:
    """The CFS quota in CPUs (quota / period), or None when there is none or it cannot be read."""
    try:
        if v2.exists():
            quota, _, period = v2.read_text().strip().partition(" ")
            return None if quota == "max" else int(quota) / int(period or 100_000)
        if v1[0].exists():
            quota_us = int(v1[0].read_text())
            return None if quota_us <= 0 else quota_us / int(v1[1].read_text())
    except (OSError, ValueError):
        return None
    return None
