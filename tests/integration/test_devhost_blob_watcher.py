"""The blob watcher plays Event Grid for blob triggers: once per new or changed blob, bounded retries."""

from __future__ import annotations

import asyncio

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


async def test_a_failing_blob_is_retried_then_left_alone_after_max_attempts(blob_store):
    calls = 0

    async def broken(blob):
        nonlocal calls
        calls += 1
        raise RuntimeError("cannot decode")

    watcher = BlobWatcher(BlobFunction("ingest", "incoming", "incoming/{name}", "blob", broken), blob_store)
    watcher.FIRST_RETRY_SECONDS = 0  # no pauses between attempts here
    await blob_store.put("incoming", "bad.jpg", b"x")
    for _ in range(BlobWatcher.MAX_ATTEMPTS + 3):
        await watcher.poll_once()
    assert calls == BlobWatcher.MAX_ATTEMPTS


async def test_a_blob_failing_through_an_outage_is_retried_after_growing_pauses_and_then_handled(blob_store):
    outage = True
    calls = 0

    async def ingest(blob):
        nonlocal calls
        calls += 1
        if outage:
            raise ConnectionError("the database is restarting")

    watcher = BlobWatcher(BlobFunction("ingest", "incoming", "incoming/{name}", "blob", ingest), blob_store)
    watcher.FIRST_RETRY_SECONDS = 1.5
    await blob_store.put("incoming", "u/a.jpg", b"x")
    assert await watcher.poll_once() == 0 and calls == 1
    assert await watcher.poll_once() == 0 and calls == 1  # not before its pause
    await asyncio.sleep(1.6)
    assert await watcher.poll_once() == 0 and calls == 2
    assert await watcher.poll_once() == 0 and calls == 2  # the second pause is twice as long
    outage = False
    await asyncio.sleep(3.1)
    assert await watcher.poll_once() == 1 and calls == 3
    assert await watcher.poll_once() == 0 and calls == 3  # handled: never again


async def test_the_watcher_forgets_blobs_that_left_the_container(blob_store):
    watcher = BlobWatcher(BlobFunction("ingest", "incoming", "incoming/{name}", "blob", lambda blob: None), blob_store)
    for n in range(3):
        await blob_store.put("incoming", f"u/{n}.jpg", b"x")
    await watcher.poll_once()
    await blob_store.delete("incoming", "u/0.jpg")  # ingestion moved it to originals
    await watcher.poll_once()
    assert set(watcher.seen) == {"u/1.jpg", "u/2.jpg"}


async def test_blobs_are_handled_several_at_once_but_never_more_than_the_hosts_parallelism(blob_store):
    running = peak = 0

    async def slow(blob):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1

    watcher = BlobWatcher(
        BlobFunction("ingest", "incoming", "incoming/{name}", "blob", slow), blob_store, max_parallel=3
    )
    for n in range(8):
        await blob_store.put("incoming", f"u/{n}.jpg", b"x")
    assert await watcher.poll_once() == 8
    assert peak == 3


def test_devhost_takes_its_concurrency_from_host_json(tmp_path):
    import json

    from devhost.host import HostConcurrency, host_concurrency

    host_json = tmp_path / "host.json"
    host_json.write_text(
        json.dumps({"extensions": {"serviceBus": {"maxConcurrentCalls": 4}, "blobs": {"maxDegreeOfParallelism": 2}}})
    )
    assert host_concurrency(host_json) == HostConcurrency(max_concurrent_calls=4, blob_parallelism=2)
    host_json.write_text("{}")
    assert host_concurrency(host_json) == HostConcurrency()  # the Functions host's defaults
