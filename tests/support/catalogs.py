"""Catalog files for backfill, reindex and notebook tests: rows served by the loopback image server."""

from __future__ import annotations

import csv
from pathlib import Path

from support.image_server import ImageServer


def write_catalog(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    """A CSV catalog of (entity_id, sku, image_url) rows."""
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["entity_id", "sku", "image_url"])
        writer.writerows(rows)
    return path


def good_rows(image_server: ImageServer, n: int, start: int = 0) -> list[tuple[str, str, str]]:
    """Rows E{start}..: each a distinct generated image the server answers."""
    return [(f"E{i}", f"SKU-{i}", image_server.image(f"/img/{i}.jpg", seed=i)) for i in range(start, start + n)]
