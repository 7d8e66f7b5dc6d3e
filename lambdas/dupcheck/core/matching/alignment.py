"""Aligned verification: is a candidate the same picture as the query, whatever was edited?

Global hashes find candidates, but cannot tell a 12% crop of a picture from another picture with
the same layout, nor a red shirt from the same shirt in blue. Verification aligns the query with
a few candidates and counts what still differs (docs/lab/evaluation.md, "verification"):

* every record stores two small views of its picture, the whole one and the border-trimmed one
  (views.py), and the query's are made the same way, at each angle it is turned by;
* alignment: the query's views (mirrored or not) are compared with windows of the candidate's
  views (any crop down to 72% of a side, at any offset), first at 8x8, which is cheap enough to
  screen every candidate the index returned; the most alike are refined twice at 24x24 around
  their best window and judged; when the structure still fails to line up, the query is turned
  a few degrees;
* at the best alignment, luma gets a gain and an offset (brightness, contrast) and colour one
  scale (saturation; none at all for a grayscale query), then the pictures are compared pixel by
  pixel, each pixel allowed a one-pixel shift. A copy leaves almost nothing different, a colour
  variant leaves the product, a different picture most of it. Pixels count less towards the
  borders, where badges, frames and rotation fill are. Colour is also compared the other way
  round, over the candidate's product only: a part recoloured in a sibling product (a
  waistband) can be a pixel high, where the query's pixels find a match next to it but the
  candidate's do not;
* and their layouts are compared: the signs of the aligned pictures' lowest DCT frequencies (a
  pHash of the aligned pair). Resampling a crop or a turn leaves a few pixels off but keeps the
  layout; another product on the same model keeps most pixels but moves its low frequencies.

What is left different is the `Evidence`; a `Target` (a tier of policy.py, and the look-alike
check of photograph.py) says whether it is the same picture. Every limit is policy.py's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cache, lru_cache
from typing import Protocol

import numpy as np
from numpy.lib.stride_tricks import as_strided

from dupcheck.core.limits.policy import (
    BACKGROUND_TOLERANCE,
    BRIGHTENING_MIN_SIMILARITY,
    BRIGHTENINGS,
    CHROMA_GRID,
    CLIPPED_BLACK,
    CLIPPED_WHITE,
    COARSE,
    COLOUR_TOLERANCE,
    FINE,
    LAYOUT_FREQUENCIES,
    LUMA_GRID,
    LUMA_TOLERANCE,
    MAX_ANGLE,
    MAX_SATURATION,
    MIN_SATURATION,
    MIN_STEP,
    OFFSET_STEP,
    PLAIN_STD,
    PROMISE_MIN_TURN,
    REFINE_MIN,
    REFINE_STEPS,
    ROTATED_CANDIDATES,
    ROTATION_COLOUR,
    ROTATION_LOSS,
    ROTATION_MIN_SIMILARITY,
    ROTATION_STEPS,
    TOGETHER_MAX,
    TURN_GAIN,
    TURN_PROMISE,
    TURN_SCAN,
    TURN_SPREAD,
    TURNED_MAX_LAYOUT,
    VIEWS,
    WIDTHS,
    ranked,
)
from dupcheck.core.pictures.arrays import (
    centre_weight,
    halve,
    median,
    neighbourhood,
    odd_medians,
    padded,
    sampler,
    samplers,
    shifts,
    unit,
)
from dupcheck.core.pictures.pixels import bright_srgb, brightened_ab, low_frequencies, outer_ring
from dupcheck.core.stored.views import (
    PART_SIDES,
    WHOLE,
    Box,
    Probe,
    QueryViews,
    Views,
    coarse_views,
    greyish,
    part_box,
    query_views,
)


def windows_of(
    grid: np.ndarray, rows: Sequence[tuple[float, float]], cols: Sequence[tuple[float, float]], side: int = FINE
) -> np.ndarray:
    """(len(rows), len(cols), side, side): each window (start, width shares of each axis) of a
    2-D grid, resampled as verification samples them."""
    row_samplers, col_samplers = samplers(grid.shape[0], side, rows), samplers(grid.shape[1], side, cols)
    return (row_samplers @ grid)[:, None] @ np.swapaxes(col_samplers, -1, -2)[None]


@cache
def _windows() -> tuple[tuple[float, float], ...]:
    """(start, width) along one axis, for the coarse search."""
    out: list[tuple[float, float]] = []
    for width in WIDTHS:
        steps = max(1, round((1 - width) / OFFSET_STEP) + 1)
        out.extend((round(float(s), 4), width) for s in np.linspace(0, 1 - width, steps))
    return tuple(out)


@cache
def _coarse_sampler() -> np.ndarray:
    """(windows, COARSE, 16): each coarse window of a 16x16 grid, sampled to COARSE."""
    return np.stack([sampler(LUMA_GRID // 2, COARSE, s, w) for s, w in _windows()])


@dataclass(frozen=True, slots=True)
class Alignment:
    """Where and how the query lines up with the candidate: what a finer look starts from
    (photograph.py) and what edits.py names edits from.

    The query turned by `angle` degrees, counter-clockwise (`Probe.turned`), its view
    `query_box` (the whole picture or the trimmed one: top, bottom, left, right as shares of the
    turned picture's sides), mirrored or not, against a window of one of the candidate's views
    (`candidate_view`: 0 the whole picture, 1 the border-trimmed one; `rows`, `cols`: the
    window's start and width as shares of that view's height and width, in the candidate's
    orientation: a crop of 10% off the left is cols (0.1, 0.9)). `query_trimmed`: the query's
    trimmed view lined up. `mine`, `theirs`: the aligned luma (FINE, FINE) of the query and of
    the candidate, and `my_colour`, `their_colour` their a*, b* (2, FINE, FINE), before any fit;
    `luma_off`, `colour_off`: the pixels that still differ after the fits. (The arrays are left
    out of comparisons and hashing: an alignment is a key of the look-alike check's cache.)
    """

    query_box: Box
    mirrored: bool
    angle: float
    candidate_view: int
    rows: tuple[float, float]
    cols: tuple[float, float]
    query_trimmed: bool
    mine: np.ndarray = field(repr=False, compare=False)
    theirs: np.ndarray = field(repr=False, compare=False)
    my_colour: np.ndarray = field(repr=False, compare=False)
    their_colour: np.ndarray = field(repr=False, compare=False)
    luma_off: np.ndarray = field(repr=False, compare=False)
    colour_off: np.ndarray = field(repr=False, compare=False)

    @property
    def candidate_trimmed(self) -> bool:
        return bool(self.candidate_view)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What is left different after aligning a candidate with the query.

    `similarity`: luma correlation at the best alignment (1 = identical structure);
    `luma_off`, `colour_off`: centre-weighted share of pixels that still differ in luma (after
    a gain and an offset) and in colour (after one saturation scale);
    `layout_off`: low-frequency DCT signs (of LAYOUT_BITS) that differ at the alignment;
    `colour_seen`: False for a grayscale query against a coloured candidate, where colour_off
    says nothing;
    `colour_missing`: centre-weighted share of the candidate's product (away from its background
    and its outline) whose colour the query has nowhere within a pixel: a recoloured part;
    `alignment`: where and how the pictures line up (None for evidence made up by hand).
    """

    similarity: float
    luma_off: float
    colour_off: float
    layout_off: int = 0
    colour_seen: bool = True
    colour_missing: float = 0.0
    alignment: Alignment | None = field(default=None, compare=False, repr=False)


class Target(Protocol):
    """What a candidate must pass: a policy.Tier (its views alone), or the views and the
    same-photograph test (judge.py's `Tested`, `judges_detail`)."""

    def passes(self, evidence: Evidence) -> bool: ...

    @property
    def judges_detail(self) -> bool:
        """Whether the photograph's fine detail decides (then a turn that passes is the answer)."""
        ...

    def open_on_colour(self, evidence: Evidence) -> bool:
        """Whether the evidence's colour can decide `passes` (everything else would pass)."""
        ...

    @property
    def found_photograph(self) -> bool:
        """Whether a look has found the candidate's photograph, in any colour: where the pair
        lines up is then known, and only its colour is in question."""
        ...

    @property
    def max_colour_off(self) -> float: ...


@cache
def _centre_weight() -> np.ndarray:
    """`centre_weight(FINE)` in float32, as the aligned pixels are."""
    return centre_weight(FINE).astype(np.float32)


def _tolerant_residual(query: np.ndarray, fitted: np.ndarray) -> np.ndarray:
    """Per pixel, the smallest distance between `query` and a one-pixel shift of `fitted`.

    Both (n, channels, 24, 24); returns (n, 24, 24): each pixel's channels summed in order (as
    `.sum(axis=1)` does) and the least of its nine sums, either way below (the same numbers). A
    few pictures (a turned candidate's judgement) take the nine shifts as one strided view, in
    one set of array operations: one at a time, their few dozen small calls were a tenth of a
    judgement. Many (the upright judgement, the brightened colours: up to 4 factors of a dozen
    candidates) take them one at a time: nine times the arrays at once no longer fit the cache,
    and cost 2-4x more (measured: equal at 4 pictures of 2 channels)."""
    wider = padded(fitted)
    if len(query) * query.shape[1] <= TOGETHER_MAX:
        strides = wider.strides
        shifted = as_strided(wider, (*wider.shape[:2], 3, 3, FINE, FINE), (*strides, *strides[2:]), writeable=False)
        diff = query[:, :, None, None] - shifted
        squared = diff * diff
        distance = squared[:, 0].copy()
        for channel in range(1, squared.shape[1]):
            distance += squared[:, channel]
        best = distance.reshape(len(distance), 9, FINE, FINE).min(axis=1).astype(np.float32, copy=False)
        return np.sqrt(best)
    best = np.full(query.shape[:1] + query.shape[2:], np.inf, dtype=np.float32)
    for shifted in shifts(wider):
        diff = query - shifted
        squared = diff * diff
        distance = squared[:, 0].copy()
        for channel in range(1, squared.shape[1]):
            distance += squared[:, channel]
        np.minimum(best, distance, out=best)
    return np.sqrt(best)


def _window_correlations(
    rows: np.ndarray,
    cols: np.ndarray,
    grids: np.ndarray,
    queries: np.ndarray,
    side: int,
    windows: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Correlation of each query with every window (row window a, column window b) of a grid.

    `rows` (..., A, side, n) and `cols` (..., B, side, n) sample windows of `grids` (..., n, n);
    `queries` (..., Q, side, side) have zero mean and unit norm; leading axes broadcast. Returns
    (..., A, B, Q). A window is rows[a] @ grid @ cols[b].T; its dot product, sum and energy come
    from small products of rows[a] @ grid, so the windows themselves are never built.
    `windows`: what `_window_norms` gives for the same rows, cols and grids, when the caller
    kept it (the same grids compared with another query).
    """
    sampled, norms = _window_norms(rows, cols, grids, side) if windows is None else windows
    n_cols, n_queries, size = cols.shape[-3], queries.shape[-3], grids.shape[-1]
    projected = queries[..., :, None, :, :] @ cols[..., None, :, :, :]  # (..., Q, B, side, n)
    flat_projected = projected.reshape(*projected.shape[:-4], n_queries * n_cols, side * size)
    dots = _by_rows(sampled.reshape(*sampled.shape[:-2], side * size), flat_projected)
    dots = np.swapaxes(dots.reshape(*dots.shape[:-1], n_queries, n_cols), -1, -2)  # (..., A, B, Q)
    return dots / norms[..., None]


def _window_norms(rows: np.ndarray, cols: np.ndarray, grids: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """The grids' side of `_window_correlations`, which no query changes: the grids' rows each
    row window samples (..., A, side, n), and each window's norm once its mean is taken off
    (..., A, B). (Two thirds of the work: a candidate turned at several angles needs it once.)"""
    size = grids.shape[-1]
    sampled = rows @ grids[..., None, :, :]  # (..., A, side, n)
    # The queries have zero mean, so a window's mean drops out of the dot product, not its norm.
    gram = (np.swapaxes(sampled, -1, -2) @ sampled).reshape(*sampled.shape[:-2], size * size)
    energy = _by_rows(gram, (np.swapaxes(cols, -1, -2) @ cols).reshape(*cols.shape[:-2], size * size))
    total = rows.sum(axis=-2) @ grids @ np.swapaxes(cols.sum(axis=-2), -1, -2)
    spread = energy - total * total / (side * side)
    return sampled, np.sqrt(np.maximum(spread, 1e-6))


def _by_rows(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """left (..., m, k) @ right (..., n, k).T. When `right` is shared by every grid (the coarse
    search), as one matrix product rather than one per grid: 30% less time for 32 candidates."""
    if right.ndim == 2:
        return (left.reshape(-1, left.shape[-1]) @ right.T).reshape(*left.shape[:-1], right.shape[0])
    return left @ np.swapaxes(right, -1, -2)


def _coarse_scores(
    candidates: np.ndarray, query: QueryViews, windows: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """Every query view against every coarse window of every candidate view.

    `candidates`: (n, views, 32, 32) luma; returns (n, views, windows, windows, query views).
    `windows`: `_coarse_windows(candidates)`, when the caller kept it."""
    coarse = _coarse_sampler()
    return _window_correlations(coarse, coarse, halve(candidates), query.coarse, COARSE, windows)


def _coarse_windows(candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The candidates' side of `_coarse_scores` (`_window_norms`), for several queries."""
    coarse = _coarse_sampler()
    return _window_norms(coarse, coarse, halve(candidates), COARSE)


@lru_cache(maxsize=16384)  # windows come from a fixed lattice, and so do their neighbours
def _refinements(start: float, width: float, step: float) -> tuple[tuple[float, float], ...]:
    """A window and its 4 neighbours: shifted by `step`, or 1.5 `step` wider or narrower."""
    out = []
    for s, w in (
        (start, width),
        (start - step, width),
        (start + step, width),
        (start + 0.75 * step, width - 1.5 * step),
        (start - 0.75 * step, width + 1.5 * step),
    ):
        w = min(w, 1.0)
        s = min(max(s, 0.0), 1.0 - w)
        out.append((round(s, 4), round(w, 4)))
    return tuple(out)


@lru_cache(maxsize=16384)
def _refinement_samplers(start: float, width: float, step: float) -> np.ndarray:
    """(5, FINE, LUMA_GRID): the samplers of `_refinements(start, width, step)`."""
    return np.stack([sampler(LUMA_GRID, FINE, *window) for window in _refinements(start, width, step)])


def _best_windows(scores: np.ndarray) -> list[tuple[int, ...]]:
    """Per candidate, the index (candidate view, y window, x window, query view) of its best
    coarse score. A tie (within RANK_STEP) goes to the candidate's trimmed view, then the
    query's trimmed view, upright before mirrored (the query's views: whole, trimmed, then both
    mirrored): the trimmed views hold the product at the most samples, where the whole view adds
    a border no edit is read from; then to the first window."""
    cviews, views = scores.shape[1], scores.shape[-1]
    view = np.arange(views)
    place = (1 - view // VIEWS) * VIEWS + view % VIEWS  # higher: preferred
    prefer = np.arange(cviews)[:, None, None, None] * views + place
    key = ranked(scores) * (cviews * views) + prefer  # the score first, then the views' place
    flat = key.reshape(len(scores), -1).argmax(axis=1)
    return [tuple(int(k) for k in np.unravel_index(int(i), scores.shape[1:])) for i in flat]


def _judge_aligned(
    queries: Sequence[QueryViews],
    candidates: list[Views],
    scores: np.ndarray,
    colour_matters: Callable[[int, Evidence], bool] | None = None,
) -> tuple[list[Evidence], dict[int, _Unbrightened]]:
    """Refine each candidate's best coarse window at FINE, then measure what differs there.

    `queries`: the query's views every candidate is judged against (one), or each candidate's
    own (one a candidate: the turning judges several candidates together, each with the query
    turned by its own angle). Each candidate's numbers are its own whoever it is judged with.
    A brighter query's colours are also compared with each candidate's brightened (see
    BRIGHTENINGS), the costliest step of a judgement: only for the candidates whose evidence
    `colour_matters` (its index, its evidence before brightening; None: all). The others' come
    back as they are, and, by index, what `_brightened` needs to brighten them when asked."""
    windows = _windows()
    best = _best_windows(scores)  # (cview, wy, wx, view)
    cviews, views = np.array([b[0] for b in best]), np.array([b[3] for b in best])
    each = list(queries) if len(queries) == len(candidates) else [queries[0]] * len(candidates)

    def query_side(name: str) -> np.ndarray:
        """The query view each candidate lined up with best, of the `QueryViews` array `name`."""
        if len(queries) == 1:
            return getattr(queries[0], name)[views]
        return np.stack([getattr(query, name)[view] for query, view in zip(each, views, strict=True)])

    mine, mine_unit, my_colour, grey = (query_side(name) for name in ("fine", "fine_unit", "chroma", "grey"))
    lumas = np.stack([c.luma[v] for c, v in zip(candidates, cviews, strict=True)])
    chromas = np.stack([c.chroma[v] for c, v in zip(candidates, cviews, strict=True)])
    y_windows, x_windows = [windows[b[1]] for b in best], [windows[b[2]] for b in best]
    # Refining costs most of the time: only for candidates alike enough at 8x8 to matter.
    promising = [i for i, (s, b) in enumerate(zip(scores, best, strict=True)) if s[b] >= REFINE_MIN]
    for step in REFINE_STEPS if promising else ():
        ys = [_refinements(*y_windows[i], step) for i in promising]
        xs = [_refinements(*x_windows[i], step) for i in promising]
        rows = np.stack([_refinement_samplers(*y_windows[i], step) for i in promising])
        cols = np.stack([_refinement_samplers(*x_windows[i], step) for i in promising])
        targets = mine_unit[promising][:, None]
        refined = _window_correlations(rows, cols, lumas[promising], targets, FINE)[..., 0]
        picks = ranked(refined.reshape(len(promising), -1)).argmax(axis=1)
        for i, options_y, options_x, pick in zip(promising, ys, xs, picks, strict=True):
            y_windows[i], x_windows[i] = options_y[pick // len(options_x)], options_x[pick % len(options_x)]
    rows = np.stack([sampler(LUMA_GRID, FINE, *y) for y in y_windows])
    cols = np.stack([sampler(LUMA_GRID, FINE, *x) for x in x_windows])
    theirs = rows @ lumas @ np.swapaxes(cols, -1, -2)
    rows = np.stack([sampler(CHROMA_GRID, FINE, *y) for y in y_windows])[:, None]
    cols = np.stack([sampler(CHROMA_GRID, FINE, *x) for x in x_windows])[:, None]
    their_colour = rows @ chromas @ np.swapaxes(cols, -1, -2)
    similarity = (unit(theirs) * mine_unit).sum(axis=(1, 2))
    # A plain picture (a colour swatch, a placeholder) has no structure to correlate: two plain
    # pictures are alike when their levels are, and their luma is compared without a fit.
    plain = theirs.std(axis=(1, 2)) < PLAIN_STD
    if plain.any():  # (the query's side and the levels only then: most candidates have structure)
        plain &= mine.std(axis=(1, 2)) < PLAIN_STD
        same_level = np.abs(theirs.mean(axis=(1, 2)) - mine.mean(axis=(1, 2))) <= LUMA_TOLERANCE
        similarity = np.where(plain, same_level.astype(np.float32), similarity)

    # Luma: the least-squares gain and offset (brightness, contrast), then what still differs.
    their_mean, my_mean = theirs.mean(axis=(1, 2), keepdims=True), mine.mean(axis=(1, 2), keepdims=True)
    spread = ((theirs - their_mean) ** 2).sum(axis=(1, 2), keepdims=True)
    gain = ((theirs - their_mean) * (mine - my_mean)).sum(axis=(1, 2), keepdims=True) / np.maximum(spread, 1e-6)
    predicted = np.where(plain[:, None, None], theirs, (theirs - their_mean) * gain + my_mean)
    luma_residual = _tolerant_residual(mine[:, None], predicted[:, None])
    # Brightening clips highlights to white (darkening, shadows to black): not a difference.
    clipped = ((mine >= CLIPPED_WHITE[0]) & (predicted >= CLIPPED_WHITE[1])) | (
        (mine <= CLIPPED_BLACK[0]) & (predicted <= CLIPPED_BLACK[1])
    )
    luma_residual[clipped] = 0.0

    # Colour: one saturation scale (none for a grayscale query), then what still differs.
    energy = (their_colour * their_colour).sum(axis=(1, 2, 3))
    scale = (my_colour * their_colour).sum(axis=(1, 2, 3)) / np.maximum(energy, 1e-6)
    scale = np.where(grey, 0.0, np.clip(scale, MIN_SATURATION, MAX_SATURATION))
    fitted_colour = their_colour * scale[:, None, None, None].astype(np.float32)
    colour_residual = _tolerant_residual(my_colour, fitted_colour)
    # The other way round: colours of the candidate's product that the query lacks. A part
    # recoloured in a sibling product (a waistband) can be a pixel high here, where the query's
    # own pixels find their match in the skin or the fabric next to it; the candidate's do not.
    # Only over the product: a badge or a watermark usually covers the background.
    missing = _tolerant_residual(fitted_colour, my_colour) > COLOUR_TOLERANCE
    whole_lumas, whole_chromas = np.stack([c.luma[0] for c in candidates]), np.stack([c.chroma[0] for c in candidates])
    product = _product(theirs, their_colour, whole_lumas, whole_chromas)
    missing &= product

    weight = _centre_weight()
    luma_differs, colour_differs = luma_residual > LUMA_TOLERANCE, colour_residual > COLOUR_TOLERANCE
    luma_off = (luma_differs * weight).sum(axis=(1, 2))
    colour_off = (colour_differs * weight).sum(axis=(1, 2))
    colour_missing = (missing * weight).sum(axis=(1, 2))
    layout_off = (_layout(mine) != _layout(predicted)).sum(axis=1)
    # A grayscale query says nothing of a coloured candidate's colour (a black hoodie is not its
    # red twin); against a candidate without colour either, the colours were compared: both none.
    their_chroma = np.hypot(their_colour[:, 0], their_colour[:, 1]).reshape(len(candidates), -1)
    seen = ~grey | greyish(their_chroma)

    def evidence(i: int) -> Evidence:
        alignment = Alignment(
            query_box=each[i].trimmed if views[i] % 2 else each[i].whole, mirrored=bool(views[i] >= 2),
            angle=each[i].angle, candidate_view=int(cviews[i]), rows=y_windows[i], cols=x_windows[i],
            query_trimmed=bool(views[i] % 2), mine=mine[i], theirs=theirs[i], my_colour=my_colour[i],
            their_colour=their_colour[i], luma_off=luma_differs[i], colour_off=colour_differs[i],
        )  # fmt: skip
        return Evidence(
            float(similarity[i]), float(luma_off[i]), float(colour_off[i]), int(layout_off[i]), bool(seen[i]),
            float(colour_missing[i]), alignment,
        )  # fmt: skip

    # Brightening clips the saturated channel of bright colours, which turns their hue: no
    # saturation scale explains that. A query brighter than the candidate is also compared with
    # the candidate's colours brightened by each of BRIGHTENINGS (and clipped), and the closest
    # counts when it is closer than the plain fit.
    brighter = (my_mean > their_mean).reshape(-1) & ~grey
    tried = brighter & ((colour_off > 0) | (colour_missing > 0)) & (similarity >= BRIGHTENING_MIN_SIMILARITY)
    tried &= bool(BRIGHTENINGS)
    later = np.zeros_like(tried)
    if colour_matters is not None:
        for k in np.flatnonzero(tried):
            later[k] = not colour_matters(int(k), evidence(int(k)))
        tried &= ~later
    arrays = (theirs, their_colour, my_colour, product, colour_off, colour_missing, colour_differs)
    pending = {
        int(k): _Unbrightened(evidence(int(k)), tuple(a[k : k + 1].copy() for a in arrays))
        for k in np.flatnonzero(later)
    }
    if tried.any():
        _brighten(tried, *arrays)
    return [evidence(i) for i in range(len(candidates))], pending


@dataclass(frozen=True, slots=True)
class _Unbrightened:
    """A candidate's evidence left unbrightened by `_judge_aligned`, and its own rows of
    `_brighten`'s arguments (theirs, their colour, my colour, product, colour off, colour
    missing, colour differs)."""

    plain: Evidence
    rows: tuple[np.ndarray, ...]


def _brightened(left: Sequence[_Unbrightened]) -> list[Evidence]:
    """Each evidence of `left` as `_brighten` would have left it in `_judge_aligned`, in one pass."""
    arrays = [np.concatenate(rows) for rows in zip(*(item.rows for item in left), strict=True)]
    *_, colour_off, colour_missing, colour_differs = arrays
    _brighten(np.ones(len(left), dtype=bool), *arrays)
    out = []
    for k, item in enumerate(left):
        assert item.plain.alignment is not None
        out.append(replace(
            item.plain, colour_off=float(colour_off[k]), colour_missing=float(colour_missing[k]),
            alignment=replace(item.plain.alignment, colour_off=colour_differs[k]),
        ))  # fmt: skip
    return out


def _brighten(
    tried: np.ndarray,
    theirs: np.ndarray,
    their_colour: np.ndarray,
    my_colour: np.ndarray,
    product: np.ndarray,
    colour_off: np.ndarray,
    colour_missing: np.ndarray,
    colour_differs: np.ndarray,
) -> None:
    """The colour evidence of each `tried` candidate against its colours brightened by each of
    BRIGHTENINGS (clipped), in place: the closest (colour off plus colour missing) counts when it
    is closer than the plain fit. Every candidate and factor in one pass of array operations (one
    by one, each factor's dozen small array calls took a third of a new product's verification);
    each pixel's numbers are those of the candidate alone."""
    picked = np.flatnonzero(tried)
    weight = _centre_weight()
    unclipped = bright_srgb(theirs[picked], np.moveaxis(their_colour[picked], 1, 0))  # what every factor scales
    clipped = np.stack([brightened_ab(unclipped, factor) for factor in BRIGHTENINGS])  # (factors, 2, n, 24, 24)
    clipped = np.ascontiguousarray(np.moveaxis(clipped, 1, 2))  # (factors, n, 2, 24, 24)
    mine = my_colour[picked]
    scale = (mine * clipped).sum(axis=(2, 3, 4)) / np.maximum((clipped * clipped).sum(axis=(2, 3, 4)), 1e-6)
    scale = np.clip(scale, MIN_SATURATION, MAX_SATURATION)
    fit = (clipped * scale[..., None, None, None]).astype(np.float32).reshape(-1, *mine.shape[1:])
    mine = np.broadcast_to(mine, clipped.shape).reshape(fit.shape)
    differs = (_tolerant_residual(mine, fit) > COLOUR_TOLERANCE).reshape(len(BRIGHTENINGS), len(picked), FINE, FINE)
    lacking = (_tolerant_residual(fit, mine) > COLOUR_TOLERANCE).reshape(differs.shape) & product[picked]
    offs, lacks = (differs * weight).sum(axis=(2, 3)), (lacking * weight).sum(axis=(2, 3))
    for j, k in enumerate(picked):
        closest = (colour_off[k] + colour_missing[k], colour_differs[k], colour_missing[k], colour_off[k])
        for f in range(len(BRIGHTENINGS)):
            off, lack = float(offs[f, j]), float(lacks[f, j])
            if off + lack < closest[0]:
                closest = (off + lack, differs[f, j], lack, off)
        _, colour_differs[k], colour_missing[k], colour_off[k] = closest


def _product(lumas: np.ndarray, chromas: np.ndarray, whole_lumas: np.ndarray, whole_chromas: np.ndarray) -> np.ndarray:
    """(n, 24, 24) bool: the pixels of each aligned candidate (`lumas`, `chromas` (n, 2, 24, 24))
    that are its product: off its background colour (the median of its whole view's outer ring,
    when most of the ring is that colour), and not on the product's outline, where a pixel of
    misalignment changes the colour. Everything, for a picture without a plain background."""
    ring_luma = outer_ring(np.moveaxis(whole_lumas, (-2, -1), (0, 1)))  # (r, n)
    ring_chroma = outer_ring(np.moveaxis(whole_chromas, (-2, -1), (0, 1)))  # (r', n, 2)
    level, tint = median(ring_luma), median(ring_chroma)  # (n,), (n, 2)
    plain = np.mean(np.abs(ring_luma - level) <= BACKGROUND_TOLERANCE, axis=0) >= 0.5
    off = np.abs(lumas - level[:, None, None]) > BACKGROUND_TOLERANCE
    off |= ((chromas - tint[:, :, None, None]) ** 2).sum(axis=1) > (BACKGROUND_TOLERANCE / 2) ** 2
    off |= ~plain[:, None, None]
    return neighbourhood(off, np.logical_and, fill=True)  # eroded: the outline left out


def _layout(lumas: np.ndarray) -> np.ndarray:
    """(n, 24, 24) -> (n, LAYOUT_BITS): pHash bits of each picture, without the mean (DC) term."""
    low = low_frequencies(lumas, LAYOUT_FREQUENCIES)[:, 1:]
    return low > odd_medians(low)  # (an odd count: 63)


def verify(
    probe: Probe,
    candidates: Sequence[Views],
    targets: Sequence[Target],
    judged: int | None = None,
    colour_shown: Callable[[Evidence], bool] | None = None,
    nearest: int | None = None,
    *,
    turn: bool = True,
) -> list[Evidence | None]:
    """Evidence for the `judged` candidates most alike at the coarse alignment (all by default),
    each at its best alignment with the query; None for the others. Screening by the coarse
    alignment rather than by hash distance reaches the copies whose hashes moved most (big crops,
    combinations) for the cost of judging no more candidates. When none passes its target
    upright, the ROTATED_CANDIDATES most alike whose colour mostly agrees are tried again with the
    query turned, most alike first, until one lines up (turned in lockstep, `_turned_in_order`:
    the answers are those of turning one candidate after the other).
    (Turning when one already passes changed no verdict on the benchmark, and cost copies 10 ms
    at the 90th percentile.)

    When none passes upright and the query's own borders show a turn (`Probe.border_turn`: a
    copy turned with a fill), the query turned back by it is judged first, as upright.

    `nearest`, the candidate nearest by hash, is judged whatever its coarse likeness, and turned
    first: a turn of a few degrees lowers the upright likeness that ranks the others (a turned
    copy's own candidate fell to 12th-30th of 40), while the hash, of low frequencies, barely
    moves (the same copies' candidate was nearest by hash).

    `colour_shown`: which evidence's colour the caller shows beyond its target's verdict (the
    edits of a `similar` match); None: all of it. The brightened colours a brighter query tries
    (the costliest step of a judgement) are then tried only for the evidence whose colour can
    decide its target (`Target.open_on_colour`) or is shown, and for the candidates the turning
    chooses among by colour (ROTATION_COLOUR): every verdict, score and edit is the same as
    with all of them tried. `turn`: False judges the query upright only."""
    if not candidates:
        return []
    lumas = np.stack([c.luma for c in candidates])

    def colour_matters(target: Target) -> Callable[[Evidence], bool] | None:
        if colour_shown is None:
            return None
        return lambda evidence: target.open_on_colour(evidence) or colour_shown(evidence)

    def judged_at(angle: float) -> tuple[list[int], dict[int, Evidence], dict[int, _Unbrightened]]:
        """The `judged` most alike at the coarse alignment with the query turned by `angle` (and
        the nearest), each judged there: their indices, evidence and what brightening left."""
        query = probe.at(angle)
        scores = _coarse_scores(lumas, query)
        reach = scores.reshape(len(candidates), -1).max(axis=1)
        most_alike: set[int] = set(np.argsort(-ranked(reach), kind="stable")[:judged].tolist())
        chosen = sorted(most_alike if nearest is None else most_alike | {nearest})
        matters = [colour_matters(targets[i]) for i in chosen]

        def wanted(k: int, evidence: Evidence) -> bool:
            matter = matters[k]
            return matter is None or matter(evidence)

        evidence, pending = _judge_aligned([query], [candidates[i] for i in chosen], scores[chosen], wanted)
        return chosen, dict(zip(chosen, evidence, strict=True)), {chosen[k]: item for k, item in pending.items()}

    _, found, later = judged_at(0.0)
    if turn and not any(targets[i].passes(e) for i, e in found.items()):
        # A query whose own borders show a turn (a copy turned with a fill, padded or framed
        # first or not) is judged once more turned back by it, as upright: its fill corners
        # can leave too little alike upright for the turning below to start from.
        border = probe.border_turn()
        if border is not None:
            lined_up = {i: e for i, e in judged_at(round(border, 1))[1].items() if targets[i].passes(e)}
            if lined_up:
                found.update(lined_up)
                return [found.get(i) for i in range(len(candidates))]
        order = [
            i
            for i in sorted(found, key=lambda i: (i != nearest, -ranked(found[i].similarity)))
            if found[i].similarity >= ROTATION_MIN_SIMILARITY
        ]
        # Brightening can only lower colour off plus colour missing: unbrightened evidence at most
        # ROTATION_COLOUR off that way is alike whatever it does (a margin for rounding); the rest
        # the choice may reach (before ROTATED_CANDIDATES surely alike) are brightened, together.
        unsure, sure = [], 0
        for i in order:
            if sure == ROTATED_CANDIDATES:
                break
            if i in later and found[i].colour_off + found[i].colour_missing > ROTATION_COLOUR - 1e-6:
                unsure.append(i)
            elif found[i].colour_off <= ROTATION_COLOUR:
                sure += 1
        if unsure:
            found.update(zip(unsure, _brightened([later[i] for i in unsure]), strict=True))
        alike = [i for i in order if found[i].colour_off <= ROTATION_COLOUR][:ROTATED_CANDIDATES]  # fill, not colour
        turnings = [
            _Turning(
                candidates[i],
                lumas[i : i + 1],
                targets[i],
                found[i],
                colour_matters(targets[i]),
                TURN_SCAN if i == nearest else (),
            )
            for i in alike
        ]
        for i, answer in zip(alike, _turned_in_order(probe, turnings), strict=False):
            found[i] = answer
            if targets[i].passes(answer):
                # The others judged with the query turned as it lined up with this one: the
                # same photograph kept twice (a copy and its original) lines up at one angle.
                assert answer.alignment is not None
                _, again, _ = judged_at(answer.alignment.angle)
                found.update((j, e) for j, e in again.items() if j != i and targets[j].passes(e))
                break
    return [found.get(i) for i in range(len(candidates))]


def whole_to_whole(asked: QueryViews, catalog: Views) -> Evidence:
    """`asked` judged against `catalog` as they are, the whole of one picture on the whole of the
    other (upright, their whole views, not trimmed): a band pasted across a flat picture pulls
    the coarse search to a crop that leaves the band out, where the rest no longer lines up
    either, and takes the trimmed view of the picture holding it out to the picture's edges."""
    scores = _coarse_scores(catalog.luma[None], asked)
    whole = _windows().index((0.0, 1.0))
    only = np.full(scores.shape, -2.0, dtype=scores.dtype)  # (below any correlation: never the best)
    only[:, 0, whole, whole, 0] = scores[:, 0, whole, whole, 0]
    return _judge_aligned([asked], [catalog], only, _never)[0][0]  # (colours not brightened: the look decides)


def whole_reversed(query: Views, candidate: Views) -> Evidence:
    """The candidate as the query on the query's whole view (`verify_reversed`'s way round,
    `whole_to_whole`'s alignment)."""
    return whole_to_whole(query_views([candidate], [0.0], [(WHOLE, WHOLE)])[0], query)


def verify_reversed(query: Views, candidates: Sequence[Views], judged: int | None = None) -> list[Evidence | None]:
    """Each candidate as the query, upright and mirrored, against windows of the query's views
    as if the query were the catalog picture: where a candidate shows less of the photograph
    than the query (the catalog holds the crop), this is the way round the windows line up.
    Evidence for the `judged` most alike at the coarse alignment (all by default) that are alike
    enough there to be refined (REFINE_MIN), None for the others; colour is not brightened (only
    the structure screens: the tiers looked at)."""
    if not candidates:
        return []
    # Every candidate's coarse views against the query's windows in one product, each score its own.
    coarse = coarse_views(candidates)
    windows = _coarse_sampler()
    each = _window_correlations(windows, windows, halve(query.luma[None]), coarse.reshape(-1, COARSE, COARSE), COARSE)
    scores = np.moveaxis(each[0].reshape(*each.shape[1:-1], len(candidates), -1), -2, 0)
    reach = scores.reshape(len(candidates), -1).max(axis=1)
    chosen = sorted(i for i in np.argsort(-ranked(reach), kind="stable")[:judged].tolist() if reach[i] >= REFINE_MIN)
    if not chosen:
        return [None] * len(candidates)
    picked = [candidates[i] for i in chosen]
    asked = query_views(picked, [0.0] * len(picked), [(WHOLE, WHOLE)] * len(picked))
    evidence, _ = _judge_aligned(asked, [query] * len(chosen), scores[chosen], _never)
    found = dict(zip(chosen, evidence, strict=True))
    return [found.get(i) for i in range(len(candidates))]


def best_parts(query: Views, candidates: Sequence[Views], share: float) -> list[int]:
    """For each candidate, the side (of views.PART_SIDES) whose strip of `share` taken off the
    query's trimmed view leaves the part most alike one of the candidate's coarse windows: where
    the query shows what the catalog picture does not (a copy cropped from another side)."""
    grid = query.luma[1].astype(np.float64)
    parts = []
    for side in range(len(PART_SIDES)):
        (top, bottom), (left, right) = part_box(side, share)
        part = windows_of(grid, [(top, 1.0 - top - bottom)], [(left, 1.0 - left - right)], LUMA_GRID)[0, 0]
        parts.append(Views(np.stack([part, part]).astype(np.float32), query.chroma))
    coarse = coarse_views(parts).reshape(-1, COARSE, COARSE)  # (sides x 4 views, 8, 8)
    windows = _coarse_sampler()
    scores = _window_correlations(windows, windows, halve(np.stack([c.luma for c in candidates])), coarse, COARSE)
    reach = scores.reshape(len(candidates), -1, len(PART_SIDES), 2 * VIEWS).max(axis=(1, 3))  # (candidates, sides)
    return [int(np.argmax(ranked(row))) for row in reach]


def _never(index: int, evidence: Evidence) -> bool:
    return False


def _turned(
    probe: Probe,
    candidate: Views,
    luma: np.ndarray,
    target: Target,
    upright: Evidence,
    colour_matters: Callable[[Evidence], bool] | None = None,
) -> Evidence:
    """The best evidence with the query turned (see `_Turning`), for one candidate."""
    return next(_turned_in_order(probe, [_Turning(candidate, luma, target, upright, colour_matters)]))


def _turned_in_order(probe: Probe, turnings: Sequence[_Turning]) -> Iterator[Evidence]:
    """Each turning's answer, in order, as soon as it and those before it are done: the turnings
    go in lockstep, each step's judgements of every turning still going made in one
    `_judge_aligned` call (four candidates judged together cost 1.34x one; each with the query
    turned by its own angle, and its numbers its own). A caller that stops asking (a candidate
    passed) ends the turnings after it: at most one step of each was judged ahead."""
    for k, turning in enumerate(turnings):
        while turning.trials:
            _step_together(probe, [t for t in turnings[k:] if t.trials])
        assert turning.answer is not None
        yield turning.answer


def _step_together(probe: Probe, going: Sequence[_Turning]) -> None:
    """Each turning of `going` judged at each of its trial angles, in one `_judge_aligned` call."""
    judged_for = [t for t in going for _ in t.trials]
    queries = probe.at_many([angle for t in going for angle in t.trials])
    scores = np.concatenate([t.coarse_scores(query) for t, query in zip(judged_for, queries, strict=True)])

    def matters(j: int, evidence: Evidence) -> bool:
        wanted = judged_for[j].colour_matters
        return wanted is None or wanted(evidence)

    every = all(t.colour_matters is None for t in going)  # (None: all brightened, as each would be)
    judged, _ = _judge_aligned(queries, [t.candidate for t in judged_for], scores, None if every else matters)
    start = 0
    for t in going:
        count = len(t.trials)
        t.take(judged[start : start + count])
        start += count


@dataclass(slots=True)
class _Turning:
    """A candidate's turning, a step at a time (`trials`: the angles to judge next, none once
    done; `take`: their evidence; `answer`: the best evidence with the query turned).

    Each turn is by the angle the last alignment says is left (`residual_turn`), at most
    ROTATION_STEPS of them; the first evidence that passes the target is the answer. When the
    first turn makes the pair less alike than upright, the estimate pointed the wrong way (a
    picture alike everywhere but in its low frequencies can): the other way is tried once.
    Turning ends when a turn leaves too little, loses more than ROTATION_LOSS of correlation on
    the best, or when the first turn (either way) gained less than TURN_PROMISE on upright without
    passing the target, by a turn of PROMISE_MIN_TURN or more (another picture: a turned copy's
    first turn gains far more, or already passes). `colour_matters`: as verify's, for this
    candidate (evidence whose colour matters to no one is left unbrightened).

    `scan`: angles tried when the estimates end without a line-up (the estimate from the 32 px
    views can stop near 0 or point the wrong way in a busy scene), all judged in one step and
    read in order: the first that lines up is the answer, as if tried one after the other."""

    candidate: Views
    luma: np.ndarray  # (1, views, 32, 32): the candidate's luma, as the coarse search takes it
    target: Target
    upright: Evidence
    colour_matters: Callable[[Evidence], bool] | None = None
    scan: tuple[float, ...] = ()
    trials: tuple[float, ...] = field(default=(), init=False)
    answer: Evidence | None = field(default=None, init=False)
    _best: Evidence = field(init=False)
    _last: Evidence = field(init=False)
    _angle: float = field(default=0.0, init=False)  # of the last turn kept
    _step: int = field(default=0, init=False)
    _left: float = field(default=0.0, init=False)  # the turn the last one kept said was left
    _reversed: bool = field(default=False, init=False)  # the trial is the first turn, the other way
    _scanning: bool = field(default=False, init=False)  # the trials are `scan`'s
    _windows: tuple[np.ndarray, np.ndarray] | None = field(default=None, init=False)  # its coarse windows' side

    def coarse_scores(self, query: QueryViews) -> np.ndarray:
        """`_coarse_scores` of the candidate with the query turned, its own side kept for the next."""
        if self._windows is None:
            self._windows = _coarse_windows(self.luma)
        return _coarse_scores(self.luma, query, self._windows)

    def __post_init__(self) -> None:
        self._best = self._last = self.upright
        self._next()

    def _next(self) -> None:
        if self._step == ROTATION_STEPS:
            return self._end(self._best)
        self._left = _turn_left(self._last.alignment) if self._last.alignment is not None else 0.0
        if abs(self._left) < MIN_STEP:
            return self._end(self._best)
        self.trials = (round(max(-MAX_ANGLE, min(MAX_ANGLE, self._angle + self._left)), 1),)
        return None

    def _end(self, answer: Evidence) -> None:
        # (A candidate whose photograph a look found needs no other start: another alignment of
        # the same photograph would only read its colours again.)
        if self.scan and not self._scanning and not self._lines_up(answer) and not self.target.found_photograph:
            self.trials, self._scanning = self.scan, True
            return
        self.trials, self.answer = (), answer

    def _lines_up(self, found: Evidence) -> bool:
        if found.alignment is None:
            return False
        if self.target.judges_detail:  # the same-photograph test says what a turn lined up
            return self.target.passes(found)
        # On the views alone a turn is one more freedom fitted to the pair: a turned candidate
        # must also gain on upright, keep its layout and turn as one piece.
        return (
            found.similarity >= self.upright.similarity + TURN_GAIN
            and found.layout_off <= TURNED_MAX_LAYOUT
            and found.alignment is not None
            and self.target.passes(found)
            and _turn_spread(found.alignment) <= TURN_SPREAD
        )

    def take(self, judged: Sequence[Evidence]) -> None:
        """The evidence with the query turned by each of `trials`: what to judge next, or the answer."""
        assert len(judged) == len(self.trials) > 0, "a turning takes the evidence of its trials"
        if self._scanning:
            for found in judged:  # in order, as if one at a time: the first that lines up
                if self._lines_up(found):
                    return self._end(found)
                if found.similarity > self._best.similarity and not self.target.passes(found):
                    self._best = found
                if self.target.found_photograph:
                    break  # (as in `_end`: only its colour is left in question)
            return self._end(self._best)
        (found,) = judged
        trial = self.trials[0]
        first = self._step == 0
        if first and not self._reversed and found.similarity < self.upright.similarity and not self._lines_up(found):
            self.trials, self._reversed = (round(max(-MAX_ANGLE, min(MAX_ANGLE, -self._left)), 1),), True
            return None
        if self._lines_up(found):
            return self._end(found)
        if found.similarity < self._best.similarity - ROTATION_LOSS:
            return self._end(self._best)
        if found.similarity > self._best.similarity and not self.target.passes(found):
            self._best = found  # (a turn that passes only by moving the layout is not kept)
        promising = found.similarity >= self.upright.similarity + TURN_PROMISE or abs(trial) < PROMISE_MIN_TURN
        if first and not promising and not self.target.passes(found):
            return self._end(self._best)  # the first turn (either way) barely moved the correlation: another picture
        self._angle, self._last, self._step = trial, found, self._step + 1
        return self._next()


def _turn_left(alignment: Alignment) -> float:
    """Degrees (counter-clockwise) the query itself is still to be turned by: `residual_turn`
    measures the aligned views, and a mirrored query's view is its picture mirrored, which
    turns the other way."""
    left = residual_turn(alignment)
    return -left if alignment.mirrored else left


def _turn_spread(alignment: Alignment) -> float:
    """Degrees between the largest and the smallest turn left in the pair's four halves."""
    size, half = alignment.mine.shape[0], alignment.mine.shape[0] // 2
    turns = []
    for rows, cols in ((slice(0, half), slice(None)), (slice(half, size), slice(None)),
                       (slice(None), slice(0, half)), (slice(None), slice(half, size))):  # fmt: skip
        outside = np.ones_like(alignment.luma_off)
        outside[rows, cols] = False
        turns.append(residual_turn(alignment, outside))
    return max(turns) - min(turns)


def residual_turn(alignment: Alignment, leave_out: np.ndarray | None = None) -> float:
    """Degrees (counter-clockwise) the aligned query's view is still turned from the candidate's:
    one Gauss-Newton step of a rotation, shift and scale of the candidate's luma (fitted to the
    query's levels) onto the query's, over the pixels that agree (fill corners and overlays out),
    but those in `leave_out`.
    Good to a degree or so while the pair is within a few degrees; turning by it and measuring
    again converges (_turned)."""
    mine, theirs = alignment.mine.astype(np.float64), alignment.theirs.astype(np.float64)
    agree = ~alignment.luma_off if leave_out is None else ~(alignment.luma_off | leave_out)
    if agree.sum() < 32:
        return 0.0
    # (Each array is read at the agreeing pixels once, and the basis built only there: the same
    # numbers as from the whole arrays, for ~20% less of the function's time.)
    my_levels, their_levels = mine[agree], theirs[agree]
    their_spread = their_levels.std()
    if float(their_spread) < 1.0:
        return 0.0
    gain = float(my_levels.std() / their_spread)
    fitted = gain * (theirs - their_levels.mean()) + my_levels.mean()
    dy, dx = (d[agree] for d in _gradient(fitted))
    y, x = (c[agree] for c in _centred_grid(mine.shape[0]))
    # Turned counter-clockwise by t (y pointing down), the query at p is the candidate at
    # p + t * (y, -x): the query minus the candidate is t * (y * dx - x * dy), to first order.
    basis = np.stack([y * dx - x * dy, dx, dy, x * dx + y * dy], axis=-1)
    solution, *_ = np.linalg.lstsq(basis, my_levels - fitted[agree], rcond=None)
    return float(np.degrees(solution[0]))


def _gradient(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.gradient(values) of a 2-D array (unit spacing: central differences inside, one-sided at
    the edges), the same numbers without its generality (a fifth of `residual_turn`)."""
    down, across = np.empty_like(values), np.empty_like(values)
    down[1:-1] = (values[2:] - values[:-2]) / 2.0
    down[0], down[-1] = values[1] - values[0], values[-1] - values[-2]
    across[:, 1:-1] = (values[:, 2:] - values[:, :-2]) / 2.0
    across[:, 0], across[:, -1] = values[:, 1] - values[:, 0], values[:, -1] - values[:, -2]
    return down, across


@cache
def _centred_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) of each pixel of a `size` square from its centre (np.mgrid's rows and columns)."""
    y, x = np.mgrid[0:size, 0:size] - (size - 1) / 2.0
    y.flags.writeable = x.flags.writeable = False
    return y, x
