"""Similar products without the network's weights: vectors and their similarity, the model's input,
the local index (its file, its search, other processes' writes) and the service's hooks, with a
stand-in model whose vectors the test chooses. The real model: test_product_model.py."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dupcheck.adapters import local_products
from dupcheck.adapters.local_products import LocalProductIndex
from dupcheck.bootstrap import build_embedder, build_product_search, build_service
from dupcheck.core.catalog.products import INPUT_SIDE, Embedder, product_picture
from dupcheck.core.catalog.service import DupcheckService
from dupcheck.core.errors import DuplicateImage, InvalidRequest
from dupcheck.core.models import DIMENSIONS, PRODUCT_MODEL, SCALE, OnDuplicate, ProductVector
from dupcheck.core.ports import ProductIndex
from dupcheck.core.settings import Settings, SettingsError
from dupcheck_tools.samples import encode, product_image


def unit(seed: int, near: np.ndarray | None = None, spread: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vector = rng.normal(size=DIMENSIONS) if near is None else near + spread * rng.normal(size=DIMENSIONS)
    return vector / np.linalg.norm(vector)


def vector(seed: int, **near: object) -> ProductVector:
    return ProductVector.of_unit(unit(seed, **near))  # type: ignore[arg-type]


class PixelModel:
    """A stand-in network: a picture's vector is a fixed random direction per mean colour, so the
    test knows which pictures are alike (the same colour) and which are not."""

    name = PRODUCT_MODEL

    def __init__(self) -> None:
        self.runs = 0

    def run(self, pictures: np.ndarray) -> np.ndarray:
        self.runs += 1
        assert pictures.shape[1:] == (INPUT_SIDE, INPUT_SIDE, 3) and pictures.dtype == np.uint8
        out = []
        for picture in pictures:
            colour = tuple(int(c) // 32 for c in picture.reshape(-1, 3).mean(axis=0))
            out.append(unit(int.from_bytes(hashlib.sha256(repr(colour).encode()).digest()[:4], "big")))
        return np.stack(out)


def flat(colour: tuple[int, int, int], size: tuple[int, int] = (300, 200)) -> bytes:
    return encode(Image.new("RGB", size, colour))


# -- vectors and pictures ---------------------------------------------------------------------


def test_a_vector_is_int8_and_its_similarity_is_the_cosine_within_rounding() -> None:
    a, b = unit(1), unit(2)
    va, vb = ProductVector.of_unit(a), ProductVector.of_unit(b)
    assert len(va.data) == DIMENSIONS and va.model == PRODUCT_MODEL
    assert va.similarity(va) == pytest.approx(1.0, abs=0.005)
    assert va.similarity(vb) == pytest.approx(float(a @ b), abs=0.005)
    assert ProductVector.of_unit(-a).similarity(va) == pytest.approx(-1.0, abs=0.005)
    assert np.abs(va.values()).max() <= 127 and np.abs(va.values()).max() == round(np.abs(a).max() * SCALE)
    with pytest.raises(ValueError):
        ProductVector.of_unit(np.ones(DIMENSIONS + 1))


def test_the_models_input_is_the_picture_squared_in_its_edge_colour_not_cropped() -> None:
    tall = Image.new("RGB", (100, 300), (250, 250, 250))
    tall.paste(Image.new("RGB", (60, 300), (200, 0, 0)), (20, 0))
    square = product_picture(tall)
    assert square.shape == (INPUT_SIDE, INPUT_SIDE, 3) and square.dtype == np.uint8
    assert tuple(square[5, 5]) == (250, 250, 250)  # the added border: the picture's edge colour
    assert tuple(square[INPUT_SIDE // 2, INPUT_SIDE // 2]) == (200, 0, 0)
    red_columns = np.flatnonzero((square[INPUT_SIDE // 2, :, 0] > 150) & (square[INPUT_SIDE // 2, :, 1] < 60))
    assert 40 < len(red_columns) < 60  # the garment keeps its width: 60 of 300 px, not stretched
    assert product_picture(Image.new("L", (50, 50), 128)).shape == (INPUT_SIDE, INPUT_SIDE, 3)


def test_an_empty_or_undecodable_picture_is_refused_as_the_duplicate_check_refuses_it() -> None:
    embedder = Embedder(PixelModel())
    with pytest.raises(InvalidRequest):
        embedder.embed_bytes(b"", max_pixels=10**6)
    with pytest.raises(Exception) as refused:
        embedder.embed_bytes(b"not an image at all", max_pixels=10**6)
    assert getattr(refused.value, "status", None) in (415, 422)
    with pytest.raises(Exception) as too_large:
        embedder.embed_bytes(flat((1, 2, 3), (400, 400)), max_pixels=10_000)
    assert getattr(too_large.value, "status", None) == 413


# -- the local index ------------------------------------------------------------------------------


@pytest.fixture
def index(tmp_path: Path) -> LocalProductIndex:
    return LocalProductIndex(tmp_path / "products.sqlite3")


def test_the_local_index_stores_replaces_removes_and_says_what_is_missing(index: LocalProductIndex) -> None:
    assert isinstance(index, ProductIndex)
    assert index.put_many({"a": vector(1), "b": vector(2), "c": vector(3)}) == 3
    assert index.count() == 3
    assert [h.entity_id for h in index.search(vector(2), 1)] == ["b"]
    index.put_many({"b": vector(1)})  # b's picture changed: now a's look
    assert {h.entity_id for h in index.search(vector(1), 2)} == {"a", "b"}
    index.remove("a")
    index.remove("a")  # again: nothing to do
    index.remove("nobody")
    assert index.count() == 2 and [h.entity_id for h in index.search(vector(1), 5)][0] == "b"
    assert index.missing(["a", "b", "c", "d"]) == {"a", "d"}
    other_model = ProductVector(vector(4).data, model="another-model-v9")
    index.put_many({"e": other_model})
    assert index.missing(["e"]) == {"e"} and index.count() == 2  # never compared with these
    assert index.search(other_model, 3) == []


def test_hits_come_most_similar_first_with_the_similarity_both_indexes_report(index: LocalProductIndex) -> None:
    centre = unit(10)
    index.put_many({f"near{i}": ProductVector.of_unit(unit(20 + i, near=centre, spread=0.02 * (i + 1)))
                    for i in range(5)})  # fmt: skip
    index.put_many({f"far{i}": vector(40 + i) for i in range(20)})
    query = ProductVector.of_unit(centre)
    hits = index.search(query, 5)
    assert [h.entity_id for h in hits] == [f"near{i}" for i in range(5)]
    assert all(a.similarity >= b.similarity for a, b in zip(hits, hits[1:], strict=False))
    stored = ProductVector.of_unit(unit(20, near=centre, spread=0.02))
    assert hits[0].similarity == pytest.approx(query.similarity(stored), abs=1e-9)


def test_above_the_rescored_share_the_bits_find_the_same_nearest_as_a_full_scan(
    index: LocalProductIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With RERANK made small, the Hamming scan picks the candidates: clustered vectors (a product
    and its looks) are found as an exact scan finds them, unrelated ones are left out."""
    monkeypatch.setattr(local_products, "RERANK", 64)
    centres = [unit(100 + c) for c in range(20)]
    vectors = {f"c{c}-{i}": ProductVector.of_unit(unit(1000 + 50 * c + i, near=centres[c], spread=0.06))
               for c in range(20) for i in range(40)}  # fmt: skip
    index.put_many(vectors)
    assert index.count() == 800
    ids = list(vectors)
    matrix = np.stack([vectors[i].values().astype(np.int32) for i in ids])
    found = 0
    for c in range(0, 20, 4):
        query = ProductVector.of_unit(unit(7000 + c, near=centres[c], spread=0.06))
        exact = {ids[i] for i in np.argsort(-(matrix @ query.values().astype(np.int32)), kind="stable")[:5]}
        hits = index.search(query, 5)
        assert all(h.entity_id.startswith(f"c{c}-") for h in hits)
        found += len(exact & {h.entity_id for h in hits})
    assert found >= 23  # of 25


def test_another_process_writes_reach_the_servers_index_at_its_next_search(tmp_path: Path) -> None:
    server = LocalProductIndex(tmp_path / "products.sqlite3")
    server.warm()
    assert server.count() == 0
    other = LocalProductIndex(tmp_path / "products.sqlite3")  # a backfill, `python -m dupcheck add`
    other.put_many({"x": vector(5), "y": vector(6)})
    assert [h.entity_id for h in server.search(vector(5), 1)] == ["x"]
    other.remove("x")
    assert server.count() == 1 and [h.entity_id for h in server.search(vector(5), 2)] == ["y"]
    reopened = LocalProductIndex(tmp_path / "products.sqlite3")  # a restart: loaded from the file
    assert reopened.count() == 1 and reopened.missing(["x", "y"]) == {"x"}


# -- the service: register, remove, search ----------------------------------------------------------


@pytest.fixture
def model() -> PixelModel:
    return PixelModel()


@pytest.fixture
def products_service(settings: Settings, model: PixelModel) -> Iterator[DupcheckService]:
    yield build_service(settings, embedder=Embedder(model))


def test_registering_keeps_a_vector_beside_the_record_and_removing_drops_it(
    products_service: DupcheckService, settings: Settings
) -> None:
    red, blue = flat((200, 20, 20)), flat((20, 20, 200))
    products_service.registrar.register_bytes(
        entity_id="red-1", sku="R1", image_url="https://shop.example/r1.jpg", data=red
    )
    products_service.registrar.register_bytes(
        entity_id="blue-1", sku="B1", image_url="https://shop.example/b1.jpg", data=blue
    )
    search = build_product_search(settings, products_service)
    assert search is not None
    result = search.similar_products_bytes(flat((205, 25, 22), (500, 400)), top=2)
    assert [p.entity_id for p in result.products] == ["red-1", "blue-1"]
    assert result.products[0].similarity > 0.99 and result.products[0].sku == "R1"
    assert result.to_dict()["query"] == {"image_url": None, "model": PRODUCT_MODEL}
    products_service.records.remove("red-1")
    assert [p.entity_id for p in search.similar_products_bytes(red, top=5).products] == ["blue-1"]
    with pytest.raises(InvalidRequest):
        search.similar_products_bytes(red, top=0)


class CountingEmbedder(Embedder):
    def __init__(self, model: PixelModel) -> None:
        super().__init__(model)
        self.pictures = 0

    def embed_bytes(self, data: bytes, *, max_pixels: int) -> ProductVector:
        self.pictures += 1
        return super().embed_bytes(data, max_pixels=max_pixels)


def test_a_write_through_the_gate_keeps_its_vector_and_a_refused_one_never_computes_one(
    settings: Settings, model: PixelModel
) -> None:
    embedder = CountingEmbedder(model)
    service = build_service(settings, embedder=embedder)
    red = encode(product_image(3))
    service.registrar.register_checked(entity_id="red-1", sku="R1", image_url="https://shop.example/r1.jpg", data=red,
                                       on_duplicate=OnDuplicate.WARN)  # fmt: skip
    assert embedder.pictures == 1
    with pytest.raises(DuplicateImage):
        service.registrar.register_checked(entity_id="red-2", sku="R2", image_url="https://shop.example/r2.jpg",
                                           data=red, on_duplicate=OnDuplicate.REJECT)  # fmt: skip
    assert embedder.pictures == 1  # refused: the model never ran
    search = build_product_search(settings, service)
    assert search is not None
    assert [p.entity_id for p in search.similar_products_bytes(red, top=5).products] == ["red-1"]


def test_records_are_the_same_with_similar_products_on_or_off(settings: Settings, tmp_path: Path) -> None:
    """The vector is beside the record, never in it: what the store and the hash index hold, and
    so every duplicate verdict, does not change."""
    data = encode(product_image(7))
    on = build_service(settings, embedder=Embedder(PixelModel()))
    off = build_service(Settings.from_env({}, data_dir=tmp_path / "off", products="off"))
    assert off.parts.embedder is None and off.parts.products is None
    on_record = on.registrar.register_bytes(entity_id="p7", sku="S", image_url="https://shop.example/7.jpg", data=data)
    off_record = off.registrar.register_bytes(
        entity_id="p7", sku="S", image_url="https://shop.example/7.jpg", data=data
    )
    assert (on_record.hash, on_record.features) == (off_record.hash, off_record.features)
    assert not (tmp_path / "off" / "products.sqlite3").exists()
    assert (
        on.lookups.find_similar_bytes(data).to_dict()["matches"]
        == off.lookups.find_similar_bytes(data).to_dict()["matches"]
    )


def test_the_setting_decides_and_on_refuses_to_start_without_the_model(tmp_path: Path) -> None:
    assert build_embedder(Settings.from_env({}, products="off")) is None
    missing = tmp_path / "no-model.onnx"
    assert build_embedder(Settings.from_env({}, products="auto", product_model=missing)) is None
    with pytest.raises(SettingsError, match="no product model"):
        build_embedder(Settings.from_env({}, products="on", product_model=missing))
