"""wait_for_any: a pause that ends early when an event is set."""

import asyncio

from shared.waiting import wait_for_any


async def test_it_returns_true_as_soon_as_an_event_is_set():
    stop, wake = asyncio.Event(), asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, wake.set)
    assert await wait_for_any(stop, wake, timeout=5) is True


async def test_it_returns_false_when_the_timeout_passes_first():
    assert await wait_for_any(asyncio.Event(), timeout=0.01) is False


async def test_an_event_already_set_returns_at_once():
    stop = asyncio.Event()
    stop.set()
    assert await wait_for_any(stop, timeout=0) is True
