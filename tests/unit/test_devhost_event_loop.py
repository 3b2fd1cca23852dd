"""devhost's event loop: uvloop when installed (requirements.txt), asyncio's own otherwise."""

from __future__ import annotations

import asyncio
import sys

import pytest

from devhost.host import run_event_loop


def loop_module() -> str:
    seen: list[str] = []

    async def main() -> None:
        seen.append(type(asyncio.get_running_loop()).__module__)

    run_event_loop(main())
    return seen[0]


def test_without_uvloop_devhost_runs_on_asyncios_loop(monkeypatch):
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert loop_module().startswith("asyncio")


def test_with_uvloop_installed_devhost_runs_on_it():
    pytest.importorskip("uvloop")
    assert loop_module().startswith("uvloop")
