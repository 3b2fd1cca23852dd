"""One way to pause a background loop: until any of some events is set, or a timeout passes."""

from __future__ import annotations

import asyncio


async def wait_for_any(*events: asyncio.Event, timeout: float) -> bool:  # noqa: ASYNC109 - a pause, not a deadline
    """Wait up to `timeout` seconds; True as soon as one of `events` is set, False on timeout."""
    if any(e.is_set() for e in events):
        return True
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=max(timeout, 0), return_when=asyncio.FIRST_COMPLETED)
        return bool(done)
    finally:
        for w in waiters:
            w.cancel()
