"""What one edit of the whole picture leaves unexplained, told apart: a part in another colour
keeps the photograph's detail, or else its outline (in place and direction, whatever is inside:
another render of the part, a print filling it); something added on top brings an outline of
its own, on whichever picture it lies; a region too small to look inside is evidence of neither.
Each is judged both ways round where the pair's two pictures are its two readings (the copy asked
with its original stored, and the original asked with the copy stored): one pair, one reading."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from dupcheck.core.limits.policy import RECOLOURED
from dupcheck.core.matching.one_edit import Unexplained, _pooled, _pooled_all, _pooled_any, unexplained
from dupcheck.core.matching.photograph import band
from dupcheck.core.pictures.pixels import luma
from support.garments import hue_turned

N = 256
PANEL = (slice(96, 160), slice(96, 160))  # a plain part of the product


def product(panel_colour: tuple[float, float, float] = (60.0, 90.0, 200.0)) -> np.ndarray:
    """(3, N, N): a textured grey garment on a light backdrop, with a plain panel sewn in, its
    edge soft (8 px) and its surround plain: no fine detail in or around it, an outline of its own."""
    garment = np.zeros((N, N))
    garment[32:224, 48:208] = 1.0
    at = np.arange(N, dtype=np.float64)
    ramp = np.clip((at - 88) / 8, 0, 1) * np.clip((168 - at) / 8, 0, 1)  # 1 from 96 to 160
    panel = ramp[:, None] * ramp[None, :]
    grain = np.random.default_rng(0).normal(0, 8, (N, N))
    grain[72:184, 72:184] = 0.0  # the panel's surround plain too, up to two cells out
    colour = (1 - panel)[None] * (120.0 + grain)[None] + panel[None] * np.array(panel_colour)[:, None, None]
    return garment[None] * colour + (1 - garment)[None] * 235.0


def judged(query: np.ndarray, kept: np.ndarray) -> Unexplained:
    inside = np.ones((query.shape[-1],) * 2, bool)
    detail = [band(luma(np.moveaxis(rgb, 0, -1), np.float64)) for rgb in (query, kept)]
    return unexplained(query, kept, inside, detail[0], detail[1])


def both_ways(copy: np.ndarray, original: np.ndarray) -> tuple[Unexplained, Unexplained]:
    """The copy asked with the original stored, and the original asked with the copy stored."""
    return judged(copy, original), judged(original, copy)


def test_a_plain_part_in_another_plain_colour_is_recoloured() -> None:
    for found in both_ways(product((200.0, 80.0, 160.0)), product()):
        assert found.recoloured > 0.05 and found.added == 0


def striped(rows: slice, columns: slice) -> np.ndarray:
    """product() with a print of yellow and black stripes over `rows` x `columns`."""
    query = product()
    at = np.arange(N)[rows]
    stripes = (at // 3 % 2 == 0)[:, None] & np.ones((1, columns.stop - columns.start), bool)
    query[:, rows, columns] = np.where(stripes[None], 240.0, 20.0) * np.array([1.0, 0.9, 0.2])[:, None, None]
    return query


def test_a_print_of_its_own_shape_on_a_plain_part_is_added() -> None:
    """Detail of its own and an outline the other picture does not have there: put on top, on
    whichever picture holds it (the other way round the catalog picture has the print, the query
    a plain part with no outline there: before the outline was read both ways, a recolour)."""
    for found in both_ways(striped(slice(112, 144), slice(104, 152)), product()):
        assert found.added > 0.02 and found.recoloured == 0


def test_a_print_filling_a_part_to_its_seams_is_that_part_in_another_print() -> None:
    """Its detail is its own, but its outline is the seam the catalog picture has, in place and
    direction: the garment made with another fabric there (another product), not something an
    edit put on top, which would bring an outline of its own."""
    for found in both_ways(striped(PANEL[0], PANEL[1]), product()):
        assert found.recoloured > 0.05 and found.added == 0


def rendered(panel_colour: tuple[float, float, float], seed: int, grain: float) -> np.ndarray:
    """product() as a render: the panel plain but for the renderer's own noise, each render's."""
    rgb = product(panel_colour)
    rgb[:, PANEL[0], PANEL[1]] += np.random.default_rng(seed).normal(0, grain, (64, 64))[None]
    return np.round(np.clip(rgb, 0, 255))


def test_a_part_rendered_again_in_another_colour_is_recoloured_whatever_its_grain() -> None:
    """Two renders of one template (a cap's brim, a tee's panel in another colour): the panel's
    fine detail is each render's own noise, the query's the stronger, so nothing inside lines
    up; its outline is the template's, in both."""
    renders = rendered((200.0, 80.0, 160.0), seed=6, grain=6.0), rendered((60.0, 90.0, 200.0), seed=5, grain=3.0)
    for found in both_ways(*renders):
        assert found.recoloured > 0.05 and found.added == 0


def test_a_region_too_small_to_look_inside_is_neither() -> None:
    """At a thumbnail's side a few cells off are too few pixels to say what they hold; they still
    count in what differs (a duplicate's score)."""
    small = 48
    kept = np.full((3, small, small), 250.0)
    kept[:, 8:40, 12:36] = 120.0 + np.random.default_rng(1).normal(0, 12, (small, small))[None, 8:40, 12:36]
    query = kept.copy()
    query[:, 20:26, 20:26] = np.array([200.0, 40.0, 40.0])[:, None, None]
    found = judged(query, kept)
    assert found.recoloured == 0 and found.added == 0 and found.differing > 0
    assert judged(kept, kept).differing == 0


def jacket(body: tuple[float, float, float], trim: tuple[float, float, float]) -> np.ndarray:
    """(3, N, N): a jacket with a fine texture (the same grain in every colour), a zip down its
    middle and piping along both seams in the trim's colour, on a light backdrop."""
    grain = np.random.default_rng(2).normal(0, 4, (N, N))
    rgb = np.full((3, N, N), 235.0)
    rgb[:, 32:224, 48:208] = np.array(body)[:, None, None] + grain[None, 32:224, 48:208]
    for x in (64, 126, 188):
        rgb[:, 32:224, x : x + 3] = np.array(trim)[:, None, None]
    return rgb


def test_a_part_recoloured_with_its_edges_is_recoloured() -> None:
    """A lilac jacket with yellow trim made purple with black trim: the trim's edges turn from
    light to dark and outweigh the grain in any one correlation of the jacket, while the grain
    lines up in every tile away from them. The tiles' median tells."""
    recoloured = jacket((120.0, 60.0, 160.0), (20.0, 20.0, 20.0)), jacket((180.0, 170.0, 210.0), (230.0, 220.0, 80.0))
    for found in both_ways(*recoloured):
        assert found.recoloured > 0.5 and found.added == 0


def test_a_dark_part_made_darker_is_recoloured_though_its_grain_is_lost() -> None:
    """A charcoal top over light trousers, the top made black: its grain sinks under the 8-bit
    levels and the encoder's noise, so its detail cannot line up, but nothing with detail of its own was put there
    either; its outline is the photograph's, so it is the photograph's part in another colour."""
    rng = np.random.default_rng(3)
    kept = np.full((3, N, N), 235.0)
    kept[:, 32:224, 48:208] = 150.0 + rng.normal(0, 3.0, (192, 160))[None]  # the trousers
    kept[:, 32:128, 48:208] -= 80.0  # the top
    query = kept.copy()
    noise = rng.normal(0, 0.6, (96, 160))[None]  # JPEG's, the encoder's own in the dark
    query[:, 32:128, 48:208] = 12.0 + 0.05 * (kept[:, 32:128, 48:208] - 70.0) + noise
    for found in both_ways(np.round(query), np.round(kept)):
        assert found.recoloured > 0.3 and found.added == 0


def test_a_plain_badge_over_texture_is_added() -> None:
    """A plain badge flattens the texture under it, as a darker part does; its outline is its own."""
    kept = jacket((120.0, 60.0, 160.0), (20.0, 20.0, 20.0))
    query = kept.copy()
    query[:, 80:120, 140:180] = 245.0
    for found in both_ways(query, kept):
        assert found.added > 0.02 and found.recoloured == 0 and found.differing >= found.added
    # Which picture holds it: the one whose outline it is (the catalog picture's, the other way round).
    on_query, on_catalog = both_ways(query, kept)
    assert on_query.on_kept == 0 and on_catalog.on_kept == on_catalog.added


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_round_badge_over_a_busy_scene_is_added(seed: int) -> None:
    """In a scene of edges everywhere the catalog picture has one within a cell of any outline;
    a disc's outline still crosses them at every angle, so few lie along it."""
    rng = np.random.default_rng(seed)
    blocks = np.kron(rng.uniform(30, 225, (3, N // 8, N // 8)), np.ones((1, 8, 8)))
    blur = ImageFilter.GaussianBlur(1.0)  # (the blocks' edges a photograph's, not one pixel's step)
    scene = np.stack([np.asarray(Image.fromarray(c.astype(np.uint8)).filter(blur), dtype=np.float64) for c in blocks])
    query = scene.copy()
    rows, columns = np.mgrid[:N, :N]
    query[:, (rows - 70) ** 2 + (columns - 180) ** 2 < 40**2] = np.array([230.0, 200.0, 20.0])[:, None]
    for found in both_ways(query, scene):
        assert found.added > 0.05 and found.recoloured == 0


def shaded_on_white(scale: float = 1.0) -> np.ndarray:
    """(3, N, N): a textured, shaded garment (darker left, lighter right) on a pure white
    backdrop, its outline soft over 3 px as a photo's is; `scale` darkens the garment alone."""
    at = np.arange(N, dtype=np.float64)

    def soft(low: float, high: float) -> np.ndarray:
        return np.clip((at - low) / 3.0, 0, 1) * np.clip((high - at) / 3.0, 0, 1)

    garment = soft(40, 216)[:, None] * soft(56, 200)[None, :]
    grain = np.random.default_rng(4).normal(0, 6, (N, N))
    shading = np.clip((at - 60) / 80, 0, 1)[None, :] * 90
    colour = (100.0 + shading + grain)[None] * np.array([1.0, 0.85, 0.7])[:, None, None] * scale
    return np.round(np.clip(garment[None] * colour + (1 - garment)[None] * 255.0, 0, 255))


def test_a_garment_made_darker_on_white_is_recoloured_by_its_outline() -> None:
    """The whole garment made darker, the white backdrop left white: read the other way, the
    catalog picture is the query brightened until its backdrop clipped, which explains every
    pixel but the outline's. There the garment's edge blends into white, and a brightening that
    clips takes those blends to white too; the catalog picture's are not: another colour."""
    for found in both_ways(shaded_on_white(0.55), shaded_on_white()):
        assert found.recoloured >= RECOLOURED and found.added == 0


def test_a_brightened_copy_whose_backdrop_and_highlights_clip_leaves_nothing_unexplained() -> None:
    """The same outline in a copy brightened until it clips: each pixel clips on its own, so the
    edit is predicted pixel by pixel before cells are averaged (a cell's average, clipped, is
    not what its clipped pixels average to along the outline)."""
    kept = shaded_on_white()
    found = judged(np.round(np.clip(kept * 1.35, 0, 255)), kept)
    assert found.recoloured == 0 and found.added == 0


def model(garment_tint: float = 1.0, skin_tint: float = 1.0, face: int = 72) -> np.ndarray:
    """(3, N, N): a face (`face` px high) above a sage-green top on a white backdrop, both with
    grain; each one's tint (its offset from its own grey) scaled by the given factor, as a
    saturation edit would."""
    rng = np.random.default_rng(7)
    rgb = np.full((3, N, N), 250.0)
    grain = rng.normal(0, 5, (N, N))
    parts = ((slice(92 - face, 92), slice(128 - face * 4 // 9, 128 + face * 4 // 9), (205.0, 150.0, 120.0), skin_tint),
             (slice(96, 240), slice(48, 208), (125.0, 145.0, 130.0), garment_tint))  # fmt: skip
    for rows, cols, colour, factor in parts:
        pixels = np.array(colour)[:, None, None] + grain[None, rows, cols]
        grey = luma(np.moveaxis(pixels, 0, -1), np.float64)[None]
        rgb[:, rows, cols] = grey + factor * (pixels - grey)
    return np.round(np.clip(rgb, 0, 255))


def judged_faint(query: np.ndarray, kept: np.ndarray, faint: bool = True) -> Unexplained:
    inside = np.ones((N, N), bool)
    detail = [band(luma(np.moveaxis(rgb, 0, -1), np.float64)) for rgb in (query, kept)]
    return unexplained(query, kept, inside, detail[0], detail[1], faint=faint)


def test_a_top_faded_beside_untouched_skin_is_recoloured_where_the_colours_were_kept() -> None:
    """The top's faint green halved (6 levels of tint at most), the face as it was: within
    the slack one edit is allowed per cell, but no one saturation edit scales the top's tint by
    half and the face's by one. Where the query's encoding may have moved faint colours as much
    (a coarse JPEG), that is no evidence."""
    faded, kept = model(garment_tint=0.5), model()
    assert judged_faint(faded, kept).recoloured >= RECOLOURED
    assert judged_faint(faded, kept, faint=False).recoloured < RECOLOURED


def test_a_top_deepened_beside_a_little_skin_is_recoloured() -> None:
    """The top's tint deepened 1.6 times beside a face as it was: the top is most of what is
    tinted, so the edit fitted to the pair follows the top, and the face is what it leaves out.
    A large face is a recolour's share by itself; a small one is a region with no skin beside
    it to compare, and against the skin's own factor the top is what moved."""
    for face in (24, 72):
        deepened, kept = model(garment_tint=1.6, face=face), model(face=face)
        assert judged_faint(deepened, kept).recoloured >= RECOLOURED, face
    assert judged_faint(model(1.6, 1.6, face=24), model(face=24)).recoloured == 0


def test_a_top_whose_hue_turned_faintly_is_recoloured_without_skin() -> None:
    """No face: the top's faint green turned 30 degrees towards blue, as much tint as before. No
    edit of the whole picture turns a tint, so the skin's factor is not needed to tell it; the
    same top made faintly greyer is (the test above)."""
    kept = model()
    turned = kept.copy()
    top = (slice(None), slice(96, 240), slice(48, 208))
    grey = luma(np.moveaxis(kept[top], 0, -1), np.float64)[None]
    rotated = hue_turned(np.moveaxis(kept[top] - grey, 0, -1), 30.0)
    turned[top] = np.round(np.clip(grey + np.moveaxis(rotated, -1, 0), 0, 255))
    for picture in (turned, kept):
        picture[:, 20:92, 96:160] = 250.0
    assert judged_faint(turned, kept).recoloured >= RECOLOURED
    assert judged_faint(kept, kept).recoloured == 0


def test_the_whole_picture_faded_alike_is_one_edit_however_faint() -> None:
    found = judged_faint(model(garment_tint=0.5, skin_tint=0.5), model())
    assert found.recoloured == 0 and found.added == 0


def test_without_skin_to_compare_a_faint_fade_is_not_told() -> None:
    """No face: nothing in the picture says which tint one edit would have scaled alike."""
    faded, kept = model(garment_tint=0.5), model()
    faded[:, 20:92, 96:160] = kept[:, 20:92, 96:160] = 250.0
    assert judged_faint(faded, kept).recoloured < RECOLOURED


@pytest.mark.parametrize("k", range(2, 17))
def test_the_colour_cells_are_numpys_means_to_the_bit(k: int) -> None:
    """`_pooled` adds a cell's pixels as numpy's `mean` does, so its cells are the same bits:
    picture and colour planes, float32 and float64 levels, sides not a multiple of k."""
    rng = np.random.default_rng(k)
    for shape, dtype in (((3, 256, 256), np.float64), ((3, 131, 131), np.float32), ((97, 97), np.float64)):
        values = (rng.normal(120, 40, shape) * rng.random()).astype(dtype)
        n = shape[-1] // k
        cut = values[..., : n * k, : n * k]
        expected = cut.reshape(*shape[:-2], n, k, n, k).mean(axis=(-3, -1), dtype=np.float64)
        pooled = _pooled(values, k)
        assert pooled.dtype == np.float64
        assert np.array_equal(pooled, expected)


@pytest.mark.parametrize("k", [2, 3, 4, 7, 8, 13])
def test_a_cell_is_any_or_all_of_the_pixels_it_covers(k: int) -> None:
    rng = np.random.default_rng(k)
    for shape in ((3, 128, 128), (101, 101)):
        mask = rng.random(shape) < 0.97 ** (k * k)  # about as many cells with one as with none
        n = shape[-1] // k
        blocks = mask[..., : n * k, : n * k].reshape(*shape[:-2], n, k, n, k)
        assert np.array_equal(_pooled_any(mask, k), blocks.any(axis=(-3, -1)))
        if len(shape) == 2:
            assert np.array_equal(_pooled_all(~mask, k), (~blocks).all(axis=(-3, -1)))
