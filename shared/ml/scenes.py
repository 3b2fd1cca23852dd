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
    # Settings, subjects and textures a stock buyer names, read off the objects that give them away
    # (added with bench/relevance.py's tuning half; see shared/search/README.md for what each step bought).
    (
        "architecture",
        "architecture, a temple, church or historic building",
        (483, 497, 663, 668, 698, 832, 442, 873, 682, 649, 538, 858, 853, 500, 884, 406),
    ),
    ("hallway", "a hallway or corridor with doors and arches", (884, 873, 799, 421, 539, 743, 877, 708)),
    ("bar", "a bar or pub with drinks at night", (440, 441, 907, 572, 503, 966, 901, 819, 818)),
    (
        "person",
        "a portrait of a person",
        (
            *(834, 457, 906, 617, 652, 869, 474, 841, 610, 578, 400, 451, 515, 808, 836, 837, 518, 560, 452, 439),
            *(982, 981, 983, 643, 796, 570, 691, 655, 608, 697, 614, 568, 501, 887, 903, 629, 679),
        ),
    ),
    ("beach", "a beach and the sea coast", (978, 977, 975, 976, 973, 718, 460, 913)),
    ("mountains", "mountains and valleys landscape", (970, 979, 980, 972, 976)),
    (
        "music",
        "musical instruments and a concert",
        (
            *(401, 402, 420, 432, 486, 513, 541, 546, 558, 566, 577, 579, 593, 594, 641, 642, 683, 684, 687, 699),
            *(776, 822, 875, 881, 889, 819, 650, 632),
        ),
    ),
    ("photography", "a photographer with a camera", (759, 732, 872, 622, 745)),
    ("medical", "medicine, health care and a laboratory", (823, 845, 720, 419, 617, 691, 678, 830, 712, 438, 688)),
    ("food", "a plate of food, a meal", (923, 809, *range(924, 936), *range(959, 966))),
    ("breakfast", "breakfast with coffee and bread", (931, 930, 504, 967, 968, 969, 868, 891, 859)),
    ("wood", "wooden furniture and wood texture", (492, 493, 495, 894, 453, 526, 532, 912, 910, 427)),
    ("stone", "stones, rocks and a stone wall texture", (825, 649, 972, 682, 460, 525)),
    ("lighting", "a lamp and warm lighting", (846, 619, 470, 818, 862)),
    ("garden", "plants and a garden", (580, 738, 984, 985, 703, 716, 706, 621)),
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
