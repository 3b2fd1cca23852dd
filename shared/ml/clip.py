"""A real CLIP export, used when CLIP_MODEL_DIR is set: the layout Immich's model repositories use.

    CLIP_MODEL_DIR/
      config.json                  OpenCLIP model config: embed_dim, text_cfg.context_length
      visual/model.onnx            image (N, 3, S, S) float32 -> (N, embed_dim)
      visual/preprocess_cfg.json   size, mean, std, interpolation, resize_mode
      textual/model.onnx           text (N, context_length) int32/int64 -> (N, embed_dim)
      textual/tokenizer.json       Hugging Face `tokenizers` file
      textual/tokenizer_config.json  (optional) pad_token

Image vectors come from the visual tower; tags come from zero-shot classification of the image vector
against the same ImageNet label names the fallback uses ("a photo of a tabby cat."). If embed_dim is not
384, set ML_EMBEDDING_DIM to it; the search index's vector column must have that dimension too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tokenizers import Tokenizer

from shared.ml import ImageAnalysis, ModelLoadError
from shared.ml.images import center_crop_array, check_images, shrink
from shared.ml.labels import Label, parent_members
from shared.ml.safety import SafetyScorer
from shared.ml.sessions import TensorSpec, fixed_dim, load_session
from shared.ml.tagging import files_fingerprint, label_embeddings, model_version, tags_from_probabilities
from shared.ml.vectors import l2_normalize, softmax

SETTING = "CLIP_MODEL_DIR"
# CLIP's learned temperature ends at its clamp of 100 in every public checkpoint; sharpens zero-shot scores.
DEFAULT_LOGIT_SCALE = 100.0
_RESAMPLING = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}


def _read_json(path: Path, *, required: bool = True) -> dict[str, Any]:
    if not path.is_file():
        if required:
            raise ModelLoadError(f"CLIP model: {path} is missing (setting {SETTING})")
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"CLIP model: {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"CLIP model: {path} must hold a JSON object")
    return data


def _model_config(model_dir: Path, dimension: int) -> dict[str, Any]:
    config = _read_json(model_dir / "config.json")
    config = config.get("model_cfg", config)  # some exports nest OpenCLIP's config one level down
    embed_dim = config.get("embed_dim")
    if embed_dim is not None and embed_dim != dimension:
        raise ModelLoadError(
            f"CLIP model in {model_dir} has embed_dim {embed_dim} but ML_EMBEDDING_DIM is {dimension}: set "
            f"ML_EMBEDDING_DIM={embed_dim} (and give the search index vectors of that size)"
        )
    return config


class ClipTextEncoder:
    def __init__(self, model_dir: Path, *, dimension: int, intra_op_threads: int = 0) -> None:
        model_dir = Path(model_dir)
        config = _model_config(model_dir, dimension)
        self.dimension = dimension
        self.context_length = int(config.get("text_cfg", {}).get("context_length", 77))
        model_path = model_dir / "textual" / "model.onnx"
        self._session = load_session(
            model_path,
            what="CLIP text encoder",
            setting=SETTING,
            inputs=[TensorSpec(None, (None, self.context_length), ("tensor(int32)", "tensor(int64)"))],
            outputs=[TensorSpec(None, (None, dimension))],
            intra_op_threads=intra_op_threads,
        )
        first = self._session.get_inputs()[0]
        self._input = first.name
        self._dtype = np.int32 if first.type == "tensor(int32)" else np.int64
        self._mask_input = next((i.name for i in self._session.get_inputs() if i.name == "attention_mask"), None)

        tokenizer_path = model_dir / "textual" / "tokenizer.json"
        if not tokenizer_path.is_file():
            raise ModelLoadError(f"CLIP model: {tokenizer_path} is missing (setting {SETTING})")
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        pad_token = _read_json(model_dir / "textual" / "tokenizer_config.json", required=False).get("pad_token")
        if isinstance(pad_token, dict):  # tokenizer_config may hold an AddedToken object
            pad_token = pad_token.get("content")
        pad_id = tokenizer.token_to_id(pad_token) if isinstance(pad_token, str) else None
        # OpenCLIP pads with id 0 when the tokenizer names no pad token; the graph takes a fixed length.
        tokenizer.enable_padding(length=self.context_length, pad_id=pad_id or 0, pad_token=pad_token or "[PAD]")
        tokenizer.enable_truncation(max_length=self.context_length)
        self._tokenizer = tokenizer
        self.fingerprint = files_fingerprint([model_path, tokenizer_path], "clip-text", str(self.context_length))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts, not one string")
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = self._tokenizer.encode_batch([" ".join(text.split()) for text in texts])
        feeds = {self._input: np.array([e.ids for e in encodings], dtype=self._dtype)}
        if self._mask_input is not None:
            feeds[self._mask_input] = np.array([e.attention_mask for e in encodings], dtype=self._dtype)
        return l2_normalize(self._session.run(None, feeds)[0])


class ClipVisualEncoder:
    def __init__(self, model_dir: Path, *, dimension: int, intra_op_threads: int = 0) -> None:
        model_dir = Path(model_dir)
        _model_config(model_dir, dimension)
        cfg = _read_json(model_dir / "visual" / "preprocess_cfg.json")
        try:
            size = cfg["size"]
            self.size = int(size[0] if isinstance(size, list) else size)
            self.mean = np.array(cfg["mean"], dtype=np.float32).reshape(3)
            self.std = np.array(cfg["std"], dtype=np.float32).reshape(3)
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelLoadError(
                f"CLIP model: {model_dir / 'visual' / 'preprocess_cfg.json'} needs size, mean[3] and std[3]: {exc}"
            ) from exc
        self.resample = _RESAMPLING.get(str(cfg.get("interpolation", "bicubic")), Image.Resampling.BICUBIC)
        self.resize_mode = cfg.get("resize_mode", "shortest")
        if self.resize_mode not in ("shortest", "squash"):
            raise ModelLoadError(f"CLIP model: resize_mode {self.resize_mode!r} is not supported (shortest, squash)")
        model_path = model_dir / "visual" / "model.onnx"
        self._session = load_session(
            model_path,
            what="CLIP image encoder",
            setting=SETTING,
            inputs=[TensorSpec(None, (None, 3, self.size, self.size))],
            outputs=[TensorSpec(None, (None, dimension))],
            intra_op_threads=intra_op_threads,
        )
        if fixed_dim(self._session, output=True, index=0, axis=1) not in (None, dimension):
            raise ModelLoadError(f"CLIP image encoder: {model_path} does not give {dimension}-d vectors")
        self._input = self._session.get_inputs()[0].name

    def preprocess(self, image: Image.Image) -> np.ndarray:
        if self.resize_mode == "squash":
            pixels = np.asarray(image.resize((self.size, self.size), self.resample), dtype=np.float32)
        else:
            pixels = center_crop_array(image, self.size, resample=self.resample)
        return ((pixels / 255.0 - self.mean) / self.std).transpose(2, 0, 1)

    def encode(self, images: Sequence[Image.Image]) -> np.ndarray:
        batch = np.stack([self.preprocess(image) for image in images]).astype(np.float32)
        return l2_normalize(self._session.run(None, {self._input: batch})[0])


class ClipImageAnalyzer:
    def __init__(
        self,
        visual: ClipVisualEncoder,
        safety: SafetyScorer,
        labels: Sequence[Label],
        label_vectors: np.ndarray,
        *,
        max_batch: int = 16,
        max_tags: int = 10,
        min_tag_confidence: float = 0.02,
        logit_scale: float = DEFAULT_LOGIT_SCALE,
        version: str = "",
    ) -> None:
        self.dimension = int(label_vectors.shape[1])
        self.version = version
        self._visual = visual
        self._safety = safety
        self._labels = list(labels)
        self._parents = parent_members() if any(label.parent for label in labels) else {}
        self._label_vectors = label_vectors
        self._max_batch = max_batch
        self._max_tags = max_tags
        self._min_tag_confidence = min_tag_confidence
        self._logit_scale = logit_scale

    def analyze(self, images: Sequence[Image.Image]) -> list[ImageAnalysis]:
        check_images(images)
        results: list[ImageAnalysis] = []
        for start in range(0, len(images), self._max_batch):
            # A cheap first shrink keeps a 12-megapixel input from costing a full-size bicubic resample.
            working_side = max(2 * self._visual.size, 512)
            chunk = [shrink(image, working_side) for image in images[start : start + self._max_batch]]
            vectors = self._visual.encode(chunk)
            probabilities = softmax(self._logit_scale * (vectors @ self._label_vectors.T))
            safety = self._safety.scores(chunk)
            for vector, probs, score in zip(vectors, probabilities, safety, strict=True):
                tags = tags_from_probabilities(
                    probs,
                    self._labels,
                    self._parents,
                    max_tags=self._max_tags,
                    min_confidence=self._min_tag_confidence,
                )
                results.append(ImageAnalysis(tags=tags, embedding=vector, safety_score=float(score)))
        return results


def clip_label_prompt(label: Label) -> str:
    # The prompt template CLIP's authors used for ImageNet zero-shot classification.
    return f"a photo of a {label.name}."


def build_clip_analyzer(
    model_dir: Path,
    text_encoder: ClipTextEncoder,
    labels: Sequence[Label],
    safety: SafetyScorer,
    *,
    dimension: int,
    intra_op_threads: int,
    cache_dir: Path | None,
    max_batch: int,
    max_tags: int,
    min_tag_confidence: float,
) -> ClipImageAnalyzer:
    visual = ClipVisualEncoder(model_dir, dimension=dimension, intra_op_threads=intra_op_threads)
    prompts = [clip_label_prompt(label) for label in labels]
    vectors = label_embeddings(
        text_encoder,
        prompts,
        fingerprint=text_encoder.fingerprint,
        cache_dir=cache_dir,
    )
    return ClipImageAnalyzer(
        visual,
        safety,
        labels,
        vectors,
        max_batch=max_batch,
        max_tags=max_tags,
        min_tag_confidence=min_tag_confidence,
        version=model_version(
            "clip",
            [Path(model_dir) / "visual" / "model.onnx", Path(model_dir) / "textual" / "model.onnx"],
            str(dimension),
            *prompts,
        ),
    )
