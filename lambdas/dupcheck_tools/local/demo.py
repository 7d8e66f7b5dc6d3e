"""`make run`: generate a small demo catalog, index it, and show the curls that query it.

The catalog is generated (seeded), so the repository ships no images; the demo's query images
are served by the local server under /demo/, which is why the demo allows loopback URLs. Its
records go to a store of their own (`demo-data/` unless --data-dir names one), never the one
`serve`, `add` and `backfill` use (DUPCHECK_DATA_DIR, ./data): a shop's first catalog must not
begin with demo-00..demo-25, and the demo refuses a store that holds other records.

Like a real catalog, it holds two pictures twice under other ids (a re-upload, and a cropped,
mirrored copy), and it runs the catalog-wide duplicate report on itself, as `python -m dupcheck
duplicates` does, into DATA_DIR/duplicates/: the web app's Duplicates view shows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

from dupcheck.adapters.report_file import REPORT_NAME
from dupcheck.core.catalog.service import DupcheckService
from dupcheck_tools.duplicates import find_duplicates
from dupcheck_tools.samples import encode, product_image

DEMO_ITEMS = 24
DEMO_SEED = 1000


@dataclass(frozen=True)
class DemoCatalog:
    directory: Path
    duplicate_query: Path
    distinct_query: Path
    items: int
    report: Path


def _recropped(image: Image.Image) -> Image.Image:
    """The same photo, cropped 8% a side and mirrored: another upload of one product's picture."""
    width, height = image.size
    box = (int(width * 0.08), int(height * 0.08), int(width * 0.92), int(height * 0.92))
    return ImageOps.mirror(image.crop(box))


def _brighter(image: Image.Image) -> Image.Image:
    """The same photo, smaller and brighter (a shop's re-upload)."""
    return ImageEnhance.Brightness(image.resize((300, 300))).enhance(1.15)


# Catalog entries that repeat an earlier picture: (index, index of the original, how it was re-made).
_REPEATS = ((DEMO_ITEMS, 5, _recropped), (DEMO_ITEMS + 1, 11, _brighter))
DEMO_IDS = tuple(f"demo-{i:02d}" for i in range(DEMO_ITEMS + len(_REPEATS)))  # what build_demo registers


def build_demo(service: DupcheckService, directory: Path, base_url: str, report: Path | None = None) -> DemoCatalog:
    catalog, queries = directory / "catalog", directory / "queries"
    catalog.mkdir(parents=True, exist_ok=True)
    queries.mkdir(parents=True, exist_ok=True)
    pictures = {i: product_image(DEMO_SEED + i) for i in range(DEMO_ITEMS)}
    pictures.update({i: remake(pictures[original]) for i, original, remake in _REPEATS})
    for i, picture in pictures.items():
        name = f"item-{i:02d}.jpg"
        data = encode(picture)
        (catalog / name).write_bytes(data)
        service.registrar.register_bytes(
            entity_id=f"demo-{i:02d}",
            sku=f"DEMO-{i:03d}",
            image_url=f"{base_url}/demo/catalog/{name}",
            data=data,
        )
    # A re-upload of item 3: smaller, brighter, recompressed. A shop would call it the same photo.
    duplicate = queries / "duplicate.jpg"
    duplicate.write_bytes(encode(_brighter(pictures[3]), "JPEG", quality=60))
    distinct = queries / "distinct.jpg"
    distinct.write_bytes(encode(product_image(DEMO_SEED + 500)))
    report = report or directory.parent / "duplicates" / REPORT_NAME
    find_duplicates(service.parts.store, report.parent, source="demo", pipeline=service.parts.pipeline, workers=1,
                    thumbnails=service.parts.thumbnails)  # fmt: skip
    return DemoCatalog(directory, duplicate, distinct, len(pictures), report)


def curl_examples(demo: DemoCatalog, base_url: str) -> list[str]:
    dup_url = f"{base_url}/demo/queries/{demo.duplicate_query.name}"
    distinct_url = f"{base_url}/demo/queries/{demo.distinct_query.name}"
    return [
        "# a re-uploaded catalog photo: is_duplicate true, demo-03 first",
        f"curl -s '{base_url}/find_similar?image_url={dup_url}&top=3'",
        "# a product the catalog does not have: is_duplicate false",
        f"curl -s '{base_url}/find_similar?image_url={distinct_url}&top=3'",
        "# the same check with the image uploaded instead of linked",
        f"curl -s -X POST -H 'Content-Type: image/jpeg' --data-binary @{demo.duplicate_query} "
        f"'{base_url}/find_similar?top=3'",
        "# catalog products that look like it (similar products: another angle, colour or look-alike)",
        f"curl -s '{base_url}/similar_products?image_url={distinct_url}&top=3'",
    ]
