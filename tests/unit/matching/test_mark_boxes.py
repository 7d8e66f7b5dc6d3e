"""Where a mark lies (issue 83): a match names the box of what was added on the picture that holds
it and where that region lies on the other picture, whichever of the two the catalog holds."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont, ImageOps

from dupcheck.core.matching.edits import _Frame, _placed
from dupcheck.core.models import Box, Edit, Verdict
from dupcheck_tools.samples import product_image
from tests.unit.matching.test_edits import judged

SEEDS = (22, 1005)
BLOCK = (0.55, 0.38, 0.7, 0.52)  # on the product, off its centre: a mirror moves it
TEXT_AT = (120, 140)


def _block(image: Image.Image) -> Image.Image:
    copy, (w, h) = image.copy(), image.size
    left, top, right, bottom = BLOCK
    ImageDraw.Draw(copy).rectangle((left * w, top * h, right * w, bottom * h), fill=(20, 30, 160))
    return copy


def _text(image: Image.Image) -> Image.Image:
    copy = image.copy()
    ImageDraw.Draw(copy).text(TEXT_AT, "SAMPLE", fill=(255, 255, 255), font=ImageFont.load_default(size=40))
    return copy


def _text_box(size: tuple[int, int]) -> Box:
    left, top, right, bottom = ImageDraw.Draw(Image.new("RGB", size)).textbbox(
        TEXT_AT, "SAMPLE", font=ImageFont.load_default(size=40)
    )
    return left / size[0], top / size[1], right / size[0], bottom / size[1]


def _mark(edits: tuple[Edit, ...] | None) -> Edit:
    marks = [edit for edit in edits or () if edit.box is not None]
    assert len(marks) == 1, edits
    return marks[0]


def _round(found: Box | None, truth: Box) -> None:
    """`found` lies on the true mark: its centre inside it, and they overlap by a third of
    their union at least (a box is as coarse as the cells the mark was found in)."""
    assert found is not None
    left, top, right, bottom = found
    x, y = (left + right) / 2, (top + bottom) / 2
    assert truth[0] < x < truth[2] and truth[1] < y < truth[3], (found, truth)
    across = max(0.0, min(right, truth[2]) - max(left, truth[0]))
    down = max(0.0, min(bottom, truth[3]) - max(top, truth[1]))
    union = (right - left) * (bottom - top) + (truth[2] - truth[0]) * (truth[3] - truth[1]) - across * down
    assert across * down >= union / 3, (found, truth)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_words_box_lies_round_it_on_both_pictures(seed: int) -> None:
    original = product_image(seed, (400, 320))
    judgement = judged(original, _text(original))
    assert judgement.verdict is Verdict.DUPLICATE and not judgement.reverse
    mark = _mark(judgement.edits)
    _round(mark.box, _text_box(original.size))
    _round(mark.original_box, _text_box(original.size))


@pytest.mark.parametrize("seed", SEEDS)
def test_a_marks_box_lies_round_it_on_both_pictures_whichever_is_stored(seed: int) -> None:
    original = product_image(seed, (400, 320))
    copy = _block(original)
    truth = BLOCK
    forth, back = judged(original, copy), judged(copy, original)
    assert forth.verdict is back.verdict is Verdict.DUPLICATE
    assert not forth.reverse and back.reverse  # the box is on the copy: the query, then the catalog picture
    for judgement in (forth, back):
        mark = _mark(judgement.edits)
        _round(mark.box, truth)
        _round(mark.original_box, truth)  # the same photograph: the same place


@pytest.mark.parametrize("seed", SEEDS)
def test_a_mirrored_copys_box_is_on_its_own_side_and_the_original_box_on_the_other(seed: int) -> None:
    original = product_image(seed, (400, 320))
    copy = ImageOps.mirror(_block(original))
    mirrored = (1 - BLOCK[2], BLOCK[1], 1 - BLOCK[0], BLOCK[3])
    for judgement, held in ((judged(original, copy), True), (judged(copy, original), False)):
        assert judgement.verdict is Verdict.DUPLICATE and judgement.reverse is not held
        mark = _mark(judgement.edits)
        _round(mark.box, mirrored)  # on the copy, where the mirror put it
        _round(mark.original_box, BLOCK)


def _see_through(image: Image.Image) -> Image.Image:
    """A see-through grey word centred at a quarter of the width and height (off the middle)."""
    base = image.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    font = ImageFont.load_default(size=min(image.size) // 9)
    centre = (image.width / 4, image.height / 4)
    ImageDraw.Draw(layer).text(centre, "SAMPLE", font=font, fill=(128, 128, 128, 140), anchor="mm")
    return Image.alpha_composite(base, layer).convert("RGB")


@pytest.mark.parametrize("seed", SEEDS)
def test_a_see_through_word_on_the_catalogs_copy_is_placed_and_named_on_it(seed: int) -> None:
    """A see-through watermark on the catalog's copy, the original asked about mirrored: the
    strokes are read on the catalog picture (the copy), named where they lie there, and their
    box on the query lies on the mirror's other side."""
    original = product_image(seed, (400, 320))
    judgement = judged(_see_through(original), ImageOps.mirror(original))
    assert judgement.verdict is Verdict.DUPLICATE and judgement.reverse
    mark = _mark(judgement.edits)
    assert mark.name == "overlay" and mark.params["where"] == "top left"
    assert mark.box is not None and mark.original_box is not None
    assert (mark.box[0] + mark.box[2]) / 2 < 0.5 < (mark.original_box[0] + mark.original_box[2]) / 2


def test_a_box_on_a_border_the_copy_added_has_no_place_on_the_original() -> None:
    """The views' placement of a padded copy: its border lies beyond the catalog picture."""
    mark = Edit(
        "overlay", {"where": "top left", "share": 0.01}, box=_Frame().box(np.array([1, 4]), np.array([1, 4]), (40, 40))
    )
    padded = ((-0.2, 1.2), (-0.2, 1.2))  # the query's whole picture on the catalog picture's
    placed = _placed(mark, None, None, padded, mirrored=False)
    assert placed.box == (0.025, 0.025, 0.125, 0.125) and placed.original_box is None
    inside = _placed(Edit("overlay", {}, box=(0.5, 0.5, 0.75, 0.75)), None, None, padded, mirrored=True)
    assert inside.original_box == pytest.approx((-0.2 + 0.25 * 1.4, 0.5, -0.2 + 0.5 * 1.4, 0.85))


def test_an_edits_boxes_survive_its_dict() -> None:
    """A report's work file and the API carry an edit as its dict: the boxes come back as they went."""
    edit = Edit("overlay", {"where": "centre", "share": 0.02}, (0.1, 0.2, 0.3, 0.4), None)
    data = edit.to_dict()
    assert data["box"] == {"left": 0.1, "top": 0.2, "right": 0.3, "bottom": 0.4} and "original_box" not in data
    assert Edit.of_dict(data) == edit
    assert Edit.of_dict(Edit("cropped", {"left": 0.1}).to_dict()) == Edit("cropped", {"left": 0.1})
