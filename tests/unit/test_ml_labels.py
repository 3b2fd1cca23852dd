"""ImageNet labels as tags: friendly names, parent groups, merging, and the label-embedding cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.ml import ModelLoadError
from shared.ml.labels import Label, load_labels, parent_members
from shared.ml.tagging import label_embeddings, tags_from_probabilities


def test_packaged_labels_are_the_thousand_imagenet_classes_with_friendly_tags() -> None:
    labels = load_labels()

    assert len(labels) == 1000
    assert labels[281].tag == "tabby cat"  # WordNet's "tabby, tabby cat" reduced to one name
    assert labels[282].tag == "tiger cat"  # renamed from the clean name "a cat having a striped coat"
    assert labels[97].tag == "drake"  # "drake (male duck)": the gloss is not part of the keyword
    assert labels[97].name == "drake (male duck)"  # but the text encoder still sees it
    assert {labels[i].parent for i in (281, 282, 283, 284, 285)} == {"cat"}
    assert labels[207].parent == "dog"  # golden retriever
    assert labels[967].parent == "coffee"  # espresso
    assert all(label.tag and "\t" not in label.tag for label in labels)


def test_a_labels_prompt_names_its_group_so_generic_queries_find_it() -> None:
    mau = Label(285, "Egyptian Mau", "Egyptian Mau", "cat")
    tabby = Label(281, "tabby cat", "tabby cat", "cat")

    assert mau.prompt == "Egyptian Mau, a cat"
    assert tabby.prompt == "tabby cat"  # no "tabby cat, a cat"


def test_each_imagenet_class_also_names_its_wordnet_hypernym_for_the_text_encoder() -> None:
    labels = load_labels()

    assert labels[281].hypernym == "domestic cat"  # tabby
    assert labels[134].hypernym == "wading bird" and labels[517].hypernym == "lifting device"  # the two cranes
    assert labels[978].prompt == "beach, a landscape, a shore"
    assert sum(label.hypernym is not None for label in labels) >= 980  # a few have only generic ones


def test_every_parent_group_covers_real_classes() -> None:
    for parent, members in parent_members().items():
        assert members, parent
        assert all(0 <= index < 1000 for index in members), parent


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("index\ttag\tname\n1\tb\tb\n", "indices 0..n-1"),
        ("index\tname\n0\ta\n", "columns"),
        ("index\ttag\tname\n0\t\tx\n", "each with a tag"),
    ],
)
def test_a_malformed_labels_file_is_refused_at_load(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "labels.tsv"
    path.write_text(content)

    with pytest.raises(ModelLoadError, match=problem):
        load_labels(path)


def test_a_missing_labels_file_names_its_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="ML_LABELS_PATH"):
        load_labels(tmp_path / "nope.tsv")


def _labels(*tags: str) -> list[Label]:
    return [Label(i, tag, tag, None) for i, tag in enumerate(tags)]


def test_tags_are_best_first_and_classes_sharing_a_tag_add_up() -> None:
    labels = _labels("missile", "rocket engine", "missile", "cloud")
    probabilities = np.array([0.3, 0.35, 0.3, 0.05])

    tags = tags_from_probabilities(probabilities, labels, {}, max_tags=10, min_confidence=0.02)

    assert tags == [("missile", 0.6), ("rocket engine", 0.35), ("cloud", 0.05)]


def test_a_parent_tag_gets_the_summed_probability_of_its_classes() -> None:
    labels = _labels("tabby cat", "tiger cat", "Egyptian Mau", "lynx")
    probabilities = np.array([0.3, 0.3, 0.3, 0.1])

    tags = tags_from_probabilities(
        probabilities, labels, {"cat": frozenset({0, 1, 2})}, max_tags=10, min_confidence=0.02
    )

    assert tags[0] == ("cat", 0.9)
    assert [tag for tag, _ in tags[1:]] == ["Egyptian Mau", "tabby cat", "tiger cat", "lynx"]


def test_low_confidence_tags_are_dropped_but_the_best_one_is_always_kept() -> None:
    labels = _labels(*(f"class {i}" for i in range(100)))
    flat = np.full(100, 0.01)

    assert tags_from_probabilities(flat, labels, {}, max_tags=10, min_confidence=0.02) == [("class 0", 0.01)]


def test_at_most_max_tags_are_returned_and_confidences_stay_in_range() -> None:
    labels = _labels(*(f"class {i}" for i in range(30)))
    probabilities = np.linspace(1, 2, 30)
    probabilities /= probabilities.sum()

    tags = tags_from_probabilities(probabilities, labels, {"all": frozenset(range(30))}, max_tags=5, min_confidence=0)

    assert len(tags) == 5
    assert tags[0] == ("all", 1.0)
    assert all(0.0 <= score <= 1.0 for _, score in tags)


class CountingEncoder:
    """A fake TextEncoder: one-hot-ish vectors from text length; counts how many texts it encoded."""

    def __init__(self) -> None:
        self.encoded = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.encoded += len(texts)
        out = np.zeros((len(texts), 4), dtype=np.float32)
        for row, text in enumerate(texts):
            out[row, len(text) % 4] = 1.0
        return out


def test_label_embeddings_are_computed_once_then_read_from_the_cache(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    prompts = [f"label {i}" * (i + 1) for i in range(70)]  # more than one encoding batch

    first = label_embeddings(encoder, prompts, fingerprint="model-a", cache_dir=tmp_path)
    second = label_embeddings(encoder, prompts, fingerprint="model-a", cache_dir=tmp_path)

    assert encoder.encoded == 70
    assert first.shape == (70, 4)
    np.testing.assert_array_equal(first, second)


def test_other_models_or_other_prompts_do_not_reuse_a_cache_entry(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    label_embeddings(encoder, ["cat", "dog"], fingerprint="model-a", cache_dir=tmp_path)

    label_embeddings(encoder, ["cat", "dog"], fingerprint="model-b", cache_dir=tmp_path)
    label_embeddings(encoder, ["cat", "car"], fingerprint="model-a", cache_dir=tmp_path)

    assert encoder.encoded == 6


def test_a_corrupt_cache_file_is_recomputed(tmp_path: Path) -> None:
    encoder = CountingEncoder()
    label_embeddings(encoder, ["cat"], fingerprint="m", cache_dir=tmp_path)
    for cached in tmp_path.glob("*.npy"):
        cached.write_bytes(b"not numpy")

    vectors = label_embeddings(encoder, ["cat"], fingerprint="m", cache_dir=tmp_path)

    assert encoder.encoded == 2
    assert vectors.shape == (1, 4)
