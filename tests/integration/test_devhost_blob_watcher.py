"""The blob watcher plays Event Grid for blob triggers: once per new or changed blob, bounded retries."""

from __future__ import annotations

from devhost.app_loader import BlobFunction
from devhost.triggers import BlobWatcher


async def test_each_new_or_changed_blob_fires_once_with_its_bytes(blob_store):
    seen: list[tuple[str, bytes]] = []

    def ingest(blob):
        seen.append((blob.name, blob.read()))

    watcher = BlobWatcher(BlobFunction("ingest", "incoming", "incoming/{name}", "blob", ingest), blob_store)
    await blob_store.put("incoming", "u1/a.jpg", b"first")
    assert await watcher.poll_once() == 1
    assert await watcher.poll_once() == 0  # nothing new
    await blob_store.put("incoming", "u1/a.jpg", b"second")  # overwritten: new etag
    await blob_store.put("incoming", "u2/b.jpg", b"other")
    assert await watcher.poll_once() == 2
    assert sorted(seen) == [
        ("incoming/u1/a.jpg", b"first"),
        ("incoming/u1/a.jpg", b"second"),
        ("incoming/u2/b.jpg", b"other"),
    ]


async def test_a_failing_blob_is_retried_then_left_alone_after_five_attempts(blob_store):
    calls = 0

    async def broken(blob):
        nonlocal calls
        calls += 1
        raise RuntimeError("cannot decode")

    watcher = BlobWatcher(BlobFunction("ingest", "incoming", "incoming/{name}", "blob", broken), blob_store)
    await blob_store.put("incoming", "bad.jpg", b"x")
    for _ in range(8):
        await watcher.poll_once()
    assert calls == BlobWatcher.MAX_ATTEMPTS


async def test_the_watcher_forgets_blobs_that_left_the_container(blob_store):
    watcher = BlobWatcher(BlobFunction("ingest", "incoming", "incoming/{name}", "blob", lambda blob: None), blob_store)
    for n in range(3):
        await blob_store.put("incoming", f"u/{n}.jpg", b"x")
    await watcher.poll_once()
    await blob_store.delete("incoming", "u/0.jpg")  # ingestion moved it to originals
    await watcher.poll_once()
    assert set(watcher.seen) == {"u/1.jpg", "u/2.jpg"}
