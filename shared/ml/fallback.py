"""The packaged analyzer: ImageNet labels -> tags, and the label embeddings they weight -> the image vector.

The image vector is the probability-weighted mean of the text embeddings of its top labels, so an image
of a tabby lies near the text "cat" in the text encoder's space: images and queries share one space
without a CLIP model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from shared.ml import ImageAnalysis
from shared.ml.classifier import ImageClassifier
from shared.ml.images import check_images, shrink
from shared.ml.labels import Label, parent_members
from shared.ml.safety import SafetyScorer
from shared.ml.tagging import tags_from_probabilities
from shared.ml.vectors import weighted_label_vector

# Labels whose embeddings make up the image vector: enough to blend near-synonyms ("tabby", "tiger cat",
# "Egyptian Mau"), few enough that the long tail of unlikely classes does not wash the vector out.
VECTOR_TOP_LABELS = 5
# Both models crop about 224 px; shrinking once to this first makes a 12 MP input cheap for both.
_WORKING_SIDE = 320


class FallbackImageAnalyzer:
    def __init__(
        self,
        classifier: ImageClassifier,
        safety: SafetyScorer,
        labels: Sequence[Label],
        label_vectors: np.ndarray,
        *,
        max_batch: int = 16,
        max_tags: int = 10,
        min_tag_confidence: float = 0.02,
    ) -> None:
        if label_vectors.shape[0] != len(labels) or classifier.classes != len(labels):
            raise ValueError(
                f"{classifier.classes} classifier outputs, {len(labels)} labels and "
                f"{label_vectors.shape[0]} label vectors must agree"
            )
        self.dimension = int(label_vectors.shape[1])
        self._classifier = classifier
        self._safety = safety
        self._labels = list(labels)
        # Parent groups are defined over ImageNet-1k; load_labels gives other label sets no parents.
        self._parents = parent_members() if any(label.parent for label in labels) else {}
        self._label_vectors = label_vectors
        self._max_batch = max_batch
        self._max_tags = max_tags
        self._min_tag_confidence = min_tag_confidence

    def analyze(self, images: Sequence[Image.Image]) -> list[ImageAnalysis]:
        check_images(images)
        results: list[ImageAnalysis] = []
        for start in range(0, len(images), self._max_batch):
            chunk = [shrink(image, _WORKING_SIDE) for image in images[start : start + self._max_batch]]
            probabilities = self._classifier.probabilities(chunk)
            safety = self._safety.scores(chunk)
            for probs, score in zip(probabilities, safety, strict=True):
                results.append(
                    ImageAnalysis(
                        tags=tags_from_probabilities(
                            probs,
                            self._labels,
                            self._parents,
                            max_tags=self._max_tags,
                            min_confidence=self._min_tag_confidence,
                        ),
                        embedding=weighted_label_vector(probs, self._label_vectors, VECTOR_TOP_LABELS),
                        safety_score=float(score),
                    )
                )
        return results
