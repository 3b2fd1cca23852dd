"""Vector arithmetic behind the embeddings: pooling, normalising, label weighting."""

from __future__ import annotations

import numpy as np
import pytest

from shared.ml.vectors import l2_normalize, mean_pool, softmax, weighted_label_vector


def test_mean_pool_averages_only_real_tokens() -> None:
    hidden = np.array([[[1.0, 0.0], [3.0, 2.0], [100.0, 100.0]]], dtype=np.float32)  # last token is padding
    mask = np.array([[1, 1, 0]])

    assert mean_pool(hidden, mask).tolist() == [[2.0, 1.0]]


def test_mean_pool_of_an_all_padding_row_is_zero_not_nan() -> None:
    pooled = mean_pool(np.ones((1, 2, 3), dtype=np.float32), np.zeros((1, 2)))

    assert np.all(pooled == 0.0)


def test_l2_normalize_gives_unit_rows_and_keeps_zero_rows_zero() -> None:
    out = l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))

    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], [0.6, 0.8], rtol=1e-6)
    assert out[1].tolist() == [0.0, 0.0]


def test_softmax_rows_sum_to_one_even_for_large_logits() -> None:
    probabilities = softmax(np.array([[1000.0, 1000.0, 0.0], [1.0, 2.0, 3.0]]))

    np.testing.assert_allclose(probabilities.sum(axis=1), [1.0, 1.0], rtol=1e-6)
    assert probabilities[0, 0] == pytest.approx(0.5)
    assert np.argmax(probabilities[1]) == 2


def test_image_vector_is_the_probability_weighted_mean_of_its_top_labels() -> None:
    label_vectors = np.eye(4, dtype=np.float32)
    probabilities = np.array([0.6, 0.3, 0.06, 0.04], dtype=np.float32)

    vector = weighted_label_vector(probabilities, label_vectors, top_k=2)

    # Only the top two labels count, in the ratio of their probabilities, and the result has unit length.
    np.testing.assert_allclose(vector, l2_normalize(np.array([[0.6, 0.3, 0.0, 0.0]]))[0], rtol=1e-6)
    assert np.linalg.norm(vector) == pytest.approx(1.0)


def test_image_vector_of_a_single_certain_label_is_that_labels_vector() -> None:
    label_vectors = l2_normalize(np.array([[1.0, 2.0, 2.0], [0.0, 1.0, 0.0]]))

    vector = weighted_label_vector(np.array([1.0, 0.0]), label_vectors, top_k=5)

    np.testing.assert_allclose(vector, label_vectors[0], rtol=1e-6)
