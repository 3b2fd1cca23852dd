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
from shared.ml.scenes import SceneConcept, concept_scores
from shared.ml.tagging import tags_from_probabilities
from shared.ml.vectors import l2_normalize

# Labels whose embeddings make up the image vector: enough to blend near-synonyms ("tabby", "tiger cat",
# "Egyptian Mau"), few enough that the long tail of unlikely classes does not wash the vector out.
VECTOR_TOP_LABELS = 5
# How much a fully evidenced scene concept counts in the vector against the class labels (whose weights
# sum to at most 1): scenes are what buyers search for, objects what the classifier sees.
CONCEPT_WEIGHT = 1.0
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
        concepts: Sequence[SceneConcept] = (),
        concept_vectors: np.ndarray | None = None,
        concept_weight: float = CONCEPT_WEIGHT,
        version: str = "",
    ) -> None:
        if label_vectors.shape[0] != len(labels) or classifier.classes != len(labels):
            raise ValueError(
                f"{classifier.classes} classifier outputs, {len(labels)} labels and "
                f"{label_vectors.shape[0]} label vectors must agree"
            )
        self.dimension = int(label_vectors.shape[1])
        self.version = version  # shared.ml.tagging.model_version of this set-up; stored with each analysis
        self._classifier = classifier
        self._safety = safety
        self._labels = list(labels)
        # Parent groups are defined over ImageNet-1k; load_labels gives other label sets no parents.
        self._parents = parent_members() if any(label.parent for label in labels) else {}
        self._label_vectors = label_vectors
        self._max_batch = max_batch
        self._max_tags = max_tags
        self._min_tag_confidence = min_tag_confidence
        self._concepts = list(concepts)
        self._concept_vectors = concept_vectors if self._concepts else None
        self._concept_weight = concept_weight
        if self._concept_vectors is not None and self._concept_vectors.shape != (len(concepts), self.dimension):
            raise ValueError("one concept vector of the label vectors' dimension per scene concept")

    def _describe(self, probs: np.ndarray) -> tuple[list[tuple[str, float]], np.ndarray]:
        """Tags (objects, their groups and scene concepts) and the unit vector of one image."""
        tags = tags_from_probabilities(
            probs, self._labels, self._parents, max_tags=self._max_tags, min_confidence=self._min_tag_confidence
        )
        top = np.argsort(-probs, kind="stable")[:VECTOR_TOP_LABELS]
        vector = probs[top].astype(np.float32) @ self._label_vectors[top].astype(np.float32)
        if self._concept_vectors is not None:
            scores = concept_scores(probs, self._concepts)
            vector = vector + self._concept_weight * (scores @ self._concept_vectors.astype(np.float32))
            merged = dict(tags)
            for concept, score in zip(self._concepts, scores, strict=True):
                if score >= self._min_tag_confidence:
                    merged[concept.tag] = max(merged.get(concept.tag, 0.0), round(float(score), 4))
            tags = sorted(merged.items(), key=lambda item: (-item[1], item[0]))[: self._max_tags]
        return tags, l2_normalize(vector[None])[0]

    def analyze(self, images: Sequence[Image.Image]) -> list[ImageAnalysis]:
        check_images(images)
        results: list[ImageAnalysis] = []
        for start in range(0, len(images), self._max_batch):
            chunk = [shrink(image, _WORKING_SIDE) for image in images[start : start + self._max_batch]]
            probabilities = self._classifier.probabilities(chunk)
            safety = self._safety.scores(chunk)
            for probs, score in zip(probabilities, safety, strict=True):
                tags, vector = self._describe(probs)
                results.append(ImageAnalysis(tags=tags, embedding=vector, safety_score=float(score)))
        return results
