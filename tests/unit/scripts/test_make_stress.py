"""scripts/make_stress.py: every catalog picture edited the hard way, the truth naming its original."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from dupcheck_tools.samples import encode, product_image
from support.scripts import load_script


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    folder = tmp_path / "catalog"
    folder.mkdir()
    for i in range(3):
        (folder / f"p{i}.jpg").write_bytes(encode(product_image(400 + i, (200, 160))))
    (folder / "notes.txt").write_text("not a picture")
    return folder


def made(catalog: Path, out: Path, *extra: str) -> tuple[list[dict[str, str]], dict[str, list[dict]]]:
    assert load_script("make_stress.py").main(["--catalog", str(catalog), "--out", str(out), *extra]) == 0
    with (out / "truth.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    edits = {line["query"]: line["edits"] for line in map(json.loads, (out / "edits.jsonl").read_text().splitlines())}
    return rows, edits


def test_every_picture_turned_each_way_by_three_to_five_degrees(catalog: Path, tmp_path: Path) -> None:
    rows, edits = made(catalog, tmp_path / "a", "--kind", "turned")
    assert [(r["query"], r["expected"], r["kind"]) for r in rows] == [
        (f"p{i}__turn{mark}.jpg", f"p{i}", "rotate") for i in range(3) for mark in "+-"
    ]
    for row in rows:
        turn = edits[row["query"]][0]
        assert turn["edit"] == "rotate" and 3.0 <= abs(turn["degrees"]) <= 5.0
        assert (turn["degrees"] > 0) == row["query"].endswith("+.jpg")  # anticlockwise first
    again, _ = made(catalog, tmp_path / "b", "--kind", "turned")
    for row in again:  # seeded: the same bytes every run
        assert (tmp_path / "a" / "queries" / row["query"]).read_bytes() == (
            tmp_path / "b" / "queries" / row["query"]
        ).read_bytes()


def test_every_picture_turned_a_little_on_a_fill_then_padded(catalog: Path, tmp_path: Path) -> None:
    rows, edits = made(catalog, tmp_path / "a", "--kind", "turned-padded")
    assert [(r["query"], r["expected"], r["kind"]) for r in rows] == [
        (f"p{i}__turnpad.jpg", f"p{i}", "rotate") for i in range(3)
    ]
    for row in rows:
        turn, pad, encode = edits[row["query"]]
        assert turn["edit"] == "rotate" and 1.0 <= abs(turn["degrees"]) <= 2.5 and turn["expand"]
        assert pad["edit"] == "pad" and all(0.02 <= pad[side] <= 0.14 for side in ("left", "right", "top", "bottom"))
        assert encode == {"edit": "encode", "format": "jpeg", "quality": 90}
        with Image.open(tmp_path / "a" / "queries" / row["query"]) as image:
            corner = image.convert("RGB").getpixel((0, 0))
        assert all(c <= 40 for c in corner) or all(c >= 215 for c in corner)  # the padding's black or white


def test_combinations_of_the_benchmarks_edits(catalog: Path, tmp_path: Path) -> None:
    rows, edits = made(catalog, tmp_path / "a", "--kind", "combo", "--per-image", "2")
    assert [(r["expected"], r["kind"]) for r in rows] == [(f"p{i}", "combo") for i in range(3) for _ in range(2)]
    assert len({r["query"] for r in rows}) == 6
    for row in rows:
        steps = [e["edit"] for e in edits[row["query"]]]
        assert 2 <= len(steps) - 1 <= 3 and steps[-1] == "encode"  # 2-3 edits, then the encoding
        assert (tmp_path / "a" / "queries" / row["query"]).stat().st_size > 0


def test_per_image_must_be_positive(catalog: Path, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        load_script("make_stress.py").main(["--catalog", str(catalog), "--out", str(tmp_path), "--kind", "combo",
                                            "--per-image", "0"])  # fmt: skip


def test_any_kind_of_the_benchmarks_for_every_picture(catalog: Path, tmp_path: Path) -> None:
    rows, edits = made(catalog, tmp_path / "a", "--kind", "thumbnail", "--per-image", "2")
    assert [(r["expected"], r["kind"]) for r in rows] == [(f"p{i}", "thumbnail") for i in range(3) for _ in range(2)]
    for row in rows:
        shrink, encoding = edits[row["query"]]
        with Image.open(tmp_path / "a" / "queries" / row["query"]) as image:
            assert shrink["edit"] == "thumbnail" and max(image.size) == min(shrink["side"], 200)
        assert encoding["edit"] == "encode"
    crops, crop_edits = made(catalog, tmp_path / "b", "--kind", "crop_large", "--per-image", "1")
    assert [r["kind"] for r in crops] == ["crop_large"] * 3
    assert all(crop_edits[r["query"]][0]["edit"] == "crop" for r in crops)
