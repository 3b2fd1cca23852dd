"""Inference throughput of the packaged models, with same-run baselines.

Cases, each on the same real photos resized to 224x224 RGB (what processing hands over after decoding):
- classifier alone: EfficientNet-Lite0 preprocessing + inference (the floor of tagging),
- safety alone: Open-NSFW preprocessing + inference,
- analyze(): the full analysis (classifier + safety + tags + label-weighted vector), batches of 1, 8, 16;
  its share of the classifier+safety baseline shows what the glue costs,
- text: single queries one at a time (as search sends them) and batches of 16.

Threads: ML_INTRA_OP_THREADS (default 0 = all physical cores). Prints JSON lines, then a table.

    .venv/bin/python -m bench.ml [--seconds 3] [--threads 0]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from shared.config import load_settings
from shared.ml.classifier import PACKAGED_CLASSIFIER, ImageClassifier
from shared.ml.factory import build_image_analyzer, build_text_encoder
from shared.ml.safety import SafetyScorer, packaged_safety_model
from tests.fixtures.photos import PHOTOS, photo

QUERIES = [
    "cat", "a cup of coffee", "rocket launch", "red sports car", "mountain landscape at sunset", "dog on a beach",
    "business people in a meeting", "fresh fruit", "old temple", "flower close up", "city at night", "motorbike",
]  # fmt: skip


def rates(cases: dict[str, Callable[[], int]], seconds: float, rounds: int = 3) -> dict[str, tuple[float, float, int]]:
    """Items per wall second and per CPU second of each case (each call returns the items it did).

    The cases take turns in several short rounds after one warm-up call each, so a burst of load from
    elsewhere on the machine hits a case and its baseline alike. Items per CPU second (this process's
    CPU time, all threads) stay meaningful on a loaded machine, where wall-clock rates do not.
    """
    for work in cases.values():
        work()
    done = dict.fromkeys(cases, 0)
    spent = dict.fromkeys(cases, 0.0)
    cpu = dict.fromkeys(cases, 0.0)
    for _ in range(rounds):
        for name, work in cases.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            while time.perf_counter() - started < seconds / rounds:
                done[name] += work()
            spent[name] += time.perf_counter() - started
            cpu[name] += time.process_time() - cpu_started
    return {name: (done[name] / spent[name], done[name] / cpu[name], done[name]) for name in cases}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per case")
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime intra-op threads (0 = all cores)")
    args = parser.parse_args()

    settings = load_settings(VAR_DIR=Path(tempfile.mkdtemp(prefix="bench-ml-")), ML_INTRA_OP_THREADS=args.threads)
    started = time.perf_counter()
    encoder = build_text_encoder(settings)
    analyzer = build_image_analyzer(settings, encoder)
    cold_start_s = time.perf_counter() - started  # includes embedding the 1000 labels (no cache yet)
    classifier = ImageClassifier(PACKAGED_CLASSIFIER, classes=1000, intra_op_threads=args.threads)
    safety = SafetyScorer(packaged_safety_model(), intra_op_threads=args.threads)

    pool = [photo(name).resize((224, 224), Image.Resampling.BILINEAR) for name in PHOTOS]
    results: list[dict] = []

    def batch_of(size: int) -> list[Image.Image]:
        return [pool[i % len(pool)] for i in range(size)]

    def record(case: str, batch: int, per_s: float, per_cpu_s: float, items: int, unit: str) -> None:
        result = {
            "case": case,
            "batch": batch,
            f"{unit}_per_s": round(per_s, 1),
            f"{unit}_per_cpu_s": round(per_cpu_s, 1),
            "items": items,
        }
        results.append(result)
        print(json.dumps(result), flush=True)

    for size in (1, 8, 16):
        images = batch_of(size)
        measured = rates(
            {
                "classifier alone": lambda images=images: len(classifier.probabilities(images)),
                "safety alone": lambda images=images: len(safety.scores(images)),
                "analyze (full)": lambda images=images: len(analyzer.analyze(images)),
            },
            args.seconds,
        )
        for case, (per_s, per_cpu_s, items) in measured.items():
            record(case, size, per_s, per_cpu_s, items, "images")

    measured = rates(
        {
            "text, one query per call": lambda: sum(len(encoder.encode([q])) for q in QUERIES),
            "text, 16 per call": lambda: len(encoder.encode((QUERIES * 2)[:16])),
        },
        args.seconds,
    )
    for case, (per_s, per_cpu_s, items) in measured.items():
        record(case, 1 if "one" in case else 16, per_s, per_cpu_s, items, "queries")

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\ncores: {os.cpu_count()}, intra-op threads: {args.threads or 'all'}, load average: {load}")
    print(f"cold start (models + 1000 label embeddings, no cache): {cold_start_s:.2f} s")
    print(f"{'case':28} {'batch':>5} {'per s':>8} {'per CPU-s':>10} {'vs classifier+safety (CPU)':>27}")
    by_key = {(r["case"], r["batch"]): r for r in results}
    for r in results:
        unit = "images" if "images_per_s" in r else "queries"
        share = ""
        if r["case"] == "analyze (full)":
            c = by_key[("classifier alone", r["batch"])]["images_per_cpu_s"]
            s = by_key[("safety alone", r["batch"])]["images_per_cpu_s"]
            floor = 1 / (1 / c + 1 / s)  # both models back to back, nothing else
            share = f"{r['images_per_cpu_s'] / floor:.0%}"
        print(f"{r['case']:28} {r['batch']:>5} {r[unit + '_per_s']:>8.1f} {r[unit + '_per_cpu_s']:>10.1f} {share:>27}")


if __name__ == "__main__":
    main()
