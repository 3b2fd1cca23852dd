"""A CLIP export in the Immich/OpenCLIP layout, selected by CLIP_MODEL_DIR; tested on generated models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shared.config import load_settings
from shared.ml import ModelInputError, ModelLoadError
from shared.ml.clip import ClipTextEncoder, ClipVisualEncoder
from shared.ml.factory import build_image_analyzer, build_text_encoder
from tests.fixtures.onnx_models import clip_export, labels_tsv, safety_model

DIM = 8


@pytest.fixture
def clip_dir(tmp_path: Path) -> Path:
    return clip_export(tmp_path / "clip", dim=DIM)


@pytest.fixture
def settings(tmp_path: Path, clip_dir: Path):
    return load_settings(
        VAR_DIR=tmp_path / "var",
        CLIP_MODEL_DIR=clip_dir,
        ML_EMBEDDING_DIM=DIM,
        ML_SAFETY_MODEL_PATH=safety_model(tmp_path / "safety.onnx"),
        ML_LABELS_PATH=labels_tsv(tmp_path / "labels.tsv"),
        # Settings of the fallback point nowhere: with CLIP configured they must not be read.
        ML_CLASSIFIER_MODEL_PATH=tmp_path / "absent-classifier.onnx",
        ML_TEXT_MODEL_PATH=tmp_path / "absent-text.onnx",
    )


def test_clip_model_dir_selects_the_clip_text_encoder(settings) -> None:
    encoder = build_text_encoder(settings)

    assert isinstance(encoder, ClipTextEncoder)
    vectors = encoder.encode(["a photo of a red thing.", "cat", "kitten", "car"])
    assert vectors.shape == (4, DIM)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    cat, kitten, car = vectors[1:]
    assert float(cat @ kitten) > float(cat @ car)


def test_clip_images_get_the_visual_towers_vector_and_zero_shot_tags(settings) -> None:
    encoder = build_text_encoder(settings)
    analyzer = build_image_analyzer(settings, encoder)

    red, blue = analyzer.analyze([Image.new("RGB", (80, 60), (255, 0, 0)), Image.new("RGB", (64, 64), (0, 0, 255))])

    assert red.tags[0][0] == "red"
    assert blue.tags[0][0] == "blue"
    assert red.embedding.shape == (DIM,)
    assert float(np.linalg.norm(red.embedding)) == pytest.approx(1.0, abs=1e-5)
    red_text, blue_text = encoder.encode(["red", "blue"])
    assert float(red.embedding @ red_text) > float(red.embedding @ blue_text)
    assert red.safety_score > 0.9 > 0.1 > blue.safety_score  # the generated safety model calls red explicit


def test_clip_images_are_preprocessed_with_the_exports_mean_and_std(clip_dir: Path) -> None:
    visual = ClipVisualEncoder(clip_dir, dimension=DIM)

    pixels = visual.preprocess(Image.new("RGB", (100, 50), (255, 0, 128)))

    assert pixels.shape == (3, 32, 32)
    # (x / 255 - 0.5) / 0.5 per channel, as preprocess_cfg.json says
    np.testing.assert_allclose(pixels[:, 10, 10], [1.0, -1.0, (128 / 255 - 0.5) / 0.5], atol=1e-5)


def test_clip_refuses_inputs_it_can_never_analyse(settings) -> None:
    analyzer = build_image_analyzer(settings, build_text_encoder(settings))

    with pytest.raises(ModelInputError):
        analyzer.analyze([Image.new("RGB", (1, 1))])


def test_an_embedding_dimension_other_than_the_setting_is_refused_with_the_fix(tmp_path: Path) -> None:
    wide = clip_export(tmp_path / "wide", dim=16)

    with pytest.raises(ModelLoadError, match=r"embed_dim 16 but ML_EMBEDDING_DIM is 8: set ML_EMBEDDING_DIM=16"):
        ClipTextEncoder(wide, dimension=8)


def test_towers_that_disagree_with_config_json_are_refused(tmp_path: Path) -> None:
    liar = clip_export(tmp_path / "liar", dim=16, embed_dim=8)  # config says 8, the graphs give 16

    with pytest.raises(ModelLoadError, match="CLIP_MODEL_DIR"):
        ClipVisualEncoder(liar, dimension=8)
    with pytest.raises(ModelLoadError, match="CLIP_MODEL_DIR"):
        ClipTextEncoder(liar, dimension=8)


def test_a_text_tower_with_another_context_length_is_refused(clip_dir: Path) -> None:
    config = json.loads((clip_dir / "config.json").read_text())
    config["text_cfg"]["context_length"] = 77
    (clip_dir / "config.json").write_text(json.dumps(config))

    with pytest.raises(ModelLoadError, match=r"input 'text'.*\['any', 77\]"):
        ClipTextEncoder(clip_dir, dimension=DIM)


@pytest.mark.parametrize(
    "missing",
    ["config.json", "visual/model.onnx", "visual/preprocess_cfg.json", "textual/model.onnx", "textual/tokenizer.json"],
)
def test_each_file_of_the_layout_is_required(clip_dir: Path, missing: str) -> None:
    target = clip_dir / missing
    target.unlink() if target.is_file() else shutil.rmtree(target)

    with pytest.raises(ModelLoadError, match=missing.split("/")[-1].replace(".", r"\.")):
        ClipTextEncoder(clip_dir, dimension=DIM)
        ClipVisualEncoder(clip_dir, dimension=DIM)


def test_a_preprocess_config_without_mean_and_std_is_refused(clip_dir: Path) -> None:
    (clip_dir / "visual" / "preprocess_cfg.json").write_text(json.dumps({"size": 32}))

    with pytest.raises(ModelLoadError, match="needs size, mean"):
        ClipVisualEncoder(clip_dir, dimension=DIM)


def test_the_tokenizer_config_is_optional(clip_dir: Path) -> None:
    (clip_dir / "textual" / "tokenizer_config.json").unlink()

    assert ClipTextEncoder(clip_dir, dimension=DIM).encode(["red"]).shape == (1, DIM)
