"""Image analysis and text encoding on ONNX Runtime (ARCHITECTURE section 4, "ML").

Public interface other services code against. Inference is CPU-bound and synchronous:
callers run it in a thread (`await asyncio.to_thread(analyzer.analyze, images)`).

Two model sets share this interface:
- the packaged fallback: an ImageNet EfficientNet-Lite0 classifier whose label probabilities
  weight the text embeddings of those labels (all-MiniLM-L6-v2 int8), so images and text
  queries share one 384-d space; safety from Yahoo's open_nsfw;
- a real CLIP export (Immich/OpenCLIP layout) when `CLIP_MODEL_DIR` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy
import PIL.Image

# The packaged models' dimension and ML_EMBEDDING_DIM's default. A CLIP export of another size is used by
# setting ML_EMBEDDING_DIM to its size; the search index's vectors must then have that size too. Every
# analyzer and encoder also carries its actual size as `.dimension`.
EMBEDDING_DIM = 384


class ModelInputError(ValueError):
    """Permanent: this input can never be analysed (wrong mode, too small, ...). Do not retry."""


class ModelLoadError(RuntimeError):
    """A model file is missing or does not have the inputs/outputs we expect. Fix the setting, then restart."""


@dataclass(frozen=True)
class ImageAnalysis:
    tags: list[tuple[str, float]]  # (label, confidence in [0,1]), best first, at most ~10
    embedding: numpy.ndarray  # float32 (EMBEDDING_DIM,), L2-normalised
    safety_score: float  # 0 safe .. 1 explicit


@runtime_checkable
class ImageAnalyzer(Protocol):
    def analyze(self, images: Sequence[PIL.Image.Image]) -> list[ImageAnalysis]: ...


@runtime_checkable
class TextEncoder(Protocol):
    def encode(self, texts: Sequence[str]) -> numpy.ndarray: ...


_analyzer_lock = threading.Lock()
_encoder_lock = threading.Lock()
_analyzer: ImageAnalyzer | None = None
_encoder: TextEncoder | None = None


def get_image_analyzer() -> ImageAnalyzer:
    """The process-wide analyzer, built once from get_settings() on first use (thread-safe).

    Raises ModelLoadError when a configured model file is missing or has unexpected shapes.
    """
    global _analyzer
    if _analyzer is None:
        encoder = get_text_encoder()  # the label embeddings live in the text encoder's space
        with _analyzer_lock:
            if _analyzer is None:
                from shared.config import get_settings
                from shared.ml.factory import build_image_analyzer

                _analyzer = build_image_analyzer(get_settings(), encoder)
    return _analyzer


def get_text_encoder() -> TextEncoder:
    """The process-wide text encoder, in the same embedding space as get_image_analyzer()'s vectors."""
    global _encoder
    if _encoder is None:
        with _encoder_lock:
            if _encoder is None:
                from shared.config import get_settings
                from shared.ml.factory import build_text_encoder

                _encoder = build_text_encoder(get_settings())
    return _encoder


__all__ = [
    "EMBEDDING_DIM",
    "ImageAnalysis",
    "ImageAnalyzer",
    "ModelInputError",
    "ModelLoadError",
    "TextEncoder",
    "get_image_analyzer",
    "get_text_encoder",
]
