"""Text or a watermark: the pixels a local edit of the photograph cannot explain (marks.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from dupcheck.core.limits.policy import KEPT_QUALITY, MARK_SHARE
from dupcheck.core.matching.affine import Aligned
from dupcheck.core.matching.marks import (
    largest_mark,
    lined_up,
    mark_holder,
    named_mark,
    on_product,
    replaced_text,
    written,
)
from dupcheck_tools.samples import product_image

SIDE = 256


def grain(seed: int) -> np.ndarray:
    """A photograph's luma at the compared side: a product with fine grain, as a camera gives, on
    a grey backdrop (no tone near a clip, which is never judged)."""
    picture = np.asarray(product_image(seed, (SIDE, SIDE)).convert("L"), dtype=np.float64) * 0.7 + 30
    return picture + np.random.default_rng(seed).normal(0, 4, picture.shape)


def aligned(query: np.ndarray, kept: np.ndarray) -> Aligned:
    return Aligned(query, kept, np.ones(kept.shape, dtype=bool), np.zeros(6), kept.shape)


def with_text(luma: np.ndarray, text: str, at: tuple[int, int], level: int, opacity: int, size: int = 24) -> np.ndarray:
    base = Image.fromarray(np.clip(luma, 0, 255).astype(np.uint8)).convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    ImageDraw.Draw(layer).text(at, text, font=ImageFont.load_default(size=size), fill=(level, level, level, opacity))
    return np.asarray(Image.alpha_composite(base, layer).convert("L"), dtype=np.float64)


def is_marked(query: np.ndarray, kept: np.ndarray) -> bool:
    return named_mark(written(aligned(query, kept))) is not None


def moved(luma: np.ndarray, dx: float, dy: float) -> np.ndarray:
    return np.asarray(
        Image.fromarray(luma.astype(np.float32), mode="F").transform(
            luma.shape[::-1], Image.Transform.AFFINE, (1, 0, dx, 0, 1, dy), resample=Image.Resampling.BILINEAR
        ),
        dtype=np.float64,
    )


@pytest.mark.parametrize("seed", [3, 14])
def test_edits_of_the_whole_picture_write_nothing(seed: int) -> None:
    """A tone curve (not one line: a tile's own line follows it), a blur and a pixel and a half of
    shift (the map's last error, at the product's sharp edges): each tile is still a local edit
    of the kept picture's tile."""
    kept = grain(seed)
    curved = 255 * (np.clip(kept, 0, 255) / 255) ** 0.6
    blurred = np.asarray(Image.fromarray(curved.astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.6)), np.float64)
    for query in (curved, moved(curved, 1.5, -1.3), blurred):
        assert not is_marked(query, kept)


@pytest.mark.parametrize(("level", "opacity"), [(255, 90), (0, 80), (255, 50)])
def test_faint_text_over_the_photograph_is_written(level: int, opacity: int) -> None:
    """White or black text at a fifth to a third opacity, as a shop's watermark is (tiled, at the faintest)."""
    kept = grain(7)
    query = with_text(255 * (np.clip(kept, 0, 255) / 255) ** 0.6, "SAMPLE", (70, 110), level, opacity)
    mask = written(aligned(query, kept))
    found = largest_mark(mask)
    assert found is not None and len(found) >= MARK_SHARE * mask.size
    rows, cols = found[:, 0], found[:, 1]
    assert 100 <= rows.mean() <= 150 and 70 <= cols.mean() <= 170  # where the word is
    word = np.zeros(mask.shape, dtype=bool)
    word[100:150, 60:190] = True
    assert mask[~word].sum() < 0.2 * mask[word].sum()  # and little else


def test_text_at_the_overlaps_edge_is_not_a_mark() -> None:
    """Where a crop or a frame cuts, the query has an edge the kept picture lacks: a few pixels
    along the overlap's edge are never written."""
    kept = grain(9)
    query = kept.copy()
    query[:, :4] = 128  # a border the trim left in
    assert not written(aligned(query, kept))[:, :8].any()


def test_a_flat_picture_is_solved_without_error() -> None:
    """A plain tile has no gradient and no Laplacian: its fit must still be solvable."""
    flat = np.full((SIDE, SIDE), 200.0)
    assert not written(aligned(flat, flat)).any()


def test_a_words_letters_written_apart_are_one_mark() -> None:
    """A faint word is written in pieces, a letter's spacing apart: side by side on a line they
    are one mark; the same pieces stacked in a column are not a word."""
    pieces = [np.s_[100:118, 40 + 14 * i : 48 + 14 * i] for i in range(6)]  # 6 px apart, in a row
    row = np.zeros((SIDE, SIDE), dtype=bool)
    for piece in pieces:
        row[piece] = True
    found = largest_mark(row)
    assert found is not None and len(found) == row.sum()
    column = row.T.copy()  # the same pieces, one above the other
    found = largest_mark(column)
    assert found is not None and len(found) == row.sum() // 6


def strokes(mask: np.ndarray, count: int, top: int, left: int, height: int, width: int, gap: int) -> None:
    """`count` upright strokes side by side, as a faint word's letters are written."""
    for i in range(count):
        start = left + i * (width + gap)
        mask[top : top + height, start : start + width] = True


def test_a_small_word_is_named_by_its_shape() -> None:
    """Under MARK_SHARE, a mark is named when it reads as a line of text: a row three times as
    long as high, and nothing much written elsewhere."""
    word = np.zeros((SIDE, SIDE), dtype=bool)
    strokes(word, 4, 100, 40, 9, 3, 6)
    assert word.sum() < MARK_SHARE * word.size
    found = named_mark(word)
    assert found is not None and len(found) == word.sum()

    short = np.zeros((SIDE, SIDE), dtype=bool)  # the same strokes closer: a row twice as long as high
    strokes(short, 4, 100, 40, 9, 2, 3)
    assert largest_mark(short) is not None and named_mark(short) is None

    upright = np.zeros((SIDE, SIDE), dtype=bool)  # as many pixels, taller than wide: no line of text
    upright[100:114, 40:48] = True
    assert largest_mark(upright) is not None and named_mark(upright) is None

    scattered = word.copy()  # the word among as much again written in scattered groups
    for top, left in ((20, 200), (60, 150), (180, 30), (220, 200)):
        scattered[top : top + 6, left : left + 5] = True
    assert largest_mark(scattered) is not None and named_mark(scattered) is None


def test_a_small_faint_word_over_the_photograph_is_named() -> None:
    """A word written small and faint (a shop's name in a corner): too few pixels for MARK_SHARE."""
    kept = grain(7)
    query = with_text(kept, "SAMPLE", (90, 120), 255, 40, size=10)
    mask = written(aligned(query, kept))
    found = named_mark(mask)
    assert found is not None and len(found) < MARK_SHARE * mask.size
    assert 115 <= found[:, 0].mean() <= 140 and 90 <= found[:, 1].mean() <= 140


def _kept(seed: int) -> np.ndarray:
    """A kept picture (RGB): a product with grain on a grey backdrop."""
    picture = np.asarray(product_image(seed, (384, 288)), dtype=np.float64) * 0.8 + 20
    return np.clip(picture + np.random.default_rng(seed).normal(0, 3, picture.shape), 0, 255).astype(np.uint8)


def _with_badge(rgb: np.ndarray, opacity: int = 255) -> np.ndarray:
    base = Image.fromarray(rgb).convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    draw.rectangle((300, 12, 372, 52), fill=(230, 30, 30, opacity))
    draw.text((306, 20), "-30%", font=ImageFont.load_default(size=20), fill=(255, 255, 255, opacity))
    return np.asarray(Image.alpha_composite(base, layer).convert("RGB"))


@pytest.mark.parametrize("seed", [4, 17, 31])
@pytest.mark.parametrize("opacity", [255, 140], ids=["badge", "translucent"])
def test_the_picture_holding_a_badge_is_told_either_way_round(seed: int, opacity: int) -> None:
    plain = _kept(seed)
    badged = _with_badge(plain, opacity)
    forth, back = mark_holder(badged, plain), mark_holder(plain, badged)
    assert forth is not None and forth[0] and back is not None and not back[0]
    ys, xs = np.nonzero(forth[1])  # where they differ: the badge
    assert ys.min() >= 8 and ys.max() <= 56 and xs.min() >= 296 and xs.max() <= 376


def _as_kept(rgb: np.ndarray, quality: int = KEPT_QUALITY) -> np.ndarray:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "JPEG", quality=quality)
    return np.asarray(Image.open(out).convert("RGB"))


@pytest.mark.parametrize("seed", [4, 17, 31])
def test_pictures_that_differ_only_by_their_encoding_hold_no_mark(seed: int) -> None:
    """A copy saved again at quality 70, both kept as the service keeps pictures: its JPEG's
    changes along the edges are no outline of a mark, whichever way round."""
    plain = _kept(seed)
    recompressed = _as_kept(_as_kept(plain, 70))
    assert mark_holder(plain, plain) is None
    assert mark_holder(recompressed, _as_kept(plain)) is None and mark_holder(_as_kept(plain), recompressed) is None


def _logo(luma: np.ndarray, box: tuple[int, int, int, int], level: float) -> np.ndarray:
    top, bottom, left, right = box
    marked = luma.copy()
    marked[top:bottom, left:right] = level
    return marked


@pytest.mark.parametrize("seed", [3, 7, 11])
def test_a_logo_inside_the_product_lies_on_it(seed: int) -> None:
    kept = grain(seed)
    centre = SIDE // 2
    query = _logo(kept, (centre - 12, centre + 12, centre - 16, centre + 16), 15.0)
    assert on_product(aligned(query, kept)) is True


@pytest.mark.parametrize("seed", [3, 7, 11])
def test_a_band_across_the_picture_or_a_badge_on_the_backdrop_does_not(seed: int) -> None:
    kept = grain(seed)
    band = _logo(kept, (200, 226, 0, SIDE), 15.0)
    badge = _logo(kept, (6, 40, 6, 46), 15.0)
    assert on_product(aligned(band, kept)) is False
    assert on_product(aligned(badge, kept)) is False


def test_without_a_plain_backdrop_or_a_mark_nothing_is_said() -> None:
    scene = np.random.default_rng(5).uniform(40, 220, (SIDE, SIDE))  # no plain ring: where does a product end?
    centre = SIDE // 2
    assert on_product(aligned(_logo(scene, (centre - 12, centre + 12, centre - 16, centre + 16), 15.0), scene)) is None
    kept = grain(3)
    assert on_product(aligned(kept + np.random.default_rng(1).normal(0, 2, kept.shape), kept)) is None


def _titled(title: str) -> np.ndarray:
    """A kept cover of one template (a flat ground, a rule, a title in white) with `title`."""
    cover = Image.new("RGB", (256, 384), (112, 54, 140))
    draw = ImageDraw.Draw(cover)
    draw.rectangle((10, 10, 245, 373), outline=(250, 250, 250), width=2)
    draw.line((20, 40, 236, 40), fill=(250, 250, 250), width=2)
    draw.text((22, 52), title, font=ImageFont.load_default(size=30), fill=(250, 250, 250))
    draw.text((22, 330), "TOMAS BRANDT", font=ImageFont.load_default(size=22), fill=(250, 250, 250))
    return _as_kept(np.asarray(cover))


@pytest.mark.parametrize(("one", "other"), [("Kingdom", "Fire Lost"), ("Storm", "The Quiet Sea")])
def test_another_title_in_one_template_is_text_that_replaced_text(one: str, other: str) -> None:
    """Two titles in one ink on one ground: each picture shows the other's ink on the other's
    ground where they differ, whichever way round."""
    first, second = _titled(one), _titled(other)
    assert replaced_text(first, second) and replaced_text(second, first)


@pytest.mark.parametrize("seed", [4, 17, 31])
def test_a_mark_laid_on_top_replaced_no_text(seed: int) -> None:
    """A badge, a caption band over a title: what was laid on top adds its own colours over what
    it hides; and a picture saved again differs by no text at all."""
    plain = _kept(seed)
    assert not replaced_text(_with_badge(plain), plain) and not replaced_text(plain, _with_badge(plain))
    cover = _titled("Kingdom")
    banded = Image.fromarray(cover)
    draw = ImageDraw.Draw(banded)
    draw.rectangle((0, 40, 255, 90), fill=(30, 45, 110))
    draw.text((22, 52), "SIZES S-XXL", font=ImageFont.load_default(size=26), fill=(250, 250, 250))
    banded_kept = _as_kept(np.asarray(banded))
    assert not replaced_text(banded_kept, cover) and not replaced_text(cover, banded_kept)
    assert not replaced_text(_as_kept(_as_kept(plain, 70)), _as_kept(plain))


def _padded(rgb: np.ndarray, pad: int) -> np.ndarray:
    """The picture with `pad` px of white added on its left and right, kept at its own size again:
    padding too thin to be named, which moves every edge off its pixel but the middle's."""
    height, width = rgb.shape[:2]
    wider = Image.new("RGB", (width + 2 * pad, height), (255, 255, 255))
    wider.paste(Image.fromarray(rgb), (pad, 0))
    return _as_kept(np.asarray(wider.resize((width, height), Image.Resampling.LANCZOS)))


@pytest.mark.parametrize("seed", [4, 17, 31])
def test_two_kept_pictures_line_up_only_pixel_for_pixel(seed: int) -> None:
    """A picture saved again, or one with a badge, lines up with the picture as kept; the same
    picture padded by 1% of its width and kept at the same size does not, either way round
    (its far edges lie a pixel and more off), and neither does a picture moved by a pixel."""
    plain = _kept(seed)
    assert lined_up(_as_kept(_as_kept(plain, 70)), plain) and lined_up(_with_badge(plain), plain)
    padded = _padded(plain, 2)
    assert not lined_up(padded, plain) and not lined_up(plain, padded)
    assert not lined_up(np.roll(plain, 1, axis=1), plain)


@pytest.mark.parametrize("title", ["Fire Lost", "The Quiet Sea"])
def test_a_cover_a_fraction_of_a_pixel_off_lines_up_only_below_the_swaps_contrast(title: str) -> None:
    """Moved by a tenth of a pixel, another title in the template still lines up; by 0.4 px its
    full-contrast edges differ by more than replaced_text's contrast, and it does not, whichever
    axis it moved along."""
    cover = Image.fromarray(_titled("Kingdom"))

    def moved(dx: float, dy: float) -> np.ndarray:
        shifted = cover.transform(cover.size, Image.Transform.AFFINE, (1, 0, dx, 0, 1, dy), Image.Resampling.BILINEAR)
        return _as_kept(np.asarray(shifted)[2:-2, 2:-2])

    other = _titled(title)[2:-2, 2:-2]
    assert lined_up(moved(0.1, 0.0), other) and lined_up(moved(0.0, 0.1), other)
    assert not lined_up(moved(0.4, 0.0), other) and not lined_up(moved(0.0, 0.4), other)


def _flat_titled(title: str) -> np.ndarray:
    """A kept cover of one template on a flat ground holding only a title: no detail besides the
    text to line two covers up by."""
    cover = Image.new("RGB", (256, 384), (40, 130, 70))
    ImageDraw.Draw(cover).text((22, 40), title, font=ImageFont.load_default(size=34), fill=(250, 250, 250))
    return _as_kept(np.asarray(cover))


@pytest.mark.parametrize(("one", "other"), [("Kingdom", "Secret Storm"), ("Winter Salt", "Harbour Light")])
def test_on_a_flat_cover_the_text_itself_tells_whether_two_covers_line_up(one: str, other: str) -> None:
    """With nothing but text to line up by, another title lines up by its text, either way
    round; the same cover padded by 0.8-1.6% a side (too thin to be named) and kept at its size
    again does not, nor does one moved by a pixel: its strokes are the cover's own, moved. Not
    asked to read the text, nothing tells."""
    first, second = _flat_titled(one), _flat_titled(other)
    assert lined_up(first, second, by_text=True) and lined_up(second, first, by_text=True)
    assert not lined_up(first, second) and not lined_up(second, first)
    for pad in (2, 3, 4):
        padded = _padded(first, pad)
        assert not lined_up(padded, first, by_text=True) and not lined_up(first, padded, by_text=True)
    for moved in (np.roll(first, 1, axis=1), np.roll(first, 2, axis=0)):
        assert not lined_up(moved, first, by_text=True)


def test_covers_of_one_template_line_up_and_a_flat_picture_tells_nothing() -> None:
    """Two titles in one template line up where they share the frame and the author, the titles
    aside; a flat picture holds no detail to line up by."""
    assert lined_up(_titled("Kingdom"), _titled("Fire Lost"))
    assert not lined_up(_padded(_titled("Kingdom"), 2), _titled("Fire Lost"))
    flat = np.full((384, 256, 3), 128, np.uint8)
    assert not lined_up(flat, flat)
