"""Webhook delivery, signed exactly as Stripe signs.

`Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256(endpoint secret, f"{t}.{raw body}")>`, the whole
`whsec_...` string being the key; each attempt is signed afresh with its own timestamp, as Stripe does.

Endpoints are of two kinds, as in Stripe's dashboard: an account endpoint receives the platform's own
events (checkout, refunds, subscriptions, transfers); a Connect endpoint receives the events of connected
accounts (`account.updated`), which carry the account's id in the event's `account` field. Each endpoint
signs with its own secret.

Delivery runs in the background, so the request that caused an event never waits for it. Events of one
stream (one checkout, one subscription) go out in order: a failing event is retried with backoff before
the next of its stream is sent; other streams carry on. Stripe itself retries for up to three days
(and does not promise order); locally a few quick retries are enough, then the event is given up and
stays readable at GET /v1/events/{id}.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx
import structlog

log = structlog.get_logger("stripe_standin")

DEFAULT_RETRY_DELAYS: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@dataclass(frozen=True)
class Endpoint:
    url: str
    secret: str
    connect: bool = False  # True: events of connected accounts only; False: the platform's own events only

    def wants(self, event: dict) -> bool:
        return self.connect == bool(event.get("account"))


@dataclass
class Attempt:
    event_id: str
    event_type: str
    url: str
    attempt: int
    status: int | None  # None: no answer (connection refused, timeout)
    delivered: bool


@dataclass
class WebhookDispatcher:
    endpoints: Sequence[Endpoint]
    retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS
    timeout: float = 10.0
    clock: Callable[[], float] = time.time
    attempts: deque[Attempt] = field(default_factory=lambda: deque(maxlen=1000))  # the latest, for debugging
    _queues: dict[tuple[Endpoint, str], deque[tuple[dict, bytes]]] = field(default_factory=dict)
    _workers: dict[tuple[Endpoint, str], asyncio.Task] = field(default_factory=dict)
    _client: httpx.AsyncClient | None = None

    def enqueue(self, event: dict, stream: str) -> None:
        """Called on the stand-in's loop; returns at once."""
        payload = json.dumps(event, indent=2).encode()  # Stripe sends pretty-printed JSON
        for endpoint in self.endpoints:
            if not endpoint.wants(event):
                continue
            key = (endpoint, stream)
            self._queues.setdefault(key, deque()).append((event, payload))
            if key not in self._workers:
                self._workers[key] = asyncio.get_running_loop().create_task(self._drain(key))

    async def _drain(self, key: tuple[Endpoint, str]) -> None:
        queue = self._queues[key]
        try:
            while queue:
                event, payload = queue[0]
                try:
                    await self._deliver(key[0], event, payload)
                except Exception:  # a bug here must not silence the stream's later events
                    log.exception("stripe webhook delivery crashed", url=key[0].url, event_id=event["id"])
                queue.popleft()
        finally:
            # No await between the emptiness check and here: enqueue() cannot slip an event in unseen.
            del self._workers[key]
            if not queue:
                del self._queues[key]

    async def _deliver(self, endpoint: Endpoint, event: dict, payload: bytes) -> bool:
        url = endpoint.url
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        for attempt, delay in enumerate((0.0, *self.retry_delays), start=1):
            if delay:
                await asyncio.sleep(delay)
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                "User-Agent": USER_AGENT,
                "Stripe-Signature": signature_header(payload, endpoint.secret, int(self.clock())),
            }
            status = None
            try:
                response = await self._client.post(url, content=payload, headers=headers)
                status = response.status_code
            except httpx.HTTPError as exc:
                log.info("stripe webhook not answered", url=url, event_id=event["id"], error=repr(exc))
            delivered = status is not None and 200 <= status < 300
            self.attempts.append(Attempt(event["id"], event["type"], url, attempt, status, delivered))
            if delivered:
                log.debug("stripe webhook delivered", url=url, event_id=event["id"], attempt=attempt)
                return True
            log.info("stripe webhook failed", url=url, event_id=event["id"], type=event["type"], status=status,
                     attempt=attempt)  # fmt: skip
        log.warning("stripe webhook given up", url=url, event_id=event["id"], type=event["type"], attempts=attempt)
        return False

    async def idle(self) -> None:
        """Wait until everything queued so far was delivered or given up."""
        while self._workers:
            await asyncio.gather(*list(self._workers.values()), return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._workers.values()):
            task.cancel()
        await asyncio.gather(*list(self._workers.values()), return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
