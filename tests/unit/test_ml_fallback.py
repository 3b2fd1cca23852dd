"""The packaged-fallback pipeline on small generated ONNX models: loading checks, pooling, weighting, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.config import load_settings
from shared.ml import ImageAnalysis, ImageAnalyzer, ModelInputError, ModelLoadError, TextEncoder
from shared.ml.classifier import ImageClassifier
from shared.ml.factory import build_image_analyzer, build_text_encoder
from shared.ml.safety import SafetyScorer
from shared.ml.text import MiniLMTextEncoder
from tests.fixtures.onnx_models import classifier_model, safety_model, text_model, vocab, word_table

DIM = 8


def solid(colour: tuple[int, int, int], size: tuple[int, int] = (64, 48)) -> Image.Image:
    return Image.new("RGB", size, colour)


RED, GREEN, BLUE = (250, 5, 5), (5, 250, 5), (5, 5, 250)


@pytest.fixture
def settings(tmp_path: Path, fake_models: dict[str, Path]):
    return load_settings(
        VAR_DIR=tmp_path / "var",
        ML_EMBEDDING_DIM=DIM,
        ML_CLASSIFIER_MODEL_PATH=fake_models["classifier"],
        ML_TEXT_MODEL_PATH=fake_models["text"],
        ML_TOKENIZER_PATH=fake_models["tokenizer"],
        ML_SAFETY_MODEL_PATH=fake_models["safety"],
        ML_LABELS_PATH=fake_models["labels"],
        ML_MAX_BATCH=2,
        ML_INTRA_OP_THREADS=1,
    )


@pytest.fixture
def encoder(settings) -> TextEncoder:
    return build_text_encoder(settings)


@pytest.fixture
def analyzer(settings, encoder) -> ImageAnalyzer:
    return build_image_analyzer(settings, encoder)


# --- text encoder -------------------------------------------------------------------------------------------


def test_text_vectors_are_unit_length_float32_of_the_configured_dimension(encoder: TextEncoder) -> None:
    vectors = encoder.encode(["red thing", "a photo of a cat", ""])

    assert vectors.shape == (3, DIM)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_a_text_vector_is_the_mean_of_its_token_vectors_cls_and_sep_included(encoder: TextEncoder) -> None:
    table, ids = word_table(DIM), vocab()
    expected = table[[ids["[CLS]"], ids["red"], ids["thing"], ids["[SEP]"]]].mean(axis=0)

    vector = encoder.encode(["Red thing"])[0]  # lower-cased by the tokenizer

    np.testing.assert_allclose(vector, expected / np.linalg.norm(expected), rtol=1e-5)


def test_padding_in_a_batch_does_not_change_a_short_texts_vector(encoder: TextEncoder) -> None:
    alone = encoder.encode(["red"])[0]
    batched = encoder.encode(["red", "a photo of a red thing"])[0]  # "red" is padded here; [PAD] is huge

    np.testing.assert_allclose(batched, alone, rtol=1e-5)


def test_encoding_nothing_gives_an_empty_matrix(encoder: TextEncoder) -> None:
    assert encoder.encode([]).shape == (0, DIM)


def test_a_text_model_of_another_dimension_is_refused_at_load(tmp_path: Path, fake_models) -> None:
    with pytest.raises(ModelLoadError, match=r"ML_TEXT_MODEL_PATH"):
        MiniLMTextEncoder(fake_models["text"], fake_models["tokenizer"], dimension=384)


def test_a_missing_tokenizer_names_its_setting(tmp_path: Path, fake_models) -> None:
    with pytest.raises(ModelLoadError, match="ML_TOKENIZER_PATH"):
        MiniLMTextEncoder(fake_models["text"], tmp_path / "none.json", dimension=DIM)


# --- image analysis -----------------------------------------------------------------------------------------


def test_an_image_is_tagged_with_its_most_likely_labels_best_first(analyzer: ImageAnalyzer) -> None:
    [red] = analyzer.analyze([solid(RED)])

    assert isinstance(red, ImageAnalysis)
    assert red.tags[0][0] == "red"
    assert red.tags[0][1] > 0.99
    assert [score for _, score in red.tags] == sorted((score for _, score in red.tags), reverse=True)
    assert all(0.0 <= score <= 1.0 for _, score in red.tags)


def test_an_image_vector_lies_on_its_labels_text_vector(analyzer: ImageAnalyzer, encoder: TextEncoder) -> None:
    [red, blue] = analyzer.analyze([solid(RED), solid(BLUE)])
    red_text, blue_text = encoder.encode(["red thing", "blue thing"])  # the labels' names

    assert red.embedding.shape == (DIM,)
    assert red.embedding.dtype == np.float32
    assert float(np.linalg.norm(red.embedding)) == pytest.approx(1.0, abs=1e-5)
    assert float(red.embedding @ red_text) > 0.99
    assert float(red.embedding @ red_text) > float(red.embedding @ blue_text)
    assert float(blue.embedding @ blue_text) > float(blue.embedding @ red_text)


def test_an_uncertain_image_gets_a_vector_between_its_labels(analyzer: ImageAnalyzer, encoder: TextEncoder) -> None:
    [grey] = analyzer.analyze([solid((128, 128, 128))])  # every colour class scores about the same
    texts = encoder.encode(["red thing", "green thing", "blue thing", "grey thing"])

    expected = texts.mean(axis=0)
    np.testing.assert_allclose(grey.embedding, expected / np.linalg.norm(expected), atol=1e-3)


def test_safety_score_comes_from_the_safety_model(analyzer: ImageAnalyzer) -> None:
    red, blue = analyzer.analyze([solid(RED), solid(BLUE)])  # the generated model calls red "explicit"

    assert red.safety_score > 0.9
    assert blue.safety_score < 0.1


def test_a_batch_gives_the_same_results_as_one_image_at_a_time(analyzer: ImageAnalyzer) -> None:
    images = [solid(RED), solid(GREEN, (300, 200)), solid(BLUE, (40, 90)), solid((90, 90, 200))]  # max batch 2

    together = analyzer.analyze(images)
    apart = [analyzer.analyze([image])[0] for image in images]

    assert len(together) == 4
    for a, b in zip(together, apart, strict=True):
        assert [t for t, _ in a.tags] == [t for t, _ in b.tags]
        np.testing.assert_allclose(a.embedding, b.embedding, rtol=1e-5)
        assert a.safety_score == pytest.approx(b.safety_score, abs=1e-6)


def test_analyzing_nothing_returns_nothing(analyzer: ImageAnalyzer) -> None:
    assert analyzer.analyze([]) == []


@pytest.mark.parametrize(
    ("image", "reason"),
    [
        (Image.new("RGB", (1, 1)), "too small"),
        (Image.new("RGB", (640, 20)), "too small"),
        (Image.new("L", (64, 64)), "mode 'L'"),
        (Image.new("RGBA", (64, 64)), "mode 'RGBA'"),
        (Image.new("I;16", (64, 64)), "mode 'I;16'"),
        (Image.new("CMYK", (64, 64)), "mode 'CMYK'"),
        (b"\xff\xd8 not decoded", "expected a PIL image"),
    ],
)
def test_an_input_the_models_can_never_analyse_is_a_model_input_error(analyzer, image, reason: str) -> None:
    with pytest.raises(ModelInputError, match=reason):
        analyzer.analyze([solid(RED), image])


# --- load-time checks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_shape": ["batch", 1, 32, 32]}, r"input 'image'.*expected tensor\(float\) \['any', 3"),
        ({"input_shape": ["batch", 3, 32, 16]}, "square images of a fixed size"),
        ({"input_shape": ["batch", 3, "h", "w"]}, "square images of a fixed size"),
        ({"output_classes": 5}, r"output 'logits'.*\['any', 4\]"),
    ],
)
def test_a_classifier_with_unexpected_shapes_is_refused_at_load(tmp_path: Path, kwargs, message: str) -> None:
    path = classifier_model(tmp_path / "bad.onnx", **kwargs)

    with pytest.raises(ModelLoadError, match=message):
        ImageClassifier(path, classes=4)


def test_a_missing_model_file_names_the_file_and_its_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"nope\.onnx does not exist \(setting ML_CLASSIFIER_MODEL_PATH\)"):
        ImageClassifier(tmp_path / "nope.onnx", classes=4)


def test_a_file_that_is_not_onnx_is_refused_with_its_setting(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"<html>not a model</html>")

    with pytest.raises(ModelLoadError, match="ML_SAFETY_MODEL_PATH"):
        SafetyScorer(path)


def test_the_safety_model_must_take_224px_bgr_images(tmp_path: Path) -> None:
    wrong = text_model(tmp_path / "text.onnx")  # a real ONNX file, of the wrong kind

    with pytest.raises(ModelLoadError, match="safety model"):
        SafetyScorer(wrong)


def test_labels_that_do_not_match_the_classifier_are_refused(tmp_path: Path, settings, encoder) -> None:
    from tests.fixtures.onnx_models import labels_tsv

    five = labels_tsv(tmp_path / "five.tsv", ("red", "green", "blue", "grey", "pink"))

    with pytest.raises(ModelLoadError, match="ML_CLASSIFIER_MODEL_PATH"):
        build_image_analyzer(settings.model_copy(update={"ML_LABELS_PATH": five}), encoder)


def test_label_vectors_are_cached_under_var_dir(settings, encoder) -> None:
    build_image_analyzer(settings, encoder)

    cached = list((settings.VAR_DIR / "ml").glob("label-embeddings-*.npy"))
    assert len(cached) == 1
    assert np.load(cached[0]).shape == (4, DIM)


def test_the_safety_scorer_takes_images_of_any_size(tmp_path: Path) -> None:
    scorer = SafetyScorer(safety_model(tmp_path / "s.onnx"))

    scores = scorer.scores([solid(RED, (500, 300)), solid(BLUE, (40, 40))])

    assert scores.shape == (2,)
    assert scores[0] > 0.9 > 0.1 > scores[1]


def test_a_scene_concept_evidenced_by_its_classes_is_tagged_and_pulls_the_vector_towards_it(
    fake_models, encoder: TextEncoder
) -> None:
    from shared.ml.fallback import FallbackImageAnalyzer
    from shared.ml.labels import load_labels
    from shared.ml.scenes import SceneConcept

    labels = load_labels(fake_models["labels"])
    red = next(label.index for label in labels if label.tag == "red")
    warm = SceneConcept("warm colours", "warm thing", frozenset({red}))
    build = dict(
        classifier=ImageClassifier(fake_models["classifier"], classes=len(labels)),
        safety=SafetyScorer(fake_models["safety"]),
        labels=labels,
        label_vectors=encoder.encode([label.prompt for label in labels]),
    )
    plain = FallbackImageAnalyzer(**build)
    with_scene = FallbackImageAnalyzer(**build, concepts=[warm], concept_vectors=encoder.encode(["warm thing"]))
    [warm_text] = encoder.encode(["warm thing"])

    [before] = plain.analyze([solid(RED)])
    [after] = with_scene.analyze([solid(RED)])
    [blue] = with_scene.analyze([solid(BLUE)])

    assert dict(after.tags)["warm colours"] > 0.99 and "warm colours" not in dict(blue.tags)
    assert float(after.embedding @ warm_text) > float(before.embedding @ warm_text)
    assert float(np.linalg.norm(after.embedding)) == pytest.approx(1.0, abs=1e-5)


def test_scene_concepts_name_real_imagenet_classes_and_only_apply_to_imagenet() -> None:
    from shared.ml.labels import load_labels
    from shared.ml.scenes import scene_concepts

    concepts = scene_concepts(1000)
    assert concepts and all(c.members and max(c.members) < len(load_labels()) for c in concepts)
    assert scene_concepts(4) == []
