"""The real packaged models (EfficientNet-Lite0, MiniLM int8, Open-NSFW) on real photos, through ONNX Runtime."""

from __future__ import annotations

import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import shared.ml
from shared.config import get_settings, load_settings
from shared.ml import EMBEDDING_DIM, ImageAnalysis
from shared.ml.classifier import PACKAGED_CLASSIFIER
from shared.ml.factory import PACKAGED_TOKENIZER, build_image_analyzer, build_text_encoder
from tests.fixtures.photos import photo

PHOTOS = ("chelsea", "coffee", "rocket", "motorcycle", "china")


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory):
    settings = load_settings(VAR_DIR=Path(tmp_path_factory.mktemp("var")), ML_INTRA_OP_THREADS=1)
    encoder = build_text_encoder(settings)
    return encoder, build_image_analyzer(settings, encoder)


@pytest.fixture(scope="module")
def analyses(models) -> dict[str, ImageAnalysis]:
    _, analyzer = models
    # A 5-megapixel upscale as contributors upload, and the others at their own size, in one batch.
    images = [photo("chelsea", megapixels=5)] + [photo(name) for name in PHOTOS[1:]]
    return dict(zip(PHOTOS, analyzer.analyze(images), strict=True))


def tags(analysis: ImageAnalysis) -> set[str]:
    return {tag for tag, _ in analysis.tags}


def test_the_cat_photo_is_tagged_cat(analyses) -> None:
    assert analyses["chelsea"].tags[0][0] == "cat"
    assert tags(analyses["chelsea"]) & {"tabby cat", "tiger cat", "Egyptian Mau"}


def test_the_coffee_photo_is_tagged_coffee_or_cup(analyses) -> None:
    assert tags(analyses["coffee"]) & {"coffee", "espresso", "cup", "coffee mug", "tea cup"}


def test_the_rocket_photo_is_tagged_rocket_or_missile(analyses) -> None:
    assert tags(analyses["rocket"]) & {"rocket", "missile", "space shuttle"}


def test_the_motorcycle_and_temple_photos_get_fitting_tags(analyses) -> None:
    assert tags(analyses["motorcycle"]) & {"motorcycle", "moped", "motor scooter"}
    assert tags(analyses["china"]) & {"building", "palace", "bell tower", "monastery"}


def test_tags_are_few_best_first_and_confident(analyses) -> None:
    for name, analysis in analyses.items():
        scores = [score for _, score in analysis.tags]
        assert 1 <= len(scores) <= 10, name
        assert scores == sorted(scores, reverse=True), name
        assert all(0.0 <= score <= 1.0 for score in scores), name


def test_the_photos_are_safe(analyses) -> None:
    for name, analysis in analyses.items():
        assert 0.0 <= analysis.safety_score < 0.2, name  # Yahoo's own threshold for "safe"


def test_image_vectors_are_unit_length_in_the_384_d_text_space(analyses) -> None:
    for analysis in analyses.values():
        assert analysis.embedding.shape == (EMBEDDING_DIM,)
        assert analysis.embedding.dtype == np.float32
        assert float(np.linalg.norm(analysis.embedding)) == pytest.approx(1.0, abs=1e-4)


def test_a_text_query_lands_nearest_the_photo_it_describes(models, analyses) -> None:
    encoder, _ = models
    cat, coffee, rocket = encoder.encode(["cat", "a cup of coffee", "rocket launch"])

    assert float(cat @ analyses["chelsea"].embedding) > float(cat @ analyses["coffee"].embedding)
    assert float(coffee @ analyses["coffee"].embedding) > float(coffee @ analyses["chelsea"].embedding)
    assert float(rocket @ analyses["rocket"].embedding) > float(rocket @ analyses["chelsea"].embedding)


def test_text_embeddings_are_sensible(models) -> None:
    encoder, _ = models
    cat, kitten, car = encoder.encode(["cat", "kitten", "car"])

    assert float(cat @ kitten) > float(cat @ car) + 0.2


def test_the_process_wide_models_are_built_once_when_threads_race(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    get_settings.cache_clear()
    monkeypatch.setattr(shared.ml, "_analyzer", None)
    monkeypatch.setattr(shared.ml, "_encoder", None)
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            analyzers = list(pool.map(lambda _: shared.ml.get_image_analyzer(), range(4)))
            encoders = list(pool.map(lambda _: shared.ml.get_text_encoder(), range(4)))
        assert len({id(a) for a in analyzers}) == 1
        assert len({id(e) for e in encoders}) == 1
        # Callers run inference in threads (asyncio.to_thread): one shared session serves them all alike.
        image = photo("coffee")
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(lambda _: analyzers[0].analyze([image])[0], range(3)))
        for result in results[1:]:
            np.testing.assert_allclose(result.embedding, results[0].embedding, rtol=1e-5)
    finally:
        get_settings.cache_clear()


def test_the_committed_model_files_are_the_ones_their_notices_describe() -> None:
    for path in (PACKAGED_CLASSIFIER, PACKAGED_TOKENIZER):
        notice = (path.parent / "NOTICE").read_text()
        [recorded] = re.findall(r"sha256 ([0-9a-f]{64})", notice)
        # A Git LFS pointer or a re-export without updating the notice would differ here.
        assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded, path
        assert (path.parent / "LICENSE").is_file()
