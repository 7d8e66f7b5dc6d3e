"""What was edited between a catalog picture and a query that verification lined up with it.

Verification (alignment.py) aligns the two pictures and reports how (`Alignment`): the
window of the candidate the query covers, whether the query was mirrored or turned, and the
aligned pixels of both. Those are the edits, read back in the catalog picture's terms:

* mirrored; rotated (about N degrees: the turn verification made, plus what is left of one on
  the aligned pair, `residual_turn`);
* cropped (the share of the catalog picture cut off each side) or padded / framed (the share
  of the query that is a border the catalog picture does not have): where the middle of each
  of the query's sides falls on the catalog picture, under the same-photograph test's map (to
  a pixel), else from the aligned window and the uniform borders each picture's trimmed view
  left out; for a turned copy, the crop so too, and padding or a frame: what the query shows
  beyond the catalog picture's corners where the map puts them;
* brightness or contrast: a line through the aligned luma (the same-photograph test's one edit
  of the whole picture, fitted over the channels no clip reached, where it compared them; else
  its 256 px patches or the views), away from pixels clipped to black or white.
  Brightness scales every level (the line passes near 0), contrast spreads them about the
  picture's mean (the line crosses itself there); saturation is the colour scale beyond the one
  the luma change brings (the test's one edit of the whole picture, pixel by pixel, where it
  compared them, else the views' where the catalog picture has colour); converted to grayscale
  when the query has no colour and the catalog picture has, or none of the photograph's;
* text or a badge added: a compact patch of pixels that still differ where the rest agree
  (also on the query's border, which the views leave out), or a word's worth of pixels that
  no local edit of the kept picture explains at the test's 256 px (marks.py: a watermark's
  strokes);
* for a picture that is not the same one: the product in another colour.

How often each is named right on the benchmark, where the edit is known: docs/lab/evaluation.md,
"Naming the edits". The thresholds (policy.py) are the smallest changes those measurements tell
from noise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np

from dupcheck.core.limits.policy import (
    BORDER_PLAIN,
    BOX_MIN_WIDTH,
    BOX_SEARCH,
    COLOURED,
    COMPARE_SIDE,
    LUMA_TOLERANCE,
    MIN_BORDER,
    MIN_GAIN,
    MIN_ROTATED,
    MIN_SIDE,
    MIN_TURN_TESTED,
    OVERLAY_DENSITY,
    OVERLAY_SHARE,
    RETITLED_SHARE,
    SATURATION_COLOURED,
    SATURATION_EDIT,
    TONE_BLOCK,
    TONE_BRIGHT,
    TONE_DARK,
    TONE_LINE_KEPT,
    TONE_LINE_MIN_APART,
    TONE_LINE_MIN_PIXELS,
    TONE_LINE_MIN_RANGE,
    ranked,
)
from dupcheck.core.matching.affine import Aligned
from dupcheck.core.matching.alignment import Alignment, Evidence, residual_turn, windows_of
from dupcheck.core.matching.marks import apart, lined_up, mark_holder, named_mark, replaced_text, written
from dupcheck.core.matching.photograph import Finding, from_kept, on_kept, whole_picture
from dupcheck.core.models import Box, Edit
from dupcheck.core.pictures.arrays import regions, tiles, unit
from dupcheck.core.pictures.pixels import TRIM_MIN_FILL, TRIM_TOLERANCE, off_colour, outer_ring, ring_colour, trim_box
from dupcheck.core.stored.thumbnails import Thumbnail
from dupcheck.core.stored.views import Probe, Views, a_mark, greyish

SIDES = ("left", "right", "top", "bottom")


class Carries(StrEnum):
    """What an edit says beyond its name: its parameters, and so its model in the API
    (api/schemas.py)."""

    NOTHING = "nothing"
    DEGREES = "degrees"  # a turn, counter-clockwise positive
    SIDES = "sides"  # a share of each side: cut off (a crop) or added (padding, a frame)
    CHANGE = "change"  # a relative change of a tone
    PLACE = "place"  # where it sits and the share it covers
    SHARE = "share"  # the share of the product it changed


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of edit: what it carries, its words (`words(params)`), the edits that undo it
    (`undo(params)`; None: what it took away is no edit the service names), whether it changes
    tones only (`tone`: it says nothing of which picture came first) and whether it adds a mark
    on top (`mark`: the picture holding it is the copy)."""

    carries: Carries
    words: Callable[[Mapping[str, float | str]], str]
    undo: Callable[[Mapping[str, float | str]], list[Edit]] | None = None
    tone: bool = False
    mark: bool = False


def _tone_kind(name: str, more: str, less: str) -> Kind:
    def words(p: Mapping[str, float | str]) -> str:
        return f"{more if float(p['change']) > 0 else less} ({float(p['change']):+.0%})"

    def undo(p: Mapping[str, float | str]) -> list[Edit]:
        return [Edit(name, {"change": round(1.0 / max(1.0 + float(p["change"]), 0.01) - 1.0, 2)})]

    return Kind(Carries.CHANGE, words, undo, tone=True)


def _turn_words(p: Mapping[str, float | str]) -> str:
    degrees = float(p["degrees"])
    return f"rotated about {abs(round(degrees))}° {'anticlockwise' if degrees > 0 else 'clockwise'}"


def _crop_words(p: Mapping[str, float | str]) -> str:
    return (
        f"cropped ({', '.join(f'{round(100 * float(p[s]))}% off the {s}' for s in SIDES if float(p[s]) >= MIN_SIDE)})"
    )


def _pad_words(p: Mapping[str, float | str]) -> str:
    return f"padded ({', '.join(side for side in SIDES if float(p[side]) >= MIN_BORDER)})"


def _sides(p: Mapping[str, float | str]) -> dict[str, float]:
    return {side: float(p[side]) for side in SIDES}


# Every kind of edit the service names, by the name the API gives it: a new kind is one entry here
# (and where edits.py finds it). Read by words(), inverse(), the API's edit models and the report.
KINDS: dict[str, Kind] = {
    "mirrored": Kind(Carries.NOTHING, lambda p: "mirrored", lambda p: [Edit("mirrored")]),
    "grayscale": Kind(Carries.NOTHING, lambda p: "converted to grayscale", tone=True),
    "rotated": Kind(Carries.DEGREES, _turn_words, lambda p: [Edit("rotated", {"degrees": -float(p["degrees"])})]),
    "cropped": Kind(Carries.SIDES, _crop_words, lambda p: _border_edit(_sides(p))),
    "padded": Kind(Carries.SIDES, _pad_words, lambda p: _cropped(_sides(p))),
    "framed": Kind(Carries.SIDES, lambda p: "framed", lambda p: _cropped(_sides(p))),
    "brightness": _tone_kind("brightness", "brighter", "darker"),
    "contrast": _tone_kind("contrast", "more contrast", "less contrast"),
    "saturation": _tone_kind("saturation", "more saturated", "less saturated"),
    "overlay": Kind(Carries.PLACE, lambda p: f"text or a badge added ({p['where']})", mark=True),
    "recoloured": Kind(Carries.SHARE, lambda p: "in another colour"),
    # A mark on the product where the shop says it makes another product (verdicts.under_marks).
    "printed": Kind(Carries.PLACE, lambda p: f"another print on the same photo ({p['where']})"),
    # The same where the pictures cannot tell a print from an overlay (no plain backdrop around it).
    "marked": Kind(Carries.PLACE, lambda p: f"a mark on the product: a print or an overlay ({p['where']})", mark=True),
    # Text that replaced text at the same place: another product, whatever the shop's `marks`.
    "retitled": Kind(Carries.PLACE, lambda p: f"another title in the same template ({p['where']})"),
}
FRAMING = frozenset(name for name, kind in KINDS.items() if kind.carries is Carries.SIDES)
TONE_KINDS = frozenset(name for name, kind in KINDS.items() if kind.tone)
MARK_KINDS = frozenset(name for name, kind in KINDS.items() if kind.mark)


def kinds_carrying(carries: Carries) -> tuple[str, ...]:
    """The names of the kinds that carry `carries`, in KINDS' order."""
    return tuple(name for name, kind in KINDS.items() if kind.carries is carries)


def name_edits(
    evidence: Evidence,
    candidate: Views,
    query_box: tuple[float, float, float, float],
    finding: Finding | None = None,
    *,
    same_picture: bool,
    probe: Probe | None = None,
    kept: Thumbnail | None = None,
) -> tuple[Edit, ...]:
    """The edits that turn the catalog picture (`candidate`, its stored views) into the query,
    as far as the evidence's alignment shows them, and what the same-photograph test compared
    (`finding`: text or a badge is told at its resolution, another colour by its share).
    `query_box`: the query's uniform border per side (`border_shares`). `same_picture`: the
    verdict is duplicate; otherwise only what sets the picture apart is named (another colour)
    beside the geometry of the shot. `probe` (the query as verified) and `kept` (the catalog
    picture's kept picture), when given, show text or a badge on the border the views leave out."""
    alignment = evidence.alignment
    if alignment is None:
        return ()
    # The test may have lined the pictures up from a start the views could not tell from theirs
    # (the same window mirrored): its start says how they lie. Otherwise the views' window, which
    # they chose for its framing, says it (the test may refine its map from the whole view).
    placed = alignment
    if finding is not None and finding.alignment.mirrored != alignment.mirrored:
        placed = finding.alignment
    their = _catalog_borders(candidate, kept) if placed.candidate_trimmed else (0.0, 0.0, 0.0, 0.0)
    found: list[Edit] = []
    if placed.mirrored:
        found.append(Edit("mirrored"))
    # The test measures a turn at 256 px; the views, at 64 px, less closely.
    turned = finding.turned if finding is not None else -residual_turn(alignment) - alignment.angle
    rotated = abs(turned) >= (MIN_TURN_TESTED if finding is not None else MIN_ROTATED)
    if rotated:
        found.append(Edit("rotated", {"degrees": round(turned, 1)}))
        if probe is not None and finding is not None:
            found.extend(_cropped(_mapped_sides(probe, finding)) + _border_edit(_mapped_borders(probe, finding)))
        elif probe is not None:
            found.extend(_turned_framing(placed, their, probe, turned))
    else:
        sides = _mapped_sides(probe, finding) if probe is not None and finding is not None else None
        found.extend(_framing(placed, their, query_box, sides))
    if not same_picture:
        if finding is not None and finding.another_colour:
            found.append(Edit("recoloured", {"share": round(finding.recoloured, 3)}))
        return tuple(found)
    found.extend(_tone(alignment, finding, grey=not evidence.colour_seen))
    overlay = None
    if not rotated:  # a turned copy's corners differ in the views: its fill, not an overlay
        overlay = _views_overlay(alignment, finding)
        if overlay is None and finding is not None and finding.unexplained is not None:
            overlay = _overlay(finding.unexplained.added_cells, _Frame.of(finding.alignment), dense=False)
        if overlay is None and probe is not None and kept is not None and alignment.query_trimmed:
            # The border is what the views left out: their trimmed box leaves out a badge beside
            # the product too, which the query's trim kept.
            top, bottom, left, right = alignment.query_box
            seen = (left, 1.0 - right, top, 1.0 - bottom)
            overlay = _border_overlay(probe.picture(), seen, kept, _placement(placed, their, seen), placed.mirrored)
    if overlay is None and finding is not None:  # (a turn's fill lies outside the kept picture there)
        whole = whole_picture(probe, kept, finding) if probe is not None and kept is not None else None
        frame = _Frame.of(finding.alignment) if whole is None else _Frame(mirrored=finding.alignment.mirrored)
        overlay = _marked(finding.aligned if whole is None else whole, frame)
    if overlay is not None:
        found.append(_placed(overlay, probe, finding, _placement(placed, their, query_box), placed.mirrored))
    return tuple(found)


def words(edit: Edit) -> str:
    """One edit in a merchandiser's words."""
    return KINDS[edit.name].words(edit.params)


def inverse(edits: Sequence[Edit]) -> tuple[Edit, ...] | None:
    """The edits that turn the query back into the catalog picture, from those that turn the
    catalog picture into the query (what a check the other way round would name): mirrored stays
    mirrored, a turn turns back, a crop reads as padding and padding as a crop by the same shares
    (each a share of the larger picture), a tone change by the inverse factor. None when one of
    them has no inverse to name (grayscale, text or a badge added, another colour): what was
    removed is not an edit the service names."""
    found: list[Edit] = []
    for edit in edits:
        undo = KINDS[edit.name].undo
        if undo is None:
            return None
        found.extend(undo(edit.params))
    return tuple(found)


def catalog_mark(
    edits: Sequence[Edit], own: Callable[[], Thumbnail | None], theirs: Thumbnail | None, mine: Sequence[float],
    *, seen_apart: bool,
) -> Edit | None:  # fmt: skip
    """The text or badge the catalog picture holds, not the query, named where it lies on the
    catalog picture; None where the query holds it or the pictures do not tell. Read from the
    two pictures as kept (`own()`, the query's, made when needed; `theirs`, the catalog's) with
    marks.mark_holder, where `edits` name nothing but a mirror and an overlay, and the two are
    kept at one size: they then line up pixel for pixel. Where no overlay is named, only where
    the views still differ somewhere (`seen_apart`) or the two trim boxes do (`mine`: the query's
    uniform border per side, `border_shares`): a badge that hides a plain backdrop, or that the
    query's trim leaves out, is no mark on the query. Anything else (a crop, a turn, a tone edit
    that changes every pixel) and a mark named is left on the query, as named."""
    names = {edit.name for edit in edits}
    if theirs is None or names - {"overlay", "mirrored"}:
        return None
    if "overlay" not in names and not seen_apart:
        theirs_borders = border_shares(theirs.rgb, theirs.box)
        if "mirrored" in names:  # the query's left is the catalog picture's right
            mine = (mine[1], mine[0], mine[2], mine[3])
        if max(abs(a - b) for a, b in zip(mine, theirs_borders, strict=True)) <= MIN_SIDE / 2:
            return None
    kept = own()
    if kept is None or kept.rgb.shape != theirs.rgb.shape:
        return None
    held = mark_holder(kept.rgb[:, ::-1] if "mirrored" in names else kept.rgb, theirs.rgb)
    if held is None or held[0]:
        return None
    named = next((edit for edit in edits if edit.name == "overlay"), None)
    if named is not None:  # where the check found it, on the catalog picture's side of a mirror
        where = _across_a_mirror(str(named.params["where"])) if "mirrored" in names else named.params["where"]
        # The same mark, the boxes of the two pictures the other way round.
        return Edit("overlay", {**named.params, "where": where}, named.original_box, named.box)
    ys, xs = np.nonzero(held[1])
    height, width = shape = held[1].shape
    # The kept pictures line up pixel for pixel: the same box on the query, mirrored back where it was.
    box, on_query = (_rounded(_Frame(mirrored=flip).box(ys, xs, shape)) for flip in (False, "mirrored" in names))
    return replace(_overlay_at((ys + 0.5) / height, (xs + 0.5) / width, len(ys) / held[1].size, box),
                   original_box=on_query)  # fmt: skip


def catalog_written(
    edits: Sequence[Edit], finding: Finding | None, probe: Probe | None, kept: Thumbnail | None
) -> Edit | None:
    """Text or a watermark written over the catalog picture and not over the query: `_marked`
    with the two pictures' roles swapped under the test's map (the catalog picture's pixels
    fitted by local edits of the query's), over the query's whole picture where the test
    compared a trimmed box. Read, as `catalog_mark` reads a badge, only where `edits` name
    nothing but a mirror (a crop, a turn or a tone edit is the query's own: a clip leaves it no
    detail to explain the catalog picture's with), and where the test found nothing added whose
    outline the query holds (a badge's fill explains none of the photograph it hides). Its
    `box` on the catalog picture (which holds it), `original_box` where that lies on the query;
    None where nothing is written over the catalog picture alone."""
    if finding is None or probe is None or kept is None or {edit.name for edit in edits} - {"mirrored"}:
        return None
    left = finding.unexplained
    if left is not None and left.added > left.on_kept:
        return None
    whole = whole_picture(probe, kept, finding)
    aligned = finding.aligned if whole is None else whole
    frame = _Frame.of(finding.alignment) if whole is None else _Frame(mirrored=finding.alignment.mirrored)
    mark = _marked(replace(aligned, query=aligned.warped, warped=aligned.query), frame)
    if mark is None:
        return None
    placed = _placed(mark, probe, finding, None, finding.alignment.mirrored)
    if placed.original_box is None:
        return None
    mirrored = finding.alignment.mirrored  # (its place named on the catalog picture's side of a mirror)
    where = _across_a_mirror(str(placed.params["where"])) if mirrored else placed.params["where"]
    return replace(placed, params={**placed.params, "where": where}, box=placed.original_box, original_box=placed.box)


def _across_a_mirror(where: str) -> str:
    """A place named on one picture ("top left") as it lies on its mirror image ("top right")."""
    return " ".join({"left": "right", "right": "left"}.get(word, word) for word in where.split())


def another_title(edits: Sequence[Edit], own: Callable[[], Thumbnail | None], theirs: Thumbnail | None) -> bool:
    """Whether the text or badge `edits` name is text that replaced text (marks.replaced_text):
    read, as `catalog_mark` reads which picture holds a mark, from the two pictures as kept, where
    the edits name nothing but an overlay, a mirror and a tone (a title's change moves the tone
    fitted over a flat cover; a tone moves no pixel) and the two, kept at one size, line up pixel
    for pixel (marks.lined_up: a few px of padding, too few to be named, shift every edge)."""
    names = {edit.name for edit in edits}
    if theirs is None or "overlay" not in names or names - {"overlay", "mirrored"} - TONE_KINDS:
        return False
    kept = own()
    if kept is None or kept.rgb.shape != theirs.rgb.shape:
        return False
    mine = kept.rgb[:, ::-1] if "mirrored" in names else kept.rgb
    return replaced_text(mine, theirs.rgb) and lined_up(mine, theirs.rgb)


def one_template(mine: Views, theirs: Views) -> bool:
    """Whether two pictures' whole views can be covers of one template: their luma cells agree
    within LUMA_TOLERANCE but for RETITLED_SHARE of them (a title's). A screen for `retitled`,
    whose kept pictures cost a read."""
    return float((np.abs(mine.luma[0] - theirs.luma[0]) > LUMA_TOLERANCE).mean()) <= RETITLED_SHARE


def retitled(own: Thumbnail | None, theirs: Thumbnail | None) -> Edit | None:
    """Another title in the same template read from the two pictures as kept, where the views
    found no photograph in common (a flat cover's title is its only detail, so the views and
    the test compare two titles and see two pictures): kept at one size, they differ in under
    RETITLED_SHARE of the picture, by text that replaced text (marks.replaced_text), lined up
    read either way round (marks.lined_up reads the detail on one picture: one pair, one
    answer), by the text itself where nothing else tells (at worst a pair judged different is
    called similar). Named where the pixels that differ lie: the same box on both pictures,
    which line up pixel for pixel. None otherwise."""
    if own is None or theirs is None or own.rgb.shape != theirs.rgb.shape:
        return None
    mine, other = own.rgb, theirs.rgb
    differs = apart(mine, other)
    share = float(differs.mean())
    if share > RETITLED_SHARE or not replaced_text(mine, other):
        return None
    if not (lined_up(mine, other, by_text=True) or lined_up(other, mine, by_text=True)):
        return None
    ys, xs = np.nonzero(differs)
    height, width = differs.shape
    box = _rounded(_Frame().box(ys, xs, differs.shape))
    return replace(_overlay_at((ys + 0.5) / height, (xs + 0.5) / width, share, box), name="retitled",
                   original_box=box)  # fmt: skip


def catalog_is_the_copy(
    edits: Sequence[Edit],
    mine: Sequence[float],
    theirs: Sequence[float],
    outer: Callable[[], Sequence[float]] | None = None,
) -> bool:
    """Whether the framing `edits` name (turning the catalog picture into the query) is read
    better the other way round, from each picture's own uniform border (`mine`, the query's;
    `theirs`, the catalog picture's: left, right, top, bottom, `border_shares`; `outer()`, the
    outermost of the catalog picture's borders, its trim's first pass, read only where a crop
    cut nothing but border):

    * padding or a frame the query shows past its own border on a side: what it shows more is
      photograph, which no edit adds: the catalog picture is a crop of the query;
    * a crop that took the catalog picture's outermost border and no more (within half the least
      crop named), a padding's width at least, on every side cut, where on each of them the query's
      photograph reaches its own edge or the catalog picture has another border within (a frame
      or padding in a colour of its own around a shot's own margin): the catalog picture is the
      query padded or framed. A crop of a photograph does not stop at a change of border colour
      on every side it cuts; one that does took off a frame.

    Within one border on both sides (a margin cut from a photo on white, or padding added in the
    same white), the pictures cannot tell: read as the query's edit, as before. A turned copy's
    framing is read past its corners, not its trim box's border: read as named."""
    if any(edit.name == "rotated" for edit in edits):
        return False
    for edit in edits:
        shares = {side: float(edit.params[side]) for side in SIDES} if edit.name in FRAMING else {}
        if edit.name in ("padded", "framed"):
            return any(shares[side] >= MIN_BORDER and shares[side] > border + MIN_SIDE
                       for side, border in zip(SIDES, mine, strict=True))  # fmt: skip
        if edit.name == "cropped":
            # Each side cut took the catalog picture's outermost border, a padding's width, and no more.
            cut = [k for k, side in enumerate(SIDES) if shares[side] >= MIN_SIDE]
            if not cut or any(theirs[k] < MIN_SIDE for k in cut):  # cut into the photograph somewhere
                return False
            outermost = theirs if outer is None else outer()
            return all(
                abs(shares[SIDES[k]] - outermost[k]) <= MIN_SIDE / 2
                and ((mine[k] < MIN_SIDE / 2 and outermost[k] >= MIN_BORDER)
                     or (theirs[k] - outermost[k] > MIN_SIDE / 2 and outermost[k] >= MIN_SIDE))
                for k in cut
            )  # fmt: skip
    return False


def catalog_lost_colour(evidence: Evidence) -> bool:
    """Whether the catalog picture is a grey copy of the query: none of the colour the query
    shows where the two agree in luma (the photograph's, not a badge's) is left on it. No edit
    puts lost colour back, so the picture without it is the copy."""
    alignment = evidence.alignment
    if alignment is None or not evidence.colour_seen:
        return False
    if not greyish(np.hypot(*alignment.their_colour).reshape(1, -1))[0]:
        return False
    mine = np.hypot(*alignment.my_colour)[~alignment.luma_off]
    return mine.size > 0 and float(np.percentile(mine, 99)) >= COLOURED


def as_grey_copy(edits: Sequence[Edit], reverse: bool) -> tuple[tuple[Edit, ...], bool] | None:
    """`edits` (`reverse`: turning the query into the catalog picture) read for a catalog picture
    that is a grey copy of the query (`catalog_lost_colour`): as turning the query into it,
    converted to grayscale. None where they read the query as the copy some other way (a crop,
    padding, a turn, text or a badge on it): each picture then lost something, as named. The
    tone is left out: fitted from one grey channel to three coloured ones, the colour's spread
    reads as contrast no one made (the same pair asked the other way names none)."""
    toneless = [edit for edit in edits if edit.name not in TONE_KINDS]
    if reverse:
        return (*toneless, Edit("grayscale")), True
    if {edit.name for edit in toneless} - {"mirrored"}:
        return None
    back = inverse(toneless)
    return None if back is None else ((*back, Edit("grayscale")), True)


def summary(edits: Sequence[Edit] | None, *, same_picture: bool, of_catalog: bool = False) -> str | None:
    """One line for a person: "cropped (12% off the left), mirrored and brighter (+20%)"; for the
    same picture with nothing named, "no visible edit"; None when there is nothing to say.
    `of_catalog`: the edits turn the query into the catalog picture, which is the copy (of the same
    picture) or, for a similar one, another product made from it."""
    if edits:
        listed = _listed([words(edit) for edit in edits])
        if not of_catalog:
            return listed
        return f"the catalog picture is {'a copy of yours' if same_picture else 'made from yours'}: {listed}"
    return "no visible edit" if same_picture and edits is not None else None


def _listed(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def border_shares(rgb: np.ndarray, box: tuple[int, int, int, int] | None = None) -> tuple[float, float, float, float]:
    """(left, right, top, bottom): the share of a picture's width or height that its uniform
    border takes each side (`box`: its `trim_box`, when known)."""
    height, width = rgb.shape[:2]
    top, bottom, left, right = trim_box(rgb) if box is None else box
    return left / width, (width - right) / width, top / height, (height - bottom) / height


def outer_border(kept: Thumbnail) -> tuple[float, float, float, float]:
    """`border_shares` of a kept picture's outermost uniform border alone (its trim's first
    pass): a frame or padding in a colour of its own, without the shot's own margin within."""
    return border_shares(kept.rgb, trim_box(kept.rgb, passes=1))


# -- geometry -------------------------------------------------------------------------------------


def _catalog_borders(candidate: Views, kept: Thumbnail | None) -> tuple[float, float, float, float]:
    """The catalog picture's uniform border per side (left, right, top, bottom): the trim box its
    kept picture was stored with, the one its trimmed view was cut at; for a record without one,
    estimated from its views (`_candidate_borders`): a soft backdrop (a studio's gradient, a
    vignette) has no edge at which a 32 px view finds again where the trim stopped."""
    return _candidate_borders(candidate) if kept is None else border_shares(kept.rgb, kept.box)


def _candidate_borders(candidate: Views) -> tuple[float, float, float, float]:
    """The catalog picture's uniform border per side, estimated from its views: where its
    trimmed view lies on its whole view. First the trim of the 32 px whole view, then each edge
    moved (by up to 1/16 of a side, in 1/128 steps) to where the whole view's window correlates
    best with the trimmed view."""
    whole, trimmed = candidate.luma[0], candidate.luma[1]
    left, right, top, bottom = _coarse_borders(whole, np.repeat(np.repeat(candidate.chroma[0], 2, axis=1), 2, axis=2))
    target = unit(windows_of(trimmed, [(0.0, 1.0)], [(0.0, 1.0)])[0, 0])
    rows, cols = (top, 1.0 - top - bottom), (left, 1.0 - left - right)
    for _ in range(2):  # rows with the columns fixed, then columns with the rows fixed
        rows = _best_window(whole, target, rows, cols, along_rows=True)
        cols = _best_window(whole, target, rows, cols, along_rows=False)
    return cols[0], 1.0 - cols[0] - cols[1], rows[0], 1.0 - rows[0] - rows[1]


def _coarse_borders(luma: np.ndarray, chroma: np.ndarray) -> tuple[float, float, float, float]:
    """(left, right, top, bottom) of a view's uniform border, as the working copy's trim finds it
    (pixels off the outer ring's median luma or colour; rows and columns with fewer of them
    than TRIM_MIN_FILL of the fullest cut), to a pixel of the view."""
    ring_luma, ring_chroma = outer_ring(luma), outer_ring(np.moveaxis(chroma, 0, -1))
    level, tint = np.median(ring_luma), np.median(ring_chroma, axis=0)
    off = np.abs(luma - level) > TRIM_TOLERANCE / 2
    off |= np.hypot(*(chroma - tint[:, None, None])) > TRIM_TOLERANCE / 2
    if np.mean(np.abs(ring_luma - level) <= TRIM_TOLERANCE / 2) < 0.5 or not off.any():
        return 0.0, 0.0, 0.0, 0.0  # no uniform border
    rows, cols = off.sum(axis=1), off.sum(axis=0)
    kept_rows = np.flatnonzero(rows > TRIM_MIN_FILL * rows.max())
    kept_cols = np.flatnonzero(cols > TRIM_MIN_FILL * cols.max())
    size_y, size_x = luma.shape
    return (kept_cols[0] / size_x, (size_x - 1 - kept_cols[-1]) / size_x,
            kept_rows[0] / size_y, (size_y - 1 - kept_rows[-1]) / size_y)  # fmt: skip


def _best_window(
    grid: np.ndarray, target: np.ndarray, rows: tuple[float, float], cols: tuple[float, float], *, along_rows: bool
) -> tuple[float, float]:
    start, width = rows if along_rows else cols
    options = [
        (s, e - s)
        for s in np.clip(start + BOX_SEARCH, 0.0, 1.0)
        for e in np.clip(start + width + BOX_SEARCH, 0.0, 1.0)
        if e - s >= BOX_MIN_WIDTH
    ]
    samples = windows_of(grid, options, [cols])[:, 0] if along_rows else windows_of(grid, [rows], options)[0]
    scores = (unit(samples) * target).sum(axis=(1, 2))
    best = options[int(np.argmax(ranked(scores)))]
    return float(best[0]), float(best[1])


def _placement(
    alignment: Alignment, their: Sequence[float], query_box: Sequence[float]
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Where the query's whole picture lies on the catalog picture's: (left, right), (top,
    bottom) as shares of its width and height (beyond 0 and 1 where the query shows more).
    `their`: the catalog picture's border the aligned view leaves out (`_catalog_borders`)."""
    mine = tuple(query_box) if alignment.query_trimmed else (0.0, 0.0, 0.0, 0.0)
    if alignment.mirrored:  # the query's left border lies on the catalog picture's right
        mine = (mine[1], mine[0], mine[2], mine[3])
    spans = []
    for (start, width), (low, high), (q_low, q_high) in (
        (alignment.cols, their[:2], mine[:2]),
        (alignment.rows, their[2:], mine[2:]),
    ):
        # The aligned window on the catalog picture's whole width, then the query's whole
        # picture: its border added back at the scale the window gives it.
        inner = 1.0 - low - high
        a, b = low + start * inner, low + (start + width) * inner
        scale = (b - a) / max(1.0 - q_low - q_high, 1e-6)
        spans.append((a - q_low * scale, b + q_high * scale))
    return spans[0], spans[1]


def _framing(
    alignment: Alignment, their: Sequence[float], query_box: Sequence[float], mapped: dict[str, float] | None = None
) -> list[Edit]:
    """Cropped or padded: where the query's whole picture lies on the catalog picture's, as the
    same-photograph test's map places it (`mapped`, `_mapped_sides`), or else the views' window."""
    if mapped is None:
        (x0, x1), (y0, y1) = _placement(alignment, their, query_box)
        mapped = {"left": x0, "right": 1.0 - x1, "top": y0, "bottom": 1.0 - y1}
    across, down = 1.0 - mapped["left"] - mapped["right"], 1.0 - mapped["top"] - mapped["bottom"]
    span = {"left": across, "right": across, "top": down, "bottom": down}  # the query's, in the picture's
    padded = {side: round(min(1.0, max(0.0, -share) / span[side]), 3) for side, share in mapped.items()}
    return _cropped(mapped) + _border_edit(padded)


def _mapped_sides(probe: Probe, finding: Finding) -> dict[str, float]:
    """Where the middle of each of the query's sides lies on the catalog picture, under the
    same-photograph test's map (to a pixel of its 256 px; the views' window, refined on a
    lattice at 24 px, is over 3 points out on one big crop in five): the share of the picture
    beyond it (cut off), or, negative, the share the query shows more (padding, a frame), by
    side of the catalog picture. At a side's middle a turn within the frame cuts off no more
    than 1 - cos(turn) (0.4% at 5 degrees) of the picture, so a turned copy's crop reads as an
    upright one's (its borders do not: a turn with `expand` shows more at every side,
    `_mapped_borders`)."""
    # The middles of the query's sides on the probe's picture (a probe inside the query's
    # padding, `Probe.inside_border`, is a part of it: the sides are the query's, not the part's).
    left, right, top, bottom = probe.outer
    xs = (np.array([0.0, 1.0, 0.5, 0.5]) - left) / (1.0 - left - right)
    ys = (np.array([0.5, 0.5, 0.0, 1.0]) - top) / (1.0 - top - bottom)
    across, down = on_kept(probe, finding, xs, ys)
    sideways = (float(across[0]), float(across[1]))  # (the query's right side is the left one mirrored)
    upright = (float(down[2]), float(down[3]))
    return {"left": min(sideways), "right": 1.0 - max(sideways), "top": min(upright), "bottom": 1.0 - max(upright)}


def _mapped_borders(probe: Probe, finding: Finding) -> dict[str, float]:
    """Padding or a frame on a turned copy: the share of the query, each side, beyond the catalog
    picture's corners where the same-photograph test's map puts them. A turn with `expand` just
    fits the corners, one within the frame cuts them off: what the query shows beyond them is a
    border added before the turn or after it. (On the query's sides, not a probe's inside its
    padding, `Probe.inside_border`: the catalog picture may reach into what that trim took, a
    night sky on black padding.)"""
    xs, ys = from_kept(probe, finding, np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.0, 0.0, 1.0, 1.0]))
    left, right, top, bottom = probe.outer
    xs, ys = left + xs * (1.0 - left - right), top + ys * (1.0 - top - bottom)
    beyond = (float(xs.min()), 1.0 - float(xs.max()), float(ys.min()), 1.0 - float(ys.max()))
    return {side: round(min(1.0, max(0.0, share)), 3) for side, share in zip(SIDES, beyond, strict=True)}


def _cropped(sides: dict[str, float]) -> list[Edit]:
    """Cropped, from each side's share cut off, when one is cut by MIN_SIDE or more."""
    cut = {side: round(min(1.0, max(0.0, share)), 3) for side, share in sides.items()}
    return [Edit("cropped", cut)] if max(cut.values()) >= MIN_SIDE else []


def _turned_framing(alignment: Alignment, their: Sequence[float], probe: Probe, turned: float) -> list[Edit]:
    """Padding or a frame on a turned copy the test did not compare (`_mapped_borders` where it
    did): the share of the query, each side, beyond the catalog picture's footprint turned as the
    query is (`turned` degrees). The views lined the query up
    turned back by `alignment.angle` (none: upright), and say where the catalog picture lies on
    it there (`_placement`, from the query's trimmed view within the box the picture held before
    that turn): a rectangle whose corners, turned by the whole turn about its centre (its centre
    turned back with the query), span what a turn alone makes of the picture (a turn with
    `expand` just fits them, one within the frame cuts them off). What the query shows beyond
    them is a border added before the turn or after it (of the whole query, for a probe inside
    its padding: `Probe.on_query`). (The crop: `_mapped_sides`; a turn's cut corners are not one.)"""
    query = probe.at(alignment.angle)
    (top, bottom, left, right), (inner_top, inner_bottom, inner_left, inner_right) = query.whole, query.trimmed
    width, height = right - left, bottom - top
    borders = ((inner_left - left) / width, (right - inner_right) / width,
               (inner_top - top) / height, (bottom - inner_bottom) / height)  # fmt: skip
    (x0, x1), (y0, y1) = _placement(alignment, their, borders)
    # The catalog picture's corners as shares of the box the views saw, then in pixels of the
    # picture turned back, from its centre.
    us = np.array([-x0, 1.0 - x0]) / (x1 - x0)
    if alignment.mirrored:  # the view was the turned picture mirrored
        us = 1.0 - us
    vs = np.array([-y0, 1.0 - y0]) / (y1 - y0)
    picture_height, picture_width = probe.picture().shape[:2]
    xs, ys = np.meshgrid((left + us * width - 0.5) * picture_width, (top + vs * height - 0.5) * picture_height)
    centre = _turn(np.array([xs.mean()]), np.array([ys.mean()]), alignment.angle)
    query_x, query_y = _turn(xs - xs.mean(), ys - ys.mean(), -turned)
    query_x, query_y = query_x + centre[0], query_y + centre[1]
    beyond = probe.on_query((
        max(0.0, float(query_x.min()) / picture_width + 0.5),
        max(0.0, 0.5 - float(query_x.max()) / picture_width),
        max(0.0, float(query_y.min()) / picture_height + 0.5),
        max(0.0, 0.5 - float(query_y.max()) / picture_height),
    ))  # fmt: skip
    return _border_edit({side: round(min(1.0, share), 3) for side, share in zip(SIDES, beyond, strict=True)})


def _turn(xs: np.ndarray, ys: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """Where points of the query turned by `degrees` (as `Probe.at` turns it; pixels from the
    centre, y down) lie on the query itself."""
    theta = np.radians(degrees)
    return xs * np.cos(theta) - ys * np.sin(theta), xs * np.sin(theta) + ys * np.cos(theta)


def _border_edit(padded: dict[str, float]) -> list[Edit]:
    """Padding (a border on some sides) or a frame (all round), from each side's share."""
    if max(padded.values()) < MIN_BORDER:
        return []
    return [Edit("framed" if min(padded.values()) >= MIN_BORDER else "padded", padded)]


# -- tone -----------------------------------------------------------------------------------------


def _tone_line(theirs: np.ndarray, mine: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """The tone curve as a line, mine = gain * theirs + offset, through matching quantiles of the
    two pictures' luma over the pixels that agree (`same`: not an overlay, not fill) and are
    neither black nor white in the catalog picture (a plain background would take most
    quantiles). An edit of brightness or contrast keeps every pixel's rank, so matching quantiles
    need no pixel-exact alignment (a least-squares fit shrinks with every pixel of misalignment, a
    ratio of spreads with every bit of blur). Quantiles the edit pushed near black or white are
    left out, and the line is Theil-Sen's (the median of the slopes between them), which a few
    half-clipped quantiles do not tilt. 1, 0 when too few are left."""
    kept_pixels = same & (theirs > TONE_DARK) & (theirs < TONE_BRIGHT)
    if kept_pixels.sum() < TONE_LINE_MIN_PIXELS:
        return 1.0, 0.0
    points = np.linspace(5, 95, 19)
    x, y = np.percentile(theirs[kept_pixels], points), np.percentile(mine[kept_pixels], points)
    kept = (y > TONE_LINE_KEPT[0]) & (y < TONE_LINE_KEPT[1])
    x, y = x[kept], y[kept]
    if len(x) < 4 or float(x.max() - x.min()) < TONE_LINE_MIN_RANGE:
        return 1.0, 0.0
    i, j = np.triu_indices(len(x), 1)
    apart = x[j] - x[i] > TONE_LINE_MIN_APART
    if not apart.any():
        return 1.0, 0.0
    gain = float(np.median((y[j] - y[i])[apart] / (x[j] - x[i])[apart]))
    return gain, float(np.median(y - gain * x))


def _luma_line(alignment: Alignment, finding: Finding | None) -> tuple[float, float]:
    """The tone line where the same-photograph test compared the pictures: its one edit of the
    whole picture (one_edit.py, in cells of a few pixels, fitted over the channels no clip
    reached: a saturation boost that clips a red's red moves its luma, which a line through luma
    alone reads as less contrast). Where the test did not fit one, at up to 256 px, lined up to a
    pixel, both averaged over blocks alike (the two were resampled from different sizes, and the
    quantiles of the sharper one spread wider: a contrast edit no one made). Without the test, on
    the views, where a product's edges blend with its backdrop and brightening that whitens the
    backdrop reads as half of what it is."""
    if finding is None:
        return _tone_line(alignment.theirs, alignment.mine, ~alignment.luma_off)
    if finding.unexplained is not None and finding.unexplained.tone is not None:
        return finding.unexplained.tone
    aligned = finding.aligned
    block = max(1, round(TONE_BLOCK * aligned.query.shape[0] / COMPARE_SIDE))
    theirs, mine, inside = (tiles(values, block) for values in (aligned.warped, aligned.query, aligned.inside))
    return _tone_line(theirs.mean(axis=2), mine.mean(axis=2), np.all(inside, axis=2))


def _tone(alignment: Alignment, finding: Finding | None, *, grey: bool) -> list[Edit]:
    """Brightness or contrast, saturation or grayscale."""
    gain, offset = _luma_line(alignment, finding)
    edits = []
    if abs(gain - 1.0) >= MIN_GAIN:
        # The level the edit leaves where it was: black for brightness (every level scaled), the
        # picture's mean for contrast (levels spread about it, as editors do); the nearer names it.
        pivot = offset / (1.0 - gain)
        name = "brightness" if pivot < float(alignment.theirs.mean()) / 2 else "contrast"
        edits.append(Edit(name, {"change": round(gain - 1.0, 2)}))
    elif abs(offset) >= 255 * MIN_GAIN / 2:  # the same slope, all levels shifted
        edits.append(Edit("brightness", {"change": round(offset / max(float(alignment.theirs.mean()), 1.0), 2)}))
    # Measured where the query lies on the catalog picture. A grey copy lost whatever colour the
    # picture had: colour anywhere (its 99th percentile, as a query's own is judged grey) tells,
    # and a product on white is mostly backdrop. A saturation edit is a ratio of colours, taken
    # where the catalog picture has colour (the backdrop's grey has none to scale).
    chroma = np.hypot(*alignment.their_colour)
    if grey:
        return [*edits, Edit("grayscale")] if float(np.percentile(chroma, 99)) >= COLOURED else edits
    # Where the test compared the pictures, its one edit's tint factor (pixel by pixel, clipped
    # channels left out: brightened, a red's red stops at 255 and its colour falls short of the
    # scale), as the tone line; otherwise on the views, where a least-squares scale shrinks with
    # every pixel they are out of line (a turned copy's).
    fitted = finding.unexplained.saturation if finding is not None and finding.unexplained is not None else None
    if fitted is not None:
        relative = fitted
    else:
        coloured = chroma >= COLOURED
        if coloured.mean() < SATURATION_COLOURED:
            return edits
        theirs_ab, mine_ab = alignment.their_colour[:, coloured], alignment.my_colour[:, coloured]
        scale = float((mine_ab * theirs_ab).sum() / max(float((theirs_ab * theirs_ab).sum()), 1e-6))
        relative = scale / max(gain, 1e-6)  # brightness and contrast scale a*b* as they scale luma
    if not SATURATION_EDIT[0] <= relative <= SATURATION_EDIT[1]:
        change = round(relative - 1.0, 2)
        # None of the photograph's colour left (the colour the views saw was a badge's): grey.
        edits.append(Edit("grayscale") if change == -1.0 else Edit("saturation", {"change": change}))
    return edits


# -- overlays -------------------------------------------------------------------------------------


def _views_overlay(alignment: Alignment, finding: Finding | None) -> Edit | None:
    """Text or a badge where the views differ in a compact patch (`_overlay`), unless the
    same-photograph test compared the pictures pixel by pixel and one edit of the whole picture
    left nothing added on top: then what the views saw differ is theirs (at 24 px: a highlight a
    brightening clipped, a crop's resampled edge, a strip of padding they lined up a pixel off)."""
    if finding is not None and finding.unexplained is not None and not finding.unexplained.added_cells.any():
        return None
    return _overlay(alignment.luma_off | alignment.colour_off, _Frame.of(alignment))


def _overlay(differs: np.ndarray, frame: _Frame, *, dense: bool = True) -> Edit | None:
    """Text or a badge: the largest patch of differing pixels (8-connected), when it is big and
    (`dense`: the views' pixels, not the same-photograph test's regions, which are that already)
    dense enough not to be the last pixel of misalignment along edges. `frame`: where `differs`
    lies on the query's picture."""
    found = regions(differs)
    if not found:
        return None
    ys, xs = found[0][:, 0], found[0][:, 1]
    size = differs.shape[0]
    height, width = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    if len(ys) / differs.size < OVERLAY_SHARE or (dense and len(ys) / (height * width) < OVERLAY_DENSITY):
        return None
    if min(height, width) < 2:  # a line along an edge: the seam of padding or a crop, resampled
        return None
    return _overlay_at(ys / size, xs / size, len(ys) / differs.size, frame.box(ys, xs, differs.shape))


def _border_overlay(
    query: np.ndarray,
    query_box: Sequence[float],
    kept: Thumbnail,
    placement: tuple[tuple[float, float], tuple[float, float]],
    mirrored: bool,
) -> Edit | None:
    """Text or a badge on the query's uniform border, which its trimmed view (all the views
    align) leaves out: the largest dense, compact patch off the border's colour there, when the
    catalog picture is plain where that patch lies on it, in another colour (or does not reach
    there: a border added)."""
    height, width = query.shape[:2]
    left, right = round(query_box[0] * width), width - round(query_box[1] * width)
    top, bottom = round(query_box[2] * height), height - round(query_box[3] * height)
    off = off_colour(query, ring_colour(query)[0])
    off[top:bottom, left:right] = False
    found = regions(off)
    if not found or not a_mark(found[0], off.shape):  # (not a layer of border: a frame's inner backdrop)
        return None
    ys, xs = found[0][:, 0], found[0][:, 1]
    if len(ys) < OVERLAY_DENSITY * (np.ptp(ys) + 1) * (np.ptp(xs) + 1):
        return None
    # The patch's pixels on the catalog picture (its kept picture), as the alignment places them.
    (x0, x1), (y0, y1) = placement
    u, v = (xs + 0.5) / width, (ys + 0.5) / height
    x, y = x0 + (1.0 - u if mirrored else u) * (x1 - x0), y0 + v * (y1 - y0)
    kept_height, kept_width = kept.rgb.shape[:2]
    on = (x >= 0) & (x < 1) & (y >= 0) & (y < 1)
    there = kept.rgb[(y[on] * kept_height).astype(int), (x[on] * kept_width).astype(int)].astype(np.float64)
    plain = np.abs(there - ring_colour(kept.rgb)[0]).max(axis=-1) <= TRIM_TOLERANCE
    plain &= np.abs(query[ys[on], xs[on]].astype(np.float64) - there).max(axis=-1) > TRIM_TOLERANCE
    if plain.sum() + (~on).sum() < BORDER_PLAIN * len(ys):
        return None  # the catalog picture shows something there too: the photograph's own
    return _overlay_at(ys / height, xs / width, len(ys) / off.size, _Frame().box(ys, xs, off.shape))


def _marked(aligned: Aligned, frame: _Frame) -> Edit | None:
    """Text or a watermark: a group of pixels written over the photograph (marks.py), too faint
    or thin for the 64 px cells to differ, over MARK_SHARE of the compared patch or shaped as a
    word (`marks.named_mark`; the query's whole picture where its patch was a trimmed box: a
    watermark often lies on the backdrop). `frame`: where the patch lies on the query's picture."""
    mask = written(aligned)
    found = named_mark(mask)
    if found is None:
        return None
    size = mask.shape[0]
    ys, xs = found[:, 0] + 0.5, found[:, 1] + 0.5
    box = frame.box(found[:, 0], found[:, 1], mask.shape)
    return _overlay_at(ys / size, (size - xs if frame.mirrored else xs) / size, len(ys) / mask.size, box)


def _overlay_at(ys: np.ndarray, xs: np.ndarray, share: float, box: Box) -> Edit:
    """An overlay named by where its pixels lie (shares of the picture's height and width), and
    its `box` on the query's picture."""
    row = ("top", "", "bottom")[min(2, int(3 * ys.mean()))]
    col = ("left", "", "right")[min(2, int(3 * xs.mean()))]
    where = f"{row} {col}".strip() or "centre"
    return Edit("overlay", {"where": where, "share": round(share, 3)}, box=box)


@dataclass(frozen=True, slots=True)
class _Frame:
    """Where a patch lies on the picture it was cut from: `place` (left, top, right, bottom
    shares), its columns running the other way where it was `mirrored`."""

    place: Box = (0.0, 0.0, 1.0, 1.0)
    mirrored: bool = False

    @classmethod
    def of(cls, alignment: Alignment) -> _Frame:
        """The query's view an alignment lined up (and the test's patch, cut from the same box)."""
        top, bottom, left, right = alignment.query_box
        return cls((left, top, right, bottom), alignment.mirrored)

    def box(self, ys: np.ndarray, xs: np.ndarray, shape: tuple[int, ...]) -> Box:
        """The box round a patch's pixels (rows `ys`, columns `xs` of a patch of `shape`) on the picture."""
        height, width = shape[:2]
        u0, u1 = float(xs.min()) / width, float(xs.max() + 1) / width
        if self.mirrored:
            u0, u1 = 1.0 - u1, 1.0 - u0
        v0, v1 = float(ys.min()) / height, float(ys.max() + 1) / height
        left, top, right, bottom = self.place
        across, down = right - left, bottom - top
        return left + u0 * across, top + v0 * down, left + u1 * across, top + v1 * down


def _placed(
    overlay: Edit, probe: Probe | None, finding: Finding | None,
    placement: tuple[tuple[float, float], tuple[float, float]] | None, mirrored: bool,
) -> Edit:  # fmt: skip
    """The overlay with its box on the query's whole picture (a probe `inside_border` is a part
    of it) and, as `original_box`, where that box lies on the catalog picture: under the
    same-photograph test's map where it ran (`finding`), else the views' `placement` (`_placement`;
    None only beside a finding). None where the box lies beyond the catalog picture (on a border
    the query added)."""
    if overlay.box is None:
        return overlay
    left, top, right, bottom = overlay.box
    xs, ys = np.array([left, right, left, right]), np.array([top, top, bottom, bottom])
    if finding is not None and probe is not None:
        across, down = on_kept(probe, finding, xs, ys)
    else:
        assert placement is not None
        (x0, x1), (y0, y1) = placement
        across, down = x0 + (1.0 - xs if mirrored else xs) * (x1 - x0), y0 + ys * (y1 - y0)
    original = _rounded((float(across.min()), float(down.min()), float(across.max()), float(down.max())))
    beyond = original[0] >= original[2] or original[1] >= original[3]
    outer = probe.outer if probe is not None else (0.0, 0.0, 0.0, 0.0)
    wide, high = 1.0 - outer[0] - outer[1], 1.0 - outer[2] - outer[3]
    on_query = (outer[0] + left * wide, outer[2] + top * high, outer[0] + right * wide, outer[2] + bottom * high)
    return replace(overlay, box=_rounded(on_query), original_box=None if beyond else original)


def _rounded(box: Box) -> Box:
    """A box within its picture, to a thousandth of a side."""
    left, top, right, bottom = (round(min(1.0, max(0.0, value)), 3) for value in box)
    return left, top, right, bottom
