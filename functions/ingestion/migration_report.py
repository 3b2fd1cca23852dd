"""What became of every file of a migration: the machine-readable report and the summary counts.

A file's outcome joins the migration manifest (did the upload go through?) with ingestion's own record
(what the blob trigger decided): `done` (in `originals`), `duplicate` (byte-identical to an accepted
image), `quarantined` (refused, with ingestion's reason code), `failed` (the upload itself failed; a
re-run retries it) or `pending` (uploaded, not decided yet). The report is streamed from a server-side
cursor and the counts kept as running totals, so memory does not grow with the tree.
"""

from __future__ import annotations

import asyncio
import csv
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from shared.db import Database

Outcome = Literal["done", "duplicate", "quarantined", "failed", "pending"]
REPORT_FIELDS = (
    "path", "outcome", "reason_code", "reason", "image_id", "ingestion_state", "duplicate_of", "size_bytes",
    "sha256", "upload_attempts",
)  # fmt: skip
_CURSOR_PREFETCH = 1000

_OUTCOMES = """
    select m.rel_path, m.image_id, m.state as upload_state, m.error, m.attempts, m.size_bytes, m.sha256,
           i.state as ingestion_state, i.reason_code, i.reason, i.duplicate_of
      from ingestion.migration_files m
      left join ingestion.images i on i.image_id = m.image_id
     where m.contributor_id = $1 and m.source_root = $2
     order by m.rel_path
"""


def outcome_of(row: Any) -> tuple[Outcome, str | None, str | None]:
    """(outcome, reason code, reason) of one manifest row joined to its ingestion record."""
    if row["upload_state"] == "failed":
        return "failed", "upload_failed", row["error"]
    if row["upload_state"] == "pending":  # a run stopped while it was in flight: the next run retries it
        return "failed", "upload_interrupted", "the run stopped during this file's upload; run again to resume"
    state = row["ingestion_state"]
    if state is None or state == "awaiting_upload":
        return "pending", None, None
    if state == "quarantined":
        kind: Outcome = "duplicate" if row["reason_code"] == "duplicate" else "quarantined"
        return kind, row["reason_code"], row["reason"]
    return "done", None, None


@dataclass
class OutcomeCounts:
    by_outcome: Counter[str] = field(default_factory=Counter)
    quarantined_by_reason: Counter[str] = field(default_factory=Counter)
    failed_by_reason: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: Outcome, reason_code: str | None) -> None:
        self.by_outcome[outcome] += 1
        if outcome == "quarantined":
            self.quarantined_by_reason[reason_code or "unknown"] += 1
        elif outcome == "failed":
            self.failed_by_reason[reason_code or "unknown"] += 1

    @property
    def failed(self) -> int:
        return self.by_outcome["failed"]


async def file_outcomes(db: Database, contributor_id: str, source_root: str) -> AsyncIterator[dict[str, Any]]:
    """Every file this tree's migrations saw, in path order, with its outcome (streamed)."""
    async with db.transaction() as conn:  # a cursor lives in a transaction
        async for row in conn.cursor(_OUTCOMES, contributor_id, source_root, prefetch=_CURSOR_PREFETCH):
            outcome, code, reason = outcome_of(row)
            yield {
                "path": row["rel_path"],
                "outcome": outcome,
                "reason_code": code,
                "reason": reason,
                "image_id": str(row["image_id"]),
                "ingestion_state": row["ingestion_state"],
                "duplicate_of": str(row["duplicate_of"]) if row["duplicate_of"] else None,
                "size_bytes": row["size_bytes"],
                "sha256": row["sha256"],
                "upload_attempts": row["attempts"],
            }


async def write_report(db: Database, contributor_id: str, source_root: str, path: Path | None) -> OutcomeCounts:
    """Write one line per file to `path` (`.csv`: CSV, anything else: JSON lines); return the counts."""
    counts = OutcomeCounts()
    handle = path.open("w", newline="", encoding="utf-8") if path is not None else None
    try:
        writer = csv.DictWriter(handle, REPORT_FIELDS) if handle and path and path.suffix.lower() == ".csv" else None
        if writer is not None:
            writer.writeheader()
        async for line in file_outcomes(db, contributor_id, source_root):
            counts.add(line["outcome"], line["reason_code"])
            if writer is not None:
                writer.writerow(line)
            elif handle is not None:
                handle.write(json.dumps(line) + "\n")
    finally:
        if handle is not None:
            handle.close()
    return counts


async def undecided(db: Database, contributor_id: str, source_root: str) -> tuple[int, int]:
    """(files uploaded by this tree's migrations, of which ingestion has not decided yet)."""
    async with db.connection() as conn:
        row = await conn.fetchrow(
            "select count(*) as uploaded, count(*) filter (where i.state is null or i.state = 'awaiting_upload') "
            "as waiting from ingestion.migration_files m left join ingestion.images i on i.image_id = m.image_id "
            "where m.contributor_id = $1 and m.source_root = $2 and m.state = 'uploaded'",
            contributor_id,
            source_root,
        )
    return row["uploaded"], row["waiting"]


async def wait_for_decisions(
    db: Database,
    contributor_id: str,
    source_root: str,
    within_s: float,
    on_progress: Callable[[int, int], None] = lambda _total, _decided: None,
    poll_seconds: float = 1.0,
) -> int:
    """Wait up to `within_s` seconds until ingestion has decided on every uploaded file; how many are still waiting."""
    deadline = time.monotonic() + within_s
    while True:
        total, waiting = await undecided(db, contributor_id, source_root)
        on_progress(total, total - waiting)
        if waiting == 0 or time.monotonic() >= deadline:
            return waiting
        await asyncio.sleep(poll_seconds)
