"""The fallback text encoder: all-MiniLM-L6-v2 (int8 ONNX), mean pooling over real tokens, L2 norm."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from shared.ml.sessions import TensorSpec, load_session
from shared.ml.tagging import files_fingerprint
from shared.ml.vectors import l2_normalize, mean_pool

# all-MiniLM-L6-v2 was trained on 128 word pieces and sentence-transformers truncates at 256;
# search queries and label names are far shorter, so truncation never changes them.
MAX_TOKENS = 256


class MiniLMTextEncoder:
    """Encodes texts into unit vectors; `dimension` is read from the model and checked at load."""

    def __init__(
        self,
        model_path: Path,
        tokenizer_path: Path,
        *,
        dimension: int,
        intra_op_threads: int = 0,
        model_setting: str = "ML_TEXT_MODEL_PATH",
        tokenizer_setting: str = "ML_TOKENIZER_PATH",
    ) -> None:
        from shared.ml import ModelLoadError

        self.dimension = dimension
        self._session = load_session(
            model_path,
            what="text encoder",
            setting=model_setting,
            inputs=[
                TensorSpec("input_ids", (None, None), "tensor(int64)"),
                TensorSpec("attention_mask", (None, None), "tensor(int64)"),
            ],
            outputs=[TensorSpec(None, (None, None, dimension))],
            intra_op_threads=intra_op_threads,
        )
        self._input_names = {i.name for i in self._session.get_inputs()}
        if not Path(tokenizer_path).is_file():
            raise ModelLoadError(
                f"text encoder: tokenizer {tokenizer_path} does not exist (setting {tokenizer_setting})"
            )
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        # The shipped tokenizer pads every text to 128 tokens; pad only to the longest text of a batch.
        tokenizer.no_padding()
        pad = "[PAD]"  # BERT's padding token; its id is 0 in the uncased vocabulary
        tokenizer.enable_padding(pad_id=tokenizer.token_to_id(pad) or 0, pad_token=pad)
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        self._tokenizer = tokenizer
        # Identifies these exact files, for caches of vectors computed with them.
        self.fingerprint = files_fingerprint([Path(model_path), Path(tokenizer_path)], "minilm-mean-l2")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts, not one string")
        if len(texts) == 0:
            return np.zeros((0, self.dimension), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        return l2_normalize(mean_pool(hidden, mask))
