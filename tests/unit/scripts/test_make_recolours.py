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


def _only_way(mr: ModuleType, tmp_path: Path, rgb: np.ndarray, way: str) -> np.ndarray:
    path = tmp_path / "photo.png"
    Image.fromarray(rgb.astype(np.uint8)).save(path)
    made = {w: np.asarray(picture, np.float64) for w, picture, *_ in mr.recolours(path, seed=0)}
    assert way in made, f"{sorted(made)}"
    return made[way]


def test_a_fold_s_shadow_does_not_stop_the_recolour(mr: ModuleType, tmp_path: Path) -> None:
    """A blue garment lit on its right, in shadow on its left, a sharp step between (a fold):
    one garment, recoloured whole, as a shop would; the face beside it is not."""
    rgb = np.full((SIZE, SIZE, 3), 250.0)
    rgb[100:300, 60:160] = (15.0, 60.0, 150.0)  # in shadow
    rgb[100:300, 160:260] = (40.0, 120.0, 240.0)  # lit
    rgb[30:100, 130:190] = (205.0, 150.0, 120.0)
    pixels = _only_way(mr, tmp_path, rgb, "hue")
    moved = np.abs(pixels - rgb).max(axis=-1) >= mr.VISIBLE
    assert moved[105:295, 65:155].mean() > 0.99 and moved[105:295, 165:255].mean() > 0.99
    assert not moved[30:95].any()


def test_the_part_ends_at_the_photo_s_own_outline(mr: ModuleType, tmp_path: Path) -> None:
    """A heathered grey garment (light flecks in it) with a slanted outline on white, an arm
    beside it: every pixel a little inside the outline takes the new colour, flecks too, and
    none outside changes (no staircase of the 128 px cells the part was found at, no fleck
    left in the old colour)."""
    rgb = np.full((SIZE, SIZE, 3), 252.0)
    ys, xs = np.mgrid[:SIZE, :SIZE]

    def inside(margin: int) -> np.ndarray:
        return (xs > 60 + ys // 3 + margin) & (xs < 230 - margin) & (ys > 40 + margin) & (ys < 300 - margin)

    rgb[inside(0)] = 150.0
    rgb[inside(0) & (np.random.default_rng(1).random((SIZE, SIZE)) < 0.15)] = 205.0
    rgb[40:300, 230:300] = (205.0, 150.0, 120.0)  # an arm: skin, never the part
    pixels = _only_way(mr, tmp_path, rgb, "darker")
    moved = np.abs(pixels - rgb).max(axis=-1)
    assert (moved[inside(2)] >= mr.VISIBLE).mean() > 0.995
    assert not moved[~inside(-1)].any()


def test_a_lone_product_greyed_is_the_grayscale_photo_not_a_variant(mr: ModuleType, tmp_path: Path) -> None:
    """A red tee with a grey print, alone on white: its hue turned or greyed, it is the whole
    picture so edited (grey stays grey, white white): one photograph, edited, left out. Made
    darker, lighter or warmer, the print or the backdrop would change too: a variant."""
    rgb = np.full((SIZE, SIZE, 3), 255.0)
    rgb[60:260, 60:260] = (200.0, 30.0, 40.0)
    rgb[110:210, 110:210] = 128.0
    path = tmp_path / "tee.png"
    Image.fromarray(rgb.astype(np.uint8)).save(path)
    assert {way for way, *_ in mr.recolours(path, seed=0)} == {"lighter", "darker", "tint"}


def test_faint_variants_change_the_part_a_little_and_nothing_else(mr: ModuleType, tmp_path: Path) -> None:
    """`--faint`: a pale green tee faded, deepened or its hue nudged: half the part moved by FAINT
    levels or more, most of it by less than VISIBLE (a near twin, not another colour at a
    glance); the face and the backdrop as they were."""
    original = np.full((SIZE, SIZE, 3), 250.0)
    original[90:230, 90:230] = (90.0, 140.0, 100.0)
    original[30:90, 110:210] = (205.0, 150.0, 120.0)  # (the tee under 80% of the product: a part)
    path = tmp_path / "tee.png"
    Image.fromarray(original.astype(np.uint8)).save(path)
    made = {way: np.asarray(picture, np.float64) for way, picture, *_ in mr.recolours(path, seed=0, faint=True)}
    assert set(made) == set(mr.FAINT_WAYS)
    for way, pixels in made.items():
        moved = np.abs(pixels - original).max(axis=-1)
        tee = moved[95:225, 95:225]
        assert (tee >= mr.FAINT).mean() > 0.5 and (tee >= mr.VISIBLE).mean() < 0.5, way
        assert not moved[30:90, 110:210].any() and not moved[:, :80].any(), f"{way}: face and backdrop untouched"


def test_a_grey_part_has_no_faint_variant(mr: ModuleType, tmp_path: Path) -> None:
    """The model's grey trousers are the part found: their tint cannot fade or deepen visibly."""
    path = tmp_path / "tee.png"
    Image.fromarray(tee_on_a_model().astype(np.uint8)).save(path)
    assert {way for way, *_ in mr.recolours(path, seed=0)}, "the usual ways recolour the trousers"
    assert mr.recolours(path, seed=0, faint=True) == []


def test_a_faint_change_of_the_only_colour_is_a_saturation_edit_not_a_variant(mr: ModuleType, tmp_path: Path) -> None:
    """A pale blue tee with a grey print, alone on white, the tee the part: faded, deepened or
    nudged, it is the whole picture so edited (the grey print and the white stay), so it is left
    out; with a face above it, the same changes are variants."""
    rgb = np.full((SIZE, SIZE, 3), 255.0)
    rgb[80:260, 60:260] = (110.0, 130.0, 170.0)
    rgb[120:220, 110:210] = 128.0
    path = tmp_path / "lone.png"
    Image.fromarray(rgb.astype(np.uint8)).save(path)
    part, _ = mr.find_part(rgb, mr._rng(0, path.name))
    assert part[100, 80] == 1.0 and part[170, 160] == 0.0, "the tee is the part, not its print"
    assert mr.recolours(path, seed=0, faint=True) == []
    rgb[5:75, 60:260] = (205.0, 150.0, 120.0)
    Image.fromarray(rgb.astype(np.uint8)).save(path)
    assert {way for way, *_ in mr.recolours(path, seed=0, faint=True)} == set(mr.FAINT_WAYS)
