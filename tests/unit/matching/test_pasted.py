"""Views that differ in one pasted block (core/matching/pasted.py): measured again without it, a
copy with a caption band lines up as a copy does; views that differ all over, or in a block
too large to be an overlay, are not measured so."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from dupcheck.core.limits.policy import FINE, PASTED_ALONE, PASTED_BLOCK, PASTED_GAP, PASTED_STRIP
from dupcheck.core.matching.alignment import Alignment, Evidence
from dupcheck.core.matching.pasted import outside_block
from dupcheck.core.pictures.arrays import regions
from dupcheck.core.stored.views import WHOLE


def scene(seed: int) -> np.ndarray:
    """A FINE x FINE view of a photograph: smooth structure from 30 to 220 levels."""
    blocks = np.random.default_rng(seed).uniform(30, 220, (FINE // 4, FINE // 4))
    picture = Image.fromarray(blocks.astype(np.uint8)).resize((FINE, FINE), Image.Resampling.BICUBIC)
    return np.asarray(picture.filter(ImageFilter.GaussianBlur(1.0)), dtype=np.float32)


Window = tuple[float, float]


def evidence(
    mine: np.ndarray, theirs: np.ndarray, rows: Window = (0.0, 1.0), cols: Window = (0.0, 1.0),
    query_box: tuple[float, float, float, float] = WHOLE, colour_off: np.ndarray | None = None,
) -> Evidence:  # fmt: skip
    """Evidence of the two views lined up as they are (what outside_block reads is the alignment;
    `rows`, `cols`: the window of the candidate's view they line up with, all of it by default;
    `query_box`: the query's view, its whole picture by default; `colour_off`: the pixels whose
    colour differs, none by default)."""
    off = np.abs(mine - theirs) > 20
    colour = np.zeros_like(off) if colour_off is None else colour_off
    alignment = Alignment(
        query_box=query_box, mirrored=False, angle=0.0, candidate_view=0, rows=rows, cols=cols,
        query_trimmed=query_box != WHOLE, mine=mine, theirs=theirs, my_colour=np.zeros((2, FINE, FINE), np.float32),
        their_colour=np.zeros((2, FINE, FINE), np.float32), luma_off=off, colour_off=colour,
    )  # fmt: skip
    return Evidence(0.5, float(off.mean()), float(colour.mean()), 12, alignment=alignment)


def banded(view: np.ndarray, rows: slice, level: float = 15.0) -> np.ndarray:
    out = view.copy()
    out[rows, :] = level
    return out


@pytest.mark.parametrize("level", [15.0, 250.0], ids=["a dark band", "a light band"])
def test_a_copy_with_a_band_across_lines_up_without_it(level: float) -> None:
    """A copy made brighter and given a band across a sixth of it: its one fit over the whole view
    is pulled off by the band, the fit without it explains the rest."""
    photo = scene(0)
    copy = banded(np.clip(photo * 0.9 + 12, 0, 255), slice(9, 13), level)
    found = outside_block(evidence(copy, photo))
    assert found is not None
    assert found.rest.similarity > 0.98 and found.rest.luma_off < 0.02
    assert found.rest.layout_off == 12 and found.rest.alignment is not None  # the rest of the evidence kept


def test_a_band_from_edge_to_edge_of_the_whole_picture_runs_across_it() -> None:
    """A caption band over the whole width of a copy lined up whole runs across the picture: an
    overlay wherever it lies (no print or title crosses the picture's edge). Its colour is left
    out with it. A band short of one side, one lined up with a part of the picture, one on a
    query's trimmed view (whose edges are the product's, not the picture's) or a strip along an
    edge (padding) does not. A band on the catalog picture is found too, as the catalog's."""
    photo = scene(0)
    band = banded(photo, slice(9, 12))
    coloured = np.zeros(photo.shape, dtype=bool)
    coloured[9:12, :] = True
    found = outside_block(evidence(band, photo, colour_off=coloured))
    assert found is not None and found.across
    assert found.rest.colour_off == 0.0  # the band's colour left out with it
    short = photo.copy()
    short[9:12, : FINE - 3] = 15.0
    found = outside_block(evidence(short, photo))
    assert found is not None and not found.across
    found = outside_block(evidence(band, photo, rows=(0.0, 1.0), cols=(0.1, 0.8)))
    assert found is None or not found.across
    found = outside_block(evidence(band, photo, query_box=(0.05, 0.95, 0.1, 0.9)))
    assert found is not None and not found.across
    down = photo.copy()
    down[:, 9:12] = 255.0
    found = outside_block(evidence(down, photo))
    assert found is not None and found.across  # down the picture, top to bottom
    along = photo.copy()
    along[:, :3] = 255.0  # a strip along the picture's edge, as padding is: no picture beyond it
    found = outside_block(evidence(along, photo))
    assert found is not None and not found.across
    held = outside_block(evidence(photo, band))  # the band on the catalog picture
    assert held is not None and held.across and not held.on_query and found.on_query


def test_a_band_that_matches_what_it_covers_in_places_is_one_block() -> None:
    """A band over a flat cover takes the cover's own level here and there: what differs lies
    along it in pieces, none of them most of it, each 2 PASTED_GAP px from the next: one block."""
    photo = scene(0)
    copy = banded(photo, slice(9, 12))
    gap, step = 2 * PASTED_GAP, 2 * PASTED_GAP + 3
    for start in range(3, FINE, step):
        copy[9:12, start : start + gap] = photo[9:12, start : start + gap]
    pieces = regions(np.abs(copy - photo) > 20)
    assert len(pieces) > 2 and len(pieces[0]) < PASTED_ALONE * sum(map(len, pieces))
    found = outside_block(evidence(copy, photo))
    assert found is not None and found.rest.similarity > 0.98 and found.rest.luma_off < 0.02
    # Lined up with a part of the view along the band (a crop of it), a strip differs where the
    # crop cut: not a block. Lined up with a part down the picture only, the band across it is one.
    assert outside_block(evidence(copy, photo, cols=(0.2, 0.6))) is None
    assert outside_block(evidence(copy, photo, rows=(0.2, 0.6))) is not None
    farther = banded(photo, slice(9, 12))
    for start in range(3, FINE, step + 1):
        farther[9:12, start : start + gap + 1] = photo[9:12, start : start + gap + 1]
    assert outside_block(evidence(farther, photo)) is None  # pieces apart: no one block


def test_a_block_in_pieces_short_of_the_edges_is_one_block() -> None:
    """A see-through band that stops short of the picture's sides, or a sticker, crossing a print
    it lets show: it differs in pieces either side of the print, none of them most of it. One
    block, as a band across the picture is (a dev caption band over a striped print was judged
    `different` of the photo it was laid on, and `duplicate` of the plain photo beside it)."""
    photo = scene(0)
    sticker = photo.copy()
    sticker[9:12, 3 : FINE - 3] = 15.0
    sticker[9:12, 10 : 10 + 2 * PASTED_GAP] = photo[9:12, 10 : 10 + 2 * PASTED_GAP]  # the print it shows
    pieces = regions(np.abs(sticker - photo) > 20)
    assert len(pieces) == 2 and len(pieces[0]) < PASTED_ALONE * sum(map(len, pieces))
    found = outside_block(evidence(sticker, photo))
    assert found is not None and found.rest.similarity > 0.98 and found.rest.luma_off < 0.02
    assert not found.across  # short of the picture's sides: it may lie on the product


def test_views_that_differ_all_over_have_no_block() -> None:
    """Another photograph differs everywhere: no one block holds what differs."""
    assert outside_block(evidence(scene(1), scene(0))) is None


def test_a_block_over_the_largest_an_overlay_covers_is_not_left_out() -> None:
    photo = scene(0)
    rows = round(FINE * (PASTED_BLOCK + 0.1))
    assert outside_block(evidence(banded(photo, slice(0, rows)), photo)) is None


def test_a_region_as_deep_as_it_is_wide_is_another_subject_not_a_strip() -> None:
    """Another garment in the same pose differs in one region too, but not in a band or a sticker:
    a square a third of the view's side is within PASTED_BLOCK, yet not left out."""
    photo = scene(0)
    side = round(FINE * (PASTED_STRIP + 0.1))
    garment = photo.copy()
    weave = np.indices((side, side)).sum(axis=0) % 2
    garment[6 : 6 + side, 6 : 6 + side] = np.where(weave, 250.0, 5.0)  # all its own: every pixel differs
    assert ((side + 2) / FINE) ** 2 <= PASTED_BLOCK
    assert outside_block(evidence(garment, photo)) is None
    strip = photo.copy()
    strip[6 : 6 + round(FINE * PASTED_STRIP) - 1, :] = 15.0
    assert outside_block(evidence(strip, photo)) is not None


def test_views_that_agree_have_nothing_to_leave_out() -> None:
    photo = scene(0)
    assert outside_block(evidence(photo.copy(), photo)) is None
