"""Where served Postgres time goes: the embedded server's own statement log over a measured window.

EXPLAIN ANALYZE of one query at a time (bench/search_explain.py) overstates many-row nodes and never sees the
mix; CPU meters see the mix but not the statements. This turns `log_min_duration_statement = 0` on for the
window (ALTER SYSTEM + reload: no restart), reads back the lines the server wrote in it, and sums the
duration of each statement by kind, and the search statements by filter shape. Durations are wall time in
the server, waiting for a core included: under 16 clients on 2 cores read them as shares, not as CPU.
Logging every statement costs the server a little; the same run's throughput is comparable only to runs
with it on. A run killed inside the window leaves the settings on in that data dir; the next `--statement-log`
run resets them at its end.

    with StatementLog(var_dir / "pg" / "data") as log:
        ...  # the measured load
    log.summary  # JSON-ready
"""

from __future__ import annotations

import asyncio
import re
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any, Final

import asyncpg

from bench.search_corpus import percentile

_LINE: Final = re.compile(
    r"^\S+ \S+ \S+ \[\d+\] LOG:  duration: ([\d.]+) ms  (?:(parse|bind|execute) [^:]*|(statement)): (.*)"
)
_NEW_ENTRY: Final = re.compile(r"^\d{4}-\d\d-\d\d ")
_SETTINGS: Final = {"log_min_duration_statement": "0", "log_parameter_max_length": "0"}


def statement_kind(sql: str, phase: str) -> str:
    """What a logged statement is, by the SQL the adapters write (shared/search/postgres.py and friends)."""
    if "'total'" in sql and "jsonb_build_object" in sql:
        return f"search statement ({phase})"
    if "search.facet_counts" in sql or ("search.serving_index s where" in sql and "order by s." in sql):
        return "browse (counts or page)"
    if "from search.generation" in sql:
        return "index generation read"
    if "websearch_to_tsquery('english', $1)::text" in sql:
        return "result cache: the query's match rule"
    if sql.startswith("set hnsw") or "hnsw.ef_search" in sql:
        return "vector leg settings (SET)"
    return "other"


def filter_shape(sql: str) -> str:
    """A search statement's filters, as bench/search.py's mix draws them."""
    if "s.category =" in sql:
        return "category"
    if "s.orientation =" in sql:
        return "orientation + colour"
    if "s.usage =" in sql:
        return "license + size"
    return "none (safe search only)"


def summarise(lines: list[str]) -> dict[str, Any]:
    entries: list[tuple[float, str, str]] = []  # (ms, phase, sql)
    for line in lines:
        if m := _LINE.match(line):
            entries.append((float(m.group(1)), m.group(2) or m.group(3), m.group(4)))
        elif entries and not _NEW_ENTRY.match(line):  # a statement's next lines
            ms, phase, sql = entries[-1]
            entries[-1] = (ms, phase, f"{sql} {line.strip()}")
    by_kind: dict[str, list[float]] = defaultdict(list)
    by_shape: dict[str, list[float]] = defaultdict(list)
    for ms, phase, sql in entries:
        kind = statement_kind(sql, phase)
        by_kind[kind].append(ms)
        if kind == "search statement (execute)":
            by_shape[filter_shape(sql)].append(ms)

    def shares(groups: dict[str, list[float]], of: str = "") -> dict[str, str]:
        total = sum(map(sum, groups.values())) or 1.0
        ranked = sorted(groups.items(), key=lambda kv: -sum(kv[1]))
        return {k: f"{100 * sum(v) / total:.1f}%{of} ({len(v)}, mean {statistics.mean(v):.1f} ms)" for k, v in ranked}

    out: dict[str, Any] = {
        "statements": len(entries),
        "share_by_statement": shares(by_kind),
        "search_statements_by_filter": shares(by_shape, " of their time"),
    }
    if durations := sorted(ms for group in by_shape.values() for ms in group):
        slowest = durations[-max(1, len(durations) // 20) :]
        out["search_statement_ms"] = {
            "mean": round(statistics.mean(durations), 1),
            **{f"p{round(q * 100)}": round(percentile(durations, q), 1) for q in (0.5, 0.9, 0.99)},
            "slowest 5% share": round(sum(slowest) / sum(durations), 3),
        }
    return out


class StatementLog:
    """Statement logging on for a `with` block, and what the server logged in it (`summary`)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.log = data_dir / "log"  # the embedded server's stderr (shared/db/embedded.py)
        self.summary: dict[str, Any] = {}

    async def _configure(self, on: bool) -> None:
        # The embedded server listens on a unix socket in its data dir (shared/db/embedded.py).
        conn = await asyncpg.connect(host=str(self.data_dir.resolve()), user="postgres", database="postgres")
        try:
            for name, value in _SETTINGS.items():
                await conn.execute(f"alter system set {name} = {value}" if on else f"alter system reset {name}")
            await conn.execute("select pg_reload_conf()")
            await asyncio.sleep(0.5)  # the reload reaches every backend at its next statement
        finally:
            await conn.close()

    def __enter__(self) -> StatementLog:
        asyncio.run(self._configure(True))
        self.start = self.log.stat().st_size
        return self

    def __exit__(self, *exc: object) -> None:
        end = self.log.stat().st_size
        asyncio.run(self._configure(False))
        with self.log.open("rb") as f:
            f.seek(self.start)
            text = f.read(end - self.start).decode("utf-8", errors="replace")
        self.summary = summarise(text.splitlines())
