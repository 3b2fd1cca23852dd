"""Replays the vocabulary steps of shared/search/README.md ("Relevance on unseen photos") without a database.

bench/relevance.py measures the configured analyzer through the whole pipeline; trying a variant of the
image vector that way means changing the code each time. This computes the classifier's probabilities
for every labelled photo once (the picture processing gives the models), builds the image vector of each
step from them the way FallbackImageAnalyzer does, and ranks the photos by cosine similarity to each
query, which is the semantic mode's order (verified: the kept configuration gives bench/relevance.py's
semantic figures). Prints MRR and recall@5 of one half (`--split`), and over all 111 queries how many
still reach their photo within the relevance floor against how many nonsense queries reach any photo.

    .venv/bin/python -m bench.relevance_vocab --split tune
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


def probabilities(photos: Sequence[LabelledPhoto]) -> np.ndarray:
    classifier = ImageClassifier(PACKAGED_CLASSIFIER, classes=1000)
    options = ProcessingOptions.from_settings(get_settings())
    rows = []
    for photo in photos:
        with Image.open(photo.path()) as img:
            out = io.BytesIO()
            img.convert("RGB").save(out, "JPEG", quality=92)
        work = render_and_describe(out.getvalue(), options)
        rows.append(classifier.probabilities([shrink(work.analysis_input, _WORKING_SIDE)])[0])
    return np.stack(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", choices=("tune", "held-out"), default="tune")
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
    for name, images in steps:
        similarities = query_vectors @ images.T
        reciprocal = []
        for k, i in asked:
            rank = 1 + int((similarities[k] > similarities[k, i]).sum())
            reciprocal.append(1 / rank if 1 - similarities[k, i] <= get_settings().SEARCH_MAX_VECTOR_DISTANCE else 0)
        own = 1 - similarities[np.arange(len(every)), [i for i, _ in every]]
        junk = 1 - nonsense_vectors @ images.T
        floors = " ".join(f"{int((own <= f).sum())}/{int((junk <= f).sum())}" for f in FLOORS)
        mrr, recall5 = float(np.mean(reciprocal)), float(np.mean([r >= 0.2 for r in reciprocal]))
        print(f"  {name:<46} MRR {mrr:.3f}  R@5 {recall5:.3f}  {floors}")


if __name__ == "__main__":
    main()
