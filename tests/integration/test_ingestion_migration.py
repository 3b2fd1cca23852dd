"""The batch migration on real Postgres and Azurite: a folder moves through the upload path once,
and an interrupted run resumes to completion without duplicates."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import re
import sys
from pathlib import Path

import asyncpg
import pytest

from functions.ingestion.ingest import ingest_blob
from functions.ingestion.manifest import failures
from functions.ingestion.migration import Migration, load_sidecar, walk_images
from functions.ingestion.policy import IngestionPolicy
from shared.config import PROJECT_ROOT
from shared.db import connect_database
from shared.storage import INCOMING, StorageError
from tests.fixtures.photos import PHOTOS, jpeg_bytes, photo

# Small files keep the test quick; ingestion is told to accept them.
POLICY = IngestionPolicy(min_megapixels=0.05)
FILES = 36


def _make_tree(root: Path, count: int = FILES) -> list[str]:
    """`count` distinct small photos in nested folders, plus files the migration must leave alone."""
    names = list(PHOTOS)
    rel_paths = []
    for n in range(count):
        base = photo(names[n % len(names)])
        box = (n * 7 % 60, n * 5 % 40, base.width - n * 3 % 50, base.height - n * 11 % 30)
        folder = root / f"shoot-{n % 4}" / ("raw" if n % 3 == 0 else "")
        folder.mkdir(parents=True, exist_ok=True)
        ext = ".JPG" if n % 5 == 0 else ".jpg"
        path = folder / f"img_{n:03d}{ext}"
        path.write_bytes(jpeg_bytes(base.crop(box), quality=80))
        rel_paths.append(path.relative_to(root).as_posix())
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.jpg").write_bytes(b"hidden")
    return rel_paths


class FailingAfter:
    """The real store, whose uploads start failing after `n` (a network outage mid-run)."""

    def __init__(self, store, n: int) -> None:
        self._store = store
        self._left = n

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def put(self, container, name, data, **kwargs):
        if self._left <= 0:
            raise StorageError(f"upload {container}/{name} failed: connection reset")
        self._left -= 1
        return await self._store.put(container, name, data, **kwargs)


async def _incoming(store) -> list[str]:
    return [blob.name async for blob in store.list(INCOMING)]


def test_the_walk_finds_image_files_only_and_streams_them(tmp_path):
    expected = _make_tree(tmp_path, 8)
    walker = walk_images(tmp_path)
    assert iter(walker) is walker  # a generator: nothing is listed up front
    assert sorted(f.rel_path for f in walker) == sorted(expected)


async def test_a_folder_is_migrated_and_ingested_through_the_normal_path(db, blob_store, tmp_path):
    rel_paths = _make_tree(tmp_path)
    sidecar_path = tmp_path / "sidecar.csv"
    with sidecar_path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "title", "keywords"])
        writer.writerow([rel_paths[0], "Coffee at dawn", "coffee; morning; cup"])
    seen = []

    migration = Migration(
        db,
        blob_store,
        POLICY,
        "archive",
        tmp_path,
        concurrency=4,
        sidecar=load_sidecar(sidecar_path),
        on_file=lambda f, outcome: seen.append(outcome),
    )
    report = await migration.run()

    assert (report.seen, report.uploaded, report.failed) == (FILES, FILES, 0)
    assert seen == ["uploaded"] * FILES
    assert len(await _incoming(blob_store)) == FILES
    rows = await db.pool.fetch("select * from ingestion.migration_files")
    assert {r["state"] for r in rows} == {"uploaded"} and len(rows) == FILES
    assert all(len(r["sha256"]) == 64 for r in rows)
    first = next(r for r in rows if r["rel_path"] == rel_paths[0])
    image = await db.pool.fetchrow("select * from ingestion.images where image_id = $1", first["image_id"])
    assert (image["source"], image["sidecar"]["title"]) == ("migration", "Coffee at dawn")
    assert image["sidecar"]["keywords"] == ["coffee", "morning", "cup"]

    # what the blob trigger does with each file
    for name in await _incoming(blob_store):
        await ingest_blob(db, blob_store, POLICY, name)
    states = await db.pool.fetch("select state, count(*) as n from ingestion.images group by state")
    assert [(r["state"], r["n"]) for r in states] == [("processing", FILES)]
    assert await _incoming(blob_store) == []


class InStep:
    """The real store, whose uploads return together, `n` at a time (uploads that end at about the same time)."""

    def __init__(self, store, n: int) -> None:
        self._store = store
        self._together = asyncio.Barrier(n)

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def put(self, container, name, data, **kwargs):
        info = await self._store.put(container, name, data, **kwargs)
        await self._together.wait()
        return info


async def test_the_outcomes_of_files_that_finish_together_are_written_in_one_round_trip(db, blob_store, tmp_path):
    _make_tree(tmp_path)  # 36 files: 9 rounds of 4
    migration = Migration(db, InStep(blob_store, 4), POLICY, "archive", tmp_path, concurrency=4)

    report = await migration.run()

    assert (report.uploaded, report.failed) == (FILES, 0)
    assert migration.manifest.outcome_writes == FILES // 4
    rows = await db.pool.fetch("select state, attempts from ingestion.migration_files")
    assert len(rows) == FILES and {(r["state"], r["attempts"]) for r in rows} == {("uploaded", 1)}


async def test_a_run_cut_short_by_failing_uploads_resumes_without_duplicates(db, blob_store, tmp_path):
    _make_tree(tmp_path)
    broken = await Migration(db, FailingAfter(blob_store, 10), POLICY, "archive", tmp_path, concurrency=3).run()
    assert (broken.uploaded, broken.failed) == (10, FILES - 10)
    reasons = await failures(db, "archive", str(tmp_path.resolve()), limit=100)
    assert len(reasons) == FILES - 10 and "connection reset" in reasons[0]["error"]

    resumed = await Migration(db, blob_store, POLICY, "archive", tmp_path, concurrency=3).run()

    assert (resumed.uploaded, resumed.skipped, resumed.failed) == (FILES - 10, 10, 0)
    assert await db.pool.fetchval("select count(*) from ingestion.images") == FILES
    assert len(await _incoming(blob_store)) == FILES
    assert await db.pool.fetchval("select count(*) from ingestion.migration_files where state = 'uploaded'") == FILES


async def test_a_run_killed_mid_way_resumes_with_the_same_image_ids(db, blob_store, tmp_path):
    _make_tree(tmp_path)
    done = 0
    killed = asyncio.Event()

    def count(_file, _outcome):
        nonlocal done
        done += 1
        if done == 12:
            killed.set()

    run = asyncio.create_task(
        Migration(db, blob_store, POLICY, "archive", tmp_path, concurrency=4, on_file=count).run()
    )
    await killed.wait()
    run.cancel()  # Ctrl-C: in-flight files are left pending
    with pytest.raises(asyncio.CancelledError):
        await run
    ids_before = {r["rel_path"]: r["image_id"] for r in await db.pool.fetch("select * from ingestion.migration_files")}
    assert 12 <= len(ids_before) < FILES

    resumed = await Migration(db, blob_store, POLICY, "archive", tmp_path, concurrency=4).run()

    assert resumed.failed == 0 and resumed.uploaded + resumed.skipped == FILES
    rows = await db.pool.fetch("select * from ingestion.migration_files")
    assert {r["state"] for r in rows} == {"uploaded"} and len(rows) == FILES
    assert all(ids_before[r["rel_path"]] == r["image_id"] for r in rows if r["rel_path"] in ids_before)
    assert await db.pool.fetchval("select count(*) from ingestion.images") == FILES
    assert len(await _incoming(blob_store)) == FILES


async def test_a_file_ingested_before_the_crash_let_the_manifest_note_it_is_not_sent_again(db, blob_store, tmp_path):
    rel_paths = _make_tree(tmp_path, 3)
    await Migration(db, blob_store, POLICY, "archive", tmp_path).run()
    # The run died after the upload (which ingestion took) but before the manifest said so.
    image_id = await db.pool.fetchval(
        "update ingestion.migration_files set state = 'pending', sha256 = null where rel_path = $1 returning image_id",
        rel_paths[0],
    )
    await db.pool.execute("update ingestion.images set state = 'processing' where image_id = $1", image_id)
    name = next(n for n in await _incoming(blob_store) if n.endswith(str(image_id)))
    await blob_store.delete(INCOMING, name)

    again = await Migration(db, blob_store, POLICY, "archive", tmp_path).run()

    assert (again.uploaded, again.skipped, again.failed) == (1, 2, 0)
    assert not await blob_store.exists(INCOMING, name)  # not written again
    assert await db.pool.fetchval("select count(*) from ingestion.images") == 3
    row = await db.pool.fetchrow("select * from ingestion.migration_files where rel_path = $1", rel_paths[0])
    assert row["state"] == "uploaded" and len(row["sha256"]) == 64


async def test_a_re_run_skips_everything_done_and_uploads_a_changed_file_as_new(db, blob_store, tmp_path):
    rel_paths = _make_tree(tmp_path, 6)
    await Migration(db, blob_store, POLICY, "archive", tmp_path).run()
    changed = tmp_path / rel_paths[2]
    changed.write_bytes(jpeg_bytes(photo("hubble")))
    os.utime(changed, ns=(1, 1))

    again = await Migration(db, blob_store, POLICY, "archive", tmp_path).run()

    assert (again.uploaded, again.skipped) == (1, 5)
    assert await db.pool.fetchval("select count(*) from ingestion.images") == 7


async def test_a_dry_run_changes_nothing(db, blob_store, tmp_path):
    _make_tree(tmp_path, 5)
    report = await Migration(db, blob_store, POLICY, "archive", tmp_path, dry_run=True).run()
    assert (report.would_upload, report.uploaded) == (5, 0)
    assert await db.pool.fetchval("select count(*) from ingestion.migration_files") == 0
    assert await db.pool.fetchval("select count(*) from ingestion.images") == 0
    assert await _incoming(blob_store) == []


async def test_the_command_line_migrates_and_reports(database_dsn, azurite, blob_store, tmp_path):
    source = tmp_path / "photos"
    _make_tree(source, 6)
    (tmp_path / "meta.json").write_text('{"shoot-1/img_001.jpg": {"title": "From JSON", "keywords": ["a", "b"]}}')
    env = {
        **os.environ,
        "DATABASE_URL": database_dsn,
        "STORAGE_CONNECTION_STRING": azurite.connection_string,
        "MIN_UPLOAD_MEGAPIXELS": "0.05",
    }

    async def cli(*args: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "functions.ingestion.migrate",
            *args,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        return proc.returncode, out.decode()

    report = tmp_path / "report.jsonl"
    code, out = await cli(
        str(source), "--contributor", "archive", "--sidecar", str(tmp_path / "meta.json"),
        "--report", str(report), "--wait-seconds", "0",
    )  # fmt: skip
    assert code == 0, out
    assert re.search(r"uploaded now\W+6 \(", out), out
    assert re.search(r"failed now\W+0\b", out), out
    assert re.search(r"pending \(ingestion not done\)\W+6\b", out), out  # no blob trigger runs here
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert sorted(line["path"] for line in lines) == sorted(f.rel_path for f in walk_images(source))
    assert {line["outcome"] for line in lines} == {"pending"}
    conn = await asyncpg.connect(database_dsn)
    try:
        titles = await conn.fetch(
            "select sidecar->>'title' as title from ingestion.images where sidecar->>'title' <> ''"
        )
    finally:
        await conn.close()
    assert [r["title"] for r in titles] == ["From JSON"]
    code, out = await cli(str(source), "--contributor", "archive", "--dry-run")
    assert code == 0, out
    assert re.search(r"would upload\W+0\b", out) and re.search(r"skipped\W+6\b", out), out
    assert len(await _incoming(blob_store)) == 6

    # The blob trigger decides; a re-run reports every file's outcome; a file that cannot upload fails the run.
    (source / "copies").mkdir()
    (source / "copies" / "again.jpg").write_bytes((source / lines[0]["path"]).read_bytes())
    (source / "copies" / "broken.jpg").write_bytes((source / lines[1]["path"]).read_bytes()[:2000])
    (tmp_path / "meta.json").write_text('{"copies/broken.jpg": {"title": "%s"}}' % ("x" * 201))
    db = await connect_database(database_dsn)
    try:
        for name in await _incoming(blob_store):
            await ingest_blob(db, blob_store, POLICY, name)
        code, out = await cli(
            str(source), "--contributor", "archive", "--report", str(report), "--wait-seconds", "0",
            "--sidecar", str(tmp_path / "meta.json"),
        )  # fmt: skip
        assert code == 1, out  # the broken file's sidecar is refused: it never uploads
        assert re.search(r"failed: upload_failed\W+1\b", out), out
        (tmp_path / "meta.json").write_text("{}")
        args = (
            str(source),
            "--contributor",
            "archive",
            "--report",
            str(report),
            "--sidecar",
            str(tmp_path / "meta.json"),
        )
        code, out = await cli(*args, "--wait-seconds", "0")
        for name in await _incoming(blob_store):  # what devhost's trigger does meanwhile
            await ingest_blob(db, blob_store, POLICY, name)
        code, out = await cli(*args, "--wait-seconds", "5")
    finally:
        await db.close()
    final = {line["path"]: line for line in map(json.loads, report.read_text().splitlines())}
    outcomes = sorted((line["outcome"], line["reason_code"]) for line in final.values())
    assert outcomes[:1] == [("done", None)] and outcomes.count(("done", None)) == 6, outcomes
    assert final["copies/again.jpg"]["outcome"] == "duplicate"
    assert final["copies/broken.jpg"]["outcome"] == "quarantined" and final["copies/broken.jpg"]["reason"]
    assert code == 0, out
    assert re.search(r"duplicate\W+1\b", out) and re.search(r"done \(in originals\)\W+6\b", out), out

    code, out = await cli(str(tmp_path / "missing"), "--contributor", "archive")
    assert code == 2  # typer: the folder does not exist
