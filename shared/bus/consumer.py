"""Drives a handler from a subscription the way the Functions host drives a Service Bus trigger.

host.json `autoCompleteMessages: true` semantics: the lock is renewed while the
handler runs (up to `max_renewal_seconds`, like maxAutoLockRenewalDuration); a
handler that returns completes the message; one that raises abandons it with the
error text, so the transport counts the delivery and dead-letters at the maximum.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import structlog

from shared.bus.port import BusTransport, MessageLockLost, ReceivedMessage, error_text
from shared.waiting import wait_for_any

log = structlog.get_logger()

Handler = Callable[[ReceivedMessage], Awaitable[None]]

_MIN_RENEW_EVERY_SECONDS = 0.05
_MAX_RECEIVE_BACKOFF_SECONDS = 30.0


async def process_one(
    transport: BusTransport,
    msg: ReceivedMessage,
    handler: Handler,
    *,
    renew_every: float | None = None,
    max_renewal_seconds: float | None = 300.0,
) -> bool:
    """Run `handler` on one locked message and settle it; True if it was completed.

    `renew_every` None renews when half of the remaining lock has passed.
    """
    with structlog.contextvars.bound_contextvars(
        message_id=msg.message_id,
        subject=msg.subject,
        delivery_count=msg.delivery_count,
        correlation_id=msg.correlation_id,
        subscription=f"{msg.topic}/{msg.subscription}",
    ):
        log.debug("bus.message_received")
        handler_done = asyncio.Event()
        renewer = asyncio.create_task(_keep_locked(transport, msg, handler_done, renew_every, max_renewal_seconds))
        error: str | None = None
        started = asyncio.get_running_loop().time()
        try:
            await handler(msg)
        except Exception as exc:
            error = error_text(exc)
        finally:
            handler_done.set()
            await renewer
        elapsed_ms = round((asyncio.get_running_loop().time() - started) * 1000, 1)
        if error is None:
            return await _complete(transport, msg, elapsed_ms)
        await _abandon(transport, msg, error, elapsed_ms)
        return False


async def _complete(transport: BusTransport, msg: ReceivedMessage, elapsed_ms: float) -> bool:
    try:
        await transport.complete(msg)
    except MessageLockLost:
        log.warning("bus.complete_lock_lost", duration_ms=elapsed_ms, note="the message will be redelivered")
        return False
    except Exception as exc:  # unsettled: redelivered when the lock expires
        log.warning("bus.complete_failed", duration_ms=elapsed_ms, error=error_text(exc))
        return False
    log.info("bus.message_completed", duration_ms=elapsed_ms)
    return True


async def _abandon(transport: BusTransport, msg: ReceivedMessage, error: str, elapsed_ms: float) -> None:
    log.warning("bus.handler_failed", error=error, duration_ms=elapsed_ms)
    try:
        await transport.abandon(msg, error)
    except MessageLockLost:
        log.warning("bus.abandon_lock_lost", note="the lock expired; the message is redelivered anyway")
    except Exception as exc:  # unsettled: redelivered when the lock expires
        log.warning("bus.abandon_failed", error=error_text(exc))


async def _keep_locked(
    transport: BusTransport,
    msg: ReceivedMessage,
    handler_done: asyncio.Event,
    renew_every: float | None,
    max_renewal_seconds: float | None,
) -> None:
    loop = asyncio.get_running_loop()
    give_up_at = None if max_renewal_seconds is None else loop.time() + max_renewal_seconds
    while True:
        pause = renew_every if renew_every is not None else _half_the_remaining_lock(msg)
        try:
            await asyncio.wait_for(handler_done.wait(), timeout=pause)
            return
        except TimeoutError:
            pass
        if give_up_at is not None and loop.time() >= give_up_at:
            log.warning("bus.lock_renewal_stopped", max_renewal_seconds=max_renewal_seconds)
            return
        try:
            msg.locked_until = await transport.renew_lock(msg)
        except MessageLockLost:
            log.warning("bus.lock_lost_while_handling", note="another delivery may run concurrently")
            return
        except Exception as exc:  # a failed renewal is retried on the next tick
            log.warning("bus.lock_renewal_failed", error=error_text(exc))


def _half_the_remaining_lock(msg: ReceivedMessage) -> float:
    remaining = (msg.locked_until - datetime.now(UTC)).total_seconds()
    return max(remaining / 2, _MIN_RENEW_EVERY_SECONDS)


class SubscriptionConsumer:
    """Receives from one subscription and runs up to `max_concurrent` handlers at a time."""

    def __init__(
        self,
        transport: BusTransport,
        topic: str,
        subscription: str,
        handler: Handler,
        *,
        max_concurrent: int = 16,
        renew_every: float | None = None,
        max_renewal_seconds: float | None = 300.0,
        receive_wait_seconds: float = 1.0,
    ) -> None:
        """`receive_wait_seconds` bounds one receive call, hence how long `stop` may take to be noticed."""
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.transport = transport
        self.topic = topic
        self.subscription = subscription
        self.handler = handler
        self.max_concurrent = max_concurrent
        self.renew_every = renew_every
        self.max_renewal_seconds = max_renewal_seconds
        self.receive_wait_seconds = receive_wait_seconds

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set, then let the handlers in flight finish and settle."""
        in_flight: set[asyncio.Task[bool]] = set()
        failures = 0
        try:
            while not stop.is_set():
                free = self.max_concurrent - len(in_flight)
                if free == 0:
                    await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                try:
                    messages = await self.transport.receive(
                        self.topic, self.subscription, max_messages=free, max_wait_seconds=self.receive_wait_seconds
                    )
                    failures = 0
                except Exception as exc:  # the consumer outlives a broker or database outage
                    failures += 1
                    log.warning(
                        "bus.receive_failed",
                        subscription=f"{self.topic}/{self.subscription}",
                        error=error_text(exc),
                        attempt=failures,
                    )
                    await wait_for_any(stop, timeout=min(0.1 * 2**failures, _MAX_RECEIVE_BACKOFF_SECONDS))
                    continue
                for msg in messages:
                    task = asyncio.create_task(self._process(msg))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
        except asyncio.CancelledError:
            # Not a graceful stop: unsettled messages come back when their locks expire.
            for task in in_flight:
                task.cancel()
            raise
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def _process(self, msg: ReceivedMessage) -> bool:
        return await process_one(
            self.transport,
            msg,
            self.handler,
            renew_every=self.renew_every,
            max_renewal_seconds=self.max_renewal_seconds,
        )
