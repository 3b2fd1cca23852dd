"""The fallback image classifier: EfficientNet-Lite0 on ImageNet-1k, exported once to ONNX.

The model file, its licence and the script that exported it are in models/efficientnet_lite0/.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from shared.ml import ModelLoadError
from shared.ml.images import center_crop_array
from shared.ml.sessions import TensorSpec, fixed_dim, load_session
from shared.ml.vectors import softmax

PACKAGED_CLASSIFIER = Path(__file__).resolve().parent / "models" / "efficientnet_lite0" / "model.onnx"

# The TensorFlow EfficientNet-Lite release scales pixels to about [-1, 1]; the converted weights expect the same.
_MEAN, _STD = 127.0, 128.0
# ImageNet evaluation crop: resize the shortest side to size / 0.875, then take the central size x size.
_CROP_FRACTION = 0.875


class ImageClassifier:
    """(N, 3, S, S) float32 in, (N, classes) logits out; gives class probabilities for PIL images."""

    def __init__(self, model_path: Path, *, classes: int, intra_op_threads: int = 0) -> None:
        self._session = load_session(
            model_path,
            what="image classifier",
            setting="ML_CLASSIFIER_MODEL_PATH",
            inputs=[TensorSpec(None, (None, 3, None, None))],
            outputs=[TensorSpec(None, (None, classes))],
            intra_op_threads=intra_op_threads,
        )
        height = fixed_dim(self._session, output=False, index=0, axis=2)
        width = fixed_dim(self._session, output=False, index=0, axis=3)
        if height is None or height != width:
            raise ModelLoadError(
                f"image classifier: {model_path} must take square images of a fixed size, got {height}x{width}"
            )
        self.size = height
        self.classes = classes
        self._input = self._session.get_inputs()[0].name

    def preprocess(self, image: Image.Image) -> np.ndarray:
        pixels = center_crop_array(image, self.size, resize_to=round(self.size / _CROP_FRACTION))
        return ((pixels - _MEAN) / _STD).transpose(2, 0, 1)

    def probabilities(self, images: Sequence[Image.Image]) -> np.ndarray:
        if not images:
            return np.zeros((0, self.classes), dtype=np.float32)
        batch = np.stack([self.preprocess(image) for image in images]).astype(np.float32)
        logits = self._session.run(None, {self._input: batch})[0]
        return softmax(logits)
