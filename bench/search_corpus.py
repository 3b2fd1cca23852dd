"""The search bench's synthetic catalogue: the corpus generator, the vocabulary its queries draw from, the
filters a buyer picks, and the figures every search bench prints (bench/search.py, search_http.py, search_cache.py,
search_explain.py)."""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import uuid
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from shared.search.port import IndexDocument, SearchFilters

CATEGORIES = [
    "nature",
    "animals",
    "food",
    "transport",
    "architecture",
    "people",
    "business",
    "sports",
    "technology",
    "travel",
    "objects",
    "science",
    "industry",
    "interiors",
    "fashion",
]
COLORS = ["black", "white", "gray", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "beige"]
GENERIC = [
    "background",
    "closeup",
    "outdoor",
    "indoor",
    "vintage",
    "modern",
    "colorful",
    "isolated",
    "copy space",
    "summer",
    "winter",
    "morning",
    "night",
    "detail",
    "texture",
    "lifestyle",
    "concept",
    "minimal",
    "natural",
    "urban",
]
ADJECTIVES = ["Beautiful", "Close-up of a", "Vintage", "Bright", "Moody", "Aerial view of a", "Portrait of a", "Old"]
SIZES = [(6000, 4000), (5472, 3648), (4000, 3000), (4000, 6000), (3648, 5472), (4000, 4000), (7952, 5304)]
T_END = datetime(2026, 11, 1, tzinfo=UTC)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def figures(latencies: list[float]) -> dict[str, float]:
    return {
        "n": len(latencies),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p95_ms": round(percentile(latencies, 0.95) * 1000, 2),
    }


def emit(record: dict[str, Any]) -> None:
    print(json.dumps({"bench": "search", **record}), flush=True)


# --- corpus ---------------------------------------------------------------------------


class Corpus:
    def __init__(self, seed: int = 42) -> None:
        from shared.ml import get_text_encoder
        from shared.ml.labels import load_labels

        self.encoder = get_text_encoder()
        self.labels = load_labels()
        self.vectors = np.asarray(self.encoder.encode([label.tag for label in self.labels]), dtype=np.float32)
        self.rng = np.random.default_rng(seed)
        self.pyrng = random.Random(seed)

    def category(self, label) -> str:
        key = label.parent.encode() if label.parent else str(label.index).encode()
        return CATEGORIES[zlib.crc32(key) % len(CATEGORIES)]

    def batches(self, total: int, batch_size: int) -> AsyncIterator[list[IndexDocument]]:
        async def generate() -> AsyncIterator[list[IndexDocument]]:
            made = 0
            while made < total:
                size = min(batch_size, total - made)
                yield await asyncio.to_thread(self._batch, size)
                made += size

        return generate()

    def _batch(self, size: int) -> list[IndexDocument]:
        # Drawn a batch at a time with numpy, and built without validation (the values are valid by
        # construction): at 1M documents the generator would otherwise cost more than the load it feeds.
        rng = self.rng
        dim = self.vectors.shape[1]
        noise = rng.standard_normal((size, dim)).astype(np.float32) * 0.02
        n_picks = rng.integers(1, 4, size)
        sizes = rng.integers(len(SIZES), size=size)
        editorial = rng.random(size) < 0.15
        unsafe = rng.random(size) < 0.02
        safety = rng.beta(0.5, 25, size)
        ages = rng.uniform(0, 3 * 365 * 86400, size)
        popularity = rng.zipf(2.0, size) - 1
        contributors = rng.zipf(1.5, size) % 5000
        adjectives = rng.integers(len(ADJECTIVES), size=size)
        n_colors = rng.integers(1, 4, size)
        # Each image mixes 1-3 label embeddings with Dirichlet(2, ...) weights, plus noise.
        picks_all = rng.integers(len(self.labels), size=(size, 3))
        gammas = rng.gamma(2.0, size=(size, 3)) * (np.arange(3)[None, :] < n_picks[:, None])
        weights = (gammas / gammas.sum(axis=1, keepdims=True)).astype(np.float32)
        mixed = np.einsum("ij,ijk->ik", weights, self.vectors[picks_all]) + noise
        mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
        embeddings = mixed.tolist()
        docs = []
        for i in range(size):
            picks = list(dict.fromkeys(int(p) for p in picks_all[i, : n_picks[i]]))
            main = self.labels[picks[0]]
            tags = [self.labels[p].tag.lower() for p in picks]
            parents = [self.labels[p].parent for p in picks if self.labels[p].parent]
            width, height = SIZES[int(sizes[i])]
            docs.append(
                IndexDocument.model_construct(
                    image_id=uuid.uuid4(),
                    contributor_id=f"contributor-{int(contributors[i])}",
                    revision=2,
                    title=f"{ADJECTIVES[int(adjectives[i])]} {main.tag}",
                    description=f"Stock photo: {', '.join(tags)}.",
                    keywords=list(dict.fromkeys([*tags, *parents, *self.pyrng.sample(GENERIC, 4)])),
                    tags=tags,
                    category=self.category(main),
                    usage="editorial" if editorial[i] else "commercial",
                    width=width,
                    height=height,
                    orientation="landscape" if width > height else "portrait" if height > width else "square",
                    colors=self.pyrng.sample(COLORS, int(n_colors[i])),
                    embedding=embeddings[i],
                    safety_score=float(min(1.0, safety[i] * (20 if unsafe[i] else 1))),
                    thumbnail_small_url="",
                    thumbnail_url=f"https://cdn.example/t/{uuid.uuid4().hex}.jpg",
                    preview_url=f"https://cdn.example/w/{uuid.uuid4().hex}.jpg",
                    blurhash="",
                    phash="",
                    added_at=T_END - timedelta(seconds=float(ages[i])),
                    popularity=int(popularity[i]),
                )
            )
        return docs

    def query_words(self, n: int, seed: int = 3) -> list[str]:
        rng = random.Random(seed)
        words = []
        for _ in range(n):
            roll = rng.random()
            if roll < 0.45:
                words.append(rng.choice(self.labels).tag.lower())
            elif roll < 0.75:
                words.append(f"{rng.choice(self.labels).tag.lower()} {rng.choice(GENERIC)}")
            elif roll < 0.95:
                words.append(
                    rng.choice(
                        [
                            "cup of coffee",
                            "dog on the beach",
                            "city at night",
                            "red sports car",
                            "family dinner",
                            "mountain lake",
                            "space rocket launch",
                            "cat",
                        ]
                    )
                )
            else:
                words.append(rng.choice(["xqzvbnm", "quarterly tax form", "asdf qwer"]))
        return words


# Sizes as buyers pick them: the portal's "extra large" preset (portals/web/src/lib/searchState.ts), which the
# facet counts keep (SEARCH_COUNTED_MIN_WIDTHS). Until 2026-12-07 the mix used 5,000 px, a width no control
# offers; the single step still measures it apart ("size off the presets"), where browse counts the images.
SIZE_PRESET = 4000
SIZE_OFF_PRESET = 5000


def random_filters(rng: random.Random) -> SearchFilters:
    choice = rng.random()
    if choice < 0.4:
        return SearchFilters(category=rng.choice(CATEGORIES), max_safety_score=0.5)
    if choice < 0.7:
        return SearchFilters(orientation=rng.choice(["landscape", "portrait"]), color=rng.choice(COLORS))
    return SearchFilters(usage="editorial", min_width=SIZE_PRESET, max_safety_score=0.5)
