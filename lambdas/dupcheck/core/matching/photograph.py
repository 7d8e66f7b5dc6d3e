"""The same-photograph test: is the query this catalog picture's photograph, edited or not?

A copy keeps its photograph's fine detail, the fabric's texture and folds, hair, the exact
outline and the noise, in place, wherever an edit left the pixels: a crop, a turn, a resize and
a tone edit move or scale it as a whole, and only what is added on top (text, a badge, a frame)
hides some of it. Another photograph, however alike (the same model in the same pose, another
tee on the same mannequin, a recoloured product shot again), has its own fine detail: at the
scale of the views (24-64 px) the two agree, at 256 px they do not. So the test compares that
detail at a resolution where it exists:

1. the picture kept beside the record (thumbnails.py: 384 px) and the query, kept at up to
   policy.QUERY_DETAIL_SIDE px, are mapped onto each other by one affine map (affine.py), from
   the views' alignment, coarse to fine, at up to policy.COMPARE_SIDE px;
2. both are band-passed (policy.DETAIL_BAND: a difference of Gaussians, the detail broader
   structure leaves out), cut into tiles, and the tiles where the kept picture has detail are
   correlated; a tile where the query has far more detail than the pair typically does has
   something added on top, and is not judged. The median correlation is the evidence: copies
   keep far more than other photographs reach (policy.SAME_PHOTOGRAPH). It is first taken on
   the way, from policy.EARLY_SIDE px: a pair already unlike at a coarser side is another
   photograph, without the finer steps (most other photographs are told so);
3. the same photograph, its colours are asked whether one edit of the whole picture explains
   them (one_edit.py): if not, it is the same shot in another colour.

`SamePhotograph` is one query's test: `look(i, alignment)` tests candidate i at an alignment
the views found (judge.py asks it of candidates whose views line up: policy.looked_near,
looked_far), each alignment once; `finding(i)` is the best it found for the candidate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Protocol

import numpy as np
from PIL import Image

from dupcheck.core.limits.policy import (
    ADDED_DETAIL,
    CHROMA_SAMPLES,
    CLIPPED,
    COMPARE_SIDE,
    DETAIL,
    DETAIL_BAND,
    DETAIL_TILE,
    EARLY_ANOTHER,
    MIN_COMPARED,
    MIN_DETAIL_TILES,
    RECOLOURED,
    SAME_PHOTOGRAPH,
)
from dupcheck.core.matching.affine import Aligned, align, native_side, turn, warped_colour, widened
from dupcheck.core.matching.alignment import Alignment
from dupcheck.core.matching.one_edit import Unexplained, quantile_line, unexplained
from dupcheck.core.pictures.arrays import exp, median, tiles
from dupcheck.core.stored.thumbnails import Thumbnail
from dupcheck.core.stored.views import Probe


@dataclass(frozen=True, slots=True)
class Finding:
    """What the test found at one alignment: `shared`, the median correlation of the fine detail
    of the tiles where the kept picture has some (1: the same detail everywhere); `tiles`, how
    many were judged; `added`, the share of detailed tiles where the query has something on top;
    `side`, the compared patch's side in px; `turned`, the degrees (anticlockwise) the query is
    turned from the kept picture, mirrored back first where it was mirrored; `aligned`, the
    patches as compared, and `alignment` the start its map was refined from; and for the same
    photograph, what one edit of the whole picture leaves `unexplained` (one_edit.py)."""

    shared: float
    tiles: int
    added: float
    side: int
    turned: float
    aligned: Aligned = field(repr=False, compare=False)
    alignment: Alignment = field(repr=False, compare=False)  # where the map started: the views' or another
    unexplained: Unexplained | None = field(default=None, repr=False, compare=False)

    @property
    def recoloured(self) -> float:
        """The share of the overlap in regions of the photograph in another colour."""
        return 0.0 if self.unexplained is None else self.unexplained.recoloured

    @property
    def telling(self) -> bool:
        """Whether the pictures hold enough fine detail to tell one photograph from another."""
        return self.tiles >= MIN_DETAIL_TILES

    @property
    def same_photograph(self) -> bool:
        return self.telling and self.shared >= SAME_PHOTOGRAPH

    @property
    def another_colour(self) -> bool:
        return self.same_photograph and self.recoloured >= RECOLOURED

    @property
    def duplicate(self) -> bool:
        return self.same_photograph and not self.another_colour

    @property
    def recolour_lined_up(self) -> bool:
        """Another colour, shown by the recoloured regions' own detail lining up with the
        photograph's: nothing added on top has that detail (a region told by its outline alone,
        a flat badge over a busy scene, is not shown so)."""
        return self.another_colour and self.unexplained is not None and self.unexplained.lined_up >= RECOLOURED


class CandidateThumbnails(Protocol):
    """The candidates' thumbnails, the pictures kept beside their records (judge.py's): `has(i)`,
    whether candidate i's record keeps one (cheap: no picture decoded); `of(i)`, the picture, None
    when there is none or it cannot be read."""

    def has(self, candidate: int) -> bool: ...

    def of(self, candidate: int) -> Thumbnail | None: ...


class SamePhotograph:
    """One query's test against its candidates' thumbnails (CandidateThumbnails). Each candidate is
    looked at once per alignment; its best finding is remembered for the verdict."""

    def __init__(self, probe: Probe, kept: CandidateThumbnails) -> None:
        self.probe, self._kept = probe, kept
        self._seen: dict[tuple[int, Alignment], Finding | None] = {}
        self._best: dict[int, Finding] = {}

    def finding(self, candidate: int) -> Finding | None:
        """The best of what the test found for a candidate (another colour its regions' detail
        shows, over a duplicate, over the rest), or None when it was never looked at."""
        return self._best.get(candidate)

    def duplicate(self, candidate: int, found: Finding) -> bool:
        """Whether `found`, a look at the candidate, shows it a duplicate: the same photograph in
        its colours, unless another look showed a region in another colour by its own detail
        (`recolour_shown`)."""
        return found.duplicate and not self.recolour_shown(candidate)

    def recolour_shown(self, candidate: int) -> bool:
        """Whether any look found the candidate's photograph with regions in another colour whose
        own detail lines up with the photograph's (`Finding.recolour_lined_up`). Read at a worse
        alignment, where that detail no longer lines up, the same regions look added on top (a
        badge, a duplicate); that reading does not undo what the better one showed."""
        best = self._best.get(candidate)
        return best is not None and best.recolour_lined_up

    def kept(self, candidate: int) -> bool:
        """Whether the candidate's record keeps a picture (one that cannot be decoded is then
        looked at as one too small to compare: `look` finds nothing)."""
        return self._kept.has(candidate)

    def look(self, candidate: int, alignment: Alignment) -> Finding | None:
        """The test at one alignment (None: nothing to compare: no thumbnail, a patch too small)."""
        key = (candidate, alignment)
        if key not in self._seen:
            kept = self._kept.of(candidate)
            found = None if kept is None else examine(self.probe, kept, alignment)
            self._seen[key] = found
            best = self._best.get(candidate)
            if found is not None and (best is None or _rank(found) > _rank(best)):
                self._best[candidate] = found
        return self._seen[key]


def _rank(finding: Finding) -> tuple[bool, bool, bool, float]:
    return finding.recolour_lined_up, finding.duplicate, finding.same_photograph, finding.shared


def examine(probe: Probe, kept: Thumbnail, alignment: Alignment) -> Finding | None:
    """The test of a kept picture at the views' alignment: None when the patch is too small to
    compare (a thumbnail's small cut), else what it found."""
    picture = probe.detailed(alignment.angle)
    box = _box(probe, alignment)
    # No finer than either picture holds: a thumbnail's query, a small kept window.
    kept_side = native_side(kept, alignment)
    side = int(min(COMPARE_SIDE, max(box[2] - box[0], box[3] - box[1]), kept_side)) // 8 * 8
    if side < MIN_COMPARED:
        return None
    grey = probe.detailed_grey(alignment.angle)

    patches: dict[int, np.ndarray] = {}  # by side: the starts share one (mirrored, a view of it)

    def query_patch(n: int, mirrored: bool) -> np.ndarray:
        if n not in patches:
            patches[n] = np.asarray(grey.resize((n, n), Image.Resampling.BILINEAR, box=box), dtype=np.float64)
            patches[n].flags.writeable = False
        return patches[n][:, ::-1] if mirrored else patches[n]

    found = None
    for aligned, chosen in align(query_patch, kept, _starts(alignment), side):
        query_detail, kept_detail = band(aligned.query), band(aligned.warped)
        n = aligned.query.shape[0]
        shared, tiles, added = _shared_detail(query_detail, kept_detail, aligned.inside & ~_clipped(aligned), n)
        found = aligned, chosen, shared, tiles, added
        if n < side and tiles >= MIN_DETAIL_TILES and shared < EARLY_ANOTHER:
            break  # another photograph already: a finer look would only say so again
    if found is None:
        return None
    aligned, chosen, shared, tiles, added = found
    # The query was turned by the start's angle before its patch was cut (and mirrored after).
    within = turn(aligned, box[3] - box[1], box[2] - box[0])
    turned = within + chosen.angle if chosen.mirrored else within - chosen.angle
    side = aligned.query.shape[0]
    if tiles < MIN_DETAIL_TILES or shared < SAME_PHOTOGRAPH:
        return Finding(shared, tiles, added, side, turned, aligned, chosen)
    colour = np.asarray(Image.fromarray(picture).resize((side, side), Image.Resampling.BILINEAR, box=box))
    query_colour = np.moveaxis(colour[:, ::-1] if chosen.mirrored else colour, -1, 0).astype(np.float64)
    # A picture reduced from the photograph (a thumbnail: at most half the other's pixels, the
    # query or the catalog picture alike) mixed its colours otherwise than the other's resize
    # does, and its JPEG keeps one colour for each 2 x 2 of its pixels: the colours are compared
    # over CHROMA_SAMPLES of those each way. (At one size they share their colour samples' grid.)
    own = max(box[2] - box[0], box[3] - box[1]) * probe.detail_scale
    fewer, more = min(own, kept_side), max(own, kept_side)
    cell = math.ceil(2 * CHROMA_SAMPLES * side / fewer) if 2 * fewer * fewer <= more * more else 1
    colours = unexplained(
        query_colour, warped_colour(kept, aligned, side), aligned.inside, query_detail, kept_detail,
        faint=probe.colours_kept and kept.colours_kept, cell=cell,
    )  # fmt: skip
    return Finding(shared, tiles, added, side, turned, aligned, chosen, colours)


def whole_picture(probe: Probe, kept: Thumbnail, finding: Finding) -> Aligned | None:
    """The finding's map carried from its patch, the query's trimmed box, to the query's whole
    picture, at the side it compared: the query's uniform border, which the patch leaves out, with
    it (a watermark across a product's white backdrop). None: the patch is not a trimmed box."""
    alignment = finding.alignment
    if not alignment.query_trimmed:
        return None
    grey = probe.detailed_grey(alignment.angle)
    return widened(finding.aligned, grey, _box(probe, alignment), kept, finding.side, mirrored=alignment.mirrored)


def on_kept(probe: Probe, finding: Finding, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where points of the query's picture (`xs`, `ys`: shares of its width and height, as it
    came, unturned and unmirrored) lie on the catalog picture under the finding's map, to a
    pixel of the compared side: shares of its width and height (beyond 0 and 1 off it)."""
    alignment = finding.alignment
    left, top, right, bottom = _box(probe, alignment)
    height, width = probe.detailed(alignment.angle).shape[:2]
    # The patch was cut from the detail picture turned by the start's angle about its centre
    # (Pillow's `rotate`, anticlockwise, the same size): the points turned with it.
    theta = math.radians(alignment.angle)
    x, y = (np.asarray(xs) - 0.5) * width, (np.asarray(ys) - 0.5) * height
    x, y = x * math.cos(theta) + y * math.sin(theta) + width / 2, y * math.cos(theta) - x * math.sin(theta) + height / 2
    # The patch's [-1, 1] square, its columns the other way where the patch was mirrored.
    rows = 2 * (y - top) / (bottom - top) - 1
    columns = 2 * (x - left) / (right - left) - 1
    if alignment.mirrored:
        columns = -columns
    p = finding.aligned.params  # onto pixel centres: y = p4 + p0 u + p1 v, x = p5 + p2 u + p3 v
    resized_height, resized_width = finding.aligned.resized
    down = (p[4] + p[0] * rows + p[1] * columns + 0.5) / resized_height
    across = (p[5] + p[2] * rows + p[3] * columns + 0.5) / resized_width
    return across, down


def from_kept(probe: Probe, finding: Finding, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where points of the catalog picture (shares of its width and height) lie on the query's
    picture under the finding's map: `on_kept` the other way (the map is affine: three points
    of the query give it)."""
    across, down = on_kept(probe, finding, np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.0, 1.0]))
    to_kept = np.array([[across[1] - across[0], across[2] - across[0]], [down[1] - down[0], down[2] - down[0]]])
    points = np.stack([np.asarray(xs, dtype=float) - across[0], np.asarray(ys, dtype=float) - down[0]])
    query_x, query_y = np.linalg.solve(to_kept, points)
    return query_x, query_y


def _box(probe: Probe, alignment: Alignment) -> tuple[float, float, float, float]:
    """The query's box the views lined up (left, top, right, bottom), in its detail picture's px."""
    height, width = probe.detailed(alignment.angle).shape[:2]
    top, bottom, left, right = alignment.query_box
    return left * width, top * height, right * width, bottom * height


def _starts(alignment: Alignment) -> list[Alignment]:
    """Where the map may start: the views' window, and what the views cannot tell from it: the
    same window mirrored (a symmetric product mirrored looks the same at 32 px; its detail does
    not), and the whole view (a recoloured product can pull the views' luma to another window)."""
    start, width = alignment.cols
    mirrored = replace(alignment, mirrored=not alignment.mirrored, cols=(round(1.0 - start - width, 4), width))
    whole = replace(alignment, rows=(0.0, 1.0), cols=(0.0, 1.0))
    starts = [alignment]
    for other in (mirrored, whole):
        if other not in starts:
            starts.append(other)
    return starts


def _clipped(aligned: Aligned) -> np.ndarray:
    """The pixels clipped to black or white in either picture: a tone edit took them there (a
    brightened highlight, a darkened shadow), and their detail is gone from the query, not
    different; or the catalog picture has them there (a studio's white backdrop), with no detail
    of their own, only an outline that any photograph in the same pose shares. Both ways, whatever
    the query's tone: a query with less contrast lifts the backdrop off white, and the test would
    otherwise judge the outline's tiles for it alone."""
    gain, offset = quantile_line(aligned.query[::2, ::2], aligned.warped[::2, ::2], aligned.inside[::2, ::2])
    predicted = gain * aligned.warped + offset
    near = (predicted < CLIPPED) | (predicted > 255 - CLIPPED)
    query, kept = ((values < CLIPPED / 4) | (values > 255 - CLIPPED / 4) for values in (aligned.query, aligned.warped))
    return near | query | kept


def _shared_detail(query: np.ndarray, kept: np.ndarray, inside: np.ndarray, side: int) -> tuple[float, int, float]:
    """(median correlation, tiles judged, share of detailed tiles with something added)."""
    tile = DETAIL_TILE if side >= 128 else DETAIL_TILE // 2
    mine, theirs, covered = (tiles(values, tile) for values in (query, kept, inside))
    whole = covered.mean(axis=2) > 0.9
    my_level, their_level = mine.std(axis=2), theirs.std(axis=2)
    detailed = whole & (their_level > DETAIL)
    if not detailed.any():
        return 0.0, 0, 0.0
    ratio = my_level / np.maximum(their_level, 1e-9)
    added = detailed & (ratio > ADDED_DETAIL * float(median(ratio[detailed])))
    judged = detailed & ~added
    mine, theirs = mine - mine.mean(axis=2, keepdims=True), theirs - theirs.mean(axis=2, keepdims=True)
    products = (mine * theirs).sum(axis=2)
    norms = np.sqrt((mine * mine).sum(axis=2) * (theirs * theirs).sum(axis=2))
    correlations = (products / np.maximum(norms, 1e-9))[judged]
    shared = float(median(correlations)) if correlations.size else 0.0
    return shared, int(correlations.size), float(added.sum() / detailed.sum())


def band(values: np.ndarray) -> np.ndarray:
    """The fine detail of a square picture: the difference of two Gaussian blurs
    (policy.DETAIL_BAND), computed as one filter in the frequency domain, the picture mirrored
    at its edges first so that they add no detail of their own."""
    n = values.shape[0]
    pad = max(4, int(3 * DETAIL_BAND[1]) + 1)
    pad += (-(n + 2 * pad)) % 32 // 2  # to a multiple of 32 (or one short of it): a fast FFT length
    mirrored = np.pad(values, pad, mode="reflect")
    spectrum = np.fft.rfft2(mirrored) * _band_filter(mirrored.shape)
    return np.fft.irfft2(spectrum, s=mirrored.shape)[pad : pad + n, pad : pad + n]


@cache
def _band_filter(shape: tuple[int, int]) -> np.ndarray:
    """The difference of Gaussians' transfer function on an rfft2 grid of `shape`."""
    response = band_response(np.fft.fftfreq(shape[0]), np.fft.rfftfreq(shape[1]))
    response.flags.writeable = False
    return response


def band_response(down: np.ndarray, across: np.ndarray) -> np.ndarray:
    """The difference of Gaussians' (policy.DETAIL_BAND) response at the frequencies `down` x
    `across` (cycles a pixel). A Gaussian's is the product of one along each axis: a few values
    of `arrays.exp`, the same last digits under every CPU's kernels (numpy's `exp` over the whole
    grid is not)."""

    def gaussian(sigma: float) -> np.ndarray:
        c = 0.5 * sigma * sigma * (2 * np.pi) ** 2
        return exp(-c * down * down)[:, None] * exp(-c * across * across)[None, :]

    narrow, wide = DETAIL_BAND
    return gaussian(narrow) - gaussian(wide)
