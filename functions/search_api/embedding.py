"""Query text -> query vector for the semantic leg: cached, and concurrent misses encoded in one model call.

A vector depends only on the text and the model, so the cache lives with one encoder (a new model is a new
encoder, hence a new QueryEmbedder with an empty cache) and is keyed by the text with its runs of whitespace
made one space, which is also the text the model is given (the tokenizers split on whitespace anyway; the
result cache keys queries the same way). Repeated queries then skip the model even after the result cache
dropped their pages.

Misses that arrive while the model is busy wait and go in its next call together (one call at a time): a
batch costs the model about half the CPU per text of one text alone (MAX_BATCH), and a text already waiting
or being encoded is not encoded twice.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

import numpy as np

from shared.ml import TextEncoder

DEFAULT_CACHED = 4096
# Texts per model call. CPU per text of MiniLM, one thread (2026-12-07, load 7): 7.5 ms alone, 4.1-4.5 in
# fours, 3.8-4.0 in eights, 3.7 in sixteens; a call of 8 takes about 50 ms there, which a miss may wait.
MAX_BATCH = 8


def query_text(text: str) -> str:
    """The text as it is encoded and cached: runs of whitespace as one space, none at the ends."""
    return " ".join(text.split())


class QueryEmbedder:
    """Text -> query vector; `cache_size` vectors kept (least recently used go first; 0: none kept)."""

    def __init__(self, encoder: TextEncoder, cache_size: int = DEFAULT_CACHED, max_batch: int = MAX_BATCH) -> None:
        self.encoder = encoder
        self.cache_size, self.max_batch = cache_size, max_batch
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()  # float32, 1.5 kB per 384-d vector
        self._pending: dict[str, asyncio.Future[np.ndarray]] = {}  # waiting or being encoded
        self._queue: list[str] = []  # texts waiting for the next model call
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.calls = 0  # model calls made (a batch is one)

    async def embed(self, text: str) -> list[float]:
        key = query_text(text)
        vector = self._cache.get(key)
        if vector is not None:
            self._cache.move_to_end(key)
            return vector.tolist()
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # waiters and a drain of a loop that has gone (tests) would never finish
            self._loop, self._pending, self._queue, self._worker = loop, {}, [], None
        future = self._pending.get(key)
        if future is None:
            future = loop.create_future()
            self._pending[key] = future
            self._queue.append(key)
            if self._worker is None or self._worker.done():
                self._worker = asyncio.create_task(self._drain())
        # Shielded: a caller that goes away (a client hung up) leaves the others their vector.
        return (await asyncio.shield(future)).tolist()

    async def _drain(self) -> None:
        """Encode what is queued, a batch per model call, until nothing is left (one drain at a time)."""
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            try:
                vectors = await asyncio.to_thread(self._encode, batch)
            except Exception as exc:  # every waiter of this batch gets the error; later batches still run
                for key in batch:
                    self._settle(key, error=exc)
                continue
            for key, vector in zip(batch, vectors, strict=True):
                self._remember(key, vector)
                self._settle(key, vector=vector)

    def _encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        return np.asarray(self.encoder.encode(texts), dtype=np.float32)

    def _remember(self, key: str, vector: np.ndarray) -> None:
        if self.cache_size <= 0:
            return
        kept = vector.copy()  # a row of the batch's array would keep the whole batch alive
        kept.flags.writeable = False  # handed to every later caller
        self._cache[key] = kept
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _settle(self, key: str, *, vector: np.ndarray | None = None, error: BaseException | None = None) -> None:
        future = self._pending.pop(key, None)
        if future is None or future.done():  # None: the waiters' loop was replaced (see embed)
            return
        if error is None:
            future.set_result(vector)
        else:
            future.set_exception(error)
            future.add_done_callback(lambda f: f.exception())  # retrieved even if every waiter left
