"""Inference batches form from the messages in flight; a lone image never waits; one bad image fails alone."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from PIL import Image

from functions.processing.batching import BatchingAnalyzer
from shared.ml import ImageAnalysis, ModelInputError


class FakeAnalyzer:
    """Stands in for shared.ml's analyzer: tags each image with its width; refuses 1-pixel-wide images."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.release = threading.Event()
        self.release.set()

    def analyze(self, images):
        self.release.wait(5)
        self.calls.append(len(images))
        if any(img.width == 1 for img in images):
            raise ModelInputError("image too small")
        return [ImageAnalysis([(f"w{img.width}", 1.0)], np.zeros(384, np.float32), 0.0) for img in images]


def image(width: int) -> Image.Image:
    return Image.new("RGB", (width, 10))


async def test_a_lone_image_runs_at_once_in_a_batch_of_one():
    fake = FakeAnalyzer()
    batcher = BatchingAnalyzer(fake, max_batch=8)
    result = await asyncio.wait_for(batcher.analyze(image(7)), 5)
    assert result.tags == [("w7", 1.0)]
    assert fake.calls == [1]


async def test_images_arriving_while_the_model_is_busy_go_together_in_the_next_batch():
    fake = FakeAnalyzer()
    fake.release.clear()  # the first run blocks until released
    batcher = BatchingAnalyzer(fake, max_batch=4)
    first = asyncio.create_task(batcher.analyze(image(100)))
    await asyncio.sleep(0.05)
    rest = [asyncio.create_task(batcher.analyze(image(101 + i))) for i in range(6)]
    await asyncio.sleep(0.05)
    fake.release.set()
    results = await asyncio.wait_for(asyncio.gather(first, *rest), 5)
    assert [r.tags[0][0] for r in results] == [f"w{100 + i}" for i in range(7)]  # each gets its own answer
    assert fake.calls == [1, 4, 2]  # capped at max_batch


async def test_a_bad_image_fails_alone_and_its_batch_mates_still_get_results():
    fake = FakeAnalyzer()
    fake.release.clear()
    batcher = BatchingAnalyzer(fake, max_batch=8)
    blocker = asyncio.create_task(batcher.analyze(image(50)))
    await asyncio.sleep(0.05)
    good = asyncio.create_task(batcher.analyze(image(60)))
    bad = asyncio.create_task(batcher.analyze(image(1)))
    await asyncio.sleep(0.05)
    fake.release.set()
    await asyncio.wait_for(asyncio.wait([blocker, good, bad]), 5)
    assert good.result().tags == [("w60", 1.0)]
    with pytest.raises(ModelInputError):
        bad.result()


async def test_a_wrong_number_of_results_is_an_error_not_a_mix_up():
    class Short(FakeAnalyzer):
        def analyze(self, images):
            return super().analyze(images)[:-1]

    with pytest.raises(RuntimeError, match="0 results for 1 images"):
        await BatchingAnalyzer(Short()).analyze(image(5))
