"""`make run`: generate a small demo catalog, index it, and show the curls that query it.

The catalog is generated (seeded), so the repository ships no images; the demo's query images
are served by the local server under /demo/, which is why the demo allows loopback URLs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import ImageEnhance

from dupcheck.core.service import DupcheckService
from dupcheck_tools.samples import encode, product_image

DEMO_ITEMS = 24
DEMO_SEED = 1000


@dataclass(frozen=True)
class DemoCatalog:
    directory: Path
    duplicate_query: Path
    distinct_query: Path
    items: int


def build_demo(service: DupcheckService, directory: Path, base_url: str) -> DemoCatalog:
    catalog, queries = directory / "catalog", directory / "queries"
    catalog.mkdir(parents=True, exist_ok=True)
    queries.mkdir(parents=True, exist_ok=True)
    for i in range(DEMO_ITEMS):
        name = f"item-{i:02d}.jpg"
        data = encode(product_image(DEMO_SEED + i))
        (catalog / name).write_bytes(data)
        service.register_bytes(
            entity_id=f"demo-{i:02d}",
            sku=f"DEMO-{i:03d}",
            image_url=f"{base_url}/demo/catalog/{name}",
            data=data,
        )
    # A re-upload of item 3: smaller, brighter, recompressed. A shop would call it the same photo.
    original = product_image(DEMO_SEED + 3)
    copy = ImageEnhance.Brightness(original.resize((300, 300))).enhance(1.15)
    duplicate = queries / "duplicate.jpg"
    duplicate.write_bytes(encode(copy, "JPEG", quality=60))
    distinct = queries / "distinct.jpg"
    distinct.write_bytes(encode(product_image(DEMO_SEED + 500)))
    return DemoCatalog(directory, duplicate, distinct, DEMO_ITEMS)


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
    ]
