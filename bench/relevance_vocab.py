"""Replays the vocabulary steps of shared/search/README.md ("Relevance on unseen photos") without a database.

bench/relevance.py measures the configured analyzer through the whole pipeline; trying a variant of the
image vector that way means changing the code each time. This computes the classifier's probabilities
for every labelled photo once (the picture processing gives the models), builds the image vector of each
step from them the way FallbackImageAnalyzer does, and ranks the photos by cosine similarity to each
query, which is the semantic mode's order (verified: the kept configuration gives bench/relevance.py's
semantic figures). Prints MRR and recall@5 of one half (`--split`), and over all 111 queries how many
still reach their photo within the relevance floor against how many nonsense queries reach any photo.

    .venv/bin/python -m bench.relevance_vocab --split tune [--levers]

`--levers` measures, against the kept vector, what else could be done with the same classifier output:
how many classes and how sharp their weights (top-k, temperature, a probability floor, the concepts'
weight), the query side (averaging the query with "a photo of {query}"), and multi-vector images (a
query scored against each of the image's top label and concept vectors: max-sim, a probability-
weighted soft max, or max-sim mixed with the mean), and test-time crops (the classifier's probabilities
averaged over other views of the photo). Ties count against the right photo (many images
share a concept vector, so max-sim ties often).
"""

from __future__ import annotations

import argparse
import csv
import io
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
from PIL import Image

from bench.relevance_set import NONSENSE, LabelledPhoto, labelled_photos
from functions.processing.work import ProcessingOptions, render_and_describe
from shared.config import get_settings
from shared.ml import get_text_encoder
from shared.ml.classifier import PACKAGED_CLASSIFIER, ImageClassifier
from shared.ml.fallback import _WORKING_SIDE, VECTOR_TOP_LABELS
from shared.ml.images import shrink
from shared.ml.labels import PACKAGED_WORDNET, load_labels
from shared.ml.scenes import SceneConcept, concept_scores, scene_concepts
from shared.ml.vectors import l2_normalize

FLOORS = (0.6, 0.65, 0.7, 0.75)
PREVIOUS_SCENES = 14  # the concepts kept last session; scenes.py lists them first


def _working_images(photos: Sequence[LabelledPhoto]) -> list[Image.Image]:
    """What the analyzer's classifier is given for each photo: processing's analysis input, shrunk."""
    options = ProcessingOptions.from_settings(get_settings())
    out = []
    for photo in photos:
        with Image.open(photo.path()) as img:
            data = io.BytesIO()
            img.convert("RGB").save(data, "JPEG", quality=92)
        out.append(shrink(render_and_describe(data.getvalue(), options).analysis_input, _WORKING_SIDE))
    return out


def probabilities(photos: Sequence[LabelledPhoto]) -> np.ndarray:
    classifier = ImageClassifier(PACKAGED_CLASSIFIER, classes=1000)
    return np.stack([classifier.probabilities([image])[0] for image in _working_images(photos)])


def crop_probabilities(photos: Sequence[LabelledPhoto]) -> dict[str, np.ndarray]:
    """Probabilities of other views than the classifier's central crop: the whole image squashed square,
    the mean of three squares along the long side, the mean of the four quarters."""
    classifier = ImageClassifier(PACKAGED_CLASSIFIER, classes=1000)
    views: dict[str, list[np.ndarray]] = defaultdict(list)
    for image in _working_images(photos):
        w, h = image.size
        s = min(w, h)
        offsets = (0, (max(w, h) - s) // 2, max(w, h) - s)
        squares = [(o, 0, o + s, s) if w >= h else (0, o, s, o + s) for o in offsets]
        quarters = [(0, 0, w // 2, h // 2), (w // 2, 0, w, h // 2), (0, h // 2, w // 2, h), (w // 2, h // 2, w, h)]
        views["squash"].append(classifier.probabilities([image.resize((s, s))])[0])
        views["thirds"].append(classifier.probabilities([image.crop(b).resize((s, s)) for b in squares]).mean(0))
        views["quarters"].append(classifier.probabilities([image.crop(b) for b in quarters]).mean(0))
    return {name: np.stack(rows) for name, rows in views.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("tune", "held-out"), default="tune")
    parser.add_argument("--levers", action="store_true", help="the levers after the kept vector (see above)")
    args = parser.parse_args()

    photos = labelled_photos()
    probs = probabilities(photos)
    encoder = get_text_encoder()

    def embed(texts: Sequence[str]) -> np.ndarray:
        return np.concatenate([encoder.encode(list(texts[i : i + 64])) for i in range(0, len(texts), 64)])

    labels = load_labels()
    with PACKAGED_WORDNET.open(encoding="utf-8", newline="") as fh:
        wordnet = list(csv.DictReader(fh, delimiter="\t"))
    hypernyms = [row["hypernyms"].split(", ") if row["hypernyms"] else [] for row in wordnet]

    every = [(i, q) for i, photo in enumerate(photos) for q in photo.queries]
    asked = [(k, i) for k, (i, _) in enumerate(every) if photos[i].split == args.split]
    query_vectors = embed([q for _, q in every])
    nonsense_vectors = embed(list(NONSENSE))

    def vectors(prompts: list[str], concepts: list[SceneConcept], extra: Callable | None = None) -> np.ndarray:
        label_vectors = embed(prompts)
        concept_vectors = embed([c.prompt for c in concepts])
        out = []
        for p in probs:
            top = np.argsort(-p, kind="stable")[:VECTOR_TOP_LABELS]
            v = p[top] @ label_vectors[top] + concept_scores(p, concepts) @ concept_vectors
            out.append(v if extra is None else v + extra(p))
        return l2_normalize(np.stack(out))

    # Hypernym groups: every WordNet hypernym shared by 2 to 60 classes, its evidence the summed probability.
    members: dict[str, set[int]] = defaultdict(set)
    for index, chain in enumerate(hypernyms):
        for word in chain:
            members[word].add(index)
    groups = [(word, np.array(sorted(m))) for word, m in members.items() if 2 <= len(m) <= 60]
    group_vectors = embed([word for word, _ in groups])

    def best_group(p: np.ndarray, weight: float = 0.5) -> np.ndarray:
        scores = np.array([min(1.0, float(p[m].sum())) for _, m in groups])
        best = int(np.argmax(scores))
        return weight * scores[best] * group_vectors[best]

    base = [replace(label, hypernym=None).prompt for label in labels]
    with_hypernym = [label.prompt for label in labels]  # what load_labels gives the app
    photo_template = [f"a photo of a {prompt}" for prompt in base]
    scenes = scene_concepts(1000)
    previous = scenes[:PREVIOUS_SCENES]
    steps = [
        ("previous: 14 scene concepts (baseline)", vectors(base, previous)),
        ("+ WordNet hypernym in each label prompt", vectors(with_hypernym, previous)),
        ("+ WordNet hypernym groups as concepts", vectors(base, previous, best_group)),
        ("+ prompt template 'a photo of a ...'", vectors(photo_template, previous)),
        (f"+ 15 more scene/texture concepts ({len(scenes)})", vectors(base, scenes)),
        ("  and WordNet hypernym in label prompts (kept)", vectors(with_hypernym, scenes)),
        ("  and WordNet hypernym groups", vectors(base, scenes, best_group)),
        ("  and template 'a photo of a ...'", vectors(photo_template, scenes)),
        ("  and hypernym prompts, hypernym groups", vectors(with_hypernym, scenes, best_group)),
    ]
    print(f"\n{args.split} half, semantic order; floors {FLOORS}: labelled queries (of {len(every)}) kept / nonsense")
    if args.levers:
        kept = vectors(with_hypernym, scenes)
        levers = Levers(probs, embed(with_hypernym), scenes, embed([c.prompt for c in scenes]))
        photo_of = l2_normalize(query_vectors + embed([f"a photo of {q}" for _, q in every]))
        photo_of_nonsense = l2_normalize(nonsense_vectors + embed([f"a photo of {q}" for q in NONSENSE]))
        rows = [
            ("kept: mean of top 5 + 29 concepts", query_vectors @ kept.T, nonsense_vectors @ kept.T),
            ("query averaged with 'a photo of {q}'", photo_of @ kept.T, photo_of_nonsense @ kept.T),
        ]
        for name, images in levers.means():
            rows.append((name, query_vectors @ images.T, nonsense_vectors @ images.T))
        for name, score in levers.multi():
            rows.append((name, score(query_vectors), score(nonsense_vectors)))
        # Test-time crops: the classifier sees only the central 87.5 %; objects at the sides of a room go unseen.
        views = crop_probabilities(photos) | {"center": probs}
        for name in ("squash", "center+squash", "thirds", "quarters", "center+quarters", "center+squash+quarters"):
            mixed = np.mean([views[v] for v in name.split("+")], axis=0)
            images = Levers(mixed, levers.labels, scenes, levers.concept_vectors).mean()
            rows.append((f"crops: mean of {name}", query_vectors @ images.T, nonsense_vectors @ images.T))
        for name, similarities, junk in rows:
            _print_row(name, similarities, junk, every, asked)
        return
    for name, images in steps:
        _print_row(name, query_vectors @ images.T, nonsense_vectors @ images.T, every, asked)


def _print_row(name: str, similarities: np.ndarray, junk_similarities: np.ndarray, every: list, asked: list) -> None:
    reciprocal = []
    for k, i in asked:
        # Ties (other photos scoring exactly the same) count against the right photo.
        rank = int((similarities[k] >= similarities[k, i]).sum())
        reciprocal.append(1 / rank if 1 - similarities[k, i] <= get_settings().SEARCH_MAX_VECTOR_DISTANCE else 0)
    own = 1 - similarities[np.arange(len(every)), [i for i, _ in every]]
    junk = 1 - junk_similarities
    floors = " ".join(f"{int((own <= f).sum())}/{int((junk <= f).sum())}" for f in FLOORS)
    mrr, recall5 = float(np.mean(reciprocal)), float(np.mean([r >= 0.2 for r in reciprocal]))
    print(f"  {name:<46} MRR {mrr:.3f}  R@5 {recall5:.3f}  {floors}")


class Levers:
    """Variants of the image side built from the same probabilities, label and concept vectors."""

    def __init__(self, probs: np.ndarray, labels: np.ndarray, concepts: list[SceneConcept], concept_vectors) -> None:
        self.probs, self.labels, self.concept_vectors = probs, labels, concept_vectors
        self.scores = np.stack([concept_scores(p, concepts) for p in probs])

    def mean(self, k: int = VECTOR_TOP_LABELS, temperature: float = 1.0, weight: float = 1.0, floor: float = 0.0):
        out = []
        for p, scores in zip(self.probs, self.scores, strict=True):
            top = np.argsort(-p, kind="stable")[:k]
            w = p[top] ** (1 / temperature)
            w = np.where(p[top] >= floor, w, 0.0) if (p[top] >= floor).any() else w
            out.append(w @ self.labels[top] + weight * (scores @ self.concept_vectors))
        return l2_normalize(np.stack(out))

    def means(self):
        yield from ((f"mean of top {k}", self.mean(k=k)) for k in (3, 10, 20))
        yield from ((f"temperature {t}", self.mean(temperature=t)) for t in (0.5, 2.0))
        yield from ((f"concept weight {w}", self.mean(weight=w)) for w in (0.5, 2.0))
        yield from ((f"labels below p {f} dropped", self.mean(floor=f)) for f in (0.05, 0.1))

    def _parts(self, k: int, min_score: float):
        for p, scores in zip(self.probs, self.scores, strict=True):
            top = np.argsort(-p, kind="stable")[:k]
            keep = scores >= min_score
            yield (
                np.concatenate([self.labels[top], self.concept_vectors[keep]]),
                np.concatenate([p[top], scores[keep]]),
            )

    def multi(self):
        def max_sim(k: int, min_score: float, mix: float = 0.0):
            mean = self.mean()

            def score(queries: np.ndarray) -> np.ndarray:
                best = np.stack([(queries @ v.T).max(axis=1) for v, _ in self._parts(k, min_score)], axis=1)
                return (1 - mix) * best + mix * (queries @ mean.T)

            return score

        def soft_max(k: int, min_score: float, temperature: float):
            def score(queries: np.ndarray) -> np.ndarray:
                cols = []
                for v, w in self._parts(k, min_score):
                    cols.append(temperature * np.log((w / w.sum() * np.exp(queries @ v.T / temperature)).sum(axis=1)))
                return np.stack(cols, axis=1)

            return score

        for k in (3, 5, 10):
            for s in (0.05, 0.1):
                yield f"multi-vector max-sim: top {k}, concepts >= {s}", max_sim(k, s)
        for t in (0.05, 0.1):
            yield f"multi-vector soft max T {t}: top 5", soft_max(5, 0.05, t)
        for mix in (0.3, 0.5, 0.7):
            yield f"max-sim (top 5) {1 - mix:.1f} + mean {mix}", max_sim(5, 0.05, mix)


if __name__ == "__main__":
    main()
