"""scripts/make_recolours.py: one part of the product in another colour, everything else untouched."""

from __future__ import annotations

import csv
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from support.scripts import load_script

SIZE = 320


@pytest.fixture(scope="module")
def mr() -> ModuleType:
    return load_script("make_recolours.py")


def tee_on_a_model() -> np.ndarray:
    """A green tee over grey trousers on a white backdrop, a face above: the tee's shading
    changes slowly across it (lit from the left), with a sharp seam between the garments."""
    rgb = np.full((SIZE, SIZE, 3), 250.0)
    shade = 1.0 - 0.25 * np.arange(SIZE) / SIZE
    rgb[90:200, 90:230] = np.array([40.0, 140.0, 70.0]) * shade[90:230, None]
    rgb[200:300, 110:210] = np.array([120.0, 120.0, 125.0])
    rgb[30:90, 135:185] = np.array([205.0, 150.0, 120.0])
    return rgb


def test_one_part_is_recoloured_and_nothing_else(mr: ModuleType, tmp_path: Path) -> None:
    original = tee_on_a_model()
    path = tmp_path / "tee.png"
    Image.fromarray(original.astype(np.uint8)).save(path)
    made = mr.recolours(path, seed=0)
    assert made, "a product on a plain backdrop has parts to recolour"
    face = (slice(30, 90), slice(135, 185))
    for way, picture, share, changed in made:
        pixels = np.asarray(picture, np.float64)
        moved = np.abs(pixels - original).max(axis=-1) >= mr.VISIBLE
        assert not moved[face].any(), f"{way}: the face is never the part"
        assert (pixels[:, :80] == original[:, :80]).all(), f"{way}: the backdrop is untouched"
        tee, trousers = moved[95:195, 95:225].mean(), moved[205:295, 115:205].mean()
        assert max(tee, trousers) > 0.9 and min(tee, trousers) == 0, f"{way}: one whole garment, not both"
        assert 0.03 <= share <= 0.8 and changed == pytest.approx(moved.mean(), abs=1e-3)


def test_every_way_is_visible_or_left_out(mr: ModuleType, tmp_path: Path) -> None:
    """A white part cannot be made lighter, nor turn its hue or go grey: only darker and tinted
    versions of it are written."""
    rgb = np.full((SIZE, SIZE, 3), 120.0)  # a grey backdrop
    rgb[60:260, 60:260] = 248.0  # a white shirt
    rgb[200:260, 60:260] = np.array([205.0, 150.0, 120.0])  # arms across it: skin, never the part
    path = tmp_path / "white.png"
    Image.fromarray(rgb.astype(np.uint8)).save(path)
    assert {way for way, *_ in mr.recolours(path, seed=0)} == {"darker", "tint"}


def test_a_scene_without_a_plain_backdrop_gets_none(mr: ModuleType, tmp_path: Path) -> None:
    rgb = np.random.default_rng(0).uniform(0, 255, (SIZE, SIZE, 3))
    path = tmp_path / "scene.png"
    Image.fromarray(rgb.astype(np.uint8)).save(path)
    assert mr.recolours(path, seed=0) == []


def test_the_csv_names_each_variant_and_its_sibling_the_same_every_run(mr: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    Image.fromarray(tee_on_a_model().astype(np.uint8)).save(tmp_path / "in" / "tee.png")
    runs = []
    for out in ("a", "b"):
        assert mr.main(["--originals", str(tmp_path / "in"), "--out", str(tmp_path / out), "--quiet"]) == 0
        with (tmp_path / out / "recolours.csv").open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert rows and {row["sibling"] for row in rows} == {"tee.png"}
        assert all((tmp_path / out / row["variant"]).is_file() for row in rows)
        runs.append([(row["variant"], (tmp_path / out / row["variant"]).read_bytes()) for row in rows])
    assert runs[0] == runs[1]
