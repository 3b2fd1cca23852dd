"""Group commit of the migration's manifest writes: each caller waits for its own write, and writes asked for
while one runs go together in the next."""

from __future__ import annotations

import asyncio

import pytest

from functions.ingestion.manifest import GroupCommit


async def test_writes_asked_for_while_one_runs_go_together_and_each_caller_gets_its_own_result():
    written: list[list[int]] = []

    async def write(items: list[int]) -> list[int]:
        written.append(items)
        await asyncio.sleep(0.01)  # the database round trip
        return [i * 10 for i in items]

    group = GroupCommit(write)
    first = asyncio.ensure_future(group.submit(0))
    await asyncio.sleep(0.001)  # its write is under way
    results = await asyncio.gather(first, *(group.submit(i) for i in range(1, 9)))

    assert results == [i * 10 for i in range(9)]
    assert written == [[0], [1, 2, 3, 4, 5, 6, 7, 8]]  # the first went alone at once; the rest waited for it
    assert group.groups == 2


async def test_a_failed_write_fails_every_caller_of_its_group_and_the_next_group_still_runs():
    async def write(items: list[str]) -> list[str]:
        await asyncio.sleep(0)
        if "bad" in items:
            raise ConnectionError("database went away")
        return items

    group = GroupCommit(write)
    first = asyncio.ensure_future(group.submit("bad"))
    await asyncio.sleep(0)  # the first group is now being written
    second = [asyncio.ensure_future(group.submit(x)) for x in ("a", "b")]

    with pytest.raises(ConnectionError):
        await first
    assert await asyncio.gather(*second) == ["a", "b"]


async def test_closing_cancels_a_write_under_way_and_its_waiters():
    started, finished = asyncio.Event(), []

    async def write(items: list[str]) -> list[str]:
        started.set()
        await asyncio.sleep(10)  # a round trip that the end of the run interrupts
        finished.extend(items)
        return items

    group = GroupCommit(write)
    waiter = asyncio.ensure_future(group.submit("a"))
    await started.wait()

    await group.close()

    assert (finished == [] and waiter.cancelled()) or isinstance(waiter.exception(), asyncio.CancelledError)
