"""The duplicate report's second look: a part recoloured in its own shape is refused, what a copy's
edits do to a picture is not."""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageEnhance, ImageOps

from dupcheck.core.hashing import get_pipeline
from dupcheck.core.lookalike import Thumbnail
from dupcheck.core.verification import Views
from dupcheck_tools.duplicates.second_look import MIN_SHARE, SHARED_OUTLINE, Look, second_look

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
