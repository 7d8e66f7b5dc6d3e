"""Which of two records holding one picture is the original: each reading of the pictures, and
readings that disagree deciding nothing."""

from __future__ import annotations

from dupcheck.core.limits.policy import KEPT_SIDE
from dupcheck.core.models import Edit
from dupcheck_tools.duplicates.originals import Copied, Looks, which_original

X, Y = 0, 1
PHOTO = Looks(colour=True, size=(288, 384), borders=(0.0, 0.0, 0.0, 0.0))  # a scene to its edges


def shares(left: float = 0.0, right: float = 0.0, top: float = 0.0, bottom: float = 0.0) -> dict[str, float]:
    return {"left": left, "right": right, "top": top, "bottom": bottom}


def cropped(**sides: float) -> Edit:
    return Edit("cropped", shares(**sides))


def padded(**sides: float) -> Edit:
    return Edit("padded", shares(**sides))


def test_a_crop_into_the_photograph_shows_the_larger_picture_to_be_the_original() -> None:
    # Y is X with 10% of the scene cut off the left: Y's check against X names the crop, X's
    # against Y the padding that would turn Y back into X; X's edge is photograph, not border.
    copied = which_original(X, Y, (cropped(left=0.1),), (padded(left=0.1),), {X: PHOTO, Y: PHOTO})
    assert copied == Copied(X, Y, ("cropped",))
    # The same read from one check only (the original's check against its big crop failed).
    assert which_original(X, Y, (cropped(left=0.1),), None, {X: PHOTO, Y: PHOTO}) == Copied(X, Y, ("cropped",))
    # And the other way round: which record is first does not matter.
    assert which_original(Y, X, (padded(left=0.1),), (cropped(left=0.1),), {X: PHOTO, Y: PHOTO}) == Copied(
        X, Y, ("cropped",)
    )


def test_a_plain_border_around_a_photograph_shows_the_smaller_picture_to_be_the_original() -> None:
    # Y is X padded to a square: what Y shows beyond X is Y's own plain border (its trim box),
    # and X's photograph reaches its edges. X's check against Y reads it as a crop.
    square = Looks(colour=True, size=(384, 384), borders=(0.0, 0.0, 0.125, 0.125))
    copied = which_original(X, Y, (padded(top=0.125, bottom=0.125),), (cropped(top=0.125, bottom=0.125),),
                            {X: PHOTO, Y: square})  # fmt: skip
    assert copied == Copied(X, Y, ("padded",))
    framed = Looks(colour=True, size=(310, 384), borders=(0.05, 0.05, 0.06, 0.06))
    found = which_original(X, Y, (Edit("framed", shares(0.05, 0.05, 0.06, 0.06)),), None, {X: PHOTO, Y: framed})
    assert found == Copied(X, Y, ("framed",))


def test_a_plain_margin_cut_or_added_where_both_keep_one_says_nothing() -> None:
    # A product on white: Y shows 3% less of X's white margin on each side, and still has a margin
    # of its own. A crop of the margin and padding of Y's margin look the same.
    on_white = Looks(colour=True, size=(384, 310), borders=(0.2, 0.2, 0.05, 0.05))
    less_white = Looks(colour=True, size=(384, 300), borders=(0.18, 0.18, 0.02, 0.02))
    edits = (cropped(left=0.03, right=0.03, top=0.03, bottom=0.03),)
    assert which_original(X, Y, edits, None, {X: on_white, Y: less_white}) is None
    # Y's product reaches its bottom edge, where X shows 3% more white, but not its sides: X could be
    # Y padded, or Y cut from X at the product's foot (an automatic trim). No telling.
    at_the_foot = Looks(colour=True, size=(384, 300), borders=(0.18, 0.18, 0.02, 0.0))
    assert which_original(X, Y, (cropped(left=0.03, bottom=0.03),), None, {X: on_white, Y: at_the_foot}) is None
    # A cut of a product touching the bottom edge (no border there) is a crop, white margins or not.
    touching = Looks(colour=True, size=(384, 310), borders=(0.2, 0.2, 0.05, 0.0))
    found = which_original(X, Y, (cropped(left=0.03, bottom=0.03),), None, {X: touching, Y: less_white})
    assert found == Copied(X, Y, ("cropped",))
    # So is one too thin to name (1.5%), past the measurement's noise; within it, it is no cut.
    found = which_original(X, Y, (cropped(left=0.03, bottom=0.015),), None, {X: touching, Y: less_white})
    assert found == Copied(X, Y, ("cropped",))
    assert which_original(X, Y, (cropped(left=0.03, bottom=0.008),), None, {X: touching, Y: less_white}) is None


def test_a_share_within_the_measurements_noise_of_the_border_is_border() -> None:
    # Padding measured a point wider than the border the trim box found is still that border.
    square = Looks(colour=True, size=(384, 384), borders=(0.0, 0.0, 0.12, 0.12))
    assert which_original(X, Y, (padded(top=0.13, bottom=0.12),), None, {X: PHOTO, Y: square}) == Copied(
        X, Y, ("padded",)
    )
    # Two points past it is photograph: the larger picture was cut.
    assert which_original(Y, X, (cropped(top=0.15),), None, {X: PHOTO, Y: square}) == Copied(Y, X, ("cropped",))


def test_a_turned_pair_is_not_read_by_its_framing() -> None:
    # A turn's fill corners read as a crop one way and padding the other: neither is evidence.
    turned = (Edit("rotated", {"degrees": 3.0}), cropped(left=0.03, right=0.03, top=0.04, bottom=0.04))
    assert which_original(X, Y, turned, (Edit("rotated", {"degrees": -3.0}),), {X: PHOTO, Y: PHOTO}) is None


def test_the_one_with_colour_is_the_original_of_a_grey_one_unless_its_colour_is_a_badge() -> None:
    grey = Looks(colour=False, size=(288, 384), borders=(0.0, 0.0, 0.0, 0.0))
    looks = {X: PHOTO, Y: grey}
    assert which_original(X, Y, (Edit("grayscale"),), (), looks) == Copied(X, Y, ("in grayscale",))
    assert which_original(Y, X, None, (Edit("grayscale"),), looks) == Copied(X, Y, ("in grayscale",))
    # A grey photograph with a red badge added: the colour is the badge's, the grey one the original.
    badge = (Edit("overlay", {"where": "top left", "share": 0.02}),)
    assert which_original(X, Y, (Edit("grayscale"),), badge, looks) is None
    # Colour that is neither clearly there nor clearly not says nothing.
    assert which_original(X, Y, (), (), {X: Looks(colour=None), Y: grey}) is None


def test_text_or_a_badge_named_one_way_only_shows_the_record_without_it_to_be_the_original() -> None:
    badge = Edit("overlay", {"where": "bottom right", "share": 0.03})
    assert which_original(X, Y, (badge,), (), {}) == Copied(X, Y, ("with text or a badge added",))
    assert which_original(X, Y, (badge,), (badge,), {}) is None  # named both ways: no telling
    assert which_original(X, Y, (badge,), None, {}) is None  # the other check did not call them the same
    # Beside a tone edit, a patch is as often a highlight the edit clipped: no reading.
    brighter, darker = Edit("brightness", {"change": 0.2}), Edit("brightness", {"change": -0.17})
    assert which_original(X, Y, (darker, badge), (brighter,), {}) is None


def test_the_larger_picture_is_the_original_of_a_smaller_one_when_the_smaller_ones_size_is_known() -> None:
    thumbnail = Looks(colour=True, size=(112, 150), borders=(0.0, 0.0, 0.0, 0.0))
    assert which_original(X, Y, (), (), {X: PHOTO, Y: thumbnail}) == Copied(X, Y, ("smaller",))
    # Both at the kept pictures' size: either could be larger; a pixel apart is no resize.
    capped = Looks(colour=True, size=(KEPT_SIDE, 300))
    assert which_original(X, Y, (), (), {X: capped, Y: Looks(colour=True, size=(KEPT_SIDE, 290))}) is None
    assert which_original(X, Y, (), (), {X: Looks(size=(300, 200)), Y: Looks(size=(299, 200))}) is None
    # A crop is smaller too: the framing says which, not the size (alone, it would say the same here).
    assert which_original(X, Y, (padded(left=0.2),), None, {X: thumbnail, Y: PHOTO}) == Copied(Y, X, ("cropped",))


def test_readings_that_disagree_decide_nothing() -> None:
    # Y is grey (X its original, by colour), but X is smaller than Y: no telling which.
    grey_large = Looks(colour=False, size=(288, 384))
    small = Looks(colour=True, size=(100, 133))
    assert which_original(X, Y, (Edit("grayscale"),), (), {X: small, Y: grey_large}) is None
    # Two checks that read the framing opposite ways.
    assert which_original(X, Y, (cropped(left=0.1),), (cropped(left=0.1),), {X: PHOTO, Y: PHOTO}) is None
    # Mirrored, brighter, recompressed: nothing lost either way, nothing to tell.
    mirrored = (Edit("mirrored"), Edit("brightness", {"change": 0.2}))
    assert which_original(X, Y, mirrored, (Edit("mirrored"),), {X: PHOTO, Y: PHOTO}) is None


def test_both_checks_naming_one_record_the_copy_show_the_other_to_be_the_original() -> None:
    """Each check names the picture asked about the copy unless the pictures read the other way
    round: where both checks name Y the copy (X's check read it back, finding the badge or the
    frame on Y), X is the original, though no border or badge tells it on its own here."""
    badge = Edit("overlay", {"where": "top right", "share": 0.03})
    framed = Edit("framed", shares(0.05, 0.05, 0.06, 0.06))
    on_white = Looks(colour=True, size=(384, 310), borders=(0.2, 0.15, 0.03, 0.0))
    in_a_frame = Looks(colour=True, size=(384, 330), borders=(0.25, 0.2, 0.09, 0.06))
    assert which_original(X, Y, (badge,), None, {}, agreed_copy=Y) == Copied(X, Y, ("with text or a badge added",))
    assert which_original(X, Y, (badge,), None, {}) is None  # one check alone: its own default
    assert which_original(X, Y, (framed,), None, {X: on_white, Y: in_a_frame}, agreed_copy=Y) == Copied(
        X, Y, ("framed",)
    )
    # What they agree on says nothing of which came first (a mirror): no reading.
    assert which_original(X, Y, (Edit("mirrored"),), None, {}, agreed_copy=Y) is None
    # Agreeing against another reading (X is a small picture of Y's): no telling.
    small = Looks(colour=True, size=(112, 150), borders=(0.0, 0.0, 0.0, 0.0))
    assert which_original(X, Y, (badge,), None, {X: small, Y: PHOTO}, agreed_copy=Y) is None
