"""Batches inference across the messages a worker has in flight, without making a lone image wait.

Handlers each ask for one image's analysis. While the model is busy with a batch,
new requests queue up and go together in the next call: under load the batches grow
by themselves (one ONNX run over 8 images costs far less than 8 runs), and when the
worker is idle an image runs at once. Inference runs on one dedicated thread (ONNX
Runtime parallelises inside a run), off the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from PIL import Image

from shared.ml import ImageAnalysis


class SyncImageAnalyzer(Protocol):
    def analyze(self, images: Sequence[Image.Image]) -> list[ImageAnalysis]: ...


class BatchingAnalyzer:
    def __init__(self, analyzer: SyncImageAnalyzer, *, max_batch: int = 16) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.analyzer = analyzer
        self.max_batch = max_batch
        self.batch_sizes: list[int] = []  # every batch run, for logs and the benchmark
        self._pending: list[tuple[Image.Image, asyncio.Future[ImageAnalysis]]] = []
        self._runner: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference")

    @property
    def version(self) -> str | None:
        """The wrapped model set-up's version (shared.ml.tagging.model_version), when it names one."""
        return getattr(self.analyzer, "version", None) or None

    async def analyze(self, image: Image.Image) -> ImageAnalysis:
        """This image's analysis; raises what the model raised for it (e.g. ModelInputError)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[ImageAnalysis] = loop.create_future()
        self._pending.append((image, future))
        if self._runner is None or self._runner.done() or self._runner.get_loop() is not loop:
            self._runner = loop.create_task(self._drain(), name="inference-batches")
        return await future

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            batch = [(image, future) for image, future in batch if not future.done()]  # drop cancelled waiters
            if not batch:
                continue
            self.batch_sizes.append(len(batch))
            try:
                results = await loop.run_in_executor(self._executor, self._run, [image for image, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc=exc)
                    continue
                # One bad image must not fail its batch-mates: run each alone so each gets its own outcome.
                for image, future in batch:
                    try:
                        (result,) = await loop.run_in_executor(self._executor, self._run, [image])
                    except Exception as single_exc:
                        _settle(future, exc=single_exc)
                    else:
                        _settle(future, result=result)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                _settle(future, result=result)

    def _run(self, images: list[Image.Image]) -> list[ImageAnalysis]:
        results = self.analyzer.analyze(images)
        if len(results) != len(images):
            raise RuntimeError(f"the analyzer returned {len(results)} results for {len(images)} images")
        return results

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _settle(
    future: asyncio.Future[ImageAnalysis], *, result: ImageAnalysis | None = None, exc: BaseException | None = None
) -> None:
    if future.done():  # the handler was cancelled meanwhile
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]
