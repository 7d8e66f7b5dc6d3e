"""The real product model, built from the weights package (never downloaded): its conversion
without torch gives what PyTorch gives, the same bytes on every build, and on generated pictures
a product and its recolour are each other's nearest while an unrelated picture is not.

`make test` builds the model first (`make model`); without it these tests fail, never skip."""

from __future__ import annotations

import io
import json
import pickle
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dupcheck.adapters.onnx_model import ARENA_SHRINKAGE, OnnxEmbeddingModel
from dupcheck.core.catalog.products import Embedder, default_model_path
from dupcheck.core.models import DIMENSIONS, PRODUCT_MODEL, ProductVector
from dupcheck_tools import product_model
from dupcheck_tools.samples import encode, product_image
from support.garments import garment

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "scripts"))
from product_model_reference import reference_pictures  # noqa: E402 - the script beside the reference

REFERENCE = ROOT / "tests" / "data" / "product_model_reference.json"


@pytest.fixture(scope="module")
def model() -> OnnxEmbeddingModel:
    path = default_model_path()
    assert path.is_file(), f"no product model at {path}: `make model` builds it from the weights package"
    return OnnxEmbeddingModel(path)


def test_the_model_computes_what_pytorch_computes_from_the_same_weights(model: OnnxEmbeddingModel) -> None:
    """scripts/product_model_reference.py ran the architecture's own PyTorch code on the packaged
    checkpoint: the torch-free graph agrees to float rounding."""
    expected = np.array(json.loads(REFERENCE.read_text())["embeddings"])
    found = model.run(reference_pictures())
    assert found.shape == (3, DIMENSIONS)
    assert np.abs(found - expected).max() < 1e-4
    assert np.allclose(np.linalg.norm(found, axis=1), 1.0, atol=1e-5)


def test_the_model_names_itself_and_its_source_package(model: OnnxEmbeddingModel) -> None:
    assert model.name == PRODUCT_MODEL
    checkpoint, version = product_model.packaged_checkpoint()
    assert model.source.startswith(f"{product_model.WEIGHTS_PACKAGE}=={version} {checkpoint.name} sha256:")


def test_the_conversion_is_one_command_and_gives_the_same_bytes(tmp_path: Path) -> None:
    out = tmp_path / "model.onnx"
    assert product_model.main(["--out", str(out)]) == 0
    assert out.read_bytes() == default_model_path().read_bytes()
    assert product_model.projection().tobytes() == product_model.projection().tobytes()
    assert set(np.unique(product_model.projection() * 16).tolist()) == {-1.0, 1.0}  # +-1/sqrt(256)


def test_the_checkpoint_reader_runs_no_code_a_file_names(tmp_path: Path) -> None:
    """A .pth is a pickle: one naming anything but a state dict's three globals is refused."""
    hostile = tmp_path / "hostile.pth"
    with hostile.open("wb") as file:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, file)
        file.write(b"cos\nsystem\n(S'echo owned'\ntR.")
    with pytest.raises(pickle.UnpicklingError, match="os.system"):
        product_model.read_checkpoint(hostile)


def test_a_product_and_its_recolour_are_each_others_nearest_and_an_unrelated_picture_is_not(
    model: OnnxEmbeddingModel,
) -> None:
    shirt = garment("zip")
    pixels = np.asarray(shirt).astype(int)
    dark = np.abs(pixels - [45, 48, 55]).sum(axis=-1) < 40  # the shirt, made red
    red = pixels.copy()
    red[dark] = [160, 35, 45]
    y, x = np.mgrid[0:300, 0:400]
    scene = np.stack([x * 255 // 400, 120 + 0 * x, y * 255 // 300], axis=-1)
    pictures = {
        "shirt": shirt,
        "red shirt": Image.fromarray(red.astype(np.uint8)),
        "product 1": product_image(1),
        "product 2": product_image(2),
        "scene": Image.fromarray(scene.astype(np.uint8)),
    }
    embedder = Embedder(model)
    vectors = {name: embedder.embed_bytes(encode(p), max_pixels=10**7) for name, p in pictures.items()}

    def nearest(name: str) -> tuple[str, float]:
        return max(((o, vectors[name].similarity(v)) for o, v in vectors.items() if o != name), key=lambda t: t[1])

    assert nearest("shirt")[0] == "red shirt" and nearest("red shirt")[0] == "shirt"
    assert nearest("shirt")[1] > 0.85
    assert nearest("scene")[0] not in ("shirt", "red shirt")
    assert vectors["scene"].similarity(vectors["shirt"]) < 0.5


def test_the_picture_is_embedded_the_same_from_any_encoding_and_size(model: OnnxEmbeddingModel) -> None:
    embedder = Embedder(model)
    picture = product_image(4, size=(600, 480))
    png = embedder.embed_bytes(encode(picture, "PNG"), max_pixels=10**7)
    jpeg = embedder.embed_bytes(encode(picture.resize((300, 240)), "JPEG"), max_pixels=10**7)
    assert isinstance(png, ProductVector) and png.similarity(jpeg) > 0.97
    buffer = io.BytesIO()
    picture.convert("L").save(buffer, "PNG")
    assert embedder.embed_bytes(buffer.getvalue(), max_pixels=10**7).similarity(png) > 0.6


def test_runs_on_many_threads_at_once_give_back_their_arena_and_compute_what_one_run_computes(
    model: OnnxEmbeddingModel,
) -> None:
    """Each run shrinks onnxruntime's arena when it ends (adapters/onnx_model.py): a run ending
    frees only what no run holds, so runs at once on the server's threads get the vectors a run
    alone gets."""
    assert model._run_options.get_run_config_entry(ARENA_SHRINKAGE) == "cpu:0"
    pictures = reference_pictures()
    alone = [model.run(pictures[i : i + 1]) for i in range(len(pictures))]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda i: model.run(pictures[i % len(pictures) : i % len(pictures) + 1]), range(48)))
    for i, vectors in enumerate(together):
        assert np.array_equal(vectors, alone[i % len(pictures)]), i
