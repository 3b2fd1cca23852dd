"""Thread pools are sized from the CPUs a container may use, not from the host's count."""

from __future__ import annotations

import os
from pathlib import Path

from shared.cpu import available_cpus, cgroup_cpu_quota


def test_a_cgroup_v2_quota_is_read_as_cpus(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert cgroup_cpu_quota(cpu_max, (tmp_path / "none", tmp_path / "none")) == 1.5
    cpu_max.write_text("max 100000\n")
    assert cgroup_cpu_quota(cpu_max, (tmp_path / "none", tmp_path / "none")) is None


def test_a_cgroup_v1_quota_is_read_and_no_quota_means_none(tmp_path: Path) -> None:
    quota, period = tmp_path / "cfs_quota_us", tmp_path / "cfs_period_us"
    quota.write_text("50000\n")
    period.write_text("100000\n")
    assert cgroup_cpu_quota(tmp_path / "absent", (quota, period)) == 0.5
    quota.write_text("-1\n")
    assert cgroup_cpu_quota(tmp_path / "absent", (quota, period)) is None
    assert cgroup_cpu_quota(tmp_path / "absent", (tmp_path / "absent", period)) is None


def test_available_cpus_is_at_least_one_and_at_most_the_affinity_mask() -> None:
    assert 1 <= available_cpus() <= len(os.sched_getaffinity(0))
