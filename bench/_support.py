"""What the benchmarks share: a throwaway embedded Postgres, fresh migrated databases, free ports, a
devhost process started from scratch, and the CPU time of the processes a bench measures."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import psutil

from shared.config import PROJECT_ROOT
from shared.db import Database, connect_database
from shared.db.embedded import EmbeddedPostgres
from shared.db.migrate import migrate

T = TypeVar("T")


def cpu_seconds(processes: Iterable[psutil.Process]) -> float:
    """User + system CPU time the processes have used so far; one that has exited since it was listed counts
    nothing (its parent has its time among its children's, once it reaps it)."""
    total = 0.0
    for proc in processes:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def fresh_database(admin_dsn: str, name: str, *, min_size: int, max_size: int) -> Database:
    """A new, fully migrated database `name` on the server (dropped first if a run left it)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'drop database if exists "{name}" with (force)')
        await conn.execute(f'create database "{name}"')
    finally:
        await conn.close()
    dsn = urlunsplit(urlsplit(admin_dsn)._replace(path="/" + name))
    await migrate(dsn)
    return await connect_database(dsn, min_size=min_size, max_size=max_size)


def on_embedded_postgres(prefix: str, run: Callable[[str], Awaitable[T]]) -> T:
    """Start an embedded Postgres in a temporary folder, run `run(admin_dsn)`, stop it whatever happens."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        server = EmbeddedPostgres(Path(tmp) / "pg")
        admin_dsn = server.start()
        try:
            return asyncio.run(run(admin_dsn))
        finally:
            server.stop()


class Devhost:
    """devhost (embedded Postgres, Azurite, the Postgres bus, every function in one worker process) as a
    child process on free ports, its state in `var_dir`. `env` adds to or overrides the benchmark defaults."""

    def __init__(self, var_dir: Path, env: dict[str, str] | None = None, *, drop: tuple[str, ...] = ()) -> None:
        self.var_dir = var_dir
        self.env = {
            **os.environ,
            "VAR_DIR": str(var_dir),
            "DEVHOST_PORT": str(free_port()),
            "AZURITE_BLOB_PORT": str(free_port()),
            "AzureWebJobsStorage": "UseDevelopmentStorage=true",
            "RATE_LIMIT_PER_PRINCIPAL_PER_MINUTE": "100000",
            "LOG_LEVEL": "WARNING",
            # No portal build (a Next.js export, minutes of CPU when the sources changed) beside what is measured.
            "DEVHOST_PORTALS": "false",
            **(env or {}),
        }
        for name in ("STORAGE_CONNECTION_STRING", "DATABASE_URL", *drop):  # the embedded stack, not the shell's
            self.env.pop(name, None)
        self.base = f"http://127.0.0.1:{self.env['DEVHOST_PORT']}"
        self.proc: subprocess.Popen | None = None

    def start(self, within_s: float = 120) -> None:
        with (self.var_dir / "devhost.log").open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - this interpreter running devhost, fixed arguments
                [sys.executable, "-m", "devhost", "start", "--port", self.env["DEVHOST_PORT"]],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"devhost exited:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base}/api/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"devhost not healthy in {within_s:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def log_tail(self) -> str:
        return (self.var_dir / "devhost.log").read_text(errors="replace")[-4000:]
