"""The duplicate report's second look: a part recoloured in its own shape is refused, what a copy's
edits do to a picture is not."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from dupcheck.core.hashing import get_pipeline
from dupcheck.core.matching.thumbnails import Thumbnail
from dupcheck.core.matching.views import Views
from dupcheck_tools.duplicates.second_look import MIN_SHARE, MIN_TINTED, SHARED_OUTLINE, Look, second_look

PIPELINE = get_pipeline()


def with_band(colour: tuple[int, int, int]) -> Image.Image:
    """A model in navy shorts whose waistband is `colour`, on a shop's white: one product photo
    in one of its colours (the others made from it by recolouring the band)."""
    picture = Image.new("RGB", (400, 480), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    draw.ellipse((150, 10, 250, 120), fill=(224, 172, 140))  # the head
    draw.rectangle((120, 110, 280, 230), fill=(230, 180, 150))  # the torso
    draw.polygon([(120, 230), (280, 230), (300, 330), (210, 330), (200, 280), (190, 330), (100, 330)],
                 fill=(30, 30, 60))  # fmt: skip
    draw.rectangle((118, 222, 282, 240), fill=colour)  # the waistband
    draw.rectangle((130, 330, 180, 470), fill=(228, 176, 146))  # the legs
    draw.rectangle((220, 330, 270, 470), fill=(228, 176, 146))
    draw.line((200, 245, 200, 300), fill=(10, 10, 30), width=3)  # a seam
    return picture


def with_badge(picture: Image.Image) -> Image.Image:
    """A copy with a sale badge over a corner of the picture."""
    badged = picture.copy()
    draw = ImageDraw.Draw(badged)
    draw.rectangle((215, 130, 330, 175), fill=(210, 30, 40))
    draw.text((228, 145), "SALE -30%", fill=(255, 255, 255))
    return badged


def look(query: Image.Image, candidate: Image.Image) -> Look | None:
    probe = PIPELINE.fingerprint(query).probe
    stored = PIPELINE.fingerprint(candidate, for_query=False)
    thumbnail = Thumbnail.decode(stored.thumbnail)
    views = Views.decode(stored.features["views"])
    assert probe is not None and thumbnail is not None and views is not None
    return second_look(PIPELINE, probe, views, thumbnail, 0)


def test_a_part_recoloured_in_its_own_shape_is_refused_both_ways() -> None:
    blue, yellow = with_band((40, 90, 230)), with_band((235, 210, 40))
    for one, other in ((blue, yellow), (yellow, blue)):
        seen = look(one, other)
        assert seen is not None
        assert seen.share >= MIN_SHARE and seen.outline >= SHARED_OUTLINE
        assert seen.recoloured


def test_a_copys_whole_picture_edits_are_not_a_recolour() -> None:
    original = with_band((40, 90, 230))
    copies = [
        ImageEnhance.Brightness(original).enhance(0.85),
        ImageEnhance.Contrast(original).enhance(1.2),
        ImageEnhance.Color(original).enhance(0.5),
        ImageOps.grayscale(original).convert("RGB"),
        original.resize((240, 200)),
    ]
    for copy in copies:
        for one, other in ((original, copy), (copy, original)):
            seen = look(one, other)
            assert seen is not None
            assert not seen.recoloured, seen


def test_a_badge_is_new_not_a_part_recoloured() -> None:
    original = with_band((40, 90, 230))
    badged = with_badge(original)
    for one, other in ((original, badged), (badged, original)):
        seen = look(one, other)
        assert seen is not None
        assert seen.share >= MIN_SHARE  # the badge differs...
        assert not seen.recoloured  # ...but its outline is not an edge of the original


def test_the_same_picture_is_not_recoloured() -> None:
    original = with_band((40, 90, 230))
    seen = look(original, original)
    assert seen is not None and seen.share == 0.0 and not seen.recoloured


# -- a garment retinted: the regional test ------------------------------------------------------

GREEN, GREY = (52, 140, 112), (160, 150, 160)


def in_hoodie(garment: Callable[[np.ndarray], np.ndarray] = lambda rgb: rgb) -> Image.Image:
    """A model in a hoodie of green and grey stripes, grey trousers, on a shop's white, with a
    photo's grain; `garment` is applied to the hoodie's pixels only (a shop's other colour of it)."""
    picture = Image.new("RGB", (400, 480), (255, 255, 255))
    draw = ImageDraw.Draw(picture)
    draw.ellipse((150, 10, 250, 120), fill=(150, 100, 80))  # the head
    draw.rectangle((170, 100, 230, 130), fill=(145, 98, 78))  # the neck
    draw.rectangle((200, 380, 300, 470), fill=(95, 95, 100))  # the trousers
    draw.rectangle((100, 380, 195, 470), fill=(95, 95, 100))
    hoodie = Image.new("L", picture.size, 0)
    ImageDraw.Draw(hoodie).polygon([(110, 125), (290, 125), (330, 300), (310, 385), (90, 385), (70, 300)], fill=255)
    stripes = Image.new("RGB", picture.size, GREY)
    for top in range(125, 385, 24):
        ImageDraw.Draw(stripes).rectangle((0, top, 400, top + 11), fill=GREEN)
    picture.paste(stripes, mask=hoodie)
    rgb = np.asarray(picture, dtype=np.float64)
    rgb = rgb + np.random.default_rng(7).normal(0, 3, rgb.shape) * (rgb < 250)  # grain, not on the white
    worn = np.asarray(hoodie) > 0
    rgb[worn] = garment(rgb[worn])
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8))


def greyer(rgb: np.ndarray) -> np.ndarray:
    """A tint 60% of what it was: the green stripes 15-20 levels greyer, as cv_0009's are."""
    lum = rgb @ np.array([0.299, 0.587, 0.114])
    return lum[:, None] + 0.6 * (rgb - lum[:, None])


def jpeg(picture: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def test_a_garment_retinted_and_the_rest_not_is_refused_both_ways() -> None:
    green, greyed = in_hoodie(), in_hoodie(greyer)
    off = np.abs(np.asarray(green, np.float64) - np.asarray(greyed, np.float64)).max(axis=2)
    assert 10 < off.max() <= 30  # a change the pixel test's CHANGED (40 levels) does not see
    for one, other in ((green, greyed), (greyed, green)):
        seen = look(one, other)
        assert seen is not None
        assert seen.share < MIN_SHARE  # not by the pixel test...
        assert seen.tinted >= MIN_TINTED and seen.recoloured  # ...by the regional one


def test_a_whole_picture_saturation_edit_or_a_jpeg_is_not_a_part_retinted() -> None:
    original = in_hoodie()
    copies = [
        ImageEnhance.Color(original).enhance(0.6),  # the garment's tint as greyer's, and the skin's
        ImageEnhance.Color(original).enhance(1.6),
        jpeg(original, 40),
        jpeg(ImageEnhance.Color(original).enhance(0.6), 75),
    ]
    for copy in copies:
        for one, other in ((original, copy), (copy, original)):
            seen = look(one, other)
            assert seen is not None
            assert seen.tinted < MIN_TINTED / 4 and not seen.recoloured, seen


def test_a_copy_turned_or_cut_and_edited_is_not_a_part_retinted() -> None:
    """A combination of edits leaves the alignment a pixel or two off: windows across the
    stripes' colour edges must not count that as a retint."""
    original = in_hoodie()
    turned = original.rotate(2, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255))
    copies = [
        ImageEnhance.Color(turned).enhance(1.4),
        ImageEnhance.Contrast(original.crop((12, 9, 392, 470)).resize((300, 363))).enhance(1.3),
        jpeg(original.rotate(-3, resample=Image.Resampling.BICUBIC, fillcolor=(255, 255, 255)), 60),
    ]
    for copy in copies:
        for one, other in ((original, copy), (copy, original)):
            seen = look(one, other)
            assert seen is not None
            assert seen.tinted < MIN_TINTED / 4 and not seen.recoloured, seen
