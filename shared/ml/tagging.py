"""From label probabilities to tags and vectors; label text embeddings computed once and cached on disk."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import structlog

from shared.ml import TextEncoder
from shared.ml.labels import Label

log = structlog.get_logger()


def tags_from_probabilities(
    probabilities: np.ndarray,
    labels: Sequence[Label],
    parents: Mapping[str, frozenset[int]],
    *,
    max_tags: int,
    min_confidence: float,
) -> list[tuple[str, float]]:
    """Best-first (tag, confidence) pairs for one image.

    Classes sharing a tag ("missile" twice in ImageNet) add up; a parent tag ("cat") gets the summed
    probability of its classes, so five cat breeds at 20 % each make a confident "cat".
    """
    scores: dict[str, float] = {}
    for index in np.argsort(-probabilities, kind="stable")[: max_tags * 4]:
        tag = labels[index].tag
        scores[tag] = scores.get(tag, 0.0) + float(probabilities[index])
    for parent, members in parents.items():
        total = float(probabilities[list(members)].sum()) if members else 0.0
        # A parent named like one of its own classes ("mushroom") already counts that class: keep the larger.
        scores[parent] = max(scores.get(parent, 0.0), total)
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    kept = [(tag, min(1.0, max(0.0, score))) for tag, score in ranked if score >= min_confidence]
    if not kept and ranked:
        kept = [(ranked[0][0], min(1.0, max(0.0, ranked[0][1])))]
    return [(tag, round(score, 4)) for tag, score in kept[:max_tags]]


def files_fingerprint(paths: Iterable[Path], *extra: str) -> str:
    """Identifies model files cheaply (path, size, modification time) without hashing hundreds of MB."""
    digest = hashlib.sha256()
    for path in paths:
        stat = Path(path).stat()
        digest.update(f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    for item in extra:
        digest.update(item.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:32]


def model_version(kind: str, paths: Iterable[Path], *extra: str) -> str:
    """Names one analyzer set-up alike on every machine (unlike files_fingerprint, which holds paths and times).

    Model files by name and size, plus whatever else shapes the output (prompts, concepts, constants): a
    change of any of them is a new version, and images analysed by an older one are re-embedded.
    """
    digest = hashlib.sha256()
    for path in paths:
        digest.update(f"{Path(path).name}|{Path(path).stat().st_size}\n".encode())
    for item in extra:
        digest.update(item.encode())
        digest.update(b"\n")
    return f"{kind}-{digest.hexdigest()[:16]}"


def label_embeddings(
    encoder: TextEncoder,
    prompts: Sequence[str],
    *,
    fingerprint: str,
    cache_dir: Path | None,
    batch: int = 64,
) -> np.ndarray:
    """(labels, dim) unit vectors of the label prompts, from the cache file when it matches these models.

    Encoding a thousand labels takes seconds; each worker process would otherwise pay it at start-up.
    The cache key covers the text model files and every prompt, so a change of either recomputes.
    """
    key = hashlib.sha256((fingerprint + "\n" + "\n".join(prompts)).encode()).hexdigest()[:32]
    cache_file = cache_dir / f"label-embeddings-{key}.npy" if cache_dir else None
    if cache_file is not None and cache_file.is_file():
        try:
            cached = np.load(cache_file, allow_pickle=False)
            if cached.shape[0] == len(prompts) and cached.dtype == np.float32:
                return cached
        except (OSError, ValueError):
            log.warning("ml.label_cache_unreadable", path=str(cache_file))
    vectors = np.concatenate(
        [encoder.encode(list(prompts[start : start + batch])) for start in range(0, len(prompts), batch)]
    ).astype(np.float32)
    if cache_file is not None:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename: a second worker starting at the same moment never reads half a file.
            fd, tmp = tempfile.mkstemp(dir=cache_file.parent, suffix=".npy.tmp")
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, vectors, allow_pickle=False)
            os.replace(tmp, cache_file)
        except OSError as exc:  # a read-only disk only costs the recomputation next time
            log.warning("ml.label_cache_not_written", path=str(cache_file), error=str(exc))
    return vectors
