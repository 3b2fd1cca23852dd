"""The query embedder: a vector per query text, from its cache or from one model call for every waiting miss."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from functions.search_api.embedding import QueryEmbedder


class GatedEncoder:
    """Records each model call; while `gate` is clear, a call waits (so misses pile up behind it)."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self.fail_on = fail_on

    def encode(self, texts):
        self.calls.append(list(texts))
        self.started.set()
        self.gate.wait(5)
        if self.fail_on in texts:
            raise RuntimeError("model failed")
        # A vector that depends on the text alone: its length in the first component.
        vectors = np.zeros((len(texts), 4), dtype=np.float32)
        vectors[:, 0] = [len(t) for t in texts]
        return vectors


async def hold_the_model(embedder: QueryEmbedder, encoder: GatedEncoder, text: str) -> asyncio.Task:
    """Start a miss for `text` and return once the model is busy with it."""
    encoder.gate.clear()
    encoder.started.clear()
    task = asyncio.create_task(embedder.embed(text))
    await asyncio.to_thread(encoder.started.wait, 5)
    return task


async def test_a_repeated_query_is_encoded_once():
    encoder = GatedEncoder()
    embedder = QueryEmbedder(encoder)

    first = await embedder.embed("sunset over the sea")
    second = await embedder.embed("sunset over the sea")

    assert first == second == [19.0, 0.0, 0.0, 0.0]
    assert encoder.calls == [["sunset over the sea"]]


async def test_spacing_does_not_make_another_query():
    encoder = GatedEncoder()
    embedder = QueryEmbedder(encoder)

    await embedder.embed("  red   barn ")
    await embedder.embed("red barn")

    assert encoder.calls == [["red barn"]]  # the model sees the text as it is cached


async def test_misses_that_arrive_while_the_model_is_busy_share_its_next_call():
    encoder = GatedEncoder()
    embedder = QueryEmbedder(encoder)
    busy = await hold_the_model(embedder, encoder, "first")

    waiting = [asyncio.create_task(embedder.embed(t)) for t in ("cat", "dog", "cat", "horse")]
    await asyncio.sleep(0)
    encoder.gate.set()
    vectors = await asyncio.gather(busy, *waiting)

    assert encoder.calls == [["first"], ["cat", "dog", "horse"]]  # the second "cat" waited for the first
    assert [v[0] for v in vectors] == [5, 3, 3, 3, 5]


async def test_a_model_call_takes_at_most_max_batch_texts():
    encoder = GatedEncoder()
    embedder = QueryEmbedder(encoder, max_batch=2)
    busy = await hold_the_model(embedder, encoder, "first")

    waiting = [asyncio.create_task(embedder.embed(t)) for t in ("a", "b", "c")]
    await asyncio.sleep(0)
    encoder.gate.set()
    await asyncio.gather(busy, *waiting)

    assert encoder.calls == [["first"], ["a", "b"], ["c"]]


async def test_the_least_recently_used_vector_goes_first():
    encoder = GatedEncoder()
    embedder = QueryEmbedder(encoder, cache_size=2)

    for text in ("a", "b", "a", "c", "a", "b"):  # "b" was the least recently used when "c" came
        await embedder.embed(text)

    assert encoder.calls == [["a"], ["b"], ["c"], ["b"]]


async def test_a_cache_of_none_encodes_every_time():
    encoder = GatedEncoder()
    embedder = QueryEmbedder(encoder, cache_size=0)

    await embedder.embed("a")
    await embedder.embed("a")

    assert encoder.calls == [["a"], ["a"]]


async def test_a_failed_model_call_fails_its_waiters_only():
    encoder = GatedEncoder(fail_on="bad")
    embedder = QueryEmbedder(encoder)
    busy = await hold_the_model(embedder, encoder, "bad")

    later = asyncio.create_task(embedder.embed("good"))
    await asyncio.sleep(0)
    encoder.gate.set()

    with pytest.raises(RuntimeError, match="model failed"):
        await busy
    assert (await later)[0] == 4
    with pytest.raises(RuntimeError, match="model failed"):
        await embedder.embed("bad")  # nothing was cached: the model is asked again
    assert encoder.calls == [["bad"], ["good"], ["bad"]]


async def test_a_caller_that_goes_away_leaves_the_others_their_vector():
    encoder = GatedEncoder()
    embedder = QueryEmbedder(encoder)
    first = await hold_the_model(embedder, encoder, "lake")
    second = asyncio.create_task(embedder.embed("lake"))
    await asyncio.sleep(0)

    first.cancel()
    encoder.gate.set()

    assert (await second)[0] == 4
    assert encoder.calls == [["lake"]]
