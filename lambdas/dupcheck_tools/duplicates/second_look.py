"""The report's second look at a pair the service called the same picture: a part recoloured.

A shop that sells a product in several colours often makes the other colours' photos from one:
the same model, the same pose, only the waistband lavender instead of blue. Per query the
look-alike check (core/matching/photograph.py) compares at 64 px with centre-weighted shares, and a band
a few pixels high at the picture's top is below what it can refute without refuting copies
with a badge; the service calls such a pair a duplicate. The report is a batch job and groups
what a person then deletes, so it can afford one more look at each pair it would group, at
twice that size, from the two records' thumbnails (their 160 px working copies):

1. Alignment: the views' alignment of the pair (core/matching/alignment.py's `verify`, as the
   service found it), refined by the look-alike check's Lucas-Kanade (`photograph.align`).
2. What one edit of the whole picture explains: every edit a copy gets in one go (brightness,
   contrast, saturation, grayscale, chains of them) maps each pixel through one tint factor and
   one luma line, `a (c - L) + g L + d` on each channel c of luma L; the three are fitted to the
   pair (least squares, twice more on the pixels they explain). Each picture is predicted from
   the other and the smaller result counts, as the look-alike check does.
3. A recoloured part: the solid regions (a pixel and most of its 3x3 neighbours) more than
   CHANGED levels off that fit, a pixel of shift allowed. A copy has such regions too (a badge,
   text, a watermark), but they are new: the copy's outline of them is not an edge of the
   original. A recoloured part keeps its shape, so its outline is an edge in both pictures. The
   pair is refuted when such regions cover at least MIN_SHARE of the overlap and at least
   SHARED_OUTLINE of their outline that is an edge in either picture is one in both.
4. A part retinted, by less than CHANGED: the garment of one photo made greyer (or another hue)
   by 10-20 levels while the skin, the trousers and the background stay as they were. At one
   pixel that is a copy's JPEG noise, and at a colour edge the thumbnails' chroma (at half
   resolution) bleeds more; the mean of a WINDOW-pixel window keeps what both average out of.
   The windows' mean tints are fitted with the same one edit, and the levels each is further off
   than TINTED (from the nearest window up to SHIFT pixels away: the alignment's slack), summed
   and divided by the number of windows, measure the part no one edit of the whole picture
   explains (the smaller of the two directions): refuted at MIN_TINTED. A saturation edit scales
   every tint alike and leaves nothing. Left out: the pixels step 3 finds far off either way (a
   badge, text, a frame's border: new, not retinted) and those within NEAR_CLIP of a clip (a
   contrast edit clips a channel, and JPEG rings it back in, where no one edit holds).

Measured on the dev benchmark's catalog-wide set (docs/evaluation.md, "Catalog-wide
duplicates"): step 3, on every pair a radius-11 run called duplicate, each direction, refutes the
waistband variants (cv_0079, cv_0080 against magento_0220 and each other: 0.2-1.2% of the
overlap, 80-92% of the outline an edge in both) and no pair of copies (badges reach 1.3% with
at most 56% of the outline shared). Step 4, on the pairs a default run looks at (719 with one
copy a picture, 3,086 with three): copies at most 0.005 levels (a watermark), cv_0009 against
magento_0017 and their copies 0.085-0.22 (its stripes greyer by 10-20 levels). Neither can see
what no picture shows: cv_0027 is magento_0055's very photo (0.02% of their pixels differ by more
than 10 levels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dupcheck.core.hashing import HashPipeline
from dupcheck.core.matching.alignment import verify
from dupcheck.core.matching.arrays import largest, neighbours
from dupcheck.core.matching.photograph import align, candidate_window, off_shifted, query_colour, solid, warped_colour
from dupcheck.core.matching.policy import LOOKALIKE_SIZE
from dupcheck.core.matching.thumbnails import Thumbnail
from dupcheck.core.matching.views import Probe, Views
from dupcheck.core.pixels import luma

LOOK_SIZE = 128  # side of the compared patch: twice the look-alike check's
CHANGED = 40.0  # sRGB levels off the one-edit fit: a recolour, not a copy's JPEG or resampling
EDGE = 12.0  # levels per pixel, in the steepest channel: an edge of a picture
MIN_SHARE = 0.0015  # of the overlap: a recoloured part (the waistband: 0.2-1.2%)
SHARED_OUTLINE = 0.7  # of the changed regions' outline that is an edge, an edge in both pictures
WINDOW = 16  # side of the windows whose means the regional test compares (JPEG's chroma bleed averages out)
STEP = 2  # between the windows compared
SHIFT = 2  # pixels a window may be off its match (the alignment's slack)
TINTED = 4.0  # levels of a window's mean tint off the one-edit fit of the windows: what a copy's noise stays under
NEAR_CLIP = 20  # levels from 0 or 255 the regional test leaves out
MIN_TINTED = 0.03  # levels beyond TINTED, the mean over all windows (copies <= 0.005, cv_0009 >= 0.085)


@dataclass(frozen=True, slots=True)
class Look:
    """What the second look saw: `share`, the overlap's share in recoloured solid regions (the
    smaller of the two directions; the first's when it is below MIN_SHARE already), and
    `outline`, the share of their outline that is an edge in both pictures, of what is an edge
    in either (1 when the share is below MIN_SHARE: not measured); `tinted`, the regional test's
    levels of tint beyond TINTED no one edit of the whole picture explains (step 4)."""

    share: float
    outline: float
    tinted: float = 0.0

    @property
    def recoloured(self) -> bool:
        return (self.share >= MIN_SHARE and self.outline >= SHARED_OUTLINE) or self.tinted >= MIN_TINTED


def second_look(
    pipeline: HashPipeline, probe: Probe, candidate: Views, thumbnail: Thumbnail, distance: int
) -> Look | None:
    """The second look at a candidate the query (`probe`, made with its thumbnail) was called a
    duplicate of; None when there is nothing to look at (no alignment, too small a window)."""
    patches = aligned_patches(pipeline, probe, candidate, thumbnail, distance)
    return None if patches is None else look_at(patches)


@dataclass(frozen=True, slots=True)
class Patches:
    """The pair at LOOK_SIZE, aligned: `mine` the query's colour patch, `theirs` the candidate's
    thumbnail warped onto it ((3, LOOK_SIZE, LOOK_SIZE) sRGB levels each), `inside` where the
    warp fell inside the thumbnail, `usable` the inside pixels neither picture clips."""

    mine: np.ndarray
    theirs: np.ndarray
    inside: np.ndarray
    usable: np.ndarray


def aligned_patches(
    pipeline: HashPipeline, probe: Probe, candidate: Views, thumbnail: Thumbnail, distance: int
) -> Patches | None:
    """The two pictures at LOOK_SIZE, at the look-alike check's alignment of the pair; None
    when there is none (no alignment, too small a window, too few usable pixels)."""
    tier = pipeline.policy.tier(distance)  # type: ignore[attr-defined]
    evidence = verify(probe, [candidate], [tier])[0]
    if evidence is None or evidence.alignment is None:
        return None
    alignment = evidence.alignment
    window, resized = candidate_window(thumbnail, alignment)
    if window is None:
        return None
    # The luma `align` compares is the query's colour patch's (as the pair's colour is compared).
    patch = query_colour(probe, alignment, LOOKALIKE_SIZE)
    aligned = align(luma(np.moveaxis(patch, 0, -1), np.float32).astype(np.float64), resized, window)
    mine = query_colour(probe, alignment, LOOK_SIZE)
    theirs, inside = warped_colour(thumbnail.rgb, aligned.params, resized.shape, LOOK_SIZE)
    usable = inside & (np.maximum(mine.max(axis=0), theirs.max(axis=0)) < 250)
    usable &= np.minimum(mine.min(axis=0), theirs.min(axis=0)) > 5  # a clip turns a tint
    if usable.sum() < 50:
        return None
    return Patches(mine, theirs, inside, usable)


def look_at(patches: Patches) -> Look:
    """What the second look sees in a pair's aligned patches."""
    mine, theirs, inside, usable = patches.mine, patches.theirs, patches.inside, patches.usable
    off, edit = _off_one_edit(mine, theirs, usable)
    # What is far off either way is left out of the regional test: `theirs` from `mine` by the
    # same edit undone (a frame's border can be near one picture's colours through the edit).
    compared = usable & (off <= CHANGED)
    # Nor what is near a clip in either: a contrast or brightness edit clips a channel, and the
    # copy's JPEG rings the clipped level back 5-20 levels in, where no one edit holds.
    compared &= np.minimum(mine.min(axis=0), theirs.min(axis=0)) > NEAR_CLIP
    compared &= np.maximum(mine.max(axis=0), theirs.max(axis=0)) < 255 - NEAR_CLIP
    if min(abs(edit[0]), abs(edit[1])) >= 0.25:  # a grayscale copy's tint cannot be undone
        undone = np.array([1 / edit[0], 1 / edit[1], -edit[2] / edit[1]])
        compared &= largest(theirs - _edited(mine, undone)) <= CHANGED
    tinted = _tinted(mine, theirs, compared)
    looks: list[Look] = []
    for one, other in ((mine, theirs), (theirs, mine)):
        if looks:  # the other direction, only when the first found a part recoloured
            off, _ = _off_one_edit(one, other, usable)
        changed = solid((off > CHANGED) & usable)
        share = float(changed.sum() / max(int(inside.sum()), 1))
        if share < MIN_SHARE:  # the smaller share is smaller still: nothing recoloured (most pairs)
            return Look(share, 1.0, tinted)
        my_edges, their_edges = _edges(mine) > EDGE, _edges(theirs) > EDGE
        both, either = my_edges & their_edges, my_edges | their_edges
        outline = _grown(changed) & ~_shrunk(changed)
        looks.append(Look(share, float((both & outline).sum() / max(int((either & outline).sum()), 1)), tinted))
    return min(looks, key=lambda look: look.share)


# -- the measures ------------------------------------------------------------------------------


def _off_one_edit(mine: np.ndarray, theirs: np.ndarray, usable: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the largest channel's distance of `mine` from `theirs` through the one edit of
    the whole picture that fits best (a tint factor and a luma line), a pixel of shift allowed;
    0 where not `usable`. And that edit."""
    edit = _one_edit(theirs, mine, usable, (60.0, 30.0, 15.0))
    off = off_shifted(mine, np.clip(_edited(theirs, edit), 0, 255))
    off[~usable] = 0
    return off, edit


def _tinted(mine: np.ndarray, theirs: np.ndarray, compared: np.ndarray) -> float:
    """How far the windows' (WINDOW pixels a side, every STEP) mean tints are from what the one
    edit that fits them best makes of the other picture's, the nearest of its windows up to SHIFT
    pixels away counted (the alignment's slack: a combination of edits can leave it a pixel or two
    off, and a strong colour edge then moves a window's mean): the levels beyond TINTED, summed
    over the windows all of whose pixels are `compared` and divided by the number of all windows
    (the smaller of the two directions). A region retinted counts by its size and by how far.

    A shop's colour variant made by retinting the garment of one photo differs from it by 10-20
    levels over the garment and not at all over the skin, the trousers and the background: no one
    edit of the whole picture explains both (a saturation edit scales every tint). The pixel test
    cannot see it: 10-20 levels is a copy's JPEG noise at one pixel, and at a colour edge the
    thumbnails' chroma at half resolution bleeds more than that; a window's mean keeps what each
    pixel's noise and bleed average out of."""
    area = WINDOW * WINDOW
    size = mine.shape[-1] - WINDOW + 1  # windows a side, every pixel
    core = (slice(None), slice(SHIFT, size - SHIFT, STEP), slice(SHIFT, size - SHIFT, STEP))
    full = (_window_sums(compared.astype(np.float64)) >= area - 0.5)[core[1:]]
    if int(full.sum()) < 50:  # too few to fit an edit to: nothing to say
        return 0.0
    means = [_window_sums(picture.astype(np.float64)) / area for picture in (mine, theirs)]
    beyond = []
    for one, other in (means, means[::-1]):
        made = _tint(_edited(other, _one_edit(other[core], one[core], full, (30.0, 12.0, 6.0))))
        wanted = _tint(one[core])
        off = np.full(full.shape, np.inf)
        for dy in range(-SHIFT, SHIFT + 1):
            for dx in range(-SHIFT, SHIFT + 1):
                shifted = (slice(None), slice(SHIFT + dy, size - SHIFT + dy, STEP),
                           slice(SHIFT + dx, size - SHIFT + dx, STEP))  # fmt: skip
                np.minimum(off, largest(wanted - made[shifted]), out=off)
        beyond.append(float(np.maximum(off[full] - TINTED, 0.0).sum() / full.size))
    return min(beyond)


def _window_sums(values: np.ndarray) -> np.ndarray:
    """The sums of `values` ((..., n, n)) over each WINDOW x WINDOW window inside."""
    summed = np.pad(values, [(0, 0)] * (values.ndim - 2) + [(1, 0), (1, 0)]).cumsum(-1).cumsum(-2)
    k = WINDOW
    return summed[..., k:, k:] - summed[..., :-k, k:] - summed[..., k:, :-k] + summed[..., :-k, :-k]


def _tint(picture: np.ndarray) -> np.ndarray:
    """Each channel less the luma ((3, ...) levels): what an edit of the tint changes."""
    return picture - luma(np.moveaxis(picture, 0, -1), np.float64)


def _one_edit(theirs: np.ndarray, mine: np.ndarray, usable: np.ndarray, slacks: tuple[float, ...]) -> np.ndarray:
    """The one edit of the whole picture that makes `theirs` closest to `mine`, (a, g, d): each
    channel c of luma L becomes `a (c - L) + g L + d`, fitted by least squares over the `usable`
    pixels, again over those within each of `slacks` levels of the last fit."""
    lum = luma(np.moveaxis(theirs, 0, -1), np.float32 if theirs.dtype == np.float32 else np.float64)
    tint = theirs - lum
    # The normal equations' terms, each summed over a pixel's three channels once: a fit is then
    # nine sums over the chosen pixels. (Sums, not a matrix product: BLAS threads would contend
    # with the pool's processes.)
    t, ell, y = (part.reshape(-1, lum.size).astype(np.float64) for part in (tint, lum, mine))
    t_sum, y_sum, ell = t.sum(axis=0), y.sum(axis=0), ell[0]
    terms = np.stack([(t * t).sum(axis=0), ell * t_sum, 3 * ell * ell, t_sum, 3 * ell,
                      (t * y).sum(axis=0), ell * y_sum, y_sum])  # fmt: skip
    chosen = usable
    params = np.array([1.0, 1.0, 0.0])
    for slack in slacks:
        where = chosen.ravel()
        count = int(where.sum())
        if count < 50:
            break
        tt, tl, ll, t1, l1, ty, ly, y1 = (terms * where).sum(axis=1)
        gram = np.array([[tt, tl, t1], [tl, ll, l1], [t1, l1, 3.0 * count]]) + 1e-6 * np.eye(3)
        params = np.linalg.solve(gram, np.array([ty, ly, y1]))
        predicted = params[0] * tint + params[1] * lum + params[2]
        chosen = usable & (largest(mine - predicted) < slack)
    return params


def _edited(picture: np.ndarray, edit: np.ndarray) -> np.ndarray:
    """`picture` ((3, ...) levels) through the edit (a, g, d) of `_one_edit`."""
    lum = luma(np.moveaxis(picture, 0, -1), np.float32 if picture.dtype == np.float32 else np.float64)
    return edit[0] * (picture - lum) + edit[1] * lum + edit[2]


def _edges(rgb: np.ndarray) -> np.ndarray:
    """Per pixel, the steepest of the three channels' gradients: an edge in colour as much as in
    luma (a yellow band on skin has almost none in luma)."""
    gy, gx = np.gradient(rgb, axis=(1, 2))
    return np.hypot(gy, gx).max(axis=0)


def _grown(mask: np.ndarray) -> np.ndarray:
    return neighbours(mask) > 0


def _shrunk(mask: np.ndarray) -> np.ndarray:
    return neighbours(mask) == 9
