"""The batch migration: move a local tree of images into the platform through the normal ingestion path.

Each file gets an upload ticket like a portal upload (`record_tickets`, the statement `register_upload`
uses) and is written to its blob in `incoming`; the blob trigger validates and ingests it from there.
A manifest in Postgres (ingestion.migration_files, functions/ingestion/manifest.py) records every file's
path, size, checksum, image id and state, so a run that crashed or was interrupted resumes: files
already uploaded are skipped, pending and failed ones are retried with the SAME image id (the ticket
is renewed, never duplicated).

Memory stays flat however big the tree: the walk is a generator (os.scandir, directories on a stack),
read in small batches into a bounded queue that a fixed number of workers drains.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import json
import os
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import asyncpg
import structlog
from pydantic import ValidationError

from functions.ingestion.manifest import Manifest, Outcome, Start
from functions.ingestion.models import UploadRequest
from functions.ingestion.policy import IngestionPolicy
from functions.ingestion.uploads import (
    StorageUnavailable,
    UploadRefused,
    check_upload_size,
    incoming_blob_name,
)
from shared.bus.events import Sidecar
from shared.db import Database
from shared.storage.port import INCOMING, BlobStore, StorageError

log = structlog.get_logger()

CONTENT_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}
WALK_BATCH = 256  # files looked up in the manifest per query
_IN_MEMORY_MAX = 8 * 1024 * 1024  # smaller files are read once (hash + upload from memory); larger are streamed
_READ_CHUNK = 1024 * 1024

FileOutcome = Literal["uploaded", "skipped", "failed", "would-upload"]


@dataclass(frozen=True)
class SourceFile:
    rel_path: str  # POSIX-style, relative to the source root: the manifest key
    path: str
    size: int
    mtime_ns: int

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[os.path.splitext(self.path)[1].lower()]


def walk_images(root: Path, on_error: Callable[[str, OSError], None] | None = None) -> Iterator[SourceFile]:
    """Every image file under `root` (by extension; hidden entries and symlinks skipped), lazily."""
    root = Path(root)
    stack = [str(root)]
    while stack:
        directory = stack.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif (
                        entry.is_file(follow_symlinks=False)
                        and os.path.splitext(entry.name)[1].lower() in CONTENT_TYPES
                    ):
                        stat = entry.stat(follow_symlinks=False)
                        rel = Path(os.path.relpath(entry.path, root)).as_posix()
                        yield SourceFile(rel, entry.path, stat.st_size, stat.st_mtime_ns)
        except OSError as exc:
            if on_error is not None:
                on_error(directory, exc)
            log.warning("migration.unreadable_directory", directory=directory, error=str(exc))


def count_images(root: Path, stop: threading.Event | None = None) -> int:
    """How many files `walk_images` will yield (for a progress total); gives up early once `stop` is set."""
    count = 0
    for _ in walk_images(root):
        count += 1
        if stop is not None and count % 1000 == 0 and stop.is_set():
            break
    return count


# --- sidecar --------------------------------------------------------------------------------------


class SidecarError(ValueError):
    pass


class SidecarTable:
    """Sidecar fields per relative path (or bare file name), kept in a temporary SQLite file, not in memory:
    an agency's sidecar may describe millions of files, and the migration's memory must not grow with it."""

    def __init__(self) -> None:
        self._file = tempfile.NamedTemporaryFile(prefix="sidecar-", suffix=".sqlite")
        # The event loop's thread reads it; the loading thread may differ.
        self._db = sqlite3.connect(self._file.name, check_same_thread=False)
        self._db.execute("create table entries (key text primary key, fields text not null)")
        self._count = 0

    def add(self, key: str, fields: dict[str, Any]) -> None:
        self._db.execute("insert or replace into entries values (?, ?)", (key, json.dumps(fields)))
        self._count += 1

    def get(self, key: str) -> dict[str, Any] | None:
        row = self._db.execute("select fields from entries where key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        self._db.close()
        self._file.close()


def load_sidecar(path: Path) -> SidecarTable:
    """Titles, keywords etc. per file from a CSV or JSON file, keyed by relative path (or bare file name).

    CSV: a header row with `path` (or `file`), and any of title, description, keywords (separated by
    ';' or ','), category, usage; read row by row. JSON: {"path": {...}, ...} or [{"path": ..., ...}, ...];
    parsed whole (JSON cannot be read in pieces), so prefer CSV for very large sidecars.
    """
    path = Path(path)
    table = SidecarTable()
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(raw, dict):
                items: Iterable[Any] = ({"path": key, **value} for key, value in raw.items())
            elif isinstance(raw, list):
                items = raw
            else:
                raise SidecarError(f"{path}: expected an object or a list")
            _fill(table, path, items)
        else:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                _fill(table, path, csv.DictReader(handle))
        table._db.commit()
    except (OSError, ValueError, TypeError) as exc:
        table.close()
        if isinstance(exc, SidecarError):
            raise
        raise SidecarError(f"cannot read sidecar {path}: {exc}") from exc
    return table


def _fill(table: SidecarTable, path: Path, items: Iterable[Any]) -> None:
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise SidecarError(f"{path}: entry {number} is not an object")
        key = item.get("path") or item.get("file") or item.get("file_name")
        if not key:
            raise SidecarError(f"{path}: entry {number} names no path")
        fields = {k: v for k, v in item.items() if k in Sidecar.model_fields and v not in (None, "")}
        if isinstance(fields.get("keywords"), str):
            separator = ";" if ";" in fields["keywords"] else ","
            fields["keywords"] = [k.strip() for k in fields["keywords"].split(separator) if k.strip()]
        table.add(Path(str(key)).as_posix(), fields)  # "./a/b.jpg" and "a/b.jpg" alike


def sidecar_for(table: SidecarTable | Mapping[str, dict[str, Any]], file: SourceFile) -> Sidecar:
    fields = table.get(file.rel_path) or table.get(os.path.basename(file.rel_path)) or {}
    return Sidecar.model_validate(fields)


# --- the run --------------------------------------------------------------------------------------


@dataclass
class MigrationReport:
    seen: int = 0
    uploaded: int = 0
    skipped: int = 0
    failed: int = 0
    would_upload: int = 0
    bytes_uploaded: int = 0
    unreadable_directories: list[str] = field(default_factory=list)


Progress = Callable[[SourceFile, FileOutcome], None]


class Migration:
    def __init__(
        self,
        db: Database,
        storage: BlobStore,
        policy: IngestionPolicy,
        contributor_id: str,
        root: Path,
        *,
        concurrency: int = 8,
        dry_run: bool = False,
        sidecar: SidecarTable | Mapping[str, dict[str, Any]] | None = None,
        on_file: Progress | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.db = db
        self.storage = storage
        self.policy = policy
        self.contributor_id = contributor_id
        self.root = Path(root).resolve()
        self.source_root = str(self.root)
        self.concurrency = concurrency
        self.dry_run = dry_run
        self.sidecar = sidecar or {}
        self.on_file = on_file
        self.report = MigrationReport()
        self.manifest = Manifest(db, policy, contributor_id, self.source_root)

    async def run(self) -> MigrationReport:
        if not self.dry_run and not await self.storage.ping():
            # Checked once here, not per file: each file's own write says whether it got through.
            raise StorageUnavailable("blob storage cannot be reached")
        queue: asyncio.Queue[tuple[SourceFile, asyncpg.Record | None] | None] = asyncio.Queue(self.concurrency * 4)
        # A task group: if a worker dies (e.g. the database went away), the walk stops too instead of
        # waiting forever on a full queue.
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(self.concurrency):
                    group.create_task(self._worker(queue))
                group.create_task(self._produce(queue))
        finally:
            await self.manifest.close()  # interrupted: no write of this run may land after it
        return self.report

    async def _produce(self, queue: asyncio.Queue) -> None:
        walker = walk_images(self.root, on_error=lambda d, _e: self.report.unreadable_directories.append(d))
        while True:
            batch = await asyncio.to_thread(_take, walker, WALK_BATCH)
            if not batch:
                for _ in range(self.concurrency):
                    await queue.put(None)  # one stop sign per worker
                return
            known = await self.manifest.rows([f.rel_path for f in batch])
            for file in batch:
                self.report.seen += 1
                await queue.put((file, known.get(file.rel_path)))

    async def _worker(self, queue: asyncio.Queue) -> None:
        while (item := await queue.get()) is not None:
            file, row = item
            outcome = await self._migrate(file, row)
            if outcome == "uploaded":
                self.report.uploaded += 1
                self.report.bytes_uploaded += file.size
            elif outcome == "skipped":
                self.report.skipped += 1
            elif outcome == "failed":
                self.report.failed += 1
            else:
                self.report.would_upload += 1
            if self.on_file is not None:
                self.on_file(file, outcome)

    async def _migrate(self, file: SourceFile, row: asyncpg.Record | None) -> FileOutcome:
        unchanged = row is not None and (row["size_bytes"], row["mtime_ns"]) == (file.size, file.mtime_ns)
        if unchanged and row["state"] == "uploaded":
            return "skipped"
        if self.dry_run:
            return "would-upload"
        # An interrupted or failed file resumes with its image id (its ticket is renewed, not duplicated);
        # a file changed since it was seen is a new upload.
        image_id = row["image_id"] if unchanged else uuid.uuid4()
        started = False
        try:
            request = UploadRequest(
                file_name=os.path.basename(file.path),
                size_bytes=max(file.size, 1),
                content_type=file.content_type,
                sidecar=sidecar_for(self.sidecar, file),
            )
            check_upload_size(self.policy, request)
            live = await self.manifest.start(Start(file.rel_path, file.size, file.mtime_ns, image_id, request))
            started = True
            sha256 = await self._upload(file, image_id) if live else await asyncio.to_thread(_sha256_of, file.path)
        except (OSError, StorageError, UploadRefused, ValidationError, TimeoutError) as exc:
            error = _error_text(exc)
            await self.manifest.finish(_outcome(file, image_id, "failed", error=error, attempt=int(not started)))
            log.warning("migration.file_failed", path=file.rel_path, error=error)
            return "failed"
        await self.manifest.finish(_outcome(file, image_id, "uploaded", sha256=sha256))
        return "uploaded"

    async def _upload(self, file: SourceFile, image_id: uuid.UUID) -> str:
        """Write the file to the incoming blob of its ticket (the CLI holds a storage credential, so no SAS)."""
        blob = incoming_blob_name(self.contributor_id, image_id)
        if file.size <= _IN_MEMORY_MAX:
            data = await asyncio.to_thread(_read, file.path)
            await self.storage.put(INCOMING, blob, data, content_type=file.content_type)
            return hashlib.sha256(data).hexdigest()
        sha256 = await asyncio.to_thread(_sha256_of, file.path)
        with open(file.path, "rb") as stream:  # noqa: ASYNC230  (the SDK reads it in blocks)
            await self.storage.put(INCOMING, blob, stream, content_type=file.content_type)
        return sha256


def _outcome(file: SourceFile, image_id: uuid.UUID, state: Literal["uploaded", "failed"], **details: Any) -> Outcome:
    return Outcome(file.rel_path, file.size, file.mtime_ns, image_id, state, **details)


def _take(iterator: Iterator[SourceFile], n: int) -> list[SourceFile]:
    batch = []
    for item in iterator:
        batch.append(item)
        if len(batch) == n:
            break
    return batch


def _read(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def _sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "sidecar: " + "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return f"{type(exc).__name__}: {exc}"[:500]
