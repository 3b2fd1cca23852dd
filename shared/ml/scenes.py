"""Scene and setting concepts for the fallback model, read off the ImageNet classes that are evidence for them.

ImageNet-1k names objects ("four-poster bed", "table lamp"), while buyers search for scenes and settings
("cozy bedroom", "living room", "cafe interior", "stone texture"). Each concept here is a tag people use,
a sentence for the text encoder, and the classes whose summed probability is the evidence for it. The
analyzer adds a concept to the image's tags (confidence = that sum) and blends its sentence embedding
into the image vector with that weight, so a photo of a bed is also near "bedroom interior".

This widens only what the image side can say; it is no substitute for a joint image-text model (none
with redistributable weights could be had as a package here: see shared/search/README.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SceneConcept:
    tag: str
    prompt: str
    members: frozenset[int]


_SCENES: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("bedroom", "a cozy bedroom interior with a bed, pillows and a blanket", (564, 750, 721, 520, 516, 894, 797)),
    (
        "living room",
        "a living room interior with a sofa, armchair and lamp",
        (831, 846, 619, 548, 598, 851, 765, 905, 854, 741),
    ),
    ("dining room", "a dining room with a table and chairs", (532, 559, 765, 762, 923)),
    (
        "kitchen",
        "a kitchen interior with a sink, stove and cabinets",
        (760, 827, 651, 534, 896, 725, 899, 849, 505, 729),
    ),
    (
        "restaurant",
        "a restaurant, cafe or bar interior",
        (762, 415, 550, 967, 503, 441, 440, 907, 572, 922, 819),
    ),
    ("houseplant", "house plants and flowers in a vase", (738, 883, 985)),
    ("bathroom", "a bathroom interior", (435, 861, 794, 648, 876)),
    ("office", "an office desk with a computer", (526, 527, 620, 681, 664, 782, 508, 742)),
    ("shop", "a shop or store interior", (582, 454, 860, 424, 467, 415)),
    ("sport", "a sport and a ball game", (805, 429, 430, 852, 890, 768, 574, 722, 522)),
    ("space", "space exploration, rockets and astronomy", (812, 657, 744, 727)),
    (
        "texture",
        "a close-up texture background pattern",
        (825, 539, 599, 646, 611, 490, 885, 911, 741, 489, 912),
    ),
    ("document", "a document, page of printed text", (918, 922, 917, 549, 458, 916, 921)),
    ("nature", "nature landscape outdoors", (970, 972, 973, 974, 975, 976, 977, 978, 979, 980)),
)


def scene_concepts(classes: int = 1000) -> list[SceneConcept]:
    """The concepts, for a 1000-class ImageNet classifier (other label sets get none)."""
    if classes != 1000:
        return []
    return [SceneConcept(tag, prompt, frozenset(members)) for tag, prompt, members in _SCENES]


def concept_scores(probabilities: np.ndarray, concepts: list[SceneConcept]) -> np.ndarray:
    """(concepts,) evidence of each concept: the summed probability of its classes, at most 1."""
    return np.array(
        [min(1.0, float(probabilities[list(c.members)].sum())) for c in concepts], dtype=np.float32
    ).reshape(len(concepts))
