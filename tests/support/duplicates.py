"""A small catalog that already holds duplicates, for the catalog-wide duplicate report's tests.

Records are built by the default pipeline from generated pictures (no download). Each group
keeps its original, registered first (`updated_at`), whose id does not sort first in group "b":

  group "a": a-original, a-reflected-crop (mirrored, 8% cropped off each side: its white margin
             only), a-small (a third of the size, JPEG quality 60)
  group "b": b-original and b-grayscale (its id first)
  red-shirt and blue-shirt: one product in two colours (two SKUs: never duplicates)
  other-1..3: unrelated pictures
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator

from PIL import Image, ImageOps

from dupcheck.core.catalog.records import build_entry
from dupcheck.core.fingerprint.hashing import get_pipeline
from dupcheck.core.models import Entry, HashRecord
from dupcheck.core.ports import RecordStore
from dupcheck_tools.samples import encode, product_image

EXPECTED_GROUPS = [["a-original", "a-reflected-crop", "a-small"], ["b-original", "b-grayscale"]]
COLOUR_VARIANTS = ("red-shirt", "blue-shirt")


def _mirrored_crop(image: Image.Image) -> Image.Image:
    width, height = image.size
    return ImageOps.mirror(image.crop((int(width * 0.08), int(height * 0.08), int(width * 0.92), int(height * 0.92))))


def _small(image: Image.Image) -> Image.Image:
    small = image.resize((image.width // 3, image.height // 3))
    return Image.open(io.BytesIO(encode(small, "JPEG", quality=60))).convert("RGB")


def catalog_entries() -> list[Entry]:
    """The records, each with the thumbnail the default pipeline keeps beside it."""
    a, b = product_image(501, (480, 400)), product_image(502, (480, 400))
    pictures = [
        ("a-original", a, "2026-01-01T09:00:00.000Z"),
        ("a-reflected-crop", _mirrored_crop(a), "2026-02-01T09:00:00.000Z"),
        ("a-small", _small(a), "2026-03-01T09:00:00.000Z"),
        ("b-original", b, "2026-01-02T09:00:00.000Z"),
        ("b-grayscale", ImageOps.grayscale(b).convert("RGB"), "2026-01-05T09:00:00.000Z"),
        ("red-shirt", product_image(503, (480, 400), hue=0.0), "2026-01-03T09:00:00.000Z"),
        ("blue-shirt", product_image(503, (480, 400), hue=0.6), "2026-01-04T09:00:00.000Z"),
        *((f"other-{i}", product_image(600 + i, (480, 400)), "2026-01-06T09:00:00.000Z") for i in range(1, 4)),
    ]
    pipeline = get_pipeline()
    entries = []
    for entity_id, picture, updated_at in pictures:
        entry = build_entry(pipeline, encode(picture), entity_id=entity_id, sku=f"SKU-{entity_id.upper()}",
                            image_url=f"https://cdn.shop.example/p/{entity_id}.jpg", max_pixels=40_000_000)  # fmt: skip
        entries.append(Entry(dataclasses.replace(entry.record, updated_at=updated_at), entry.thumbnail))
    return entries


def catalog_records() -> list[HashRecord]:
    return [entry.record for entry in catalog_entries()]


class CountingStore:
    """A record store, counting its scans (a resumed run must not read the store again)."""

    def __init__(self, store: RecordStore) -> None:
        self.store, self.scans = store, 0

    def scan(self, segments: int = 1) -> Iterator[HashRecord]:
        self.scans += 1
        return self.store.scan(segments)

    def approximate_count(self) -> int:
        return self.store.approximate_count()


def copies_of_the_catalog(copies: int) -> list[Entry]:
    """`copies` of the catalog's records under ids of their own (`c3-a-small`): a catalog large
    enough that its verification runs in worker processes, built without hashing again."""
    entries = catalog_entries()
    return [
        Entry(dataclasses.replace(entry.record, entity_id=f"c{n}-{entry.record.entity_id}"), entry.thumbnail)
        for n in range(copies)
        for entry in entries
    ]
