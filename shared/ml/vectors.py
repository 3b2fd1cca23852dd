"""Small numpy operations shared by the encoders: pooling, normalising, softmax, weighted label vectors."""

from __future__ import annotations

import numpy as np


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (a zero row stays zero rather than becoming NaN), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def mean_pool(hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
    """Mean of the token vectors of real tokens only: padding must not pull a short text's vector around.

    hidden: (batch, tokens, dim); attention_mask: (batch, tokens) of 0/1. This is sentence-transformers'
    Pooling(mean) for all-MiniLM-L6-v2.
    """
    weights = attention_mask[..., None].astype(np.float32)
    summed = (hidden.astype(np.float32) * weights).sum(axis=1)
    return summed / np.maximum(weights.sum(axis=1), 1e-9)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)


def weighted_label_vector(probabilities: np.ndarray, label_vectors: np.ndarray, top_k: int) -> np.ndarray:
    """The image's vector: its top_k labels' text embeddings weighted by their probabilities, unit length.

    probabilities: (labels,); label_vectors: (labels, dim), rows unit length. Only the top labels count,
    so a long tail of near-zero classes does not blur the vector towards the mean of all labels.
    """
    top = np.argsort(-probabilities, kind="stable")[:top_k]
    weights = probabilities[top].astype(np.float32)
    if float(weights.sum()) <= 0.0:
        weights = np.ones_like(weights)
    vector = weights @ label_vectors[top].astype(np.float32)
    return l2_normalize(vector[None])[0]
