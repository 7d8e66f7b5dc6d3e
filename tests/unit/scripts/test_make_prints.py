"""scripts/make_prints.py: prints in the cloth (shaded, bent) kept apart from flat overlays on it."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image, ImageDraw

from support.scripts import load_script

SIZE = (240, 300)  # width, height
SHIRT = np.array([60.0, 110.0, 180.0])


@pytest.fixture(scope="module")
def mp() -> ModuleType:
    return load_script("make_prints.py")


def shirt_on_white(fold: float = 0.0) -> np.ndarray:
    """A blue shirt on a white backdrop, a face above it, trousers below: its folds (vertical
    waves of light and shade, 40 px apart) and a light from the top left shade it from 45% to
    100% of its colour."""
    w, h = SIZE
    mask = Image.new("L", SIZE, 0)
    ImageDraw.Draw(mask).polygon([(70, 70), (170, 70), (215, 110), (190, 130), (180, 120), (180, 220), (60, 220),
                                  (60, 120), (50, 130), (25, 110)], fill=255)  # fmt: skip
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    shade = 0.75 + 0.2 * np.sin(2 * np.pi * (xs + fold) / 40) - 0.1 * (xs + ys - 250) / 250
    rgb = np.full((h, w, 3), 250.0)
    inside = np.asarray(mask) > 0
    rgb[inside] = SHIRT * shade[inside][:, None]
    rgb[20:70, 100:140] = (205.0, 150.0, 120.0)  # a face
    rgb[220:290, 70:170] = (60.0, 60.0, 60.0)  # trousers
    return rgb


def test_a_print_follows_the_cloths_shading_and_a_flat_overlay_does_not(mp: ModuleType) -> None:
    plain = shirt_on_white()
    area = mp.print_area(plain)
    assert area is not None, "a shirt on a plain backdrop has a chest to print on"
    assert 60 < area.cx < 180 and 70 < area.cy < 160, "the print area is on the shirt's chest"
    assert mp.PRINT_SIZE[0] * area.torso <= area.side
    side = round(min(area.side, 0.4 * area.torso))
    art = Image.new("RGBA", (side, side), (*mp.INKS["white"], 255))  # one ink: its shading is the cloth's
    out, coverage, log = mp.printed(plain, area, art, mp._rng(0, "test", "print"))
    ink = coverage > 0.8 * log["opacity"]
    assert ink.sum() > 0.5 * side * side
    brightness, cloth = mp._luma(out[ink]), mp._luma(plain[ink])
    assert np.corrcoef(brightness, cloth)[0, 1] > 0.9, "the ink is darkened where the cloth is"
    assert brightness.std() > 10
    assert (brightness > cloth + 40).all(), "a white ink on a blue shirt"
    x, y = round(area.cx - side / 2), round(area.cy - side / 2)
    flat = np.asarray(mp.pasted(Image.fromarray(plain.astype(np.uint8)), art, (x, y)), np.float64)
    pasted = flat[y : y + side, x : x + side]
    assert np.ptp(mp._luma(pasted)) < 1, "an overlay is one flat colour, whatever lies beneath"
    assert log["warp_px"] > 0.5, "the folds bend the print"


def test_the_overlays_off_the_product_cross_the_backdrop_touch_the_edge_or_let_the_cloth_show(
    mp: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = shirt_on_white()
    area = mp.print_area(plain)
    assert area is not None
    image = Image.fromarray(plain.astype(np.uint8))
    garment = np.flatnonzero(np.abs(plain[round(area.cy)] - 250).max(axis=-1) > 5)  # the shirt's row at the chest
    for seed in range(6):
        out, log = mp.loose_overlay("backdrop_watermark", image, area, mp._rng(seed, "test", "watermark"))
        x0, _, x1, _ = log["box"]
        assert x0 < garment.min() and x1 > garment.max(), "across the backdrop on both sides of the product"
        changed = np.abs(np.asarray(out, np.float64) - plain).max(axis=-1) > 3
        assert changed.any() and mp.WATERMARK_OPACITY[0] <= log["opacity"] <= mp.WATERMARK_OPACITY[1]

        out, log = mp.loose_overlay("edge_badge", image, area, mp._rng(seed, "test", "badge"))
        x0, y0, x1, y1 = log["box"]
        assert x0 in (0, SIZE[0] - (x1 - x0)) and y0 in (0, SIZE[1] - (y1 - y0)), "flush with a corner"
        assert x1 <= SIZE[0] and y1 <= SIZE[1]

        out, log = mp.loose_overlay("translucent_logo", image, area, mp._rng(seed, "test", "logo"))
        monkeypatch.setattr(mp, "TRANSLUCENT_OPACITY", (1.0, 1.0))  # the same logo, opaque
        opaque, _ = mp.loose_overlay("translucent_logo", image, area, mp._rng(seed, "test", "logo"))
        monkeypatch.undo()
        ink = np.asarray(opaque).reshape(-1, 3)
        changed = np.abs(ink.astype(np.float64) - plain.reshape(-1, 3)).max(axis=-1) > 20
        colours, counts = np.unique(ink[changed], axis=0, return_counts=True)
        one_ink = changed & (ink == colours[counts.argmax()]).all(axis=-1)  # the logo's main ink, solid
        seen = mp._luma(np.asarray(out, np.float64).reshape(-1, 3)[one_ink])
        assert np.corrcoef(seen, mp._luma(plain.reshape(-1, 3)[one_ink]))[0, 1] > 0.9, "the folds show through"
        assert mp.TRANSLUCENT_OPACITY[0] <= log["opacity"] <= mp.TRANSLUCENT_OPACITY[1]


def test_no_print_area_on_a_scene(mp: ModuleType) -> None:
    rgb = np.random.default_rng(0).uniform(0, 255, (SIZE[1], SIZE[0], 3))
    assert mp.print_area(rgb) is None


def run(mp: ModuleType, originals: Path, out: Path, *extra: str) -> list[dict[str, str]]:
    assert mp.main(["--originals", str(originals), "--out", str(out), "--covers", "2", "--quiet", *extra]) == 0
    with (out / "truth.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_benchmark_its_truth_and_the_same_bytes_every_run(mp: ModuleType, tmp_path: Path) -> None:
    originals = tmp_path / "in"
    originals.mkdir()
    for k, name in enumerate(("shirt_a", "shirt_b")):
        Image.fromarray(shirt_on_white(fold=13.0 * k).astype(np.uint8)).save(originals / f"{name}.jpg", quality=95)
    noise = np.random.default_rng(1).uniform(0, 255, (SIZE[1], SIZE[0], 3)).astype(np.uint8)
    Image.fromarray(noise).save(originals / "scene.jpg", quality=95)  # no backdrop: no prints
    rows = run(mp, originals, tmp_path / "a")
    catalog = {p.stem for p in (tmp_path / "a" / "catalog").iterdir()}
    assert catalog == {"shirt_a", "shirt_a__p1", "shirt_b", "shirt_b__p1", "cover_000", "cover_001"}
    kinds: dict[str, int] = {}
    for row in rows:
        kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
        assert (tmp_path / "a" / "queries" / row["query"]).is_file()
        if row["kind"] in ("print_variant", "template_variant"):
            assert row["expected"] == "", "another print, another title: another product"
        else:
            assert row["expected"] in catalog, "an overlay's copy names what it copies"
        assert row["source"] in catalog and "scene" not in row["query"]
    assert kinds == {"print_variant": 4, "caption_band": 1, "chest_badge": 1, "flat_text": 1, "flat_logo": 1,
                     "backdrop_watermark": 1, "edge_badge": 1, "template_variant": 4, "cover_sticker": 2,
                     "cover_caption": 2}  # fmt: skip
    assert {r["query"] for r in rows if r["kind"] == "print_variant"} == {
        "shirt_a__p2.jpg", "shirt_a__p3.jpg", "shirt_b__p2.jpg", "shirt_b__p3.jpg"}  # fmt: skip
    made = [json.loads(line) for line in (tmp_path / "a" / "prints.jsonl").read_text().splitlines()]
    files = {entry["file"] for entry in made}
    assert {f"queries/{row['query']}" for row in rows} <= files and "catalog/shirt_a__p1.jpg" in files
    prints = [entry for entry in made if entry.get("role") == "print"]
    assert all(entry["artwork"] in mp.PRINT_KINDS and entry["opacity"] >= 0.85 for entry in prints)
    assert len({entry["artwork"] for entry in prints if "shirt_a" in entry["file"]}) == 3, "P1-P3: other designs"

    run(mp, originals, tmp_path / "b")
    for path in sorted((tmp_path / "a").rglob("*")):
        if path.is_file():
            twin = tmp_path / "b" / path.relative_to(tmp_path / "a")
            assert twin.read_bytes() == path.read_bytes(), f"{path.name} differs between runs"


def test_a_part_of_the_split_only(mp: ModuleType, tmp_path: Path) -> None:
    originals = tmp_path / "in"
    originals.mkdir()
    for name in ("shirt_a", "shirt_b"):
        Image.fromarray(shirt_on_white().astype(np.uint8)).save(originals / f"{name}.jpg", quality=95)
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"dev": ["shirt_a"], "lockbox": ["shirt_b"]}))
    rows = run(mp, originals, tmp_path / "out", "--part", "lockbox", "--split", str(split))
    assert {row["source"] for row in rows if not row["source"].startswith("cover_")} == {"shirt_b"}


def test_the_benchmark_laid_out_as_pairs_asks_each_copy_and_its_original_both_ways(
    mp: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """scripts/prints_pairs.py: each copy beside the picture it was made from, the copy asked with
    that picture stored and the reverse, each pair in a catalog of its own kind; evaluate-pairs
    then reads every pair both ways."""
    from dupcheck_tools.cli import main

    originals = tmp_path / "in"
    originals.mkdir()
    Image.fromarray(shirt_on_white().astype(np.uint8)).save(originals / "shirt_a.jpg", quality=95)
    rows = run(mp, originals, tmp_path / "prints")
    bench = tmp_path / "pairs"
    pairs = load_script("prints_pairs.py")
    assert pairs.main(["--prints", str(tmp_path / "missing"), "--out", str(bench)]) == 2  # a clear refusal
    assert pairs.main(["--prints", str(tmp_path / "prints"), "--out", str(bench)]) == 0
    pictures = bench / "pictures"
    with (bench / "rounds.csv").open(newline="") as fh:
        plan = [(r["round"], r["role"], r["picture"]) for r in csv.DictReader(fh)]
    for row in rows:
        base = row["expected"] or row["source"]
        (original,) = [p.name for p in pictures.glob(f"{base}__original.*")]
        source = next((tmp_path / "prints" / "catalog").glob(f"{base}.*"))
        assert (pictures / original).read_bytes() == source.read_bytes()
        assert (pictures / row["query"]).read_bytes() == (tmp_path / "prints" / "queries" / row["query"]).read_bytes()
        kind = Path(row["query"]).stem.rpartition("__")[2]
        both = {("pairs-copies", "stored", original), ("pairs-copies", "asked", row["query"]),
                (f"pairs-{kind}", "stored", row["query"]), (f"pairs-{kind}", "asked", original)}  # fmt: skip
        assert both <= set(plan)
    for name in {name for name, _, _ in plan}:  # one record of each photo: each verdict the pair's own
        stored = [Path(p).stem.rpartition("__")[0] for n, role, p in plan if n == name and role == "stored"]
        assert len(stored) == len(set(stored)), name

    out = tmp_path / "out"
    assert main(["evaluate-pairs", "--pairs", str(bench), "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["failed_files"] == []
    assert summary["both_ways"]["pairs"] == summary["copy_after_original"]["n"] == len(rows)
    assert summary["original_after_copy"]["n"] == len(rows)
    kinds = {Path(r["query"]).stem.rpartition("__")[2] for r in rows}
    assert set(summary["both_ways"]["by_kind"]) == {" / ".join(sorted((kind, "original"))) for kind in kinds}
