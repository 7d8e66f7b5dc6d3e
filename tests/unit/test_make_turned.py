"""scripts/make_turned.py: every catalog picture turned each way, the truth naming its original."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from dupcheck_tools.samples import encode, product_image
from support.scripts import load_script


def test_every_picture_turned_each_way_by_three_to_five_degrees(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for i in range(3):
        (catalog / f"p{i}.jpg").write_bytes(encode(product_image(400 + i, (200, 160))))
    (catalog / "notes.txt").write_text("not a picture")
    mt = load_script("make_turned.py")
    assert mt.main(["--catalog", str(catalog), "--out", str(tmp_path / "a")]) == 0
    assert mt.main(["--catalog", str(catalog), "--out", str(tmp_path / "b")]) == 0
    with (tmp_path / "a" / "truth.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["query"], r["expected"], r["kind"]) for r in rows] == [
        (f"p{i}__turn{mark}.jpg", f"p{i}", "rotate") for i in range(3) for mark in "+-"
    ]
    for row in rows:  # seeded: the same bytes every run
        made = (tmp_path / "a" / "queries" / row["query"]).read_bytes()
        assert made == (tmp_path / "b" / "queries" / row["query"]).read_bytes()
    # A turn of 3-5 degrees, not a copy: the fill's corners, or the picture cut at them, differ.
    with Image.open(catalog / "p0.jpg") as original, Image.open(tmp_path / "a" / "queries" / "p0__turn+.jpg") as copy:
        if copy.size == original.size:
            difference = np.abs(np.asarray(copy, float) - np.asarray(original.convert("RGB"), float))
            assert difference.mean() > 5
        else:
            assert copy.width > original.width and copy.height > original.height  # expanded
