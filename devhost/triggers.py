"""Non-HTTP triggers: topic subscriptions from the bus transport, blobs from a watcher, timers on schedule."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from datetime import UTC, datetime

import azure.functions as func
import structlog
from azure.functions.servicebus import ServiceBusMessage
from azure.functions.timer import TimerRequest
from croniter import croniter

from devhost.app_loader import BlobFunction, TimerFunction, TopicFunction, invoke
from shared.bus.consumer import SubscriptionConsumer
from shared.bus.port import BusTransport, ReceivedMessage
from shared.storage.port import BlobNotFound, BlobStore
from shared.waiting import wait_for_any

log = structlog.get_logger()


def to_functions_message(message: ReceivedMessage) -> ServiceBusMessage:
    """The binding object the Python worker builds from a Service Bus delivery."""
    return ServiceBusMessage(
        body=json.dumps(message.body).encode(),
        message_id=message.message_id,
        content_type="application/json",
        correlation_id=message.correlation_id,
        delivery_count=message.delivery_count,
        enqueued_time_utc=message.enqueued_time,
        locked_until=message.locked_until,
        lock_token=message.lock_token,
        subject=message.subject,
        label=message.subject,
        application_properties=dict(message.application_properties),
        user_properties=dict(message.application_properties),
    )


def topic_consumer(fn: TopicFunction, bus: BusTransport, max_concurrent: int) -> SubscriptionConsumer:
    async def handler(message: ReceivedMessage) -> None:
        # autoCompleteMessages=true (host.json): returning completes, raising abandons.
        await invoke(fn, to_functions_message(message))

    return SubscriptionConsumer(bus, fn.topic, fn.subscription, handler, max_concurrent=max_concurrent)


class BlobWatcher:
    """Plays Event Grid's part for `source=EventGrid` blob triggers: each new or changed blob fires once.

    Blobs already in the container at start fire again: a handler must be idempotent (ingestion is,
    and moves every blob it has decided on out of `incoming`). A failing blob is retried with
    exponential backoff up to MAX_ATTEMPTS times, as Event Grid retries a failed delivery: a handler
    fails on an outage (database, storage), not on a bad file, so the retries must outlast one.
    """

    MAX_ATTEMPTS = 10
    FIRST_RETRY_SECONDS = 1.0
    MAX_RETRY_SECONDS = 60.0  # attempts span about 4 minutes before a blob is given up

    def __init__(self, fn: BlobFunction, storage: BlobStore, poll_seconds: float = 0.5, max_parallel: int = 8) -> None:
        self.fn = fn
        self.storage = storage
        self.poll_seconds = poll_seconds
        # host.json extensions.blobs.maxDegreeOfParallelism: blobs handled at once, as the host does.
        self.max_parallel = max(1, max_parallel)
        self.seen: dict[str, str] = {}
        self.failures: dict[str, int] = {}
        self.retry_at: dict[str, float] = {}  # name@etag -> monotonic time of its next attempt
        prefix = fn.path.split("/", 1)[1] if "/" in fn.path else ""
        self.prefix = prefix.split("{", 1)[0]

    async def poll_once(self) -> int:
        fired = 0
        listed: set[str] = set()
        in_flight: set[asyncio.Task[bool]] = set()

        async def settle(wait_for: int) -> None:
            nonlocal fired, in_flight
            while len(in_flight) > wait_for:
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                fired += sum(1 for task in done if task.result())

        async for blob in self.storage.list(self.fn.container, prefix=self.prefix):
            listed.add(blob.name)
            key = f"{blob.name}@{blob.etag}"
            if self.seen.get(blob.name) == blob.etag or self.failures.get(key, 0) >= self.MAX_ATTEMPTS:
                continue
            if self.retry_at.get(key, 0.0) > time.monotonic():
                continue
            await settle(self.max_parallel - 1)
            in_flight.add(asyncio.create_task(self._fire(blob.name, blob.etag, dict(blob.metadata or {}))))
        await settle(0)
        # Forget blobs that left the container (ingestion moves each one out): a 5M-file migration
        # must not grow these maps without bound.
        self.seen = {name: etag for name, etag in self.seen.items() if name in listed}
        self.failures = {k: n for k, n in self.failures.items() if k.rsplit("@", 1)[0] in listed}
        self.retry_at = {k: t for k, t in self.retry_at.items() if k in self.failures}
        return fired

    async def _fire(self, name: str, etag: str, metadata: dict[str, str]) -> bool:
        """Invoke the function for one blob; True if it ran to completion."""
        key = f"{name}@{etag}"
        try:
            data, info = await self.storage.get_with_info(self.fn.container, name)
        except BlobNotFound:  # deleted between list and get: nothing to fire
            return False
        stream = func.blob.InputStream(
            data=data,
            name=f"{self.fn.container}/{name}",
            uri=f"{self.fn.container}/{name}",
            length=len(data),
            metadata=metadata,
            # What the Functions host passes as the trigger's Properties, from the same download.
            blob_properties={
                "ETag": info.etag,
                "ContentLength": info.size,
                "ContentType": info.content_type,
                "LastModified": info.last_modified.isoformat(),
            },
        )
        try:
            await invoke(self.fn, stream)
        except Exception:
            self.failures[key] = self.failures.get(key, 0) + 1
            delay = min(self.FIRST_RETRY_SECONDS * 2 ** (self.failures[key] - 1), self.MAX_RETRY_SECONDS)
            self.retry_at[key] = time.monotonic() + delay
            log.exception(
                "blob trigger failed",
                function=self.fn.name,
                blob=name,
                attempt=self.failures[key],
                poisoned=self.failures[key] >= self.MAX_ATTEMPTS,
            )
            return False
        self.seen[name] = etag
        return True

    async def run(self, stop: asyncio.Event) -> None:
        failed_polls = 0
        while not stop.is_set():
            try:
                await self.poll_once()
                failed_polls = 0
            except Exception:
                failed_polls += 1
                log.exception("blob watcher poll failed", function=self.fn.name, attempt=failed_polls)
            # Storage down: back off rather than hammer it (and the log) twice a second.
            pause = min(self.poll_seconds * 2**failed_polls, self.MAX_RETRY_SECONDS / 2)
            await wait_for_any(stop, timeout=pause)


_SETTING_REF = re.compile(r"^%([A-Za-z0-9_]+)%$")


def resolve_schedule(schedule: str) -> str:
    """`%NAME%` in a trigger names an app setting; like the Functions host, only the settings count."""
    match = _SETTING_REF.match(schedule.strip())
    if match is None:
        return schedule
    name = match.group(1)
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"timer schedule refers to app setting {name}, which is not set (local.settings.json)")
    return value


class TimerDriver:
    def __init__(self, fn: TimerFunction, schedule: str) -> None:
        self.fn = fn
        self.schedule = schedule
        if not croniter.is_valid(schedule, second_at_beginning=True):
            raise ValueError(f"{fn.name}: invalid NCRONTAB schedule {schedule!r}")

    async def run(self, stop: asyncio.Event) -> None:
        first = self.fn.run_on_startup
        last_due: datetime | None = None
        while not stop.is_set():
            # Next occurrence from now (a slow run skips ticks rather than bunching them), never at or
            # before the last one (a clock stepping back must not fire the same tick twice).
            start = datetime.now(UTC) if last_due is None else max(datetime.now(UTC), last_due)
            due = start if first else croniter(self.schedule, start, second_at_beginning=True).get_next(datetime)
            first = False
            last_due = due
            delay = (due - datetime.now(UTC)).total_seconds()
            if delay > 0 and await wait_for_any(stop, timeout=delay):
                return
            past_due = (datetime.now(UTC) - due).total_seconds() > 1
            try:
                await invoke(self.fn, TimerRequest(past_due=past_due))
            except Exception:
                log.exception("timer function failed", function=self.fn.name)
