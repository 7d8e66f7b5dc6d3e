"""Which of two records holding one picture is the original: the one the other is an edit of.

An edit can lose what the original holds, and nothing puts it back: a crop cuts off part of the
photograph, a grayscale copy has lost its colour, a smaller copy its detail. Padding, a frame,
text or a badge add what the original does not have. So where verification's two checks of a
pair (each record checked against the other as a query: core/matching/edits.py names what turns
the catalog picture into the query) and the records' own pictures show one of these, they show
which record is the copy:

* cropped: one picture shows all of the other and more, and the more reaches past its own
  uniform border into the photograph (its kept picture's trim box) on some side, by over
  SHARE_NOISE (a cut too thin to name, into a product that reaches the picture's edge, counts).
  Had the more been added, it would be a plain border: padding;
* padded or framed: the more lies within the larger picture's plain border, and the smaller
  picture's photograph reaches its own edge on every side the larger shows more. Where the
  smaller keeps a margin of its own on one of them, that margin could have been cut from the
  larger's as well as padding added to it: no reading (a crop that stops at a product's edge on
  one side, as the demo's 8% crop of a product on white does). One that stopped exactly at the
  photograph's edge on every side (an automatic trim of a white margin) reads as padding;
* in grayscale: one picture has colour and the other none (the trimmed view's chroma, as the
  views tell a grayscale query), and no text or badge was found: a coloured badge on a grey
  photograph is the copy's colour;
* text or a badge added: named on one check of the pair and not on the other, where no tone
  edit was named (a brightening clips highlights, which one check reads as a patch);
* both checks name the same record the copy: a check names the picture asked about the copy
  unless the pictures read the other way round (core/matching/judge.py: the badge lies on the
  catalog picture, the crop took off the catalog picture's frame, or the pair lines up only
  that way), so one of the two read it from the pictures. Read where they name framing or text
  or a badge;
* smaller: no framing or turn named either way, and one picture is under KEPT_SIDE (its kept
  picture is then its own size) with the other larger by over MIN_SIDE. A copy enlarged from a
  picture under KEPT_SIDE reads the other way: enlarging adds pixels, not detail, and detail is
  not measured here.

Mirroring, a turn, a tone change and recompression lose nothing either way (or nothing a kept
picture shows): they say nothing. Every reading of a pair must agree: two that point at
different records (a crop read one way and padding the other, a grey copy that is also the larger)
are no evidence, so one misread edit does not decide a pair whose other reading disagrees.
docs/lab/evaluation.md ("Which record is the original") measures each reading on the dev benchmark.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dupcheck.core.fingerprint.hashing import HashPipeline
from dupcheck.core.limits.judging import Verified
from dupcheck.core.limits.policy import COLOURED, GREY_CHROMA, KEPT_SIDE, MIN_BORDER, MIN_SIDE
from dupcheck.core.matching.edits import FRAMING, KINDS, MARK_KINDS, TONE_KINDS
from dupcheck.core.models import Edit, HashRecord
from dupcheck.core.stored.thumbnails import Thumbnail
from dupcheck.core.stored.views import stored_views

# A side's share measured by a crop's edit and by a trim box differs by a pixel or two of the
# test's 256 px map and of the 384 px kept picture: half the smallest crop named.
SHARE_NOISE = MIN_SIDE / 2

Borders = tuple[float, float, float, float]  # left, right, top, bottom: shares of the picture


@dataclass(frozen=True, slots=True)
class Looks:
    """What a record's own picture shows. `colour`: whether it has colour (its trimmed view's
    99th-percentile chroma at least COLOURED: True; under GREY_CHROMA: False; between: None);
    `size` (height, width) and `borders` (the uniform border's share of each side, from its trim
    box) of its kept picture, None for a record that keeps none."""

    colour: bool | None = None
    size: tuple[int, int] | None = None
    borders: Borders | None = None

    @property
    def own_size(self) -> bool:
        """Whether the kept picture is the picture's own size: one under KEPT_SIDE was never made
        smaller (kept pictures are only ever reduced to it)."""
        return self.size is not None and max(self.size) < KEPT_SIDE


@dataclass(frozen=True, slots=True)
class Copied:
    """The pictures show `copy` to be an edit of `original` (work-file positions); `how` says
    what was done to it ("cropped", "in grayscale", ...)."""

    original: int
    copy: int
    how: tuple[str, ...]


def which_original(
    x: int, y: int, x_to_y: Sequence[Edit] | None, y_to_x: Sequence[Edit] | None, looks: Mapping[int, Looks],
    *, agreed_copy: int | None = None,
) -> Copied | None:  # fmt: skip
    """Which of records x and y is the original, where the pictures show it. `x_to_y`: the edits
    that turn x's picture into y's (y's check against x named them, or x's read the other way
    round), None when no check named them; `y_to_x` the other way round. `agreed_copy`: the
    record both checks named the copy (`_agreed`)."""
    mine, theirs = looks.get(x, Looks()), looks.get(y, Looks())
    named = _names(x_to_y) | _names(y_to_x)
    readings = [
        *_agreed(x, y, x_to_y, y_to_x, agreed_copy),
        *_framing(x, y, x_to_y, y_to_x, mine, theirs, turned="rotated" in named),
        *_colour(x, y, mine, theirs, marked=bool(named & MARK_KINDS)),
        *_mark(x, y, x_to_y, y_to_x),
        *_size(x, y, mine, theirs, framed=bool(named & (FRAMING | {"rotated"}))),
    ]
    if not readings or len({original for original, _ in readings}) > 1:
        return None
    original = readings[0][0]
    return Copied(original, y if original == x else x, tuple(dict.fromkeys(how for _, how in readings)))


def _agreed(
    x: int, y: int, x_to_y: Sequence[Edit] | None, y_to_x: Sequence[Edit] | None, copy: int | None
) -> list[tuple[int, str]]:  # fmt: skip
    """Both checks of the pair named the same record the copy. A check names the picture asked
    about the copy unless the pictures read the other way (the catalog picture holds the badge,
    the frame its crop took off; or the pair lines up only the other way round): so one of the
    two read it from the pictures. Read where they name framing or text or a badge added: a
    tone or a mirror says nothing of which came first."""
    if copy is None:
        return []
    original = y if copy == x else x
    names = _names(y_to_x if copy == x else x_to_y)
    if names & MARK_KINDS:
        return [(original, "with text or a badge added")]
    framing = [name for name in KINDS if name in names & FRAMING]  # (a crop first: padding is one read back)
    return [(original, framing[0])] if framing else []


def _names(edits: Sequence[Edit] | None) -> set[str]:
    return {edit.name for edit in edits or ()}


def _framing(
    x: int, y: int, x_to_y: Sequence[Edit] | None, y_to_x: Sequence[Edit] | None, mine: Looks, theirs: Looks,
    *, turned: bool,
) -> list[tuple[int, str]]:  # fmt: skip
    """Cropped or padded: each check that names a crop or padding says which picture shows more
    and by how much each side (a share of the larger); the larger's trim box says whether that
    more is photograph or plain border. A turn's fill corners read as one or the other: no reading."""
    if turned or mine.borders is None or theirs.borders is None:
        return []
    extents = [e for e in (_extent(x_to_y, source=x, result=y), _extent(y_to_x, source=y, result=x)) if e]
    readings = []
    for larger, shares in extents:
        big, small = (mine, theirs) if larger == x else (theirs, mine)
        assert big.borders is not None and small.borders is not None
        sides = [i for i, share in enumerate(shares) if share >= MIN_SIDE]
        # On any side (a cut too thin to name counts): the more is photograph, cut off the other.
        if any(share > border + SHARE_NOISE for share, border in zip(shares, big.borders, strict=True)):
            readings.append((larger, "cropped"))
        elif sides and all(small.borders[i] == 0.0 for i in sides):  # its photograph reaches each
            framed = min(shares) >= MIN_BORDER
            readings.append((y if larger == x else x, "framed" if framed else "padded"))
    return readings


def _extent(edits: Sequence[Edit] | None, *, source: int, result: int) -> tuple[int, Borders] | None:
    """Which picture shows more, and each side's share of it the other does not show, from the
    edits that turn `source` into `result`: a crop's shares are of the source, padding's of the result."""
    for edit in edits or ():
        if edit.name in FRAMING:
            shares = (float(edit.params["left"]), float(edit.params["right"]),
                      float(edit.params["top"]), float(edit.params["bottom"]))  # fmt: skip
            return (source if edit.name == "cropped" else result), shares
    return None


def _colour(x: int, y: int, mine: Looks, theirs: Looks, *, marked: bool) -> list[tuple[int, str]]:
    """The one with colour, when the other has none: colour taken away does not come back (unless
    what has colour is a badge or text added on a grey photograph)."""
    if marked:
        return []
    if mine.colour is True and theirs.colour is False:
        return [(x, "in grayscale")]
    if theirs.colour is True and mine.colour is False:
        return [(y, "in grayscale")]
    return []


def _mark(x: int, y: int, x_to_y: Sequence[Edit] | None, y_to_x: Sequence[Edit] | None) -> list[tuple[int, str]]:
    """Text or a badge named turning one into the other and not back, both checks having called
    them the same picture and neither naming a tone edit."""
    if x_to_y is None or y_to_x is None or (_names(x_to_y) | _names(y_to_x)) & TONE_KINDS:
        return []
    forth, back = bool(_names(x_to_y) & MARK_KINDS), bool(_names(y_to_x) & MARK_KINDS)
    if forth != back:
        return [(x if forth else y, "with text or a badge added")]
    return []


def _size(x: int, y: int, mine: Looks, theirs: Looks, *, framed: bool) -> list[tuple[int, str]]:
    """The larger picture, when the smaller one's size is known (its kept picture is its own
    size), neither check names a crop, padding or a turn (the two show the same part of the
    picture) and the larger is so by more than the smallest crop named."""
    if framed or mine.size is None or theirs.size is None:
        return []
    for larger, big, small in ((x, mine, theirs), (y, theirs, mine)):
        assert big.size is not None and small.size is not None
        if small.own_size and max(big.size) > max(small.size) * (1.0 + MIN_SIDE):
            return [(larger, "smaller")]
    return []


def looks_of(
    pipeline: HashPipeline, records: Iterable[tuple[int, HashRecord]], kept: Mapping[int, bytes]
) -> dict[int, Looks]:
    """Each record's `Looks` (work-file position: record), from its stored views and `kept`, its
    kept picture (by position; one made for another version of the record is not read)."""
    records = list(records)
    how = pipeline.judging
    views = stored_views([r for _, r in records], how.compact, how.raw) if isinstance(how, Verified) else []
    found = {}
    for i, (position, record) in enumerate(records):
        colour = None
        if i < len(views) and (seen := views[i]) is not None:
            chroma = float(np.percentile(np.hypot(seen.chroma[1, 0], seen.chroma[1, 1]), 99))
            colour = True if chroma >= COLOURED else False if chroma < GREY_CHROMA else None
        size = borders = None
        layout = Thumbnail.layout(kept[position]) if position in kept else None
        if layout is not None and layout[0] == record.hash:
            (height, width), (top, bottom, left, right) = layout[1], layout[2]
            size, borders = (
                (height, width),
                (left / width, (width - right) / width, top / height, (height - bottom) / height),
            )
        found[position] = Looks(colour, size, borders)
    return found
