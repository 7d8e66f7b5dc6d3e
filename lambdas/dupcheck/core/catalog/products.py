"""Visually similar products: "do we already sell something that looks like this?"

The duplicate check answers "is this the same picture?"; this answers the merchandiser's other
question with a product embedding: a CNN's pooled features (EfficientNet-Lite1, ImageNet weights,
docs/lab/similar-products.md) projected to 256 dimensions, unit length, stored as int8 beside each
record (never in it: records and the duplicate check are unchanged by it). Nearest by cosine
similarity, the same product from another angle, the same style in another colour and look-alike
items come first; a similarity is a measure of look, never a verdict.

    picture -> square it (borders in its own edge colour) -> 240 px -> model -> 256 floats -> int8

`EmbeddingModel` runs the network (adapters/onnx_model.py: onnxruntime); `ProductIndex` keeps the
vectors and searches them (the data dir's SQLite file and an in-process scan locally, an OpenSearch
k-NN index on AWS). `ProductSearch` is the query use case; registering computes a vector where the
fingerprint is computed (`service.build_entry`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dupcheck.core.errors import InvalidRequest
from dupcheck.core.models import MAX_TOP, PRODUCT_MODEL, ProductVector
from dupcheck.core.pictures.imaging import decode_image
from dupcheck.core.ports import EmbeddingModel, ProductIndex, RecordStore

INPUT_SIDE = 240  # EfficientNet-Lite1's resolution
# JPEG decodes at the smallest DCT scale that keeps >= 256 px: enough for a 240 px input, and the
# decode the hash pipelines make (a 1024 px JPEG at 1/4 of its work).
DRAFT_SIZE = 256


def default_model_path() -> Path:
    """Where `python -m dupcheck_tools.product_model` writes the model and the service looks for
    it (DUPCHECK_PRODUCT_MODEL overrides): inside the package, so the Lambda asset carries it."""
    return Path(__file__).resolve().parents[2] / "models" / f"{PRODUCT_MODEL}.onnx"


@dataclass(frozen=True, slots=True)
class SimilarProduct:
    """A catalog picture that looks like the query, and how much (cosine similarity, 1 = same look)."""

    entity_id: str
    sku: str
    image_url: str
    similarity: float

    def to_dict(self) -> dict[str, object]:
        return {"entity_id": self.entity_id, "sku": self.sku, "image_url": self.image_url,
                "similarity": self.similarity}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ProductResult:
    model: str
    products: list[SimilarProduct]
    image_url: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {"query": {"image_url": self.image_url, "model": self.model},
                "products": [p.to_dict() for p in self.products]}  # fmt: skip


def product_picture(image: Image.Image, side: int = INPUT_SIDE) -> np.ndarray:
    """The model's input: the picture made square with borders in its own edge colour (the median
    of its outermost pixels: white for a product on white), then `side` px. Squaring, not
    cropping or squashing: a product shot keeps its whole outline and its proportions."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    longest = max(width, height)
    if width != height:
        pixels = np.asarray(image)
        edge = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
        colour = tuple(int(v) for v in np.median(edge, axis=0))
        square = Image.new("RGB", (longest, longest), colour)
        square.paste(image, ((longest - width) // 2, (longest - height) // 2))
        image = square
    return np.asarray(image.resize((side, side), Image.Resampling.BILINEAR))


class Embedder:
    """A picture's ProductVector with a given model."""

    def __init__(self, model: EmbeddingModel) -> None:
        self.model = model

    @property
    def name(self) -> str:
        return self.model.name

    def embed(self, image: Image.Image) -> ProductVector:
        unit = self.model.run(product_picture(image)[None])[0]
        return ProductVector.of_unit(unit, self.model.name)

    def embed_bytes(self, data: bytes, *, max_pixels: int) -> ProductVector:
        """Decoded with the same limits as every picture (core/pictures/imaging.py), then embedded."""
        if not data:
            raise InvalidRequest("the image is empty")
        return self.embed(decode_image(data, max_pixels=max_pixels, draft_size=DRAFT_SIZE))


class ProductSearch:
    """`/similar_products`: the catalog products that look most like a picture. Reads the records of
    the hits for their SKU and address; a hit whose record is gone (removed meanwhile) is left out."""

    def __init__(self, *, embedder: Embedder, index: ProductIndex, store: RecordStore,
                 fetch: Callable[[str], bytes], max_pixels: int, default_top: int = 5) -> None:  # fmt: skip
        self.embedder, self.index, self.store, self.fetch = embedder, index, store, fetch
        self.max_pixels, self.default_top = max_pixels, default_top

    def similar_products(self, image_url: str, top: int | None = None) -> ProductResult:
        return self.similar_products_bytes(self.fetch(image_url), top, image_url=image_url)

    def similar_products_bytes(
        self, data: bytes, top: int | None = None, *, image_url: str | None = None
    ) -> ProductResult:
        top = self.default_top if top is None else top
        if not 1 <= top <= MAX_TOP:
            raise InvalidRequest(f"top must be between 1 and {MAX_TOP}")
        vector = self.embedder.embed_bytes(data, max_pixels=self.max_pixels)
        hits = self.index.search(vector, top)
        records = self.store.get_many([hit.entity_id for hit in hits]) if hits else {}
        products = [
            SimilarProduct(hit.entity_id, record.sku, record.image_url, round(hit.similarity, 3))
            for hit in hits
            if (record := records.get(hit.entity_id)) is not None
        ]
        return ProductResult(model=vector.model, products=products, image_url=image_url)
