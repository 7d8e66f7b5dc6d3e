"""A labelled benchmark folder as scripts/make_benchmark.py writes one, in miniature."""

from __future__ import annotations

import csv
from pathlib import Path

from dupcheck_tools.samples import encode, product_image

SIZE = (200, 160)


def three_products(folder: Path) -> None:
    """catalog/ (three product pictures), queries/ (a resized copy of each and a picture of another
    product) and truth.csv: 7 records, 3 true pairs."""
    catalog, queries = folder / "catalog", folder / "queries"
    catalog.mkdir()
    queries.mkdir()
    rows = [("query", "expected", "kind", "source")]
    for i in range(3):
        picture = product_image(700 + i, SIZE)
        (catalog / f"p{i}.jpg").write_bytes(encode(picture))
        (queries / f"p{i}__resize.jpg").write_bytes(encode(picture.resize((100, 80))))
        rows.append((f"p{i}__resize.jpg", f"p{i}", "resize", f"p{i}"))
    (queries / "h__distinct.jpg").write_bytes(encode(product_image(800, SIZE)))
    rows.append(("h__distinct.jpg", "", "distinct", "h"))
    with (folder / "truth.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
